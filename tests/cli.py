"""The ``p4integ`` command as a person runs it: a new process, its output and its exit code."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

P4INTEG = [sys.executable, "-m", "deployments.cli"]


def p4integ(*args: str, stdin: str | None = None, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``p4integ ARGS``; ``stdin`` is what is typed (nothing: the command reads an empty stdin)."""
    return subprocess.run([*P4INTEG, *args], input=stdin if stdin is not None else "", capture_output=True,
                          text=True, timeout=timeout, env=None if env is None else dict(env), cwd=cwd)


def enrol(host: Any, *extra: str, name: str | None = None) -> subprocess.CompletedProcess[str]:
    """``p4integ hosts add`` for an SSH test host (``tests.testhosts.Host``) with its key confirmed,
    under ``name`` (default: the host's own); an enrolment that fails fails the caller."""
    out = p4integ("hosts", "add", name or host.name, "--address", host.address, "--user", host.user,
                  "--key", str(host.private_key_path), "--fingerprint", host.host_key_fingerprint, *extra)
    if out.returncode:
        raise AssertionError(f"p4integ hosts add {name or host.name}: {out.stderr.strip()}")
    return out
