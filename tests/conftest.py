"""Shared fixtures: a real Prefect server and a real process worker for the session.

The environment is fixed here, at import, before any test module imports Prefect:
every Prefect call in this process and in the processes we start goes to our own
server (never a temporary one), with telemetry off and state under a temp dir.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.settings import free_port


_HOME = Path(tempfile.mkdtemp(prefix="p4integ-test-"))
os.environ.update(
    P4INTEG_HOME=str(_HOME),
    P4INTEG_PREFECT_PORT=str(free_port()),
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    DO_NOT_TRACK="1",
    PREFECT_WORKER_QUERY_SECONDS="1",
    PREFECT_LOGGING_TO_API_BATCH_INTERVAL="0.5",
    P4INTEG_SMTP_HOST="127.0.0.1",  # notification tests run an SMTP sink here
    P4INTEG_SMTP_PORT=str(free_port()),
)
# Real SSH test hosts when this machine allows (root, sshd, ip): the Prefect server then
# binds to their bridge address, which the hosts reach and this process reaches too.
NETWORK = None
_PREREQS_OK = False
try:
    from tests import testhosts as _th

    _PREREQS_OK = not _th.missing_prerequisites()
    if _PREREQS_OK:
        _th.cleanup_leftovers()
        NETWORK = _th.TestHostNetwork(["a", "b", "down", "nopy"], no_python=["nopy"]).start()
except Exception as _exc:  # noqa: BLE001 - reported by the host_network fixture
    NETWORK_ERROR = f"test hosts could not be built: {_exc}"
else:
    NETWORK_ERROR = "" if NETWORK else "test hosts unavailable: " + "; ".join(_th.missing_prerequisites())
_BIND = NETWORK.bridge_address if NETWORK else "127.0.0.1"
os.environ["P4INTEG_PREFECT_HOST"] = _BIND
os.environ["PREFECT_API_URL"] = f"http://{_BIND}:{os.environ['P4INTEG_PREFECT_PORT']}/api"
os.environ["PREFECT_HOME"] = str(_HOME / "prefect")


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """A Prefect server on SQLite for the whole session."""
    from deployments import processes

    processes.start_server()
    yield os.environ["PREFECT_API_URL"]
    processes.stop("server")


@pytest.fixture(scope="session")
def local_worker(prefect_server: str) -> Iterator[str]:
    """Pool p4-local, deployment integrate/local, and a process worker polling it."""
    from deployments import processes, register

    from deployments import notifications

    register.ensure_pool("local", limit=6)
    register.ensure_deployment("local")
    notifications.ensure_automation()
    processes.start_worker("local", limit=6)
    yield "integrate/local"
    processes.stop("worker-local")


@pytest.fixture(scope="session")
def host_network():
    if NETWORK is None:
        if _PREREQS_OK:  # the machine can do it: a failure to build hosts is a failure
            pytest.fail(NETWORK_ERROR)
        pytest.skip(NETWORK_ERROR)
    return NETWORK


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from deployments import processes

    for name in list(processes.running()):
        processes.stop(name)
    if NETWORK is not None:
        NETWORK.teardown(raise_errors=False)
    if not os.environ.get("P4INTEG_KEEP_TEST_HOME"):  # keep worker/server logs for a post-mortem
        shutil.rmtree(_HOME, ignore_errors=True)
