"""The wheelhouse a host installs from, built on the service's machine.

Hosts need no internet: the service builds wheels for the worker's dependencies
once (cached by the dependency list) and a wheel of this project per source
version, and copies them over SSH. The version names the host's venv, so a new
project version gets a new venv and the worker is replaced.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from flows.settings import PROJECT_DIR

# Needed on Python < 3.11.3 (asyncio.timeout backport used by Prefect's deps).
EXTRA_FOR_OLD_PYTHON = ["async-timeout>=4.0.3"]
_SOURCE_DIRS = ("flows", "agent", "deployments", "ui")


@dataclass(frozen=True)
class Wheelhouse:
    version: str
    deps: list[Path]
    project: Path

    @property
    def files(self) -> list[Path]:
        return [*self.deps, self.project]


def cache_dir() -> Path:
    base = os.environ.get("P4INTEG_WHEEL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "p4-integration")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _core_dependencies() -> list[str]:
    data = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
    return list(data["project"]["dependencies"]) + EXTRA_FOR_OLD_PYTHON


def _sources() -> list[Path]:
    files = [PROJECT_DIR / "pyproject.toml", PROJECT_DIR / "prefect.yaml"]
    for d in _SOURCE_DIRS:
        files += sorted((PROJECT_DIR / d).rglob("*.py"))
    return files


_digest_of: dict[tuple[tuple[str, int, int], ...], str] = {}


def source_version() -> str:
    """Project version plus a digest of the code a worker runs.

    The dispatcher asks every second for every host: the files are read and hashed again
    only when one of them changed (name, size or modification time), else it is a stat each."""
    files = _sources()
    signature = tuple((str(f), st.st_mtime_ns, st.st_size) for f in files for st in (f.stat(),))
    if signature not in _digest_of:
        data = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())
        h = hashlib.sha256()
        for f in files:
            h.update(str(f.relative_to(PROJECT_DIR)).encode())
            h.update(f.read_bytes())
        _digest_of.clear()
        _digest_of[signature] = f"{data['project']['version']}-{h.hexdigest()[:10]}"
    return _digest_of[signature]


def _pip(args: list[str], what: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise RuntimeError(f"building the wheelhouse ({what}) failed with exit code {done.returncode}:\n{tail}")


def build() -> Wheelhouse:
    deps_list = _core_dependencies()
    deps_key = hashlib.sha256("\n".join(sorted(deps_list)).encode()).hexdigest()[:12]
    deps_dir = cache_dir() / f"deps-{deps_key}"
    if not (deps_dir / ".complete").exists():
        deps_dir.mkdir(parents=True, exist_ok=True)
        _pip(["wheel", "-q", "-w", str(deps_dir), *deps_list], "dependencies")
        (deps_dir / ".complete").write_text("\n".join(deps_list))
    version = source_version()
    proj_dir = cache_dir() / f"project-{version}"
    wheels = list(proj_dir.glob("p4_integration-*.whl"))
    if not wheels:
        proj_dir.mkdir(parents=True, exist_ok=True)
        # setuptools builds in the project's build/ and never deletes what an earlier build
        # left there: a module since moved or removed would ship to the hosts again.
        shutil.rmtree(PROJECT_DIR / "build", ignore_errors=True)
        _pip(["wheel", "-q", "--no-deps", "-w", str(proj_dir), str(PROJECT_DIR)], "project")
        wheels = list(proj_dir.glob("p4_integration-*.whl"))
    deps = sorted(p for p in deps_dir.glob("*.whl") if not p.name.startswith("p4_integration-"))
    return Wheelhouse(version=version, deps=deps, project=wheels[0])
