"""Where the service keeps its state, and how it reaches Prefect."""
from __future__ import annotations

import functools
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import P4IntegError

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Flows' entrypoints as module paths, not script paths: Prefect imports a module path
# (a worker's engine server has it imported already) but executes a script path's file
# afresh in every run's process (0.2-0.3 s more of each start and each resume).
FLOW_ENTRYPOINT = "flows.integration:integrate"
CLEANUP_ENTRYPOINT = "flows.cleanup:cleanup"
FLOW_NAME = "integrate"
DEFAULT_PORT = 4200
# Every flow run's process says it is alive this often (Prefect's minimum is 30 s); a
# run silent for HEARTBEAT_GRACE_SECONDS is marked Crashed by an automation (recovery.py).
HEARTBEAT_SECONDS = 30
HEARTBEAT_GRACE_SECONDS = 90
CLIENT_MAX_RETRIES = "7"  # process_env: how often the service's Prefect processes retry a refused call
# The Prefect API's credential, a 0600 file in $P4INTEG_HOME (see docs/security.md).
API_AUTH_FILE = "prefect-api-auth"
# The key Prefect encrypts Secret block values with, kept out of the database it protects.
ENCRYPTION_KEY_FILE = "prefect-encryption-key"
# The key the front page signs its session cookies with (docs/security.md, "Sign-in").
KEY_FILE = "ui-secret"
KEY_BYTES = 32
# What the service writes (database, logs, run records, locks) is for its own account only:
# files are born 0600 and directories 0700, whatever umask the person starting it has.
PRIVATE_UMASK = 0o077


# Administrators (deployments/roles.py decides who is one; docs/security.md says what they may do):
# Perforce users listed by the operator, comma-separated ...
ADMINS_VAR = "P4INTEG_ADMINS"
# ... and the members of this Perforce group, directly or through subgroups (e.g. p4integ-admins).
ADMIN_GROUP_VAR = "P4INTEG_ADMIN_GROUP"
# The Perforce server the front page signs people in against.
P4PORT_VAR = "P4INTEG_P4PORT"


@functools.cache
def admins() -> frozenset[str]:
    """The listed administrators, read once from P4INTEG_ADMINS (a restart picks up a change)."""
    return frozenset(u.strip() for u in os.environ.get(ADMINS_VAR, "").split(",") if u.strip())


def admin_group() -> str | None:
    """The Perforce group whose members are administrators, if one is configured."""
    return os.environ.get(ADMIN_GROUP_VAR, "").strip() or None


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
    """``$P4INTEG_HOME`` (default ``~/.p4integ``), mode 0700: it holds the Prefect database,
    logs, locks and keys, so other local users may not even list it. One that exists with
    wider rights (made by an earlier version, or by hand) is tightened here."""
    path = Path(os.environ.get("P4INTEG_HOME") or Path.home() / ".p4integ")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        try:
            path.chmod(0o700)
        except PermissionError:
            raise PermissionError(f"P4INTEG_HOME: {path} is mode {mode:o} and this account cannot make it 0700 "
                                  "(another account owns it); point P4INTEG_HOME at a directory of the "
                                  "service's own account") from None
    return path


def write_private(path: Path, text: str) -> None:
    """Replace ``path``'s content with ``text``, the file 0600 whatever the caller's umask
    (and tightened if an earlier version left it wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def ui_tls_proxy() -> bool:
    """P4INTEG_UI_TLS_PROXY=1: the front page sits behind a TLS proxy of ours, so its
    ``X-Forwarded-Proto: https`` is believed (the cookie is then marked Secure)."""
    return os.environ.get("P4INTEG_UI_TLS_PROXY", "").strip().lower() in ("1", "true", "yes")


def server_port() -> int:
    return int(os.environ.get("P4INTEG_PREFECT_PORT", DEFAULT_PORT))


def server_host() -> str:
    # Localhost unless configured: hosts that can reach the API still need the credential.
    return os.environ.get("P4INTEG_PREFECT_HOST", "127.0.0.1")


def api_url() -> str:
    return os.environ.get("PREFECT_API_URL") or f"http://{server_host()}:{server_port()}/api"


def secret_file(name: str, make: Callable[[], str | bytes]) -> Path:
    """``$P4INTEG_HOME/<name>``, created once with ``make()`` and mode 0600 from the start
    (O_EXCL: never a moment where the file exists with wider rights, and of two processes
    starting at once one writes it); reused afterwards. Text gets a final newline, bytes
    are written as they are."""
    path = home() / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    value = make()
    with os.fdopen(fd, "wb") as fh:
        fh.write(value if isinstance(value, bytes) else (value + "\n").encode())
    return path


def api_auth_file() -> Path:
    """Where the Prefect API's credential lives (``user:password`` for HTTP basic auth)."""
    import secrets

    return secret_file(API_AUTH_FILE, lambda: f"admin:{secrets.token_urlsafe(32)}")


