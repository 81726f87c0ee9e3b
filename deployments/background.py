"""The service's background process (``p4integ up`` starts it as "dispatcher").

- About every second, the dispatcher deploys a worker where jobs wait for one and looks
  after hosts' workers (agent.dispatcher).
- Every ``SWEEP_SECONDS``, the recovery sweep starts the notifications and cleanups whose
  automation's event was lost (deployments.recovery.sweep).
- Every ``WATCH_SECONDS``, the watcher turns changes submitted to the lines' sources into
  events that move the lines (deployments.watcher).

Both read what they act on from Prefect's database; nothing here survives a restart, and
nothing needs to.
"""
from __future__ import annotations

import logging
import time

from agent.dispatcher import Dispatcher

from . import lines, recovery
from .watcher import WATCH_SECONDS, Watcher

log = logging.getLogger("p4integ.background")
SWEEP_SECONDS = 15.0


def run_forever(poll: float = 1.0) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    dispatcher = Dispatcher()
    started: set[tuple[str, str, str]] = set()
    next_sweep, swept = 0.0, False
    watcher, next_watch = Watcher(), 0.0
    while True:
        for host, what in dispatcher.once().items():
            if what not in ("idle", "worker running"):
                log.info("host %s: %s", host, what)
        if time.monotonic() >= next_sweep:
            next_sweep = time.monotonic() + SWEEP_SECONDS
            try:
                lookback = recovery.RECENT if swept else recovery.LOOKBACK
                for deployment, run_id, event in recovery.sweep(started, lookback=lookback):
                    log.info("run %s: no reaction to %s was taken; started %s", run_id, event, deployment)
            except Exception:  # the server restarting, say: the next sweep tries again
                log.exception("recovery sweep")
            else:
                swept = True
        if time.monotonic() >= next_watch:
            next_watch = time.monotonic() + WATCH_SECONDS
            try:
                for event in watcher.poll(lines.all_lines()):
                    log.info("change %s by %s in %s: lines %s", event["change"], event["author"], event["path"],
                             ", ".join(event["lines"]))
            except Exception:  # the server restarting, say: the next poll tries again
                log.exception("watching the lines' sources")
        time.sleep(poll)


if __name__ == "__main__":
    run_forever()
