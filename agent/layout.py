"""Where the service's files live on a host, and whether its worker runs there."""
from __future__ import annotations

import shlex
from dataclasses import dataclass

from flows.settings import pool_name

from .ssh import Connection


@dataclass(frozen=True)
class Layout:
    """Where things live on a host, under the SSH user's home."""

    home: str
    version: str

    @property
    def base(self) -> str:
        return f"{self.home}/.p4integ"

    @property
    def venv(self) -> str:
        return f"{self.base}/venvs/{self.version}"

    @property
    def deps(self) -> str:
        return f"{self.base}/wheelhouse/deps"

    @property
    def project(self) -> str:
        return f"{self.base}/wheelhouse/{self.version}"

    @property
    def app(self) -> str:
        """Stable path of the running version's code: the deployment's working directory."""
        return f"{self.base}/app"

    @property
    def env_file(self) -> str:
        return f"{self.base}/worker.env"

    @property
    def pid_file(self) -> str:
        return f"{self.base}/worker.pid"

    @property
    def log_file(self) -> str:
        return f"{self.base}/worker.log"


def worker_name(host: str, version: str) -> str:
    return f"{pool_name(host)}-{version}"


def worker_pid(c: Connection, lay: Layout) -> int | None:
    """The worker's pid if it runs this version's venv, else None."""
    r = c.run(["sh", "-c", f"pid=$(cat {shlex.quote(lay.pid_file)} 2>/dev/null) && "
               "[ -r /proc/$pid/cmdline ] && st=$(cut -d' ' -f3 /proc/$pid/stat) && [ \"$st\" != Z ] && "
               "echo $pid && tr '\\0' ' ' < /proc/$pid/cmdline"], step="check worker", check=False)
    if not r.ok or not r.stdout.strip():
        return None
    pid, _, cmdline = r.stdout.partition("\n")
    return int(pid) if lay.venv in cmdline else None


def flow_run_processes(c: Connection) -> set[str]:
    """Ids of the flow runs that have a live process on the host (of the SSH user, who runs them):
    the process worker gives each run's process ``PREFECT__FLOW_RUN_ID`` in its environment."""
    r = c.run(["sh", "-c", "for e in /proc/[0-9]*/environ; do tr '\\0' '\\n' < \"$e\" 2>/dev/null "
               "| grep -m1 '^PREFECT__FLOW_RUN_ID='; done; true"], step="list job processes")
    return {line.split("=", 1)[1].strip() for line in r.stdout.splitlines() if "=" in line}
