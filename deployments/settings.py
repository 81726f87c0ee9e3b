"""Where the service keeps its state, and how it reaches Prefect."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
FLOW_ENTRYPOINT = "flows/integration.py:integrate"
FLOW_NAME = "integrate"
DEFAULT_PORT = 4200


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (for a server of our own: tests, benchmarks)."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def read_password(prompt: str) -> str:
    """From the terminal without echo, or one line of stdin: never from arguments."""
    import getpass
    import sys

    return getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")


def home() -> Path:
    path = Path(os.environ.get("P4INTEG_HOME") or Path.home() / ".p4integ")
    path.mkdir(parents=True, exist_ok=True)
    return path


def server_port() -> int:
    return int(os.environ.get("P4INTEG_PREFECT_PORT", DEFAULT_PORT))


def server_host() -> str:
    # Localhost unless configured: the API has no authentication of its own.
    return os.environ.get("P4INTEG_PREFECT_HOST", "127.0.0.1")


def api_url() -> str:
    return os.environ.get("PREFECT_API_URL") or f"http://{server_host()}:{server_port()}/api"


def pool_name(host: str) -> str:
    return f"p4-{host}"


def host_of_pool(pool: str) -> str:
    return pool.removeprefix("p4-")


def prefect_env() -> dict[str, str]:
    """Environment for every Prefect process we start: explicit API, no telemetry."""
    env = dict(os.environ)
    env.update(
        PREFECT_API_URL=api_url(),
        PREFECT_HOME=str(home() / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_WORKER_QUERY_SECONDS=os.environ.get("PREFECT_WORKER_QUERY_SECONDS", "1"),
        P4INTEG_HOME=str(home()),
    )
    # Teams: PostgreSQL instead of the embedded SQLite, e.g.
    # P4INTEG_DATABASE_URL=postgresql+asyncpg://prefect@127.0.0.1:5432/prefect
    if os.environ.get("P4INTEG_DATABASE_URL"):
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = os.environ["P4INTEG_DATABASE_URL"]
    return env
