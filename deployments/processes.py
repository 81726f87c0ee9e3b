"""Background processes we start (Prefect server, local worker), tracked by pid files.

Idempotent: starting something already running (pid alive, health answering)
changes nothing; stopping leaves no process behind (SIGTERM, then SIGKILL; a
worker that ran flows may ignore the first SIGTERM).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from flows.polling import http_ok, poll_until
from flows.settings import (
    P4PORT_VAR, PRIVATE_UMASK, api_auth_string, api_url, encryption_key_file, home, pool_name, prefect_env,
    server_host, server_port, signing_key, write_private,
)

PREFECT = [sys.executable, "-m", "prefect"]


def run_dir() -> Path:
    path = home() / "run"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _pid(name: str) -> int | None:
    try:
        pid = int((run_dir() / f"{name}.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def start_process(name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> int:
    """Start ``argv`` in a session of its own, output appended to ``run/<name>.log``.

    The process gets umask 077 whoever started it (the CLI, a test, a script calling this
    module): what it writes (the Prefect database, flow runs' locks and records, the front
    page's files) is the service account's alone. Its log is opened here, so it is made
    0600 here too (and tightened if an earlier version left it wider)."""
    fd = os.open(run_dir() / f"{name}.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "ab") as log:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=str(cwd or home()), umask=PRIVATE_UMASK)
    write_private(run_dir() / f"{name}.pid", str(proc.pid))
    return proc.pid


def healthy(url: str | None = None, timeout: float = 2.0) -> bool:
    return http_ok(f"{url or api_url()}/health", timeout)


def wait_healthy(deadline_s: float = 90.0, process: str = "server") -> None:
    """Until the API answers; ``process``: the one that answers it (the balancer for replicas)."""
    def answers() -> bool:
        if healthy():
            return True
        if _pid(process) is None and not healthy():
            log = (run_dir() / f"{process}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the Prefect {process} exited; last log lines:\n{log}")
        return False

    if poll_until(answers, deadline_s, 0.5):
        return
    raise TimeoutError(f"the Prefect server at {api_url()} did not answer within {deadline_s:.0f} s")


def refuses_anonymous(url: str | None = None, timeout: float = 5.0) -> bool:
    """True if the API answers a call without the credential with 401."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url or api_url()}/admin/version", timeout=timeout):  # noqa: S310 - our URL
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == 401


def start_server(replicas: int = 1) -> bool:
    """Start the Prefect server (telemetry off, API credential required): one process on
    SQLite or PostgreSQL, or with ``replicas`` > 1 the scaled-out shape (deployments/replicas.py).

    False if already up. A server that is up but answers anonymous calls was started
    before the API had a credential: refused, with the fix."""
    from . import replicas as scaled

    scaled.check(replicas)
    if healthy():
        if not refuses_anonymous():
            raise RuntimeError(f"the Prefect server at {api_url()} answers calls without a credential (it was "
                               "started without one): run 'p4integ down' then 'p4integ up' to restart it with one")
        return False
    # Prefect's own HTTP basic auth: every API call but /health and /ready needs the credential.
    env = {**prefect_env(), "PREFECT_SERVER_API_AUTH_STRING": api_auth_string(),
           # Automations keep working across a restart (deployments/event_ordering.py).
           "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "deployments.event_ordering"}
    key = encryption_key_file()
    if key is not None:
        env["PREFECT_SERVER_ENCRYPTION_KEY"] = key.read_text().strip()
    if replicas > 1:
        scaled.start(replicas, env)
        return True
    argv = PREFECT + ["server", "start", "--host", server_host(), "--port", str(server_port()), "--analytics-off"]
    start_process("server", argv, env)
    wait_healthy()
    return True


def start_worker(host: str = "local", limit: int = 4) -> bool:
    from agent.records import check_job_limit

    check_job_limit(limit)
    name = f"worker-{host}"
    if _pid(name):
        return False
    # Through the engine server: its runs start from a process that imported Prefect already.
    argv = [sys.executable, "-m", "flows.engine_server", "--", *PREFECT, "worker", "start", "--pool", pool_name(host),
            "--type", "process", "--limit", str(limit), "--name", f"{pool_name(host)}-{os.uname().nodename}"]
    start_process(name, argv, prefect_env())
    return True


def start_dispatcher() -> bool:
    """The service's background process: the auto-deployer of workers for enrolled hosts
    (agent.dispatcher) and the recovery sweep (deployments.background)."""
    if _pid("dispatcher"):
        return False
    start_process("dispatcher", [sys.executable, "-m", "deployments.background"], prefect_env())
    return True


def _ui_address() -> tuple[str, str]:
    # Localhost unless configured, like the Prefect server.
    return os.environ.get("P4INTEG_UI_HOST", "127.0.0.1"), os.environ.get("P4INTEG_UI_PORT", "8501")


def ui_url() -> str:
    return "http://{}:{}".format(*_ui_address())


def _ui_settings_file() -> Path:
    return run_dir() / "ui.settings.json"


def start_ui(p4port: str, deadline_s: float = 60.0) -> str:
    """The Streamlit front page, signing people in against ``p4port``.

    Returns "started", "running" (already up with these settings) or "restarted" (it
    was up with another server or address: a front page keeps the settings it started
    with, so saying "already running" would leave the old ones in force)."""
    import json

    from flows.ports import check_p4port
    from flows.settings import PROJECT_DIR

    p4port = check_p4port(p4port, "--p4port")
    signing_key()  # made on the first start; a short one is refused here, with the fix, not in ui.log
    host, port = _ui_address()
    wanted = {"p4port": p4port, "host": host, "port": port}
    restarted = False
    if _pid("ui"):
        try:
            current = json.loads(_ui_settings_file().read_text())
        except (OSError, ValueError):
            current = None
        if current == wanted:
            return "running"
        stop("ui")
        restarted = True
    argv = [sys.executable, "-m", "streamlit", "run", str(PROJECT_DIR / "ui" / "server.py"),
            "--server.address", host, "--server.port", port, "--server.headless", "true",
            "--browser.gatherUsageStats", "false"]
    # Streamlit reads .streamlit/config.toml from its working directory: the project's.
    start_process("ui", argv, {**prefect_env(), P4PORT_VAR: p4port}, cwd=PROJECT_DIR)
    write_private(_ui_settings_file(), json.dumps(wanted))

    if poll_until(lambda: http_ok(f"{ui_url()}/_stcore/health"), deadline_s, 0.3):
        return "restarted" if restarted else "started"
    raise TimeoutError(f"the front page at {ui_url()} did not answer within {deadline_s:.0f} s; "
                       f"see {run_dir() / 'ui.log'}")


def stop(name: str, grace: float = 10.0) -> bool:
    pid = _pid(name)
    if pid is None:
        return False
    for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        if poll_until(lambda: not alive(pid), grace / 2, 0.1):
            break
    (run_dir() / f"{name}.pid").unlink(missing_ok=True)
    return True


def running() -> dict[str, int]:
    """Name -> pid of each process we started that still runs; the pid files of those that
    died (killed, crashed) are removed."""
    out = {}
    for f in run_dir().glob("*.pid"):
        pid = _pid(f.stem)
        if pid:
            out[f.stem] = pid
        else:
            f.unlink(missing_ok=True)
    return out
