"""Auto-deploy: when a job waits on a host's pool and no worker serves it, deploy one.

Runs next to the Prefect server (``p4integ up`` starts it). Whatever created the run
(our API, a schedule, ``prefect deployment run``, the Prefect UI), the dispatcher
sees it waiting, writes into the run's log that it is deploying a worker, and
converges the host. If the host cannot be reached, refuses its key or fails the
install, the waiting runs fail at once with that reason instead of waiting forever.
It also notices a worker that died under running jobs and marks those runs crashed;
the next job on the workspace cleans what they left.
"""
from __future__ import annotations

import logging
import time

from flows.settings import api_url

from . import registry
from .converge import converge
from .layout import Layout, worker_pid
from .health import worker_online
from .pools import active_runs, fail_runs, tell_runs, waiting_runs
from .records import HostRecord
from .ssh import Connection, HostError

log = logging.getLogger("p4integ.dispatcher")
RECHECK_SECONDS = 10.0


class Dispatcher:
    def __init__(self) -> None:
        self._checked: dict[str, float] = {}

    def once(self) -> dict[str, str]:
        outcome: dict[str, str] = {}
        for host in registry.load_all().values():
            try:
                outcome[host.name] = self._host(host)
            except Exception as exc:  # one host's trouble must not stop the others
                log.exception("host %s", host.name)
                outcome[host.name] = f"error: {exc}"
        return outcome

    def _host(self, host: HostRecord) -> str:
        from . import wheelhouse

        runs = waiting_runs(host.name)
        version = wheelhouse.source_version()
        due = time.monotonic() - self._checked.get(host.name, 0.0) > RECHECK_SECONDS
        if runs and (not worker_online(host.name, version) or due):
            ids = [r.id for r in runs]
            if not worker_online(host.name, version):
                tell_runs(ids, f"waiting for a worker on host {host.name}: deploying one")
            self._checked[host.name] = time.monotonic()
            try:
                report = converge(host, api_url(), log=lambda m: tell_runs(ids, m))
            except HostError as exc:
                fail_runs(ids, f"cannot deploy a worker: {exc}")
                return f"failed {len(ids)} waiting run(s): {exc.reason}"
            return "deployed" if report.changed else "worker running"
        # Only runs with a process: a job waiting for a person (suspended) has none to lose.
        active = [r for r in active_runs(host.name) if r.state and r.state.type.value == "RUNNING"]
        if active and due:
            self._checked[host.name] = time.monotonic()
            try:
                alive = self._worker_alive(host, version)
                if not alive:  # look again: a worker being swapped is briefly absent
                    time.sleep(2.0)
                    alive = self._worker_alive(host, version)
            except HostError:
                return "host unreachable"
            if not alive:
                fail_runs([r.id for r in active], f"the worker on host {host.name} died while this job ran; "
                          "the cleanup flow cleans its workspace on the host", crashed=True)
                return f"marked {len(active)} run(s) crashed"
        return "idle"

    @staticmethod
    def _worker_alive(host: HostRecord, version: str) -> bool:
        with Connection(host) as c:
            return worker_pid(c, Layout(home=c.home(), version=version)) is not None


def run_forever(poll: float = 1.0) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    d = Dispatcher()
    while True:
        for host, what in d.once().items():
            if what not in ("idle", "worker running"):
                log.info("host %s: %s", host, what)
        time.sleep(poll)


if __name__ == "__main__":
    run_forever()
