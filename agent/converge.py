"""Bring a host to the wanted state: venv of this version, env file, worker online.

Every step checks before it acts, so a second converge changes nothing and says
so. A failed install removes what it half-made. A new project version gets a new
venv; the old worker is stopped only once the new venv is complete.
"""
from __future__ import annotations

import shlex
import time
from datetime import datetime, timezone
from collections.abc import Callable
from dataclasses import dataclass, field

from flows.polling import poll_until
from flows.settings import FLOW_NAME, pool_name, process_env

from . import wheelhouse
from .p4trust import pin_on_host
from .pools import ensure_deployment
from .layout import Layout, worker_name, worker_pid
from .records import HostRecord
from .ssh import Connection, HostError

# A new worker imports Prefect and registers before its first heartbeat; on a busy or
# slow host that takes well over a minute, and giving up early would fail a healthy job.
ONLINE_TIMEOUT = 180.0
_FIND_PYTHON = (
    "for p in python3.13 python3.12 python3.11 python3; do "
    "  c=$(command -v $p 2>/dev/null) || continue; "
    "  $c -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null && "
    "  { echo $c; $c -c 'import sys; print(\"%d.%d.%d\" % sys.version_info[:3])'; exit 0; }; "
    "done; exit 3"
)


@dataclass
class ConvergeReport:
    host: str
    version: str
    python: str = ""
    changes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def converge(host: HostRecord, api_url: str, log: Callable[[str], None] = lambda m: None) -> ConvergeReport:
    from .pools import ensure_pool

    started = time.monotonic()
    wh = wheelhouse.build()
    report = ConvergeReport(host=host.name, version=wh.version)
    if ensure_pool(host.name, host.limit):
        report.changes.append(f"work pool {pool_name(host.name)} (limit {host.limit})")
    with Connection(host) as c:
        lay = Layout(home=c.home(), version=wh.version)
        python, version = _find_python(c)
        report.python = f"{python} ({version})"
        if _make_private(c, lay):
            report.changes.append(f"{lay.base} made private (0700, nothing readable by group or others)")
        if _install(c, lay, wh, python, log):
            report.changes.append(f"venv {lay.venv}")
        if _write_env(c, lay, host, api_url):
            report.changes.append("worker environment")
        if pin_on_host(c, host):
            report.changes.append(f"P4TRUST ({', '.join(sorted(host.p4_trust))})")
        running = worker_pid(c, lay)
        started_at = None
        if running is None:
            started_at = datetime.now(timezone.utc)
            stopped = stop_worker(c, lay)
            _point_app(c, lay)
            _start_worker(c, lay, host)
            report.changes.append("worker restarted for the new version" if stopped else "worker started")
    if ensure_deployment(host.name, lay.app):
        report.changes.append(f"deployment {FLOW_NAME}/{host.name}")
    wait_online(host.name, wh.version, since=started_at)
    report.seconds = time.monotonic() - started
    log(f"host {host.name}: " + ("; ".join(report.changes) if report.changed else "no change"))
    return report


def _find_python(c: Connection) -> tuple[str, str]:
    r = c.run(["sh", "-c", _FIND_PYTHON], step="find Python", check=False)
    if r.exit_code != 0:
        raise HostError(c.host.name, "find Python", "no Python 3.11 or newer with the venv module on the host's "
                        "PATH; install python3 (3.11+) and python3-venv there")
    path, version = r.stdout.split()[:2]
    return path, version


# Installed software, not the service's data: pip and venv give scripts explicit modes
# (0755) whatever the umask, and the 0700 directory above already keeps others out.
SOFTWARE_DIRS = ("venvs", "wheelhouse")


def _make_private(c: Connection, lay: Layout) -> bool:
    """``~/.p4integ`` for the SSH user alone; True if something was tightened.

    What converges and workers make is private from birth (every command runs under umask
    077, ``Connection.run``); this tightens what an earlier version, or a person, left
    readable: the directory to 0700, and group and other rights off the data in it (the
    worker's log and environment, run records, locks). Symbolic links, whose own mode
    means nothing, and the installed software (``SOFTWARE_DIRS``) are left as they are."""
    prune = [arg for d in SOFTWARE_DIRS for arg in ("-o", "-path", f"{lay.base}/{d}")][1:]
    # One pass: find prints what it tightens, so an empty answer means nothing changed.
    script = ('base=$1; shift; mkdir -p "$base" && '
              'find "$base" \\( "$@" \\) -prune -o ! -type l -perm /077 -print -exec chmod go-rwx {} +')
    tightened = c.run(["sh", "-c", script, "private", lay.base, *prune], step="make ~/.p4integ private")
    return bool(tightened.stdout.strip())


