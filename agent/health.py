"""Host health: is a worker online, since when, which version, running what.

Two sources, because each is late in its own way: Prefect's worker heartbeat
(a dead worker still looks ONLINE for a minute or so) and the worker process on
the host, checked over SSH (exact, but needs the host reachable).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

from flows.settings import pool_name
from flows.vocabulary import PAUSED

from .pools import active_runs, workers
from .records import HostRecord


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


def _online(worker: Any) -> bool:
    """Prefect reports a worker's status as an enum or, from some calls, its plain string."""
    return str(getattr(worker.status, "value", worker.status)).upper() == "ONLINE"


def worker_online(host: str, version: str | None = None, since: datetime | None = None) -> bool:
    prefix = f"{pool_name(host)}-"
    for w in workers(host):
        if not _online(w):
            continue
        if since is not None and (w.last_heartbeat_time is None or w.last_heartbeat_time < since):
            continue
        if version is None or w.name == f"{prefix}{version}":
            return True
    return False


def heard_from(host: str, within: float) -> bool:
    """True if one of the host's workers sent Prefect a heartbeat in the last ``within`` seconds."""
    now = datetime.now(timezone.utc)
    return any(w.last_heartbeat_time and (now - w.last_heartbeat_time).total_seconds() < within
               for w in workers(host))


def health(host: HostRecord, *, check_process: bool = True) -> HostHealth:
    """The host's state for people and for the UI."""
    seen = sorted(workers(host.name), key=lambda w: w.last_heartbeat_time or datetime.min, reverse=True)
    latest = seen[0] if seen else None
    runs = [r for r in active_runs(host.name) if r.state is not None]
    online_api = any(_online(w) for w in seen)
    result = HostHealth(name=host.name, online=online_api,
                        last_heartbeat=latest.last_heartbeat_time if latest else None,
                        version=latest.name.removeprefix(f"{pool_name(host.name)}-") if latest else None,
                        running_jobs=[f"{r.name} ({r.state.name})" for r in runs if r.state.type.value != PAUSED],
                        waiting_jobs=[r.name for r in runs if r.state.type.value == PAUSED])
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
