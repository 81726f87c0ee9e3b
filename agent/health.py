"""Host health: is a worker online, since when, which version, running what.

Two sources, because each is late in its own way: Prefect's worker heartbeat
(a dead worker still looks ONLINE for a minute or so) and the worker process on
the host, checked over SSH (exact, but needs the host reachable).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from flows.settings import pool_name

from .records import HostRecord

_ACTIVE = ("RUNNING", "PAUSED", "PENDING", "CANCELLING")


class HostHealth(BaseModel):
    name: str
    online: bool
    process_alive: bool | None = Field(default=None, description="Worker process seen on the host (None: not checked)")
    last_heartbeat: datetime | None = None
    version: str | None = None
    running_jobs: list[str] = Field(default_factory=list, description="Jobs with a process on the host now")
    waiting_jobs: list[str] = Field(default_factory=list,
                                    description="Jobs waiting for a person: no process, no worker slot")
    reason: str = ""


def _workers(host: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    with get_client(sync_client=True) as client:
        try:
            return client.read_workers_for_work_pool(pool_name(host))
        except ObjectNotFound:
            return []
        except PrefectHTTPStatusError as exc:  # this call reports a missing pool as a bare 404
            if exc.response.status_code == 404:
                return []
            raise


def _online(worker: Any) -> bool:
    """Prefect reports a worker's status as an enum or, from some calls, its plain string."""
    return str(getattr(worker.status, "value", worker.status)).upper() == "ONLINE"


def worker_online(host: str, version: str | None = None, since: datetime | None = None) -> bool:
    prefix = f"{pool_name(host)}-"
    for w in _workers(host):
        if not _online(w):
            continue
        if since is not None and (w.last_heartbeat_time is None or w.last_heartbeat_time < since):
            continue
        if version is None or w.name == f"{prefix}{version}":
            return True
    return False


def active_runs(host: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType, WorkPoolFilter, WorkPoolFilterName,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                any_=[StateType[s] for s in _ACTIVE]))),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool_name(host)])))


def health(host: HostRecord, *, check_process: bool = True) -> HostHealth:
    """The host's state for people and for the UI."""
    workers = sorted(_workers(host.name), key=lambda w: w.last_heartbeat_time or datetime.min, reverse=True)
    latest = workers[0] if workers else None
    runs = [r for r in active_runs(host.name) if r.state is not None]
    online_api = any(_online(w) for w in workers)
    result = HostHealth(name=host.name, online=online_api,
                        last_heartbeat=latest.last_heartbeat_time if latest else None,
                        version=latest.name.removeprefix(f"{pool_name(host.name)}-") if latest else None,
                        running_jobs=[f"{r.name} ({r.state.name})" for r in runs if r.state.type.value != "PAUSED"],
                        waiting_jobs=[r.name for r in runs if r.state.type.value == "PAUSED"])
    if check_process:
        from .layout import Layout, worker_pid
        from .ssh import Connection, HostError

        try:
            with Connection(host) as c:
                alive = worker_pid(c, Layout(home=c.home(), version=result.version or "")) is not None
        except HostError as exc:
            result.process_alive, result.online, result.reason = False, False, str(exc)
            return result
        result.process_alive = alive
        if not alive:
            result.online = False
            result.reason = "no worker process on the host"
    return result