def _install(c: Connection, lay: Layout, wh: wheelhouse.Wheelhouse, python: str,
             log: Callable[[str], None]) -> bool:
    done = c.run(["test", "-e", f"{lay.venv}/.complete"], step="check venv", check=False)
    if done.ok:
        return False
    log(f"host {c.host.name}: installing version {lay.version} (offline, from the wheelhouse)")
    c.run(["rm", "-rf", lay.venv], step="remove partial venv")
    c.run(["mkdir", "-p", lay.deps, lay.project, f"{lay.base}/venvs"], step="make directories")
    c.put_many(wh.deps, lay.deps)
    c.put_many([wh.project], lay.project)
    try:
        c.run([python, "-m", "venv", lay.venv], step="create venv")
        c.run([f"{lay.venv}/bin/pip", "install", "--no-index", "--disable-pip-version-check", "-q",
               "--find-links", lay.deps, "--find-links", lay.project, f"{lay.project}/{wh.project.name}"],
              step="install", timeout=900)
        c.run(["touch", f"{lay.venv}/.complete"], step="mark venv complete")
    except HostError:
        c.run(["rm", "-rf", lay.venv], step="remove failed venv", check=False)
        raise
    return True


def _env_text(lay: Layout, host: HostRecord, api_url: str) -> bytes:
    # The file holds the API credential and is 0600 from its first byte: see Connection.write.
    python = f"{lay.venv}/bin/python"
    values = {**process_env(lay.base, host.api_url or api_url, python), "P4INTEG_HOST": host.name}
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items()).encode()


def _write_env(c: Connection, lay: Layout, host: HostRecord, api_url: str) -> bool:
    want = _env_text(lay, host, api_url)
    have = c.run(["cat", lay.env_file], step="read env file", check=False)
    if have.ok and have.stdout.encode() == want:
        return False
    c.write(lay.env_file, want, mode=0o600)
    return True


def stop_worker(c: Connection, lay: Layout | None = None) -> bool:
    """Stop the worker and everything it started; True if one was running."""
    lay = lay or Layout(home=c.home(), version="")
    base, pid_file = lay.base, shlex.quote(lay.pid_file)
    script = (
        f"pid=$(cat {pid_file} 2>/dev/null) || exit 1; "
        "kill -0 $pid 2>/dev/null || { rm -f " + pid_file + "; exit 1; }; "
        "kill -TERM -$pid 2>/dev/null; i=0; "
        "while kill -0 -$pid 2>/dev/null && [ $i -lt 100 ]; do "
        "  st=$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null); [ \"$st\" = Z ] && break; "
        "  [ $i = 30 ] && kill -TERM -$pid 2>/dev/null; sleep 0.1; i=$((i+1)); done; "
        "kill -KILL -$pid 2>/dev/null; rm -f " + pid_file + "; exit 0"
    )
    r = c.run(["sh", "-c", script], step="stop worker", check=False)
    # Flow runs the worker started may sit in sessions of their own: end those too.
    c.run(["pkill", "-KILL", "-u", c.host.user, "-f", f"{base}/venvs/"], step="stop flow runs", check=False)
    return r.exit_code == 0


def _start_worker(c: Connection, lay: Layout, host: HostRecord) -> None:
    # Through the engine server (flows/engine_server.py): its runs start from a process that
    # imported Prefect already. It execs the worker, so the pid written here is the worker's.
    argv = [f"{lay.venv}/bin/python", "-m", "flows.engine_server", "--", f"{lay.venv}/bin/prefect", "worker", "start",
            "--pool", pool_name(host.name), "--type", "process", "--limit", str(host.limit),
            "--name", worker_name(host.name, lay.version)]
    inner = (f"echo $$ > {shlex.quote(lay.pid_file)}; set -a; . {shlex.quote(lay.env_file)}; set +a; "
             f"cd {shlex.quote(lay.base)}; exec {shlex.join(argv)}")
    script = f"setsid -f sh -c {shlex.quote(inner)} > {shlex.quote(lay.log_file)} 2>&1 < /dev/null"
    c.run(["sh", "-c", script], step="start worker")


def _point_app(c: Connection, lay: Layout) -> None:
    """Swap ``~/.p4integ/app`` to this version's installed package, atomically."""
    r = c.run([f"{lay.venv}/bin/python", "-c", "import flows, os; print(os.path.dirname(os.path.dirname("
               "os.path.abspath(flows.__file__))))"], step="locate the installed flow")
    c.run(["ln", "-sfn", r.stdout.strip(), f"{lay.app}.new"], step="link app")
    c.run(["mv", "-T", f"{lay.app}.new", lay.app], step="link app")


def wait_online(host: str, version: str, timeout: float = ONLINE_TIMEOUT, since: datetime | None = None) -> None:
    """Until the API shows the worker online; with ``since``, a heartbeat after it
    (a restarted worker's old record still reads ONLINE for a while)."""
    from .health import worker_online

    if poll_until(lambda: worker_online(host, version, since=since), timeout, 0.3):
        return
    raise HostError(host, "wait for worker", f"worker {worker_name(host, version)} did not come online in the "
                    f"Prefect API within {timeout:.0f} s; see ~/.p4integ/worker.log on the host")
