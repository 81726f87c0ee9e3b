"""``p4integ demo`` pauses on the conflict; ``p4integ resume`` finishes it."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from flows.p4.session import P4Session
from tests.cli import p4integ

pytestmark = pytest.mark.usefixtures("local_worker")



@pytest.mark.parametrize("how,version", [("--theirs", "version = 2.1"), ("--yours", "version = 2.0.1")])
def test_demo_then_resume(tmp_path: Path, how: str, version: str) -> None:
    demo = p4integ("demo", "--dir", str(tmp_path / "demo"))
    assert demo.returncode == 0, demo.stderr
    assert "state           Suspended (waiting for a person" in demo.stdout
    assert "conflict        //depot/rel/src/config.ini <- //depot/main/src/config.ini#2" in demo.stdout
    run_id = re.search(r"flow run\s+(\S+)", demo.stdout).group(1)  # type: ignore[union-attr]
    done = p4integ("resume", run_id, how)
    assert done.returncode == 0, done.stderr
    assert "state           Completed" in done.stdout
    port = f"sandbox:{tmp_path / 'demo' / 'depot'}"
    with P4Session(port, "release-bot", "rel-integ") as s:
        text = s.print_file("//depot/rel/src/config.ini")
        assert version in str(text).splitlines()
        assert s.opened() == []
    again = p4integ("resume", run_id, "--theirs")
    assert again.returncode == 2 and "is not waiting for a person: it is Completed" in again.stderr


def test_resume_needs_exactly_one_choice() -> None:
    out = p4integ("resume", "00000000-0000-0000-0000-000000000000")
    assert out.returncode == 2 and "exactly one of" in out.stderr


def test_demo_in_the_browser_signs_in_and_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`demo --browser`: the password exists before the job starts, so the job still runs after it."""
    import os
    import urllib.request

    from deployments import processes
    from flows.settings import free_port
    from ui import auth

    monkeypatch.setenv("P4INTEG_UI_PORT", str(free_port()))
    demo = subprocess.run([sys.executable, "-m", "deployments.cli", "demo", "--dir", str(tmp_path / "demo"),
                           "--browser"], input="Demo-pw-9\n", capture_output=True, text=True, timeout=400,
                          env=os.environ)
    try:
        assert demo.returncode == 0, demo.stderr
        assert "Demo-pw-9" not in demo.stdout + demo.stderr
        url = re.search(r"or in a browser (\S+/job\?run=(\S+))", demo.stdout)
        assert url, demo.stdout
        with urllib.request.urlopen(f"{processes.ui_url()}/_stcore/health", timeout=5) as r:
            assert r.status == 200
        port = f"sandbox:{tmp_path / 'demo' / 'depot'}"
        auth.check_credentials("release-bot", "Demo-pw-9", port)  # what the sign-in form checks
        done = p4integ("resume", url.group(2), "--theirs")
        assert "state           Completed" in done.stdout, done.stdout + done.stderr
    finally:
        processes.stop("ui")
