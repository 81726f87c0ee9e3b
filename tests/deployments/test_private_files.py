"""The service's home, and what the processes it starts write there, are its own account's alone."""
from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deployments import processes

from flows import settings

pytestmark = pytest.mark.usefixtures("local_worker")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_up_tightens_an_open_home_and_what_services_write_is_private() -> None:
    home = settings.home()
    dispatcher_was_running = "dispatcher" in processes.running()
    home.chmod(0o755)  # as an earlier version, or a person, left it
    try:
        # From a login with the usual umask: the command sets its own.
        up = subprocess.run([sys.executable, "-m", "deployments.cli", "up", "--host-limit", "6"],
                            capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, umask=0o022)
        assert up.returncode == 0, up.stderr
        assert _mode(home) == 0o700
        run = home / "run"
        # The database the session's server made, the logs and pid files of the server and worker
        # this (umask 022) test process started, and of the dispatcher `up` started just now.
        made = [home / "prefect" / "prefect.db", run / "server.log", run / "server.pid",
                run / "worker-local.log", run / "worker-local.pid", run / "dispatcher.log", run / "dispatcher.pid"]
        made += [p for p in (home / "prefect").glob("prefect.db-*")]  # SQLite's -wal / -shm, when present
        assert {str(p.relative_to(home)): oct(_mode(p)) for p in made if _mode(p) & 0o077} == {}
    finally:
        if not dispatcher_was_running:
            processes.stop("dispatcher")