def api_auth_string() -> str:
    """The credential every client of ours sends; the server refuses calls without it."""
    value = api_auth_file().read_text().strip()
    if ":" not in value:
        raise ValueError(f"{api_auth_file()}: expected one line 'user:password'; delete the file and run "
                         "'p4integ down' then 'p4integ up' to make a new one (hosts get it at their next converge)")
    return value


def encryption_key_file() -> Path | None:
    """The server's Fernet key file, made with a new SQLite database; None for a database
    that already holds Prefect's own key (switching keys would make its secrets unreadable)."""
    path = home() / ENCRYPTION_KEY_FILE
    new_database = not os.environ.get("P4INTEG_DATABASE_URL") and not (home() / "prefect" / "prefect.db").exists()
    if not path.exists() and not new_database:
        return None
    from cryptography.fernet import Fernet

    return secret_file(ENCRYPTION_KEY_FILE, lambda: Fernet.generate_key().decode())


def pool_name(host: str) -> str:
    return f"p4-{host}"


def host_of_pool(pool: str) -> str:
    return pool.removeprefix("p4-")


def process_env(base: str, api: str, python: str) -> dict[str, str]:
    """What every process of the service (server, worker, flow run, here or on a host whose
    state lives in ``base``) is told: the API and its credential, its own Prefect home,
    telemetry off, a quick worker poll, the heartbeat the recovery automation expects, patient
    retries, and the Python that runs its jobs (flows.engine_start.ENGINE_COMMAND)."""
    return {
        "PREFECT_API_URL": api,
        "PREFECT_API_AUTH_STRING": api_auth_string(),
        "PREFECT_HOME": f"{base}/prefect",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_WORKER_QUERY_SECONDS": os.environ.get("PREFECT_WORKER_QUERY_SECONDS", "1"),
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS),
        # Prefect's client retries a 503 (a busy SQLite database answers so, and a restarting
        # server) 5 times, 62 s in all; a worker's submission that still meets one crashes the
        # run. 7 retries wait up to 254 s, longer than a server restart or a lock pile-up lasts.
        "PREFECT_CLIENT_MAX_RETRIES": CLIENT_MAX_RETRIES,
        "P4INTEG_HOME": base,
        "P4INTEG_PYTHON": python,
    }


def prefect_env() -> dict[str, str]:
    """Environment for every Prefect process we start on this machine: ours over the caller's."""
    env = dict(os.environ)
    env.update(process_env(str(home()), api_url(), sys.executable))
    # Teams: PostgreSQL instead of the embedded SQLite, e.g.
    # P4INTEG_DATABASE_URL=postgresql+asyncpg://prefect@127.0.0.1:5432/prefect
    if os.environ.get("P4INTEG_DATABASE_URL"):
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = os.environ["P4INTEG_DATABASE_URL"]
    return env


class KeyRefused(P4IntegError, RuntimeError):
    """The signing key file exists but cannot be trusted; the front page does not start."""


def signing_key() -> bytes:
    """The signing key, made once per installation, readable by its owner only.

    A missing file is the first start: a new key is made. A file that exists but holds
    fewer than KEY_BYTES bytes is refused rather than replaced, since something other than
    this code wrote it (or cut it short), and cookies signed with a guessable key could be
    forged."""
    import secrets

    path = secret_file(KEY_FILE, lambda: secrets.token_bytes(KEY_BYTES))
    key = path.read_bytes()
    if len(key) < KEY_BYTES:
        raise KeyRefused(f"{path} holds {len(key)} bytes, fewer than the {KEY_BYTES} a signing key needs; "
                         "delete it and start the front page again to make a new one (everyone signs in again)")
    return key
