"""Reading what a flow run did, through the Prefect API, with deadlines."""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import StateType

from deployments import jobs
from flows.p4.session import P4Session

PAUSED_OR_FINAL = {StateType.PAUSED} | jobs.FINAL


def logs(run_id: UUID) -> list[str]:
    with get_client(sync_client=True) as client:
        rows = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200)
    return [r.message for r in rows]


def wait_for_log(run_id: UUID, needle: str, timeout: float = 30.0) -> list[str]:
    return until(lambda: (lambda ls: ls if any(needle in l for l in ls) else None)(logs(run_id)),
                 timeout, f"log line containing {needle!r} in run {run_id}")


def task_runs(run_id: UUID) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))


def until(check: Callable[[], Any], timeout: float, what: str, poll: float = 0.2) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"no {what} within {timeout:.0f} s")
        time.sleep(poll)


def opened_and_pending(port: str, user: str, client: str) -> tuple[list[str], list[int]]:
    with P4Session(port, user, client) as s:
        opened = [o.depot_file for o in s.opened()]
        pending = [c.change for c in s.changes("-s", "pending", "-c", client)]
    return opened, pending


def processes_with(argv_prefix: list[str]) -> list[int]:
    """Live processes whose argv starts with ``argv_prefix`` (zombies count as dead)."""
    want = [a.encode() for a in argv_prefix]
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if argv[: len(want)] == want and state != "Z":
            found.append(int(entry))
    return found


def all_cmdlines() -> list[str]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                out.append(Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace"))
            except OSError:
                continue
    return out
