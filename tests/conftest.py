"""Shared fixtures: a real Prefect server and a real process worker for the session.

The environment is fixed in ``pytest_configure``, before any test module imports Prefect:
every Prefect call in this process and in the processes we start goes to our own
server (never a temporary one), with telemetry off and state under a temp dir. Under
``pytest -n 2`` each worker is such a session of its own, test hosts included.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flows.settings import free_port


_HOME: Path | None = None
NETWORK = None
_PREREQS_OK = False
NETWORK_ERROR = ""


def _is_xdist_controller(config: pytest.Config) -> bool:
    """With ``-n N`` the controller only hands out test files; each worker is a whole session."""
    return not hasattr(config, "workerinput") and config.getoption("dist", "no") != "no"


def pytest_configure(config: pytest.Config) -> None:
    """Each session (one per xdist worker) gets its own home, server, worker and test hosts.

    Runs before any test module is imported, so every Prefect call in this process and in
    the processes it starts goes to that session's own server.
    """
    global _HOME, NETWORK, _PREREQS_OK, NETWORK_ERROR
    if _is_xdist_controller(config):
        return
    # A login's usual umask, not a strict one: the tests then show that the service makes
    # what it writes private itself (flows.settings.PRIVATE_UMASK).
    os.umask(0o022)
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
    try:
        from tests import testhosts as _th

        # P4INTEG_TEST_HOSTS=0: a second test run on the same machine leaves the hosts (and the
        # namespaces they live in) to the first.
        _PREREQS_OK = not _th.missing_prerequisites() and os.environ.get("P4INTEG_TEST_HOSTS") != "0"
        if _PREREQS_OK:
            _th.cleanup_leftovers()  # only runs whose owning process is gone: never a sibling worker's
            NETWORK = _th.TestHostNetwork(["a", "b", "down", "nopy"], no_python=["nopy"]).start()
    except Exception as exc:  # noqa: BLE001 - reported by the host_network fixture
        NETWORK_ERROR = f"test hosts could not be built: {exc}"
    else:
        NETWORK_ERROR = "" if NETWORK else "test hosts unavailable: " + (
            "; ".join(_th.missing_prerequisites()) or "P4INTEG_TEST_HOSTS=0")
    bind = NETWORK.bridge_address if NETWORK else "127.0.0.1"
    os.environ["P4INTEG_PREFECT_HOST"] = bind
    os.environ["PREFECT_API_URL"] = f"http://{bind}:{os.environ['P4INTEG_PREFECT_PORT']}/api"
    os.environ["PREFECT_HOME"] = str(_HOME / "prefect")
    # Patient with a busy SQLite server's 503s, as the service's own processes are.
    from flows.settings import CLIENT_MAX_RETRIES

    os.environ["PREFECT_CLIENT_MAX_RETRIES"] = CLIENT_MAX_RETRIES
    # The server refuses anonymous calls: this process (get_client in tests) sends the credential.
    from flows.settings import api_auth_string

    os.environ["PREFECT_API_AUTH_STRING"] = api_auth_string()


# The longest modules first (their summed test times in a full run, largest first): with
# "--dist loadfile --no-loadscope-reorder" xdist hands out whole modules in collection order (by
# default it would order them by their number of tests, and a long module of one test, the load
# day, would start last and run alone at the end), so starting the long ones
# first leaves short ones for the end, and the two workers finish together instead of one
# waiting for the other's last long module.
LONGEST_FIRST = [
    "flows/test_durable_waiting.py", "agent/test_remote_hosts.py", "flows/test_lines.py", "agent/test_load_day.py",
    "ui/test_pages.py", "ui/test_browser.py", "flows/test_integration_flow.py", "ui/test_pages_admin.py",
    "deployments/test_templates.py", "deployments/test_cli_demo.py", "flows/test_flow_guards.py",
    "deployments/test_replicas.py", "deployments/test_notifications.py", "deployments/test_recovery.py",
    "deployments/test_cli_errors.py",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent

    def rank(item: pytest.Item) -> int:
        where = Path(str(item.fspath)).relative_to(tests_dir).as_posix()
        return LONGEST_FIRST.index(where) if where in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each module's own order is kept


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
    from agent import pools
    from deployments import processes, register

    from deployments import notifications, recovery

    pools.ensure_pool("local", limit=6)
    register.ensure_deployment()
    notifications.ensure_automation()
    recovery.ensure_automations()
    processes.start_worker("local", limit=6)
    yield "integrate/local"
    processes.stop("worker-local")


@pytest.fixture
def stored_password(prefect_server: str) -> Iterator[Callable[[str, str], str]]:
    """``store(user, password)`` as ``p4integ credentials set`` does, for this test only. Test depots
    share user names, so a password left behind would be a later test's stale stored password."""
    from deployments import templates

    users: list[str] = []

    def store(user: str, password: str) -> str:
        users.append(user)
        return templates.store_password(user, password)

    yield store
    for user in set(users):
        templates.forget_password(user)


@pytest.fixture(autouse=True)
def _dispatcher_as_found() -> Iterator[None]:
    """A test that started the service's background process (``p4integ up`` and ``demo`` do)
    stops it after: its recovery sweep and line watcher would act in later tests' place."""
    if _HOME is None:
        yield
        return
    from deployments import processes

    before = "dispatcher" in processes.running()
    yield
    if not before and "dispatcher" in processes.running():
        processes.stop("dispatcher")


@pytest.fixture(scope="session")
def host_network():
    if NETWORK is None:
        if _PREREQS_OK:  # the machine can do it: a failure to build hosts is a failure
            pytest.fail(NETWORK_ERROR)
        pytest.skip(NETWORK_ERROR)
    return NETWORK


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _HOME is None:  # the xdist controller started nothing
        return
    from deployments import processes

    for name in list(processes.running()):
        processes.stop(name)
    if NETWORK is not None:
        NETWORK.teardown(raise_errors=False)
    if not os.environ.get("P4INTEG_KEEP_TEST_HOME"):  # keep worker/server logs for a post-mortem
        shutil.rmtree(_HOME, ignore_errors=True)
