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
from datetime import datetime, timezone
from typing import Any

from prefect.client.schemas.objects import StateType

from flows.settings import api_url

from . import registry
from .converge import converge
from .layout import flow_run_processes
from .health import heard_from, worker_online
from .pools import active_runs, fail_runs, requeue_runs, tell_runs, waiting_runs
from .records import HostRecord
from .ssh import Connection, HostError, HostUnreachable

log = logging.getLogger("p4integ.dispatcher")
RECHECK_SECONDS = 10.0
# A claimed run's process starts within seconds; one still without a process after this never will.
STUCK_SECONDS = 30.0
# A host whose worker was heard from this recently and that does not answer on SSH is taken
# as briefly gone (a reboot, a network cut): its queued jobs wait for it rather than fail.
UNREACHABLE_GRACE_SECONDS = 300.0


class Dispatcher:
    def __init__(self) -> None:
        self._checked: dict[str, float] = {}
        self._told_unreachable: set[str] = set()  # hosts whose waiting runs were told so (said once)

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
        if due:
            self._checked[host.name] = time.monotonic()
        outcome = "idle"
        if runs and (due or not worker_online(host.name, version)):
            ids = [r.id for r in runs]
            if not worker_online(host.name, version):
                tell_runs(ids, f"waiting for a worker on host {host.name}: deploying one")
            try:
                report = converge(host, api_url(), log=lambda m: tell_runs(ids, m))
            except HostUnreachable as exc:
                if not heard_from(host.name, UNREACHABLE_GRACE_SECONDS):
                    fail_runs(ids, f"cannot deploy a worker: {exc}")
                    return f"failed {len(ids)} waiting run(s): {exc.reason}"
                if host.name not in self._told_unreachable:
                    self._told_unreachable.add(host.name)
                    tell_runs(ids, f"{exc}; its worker was heard from in the last "
                              f"{UNREACHABLE_GRACE_SECONDS / 60:.0f} minutes, so this job waits for the host "
                              "(it fails if nothing is heard from the host in that time)")
                return f"unreachable: {len(ids)} run(s) wait for it"
            except HostError as exc:
                fail_runs(ids, f"cannot deploy a worker: {exc}")
                return f"failed {len(ids)} waiting run(s): {exc.reason}"
            self._told_unreachable.discard(host.name)
            outcome = "deployed" if report.changed else "worker running"
        # Checked even while runs wait: runs a dead worker left Pending are among the waiting ones.
        return self._held_without_process(host) if due else outcome

    def _held_without_process(self, host: HostRecord) -> str:
        """Runs that hold a slot on the host must have a process there. A worker that died took its
        runs' processes with it (their output pipes break) and left them Running, or Pending once
        it claimed them: those hold the host's slots until someone acts. A job waiting for a
        person (suspended) has no process to lose and is not looked at."""
        held = [r for r in active_runs(host.name) if _claimed_for(r) > STUCK_SECONDS]
        if not held:
            return "idle"
        try:
            lost = self._without_process(host, held)
            if lost:  # look again: a process may just be starting or ending
                time.sleep(2.0)
                lost = self._without_process(host, lost)
        except HostError:
            return "host unreachable"
        crashed = [r.id for r in lost if r.state and r.state.type == StateType.RUNNING]
        queued = [r.id for r in lost if r.state and r.state.type == StateType.PENDING]
        if crashed:
            fail_runs(crashed, f"this job's process on host {host.name} is gone (it, or the worker that "
                      "started it, died); the cleanup flow cleans its workspace on the host", crashed=True)
        if queued:  # claimed but never started: nothing was done yet, so it can simply run again
            requeue_runs(queued, f"the worker on host {host.name} claimed this job but never started it "
                         "(the worker died): queued again for the host's next worker")
        return f"marked {len(crashed)} run(s) crashed, queued {len(queued)} again" if crashed or queued else "idle"

    @staticmethod
    def _without_process(host: HostRecord, runs: list[Any]) -> list[Any]:
        with Connection(host) as c:
            alive = flow_run_processes(c)
        return [r for r in runs if str(r.id) not in alive]


def _claimed_for(run: Any) -> float:
    """Seconds since a run entered Pending or Running (0 for any other state)."""
    if run.state is None or run.state.type not in (StateType.PENDING, StateType.RUNNING) or not run.state.timestamp:
        return 0.0
    return (datetime.now(timezone.utc) - run.state.timestamp).total_seconds()
