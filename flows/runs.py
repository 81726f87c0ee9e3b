"""What Prefect knows about a job's run: its state, its pauses, the answers it was given.

The one place the flow side reads run records from the Prefect API. Suspension keys
and resume answers are Prefect's own records, so a run that restarts in a new process
(or after the whole service restarted) reads them back from the server.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound

from .vocabulary import FINAL

# Each wait for a person is one suspension with its own key, so a run that is resumed
# and waits again gets a new one; Prefect refuses a key it has seen (that is how a
# restarted run knows its earlier pauses happened).
PAUSE_PREFIX = "resolve-"
# Prefect stores a suspended run's input under "<state name lowered>-<key>-response".
_INPUT_PREFIX = "suspended-"


def pause_key(n: int) -> str:
    return f"{PAUSE_PREFIX}{n}"


def read_run(run_id: str) -> Any:
    """The run's record (tags, parameters, state); ``ObjectNotFound`` when the server has none."""
    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(run_id))


def log_to(run_ids: Iterable[UUID | str], name: str, message: str, level: int = 20) -> None:
    """A line in each run's own log (not the caller's), where its owner reads; one API call."""
    from prefect.client.schemas.actions import LogCreate

    now: Any = datetime.now(timezone.utc)  # Prefect 3.9.1 types it as its own DateTime; a datetime is accepted
    with get_client(sync_client=True) as client:
        client.create_logs([LogCreate(name=name, level=level, message=message, timestamp=now,
                                      flow_run_id=UUID(str(rid))) for rid in run_ids])


def read_state(run_id: str) -> tuple[StateType | None, str]:
    """(state type, state name) of a run; (None, "gone") when the server has no such run."""
    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(run_id))
    except (ObjectNotFound, ValueError):
        return None, "gone"
    return (run.state.type, run.state.name or run.state.type.value) if run.state else (None, "no state")


def is_over(run_id: str) -> bool:
    """True when the run will never run again: final, deleted, or not a run id at all."""
    state, _ = read_state(run_id)
    return state is None or state in FINAL


def pauses_so_far(run_id: str) -> int:
    """How many times this run has suspended for a person (from the run's own policy)."""
    with get_client(sync_client=True) as client:
        return pauses_of(client.read_flow_run(UUID(run_id)))


def pauses_of(run: Any) -> int:
    """``pauses_so_far`` of a flow run already read."""
    keys = run.empirical_policy.pause_keys or set()
    return max((int(k[len(PAUSE_PREFIX):]) for k in keys
                if k.startswith(PAUSE_PREFIX) and k[len(PAUSE_PREFIX):].isdigit()), default=0)


def answer(run_id: str, n: int) -> Any:
    """The raw answer given to suspension ``n`` (a dict), or None if none was given."""
    key = f"{_INPUT_PREFIX}{pause_key(n)}-response"
    try:
        with get_client(sync_client=True) as client:
            raw = client.read_flow_run_input(UUID(run_id), key)
    except ObjectNotFound:
        return None
    return json.loads(raw) if isinstance(raw, str) else raw


def answers(run_id: str) -> list[Any]:
    """Every answer the run was given, oldest first."""
    with get_client(sync_client=True) as client:
        rows = client.filter_flow_run_input(UUID(run_id), key_prefix=f"{_INPUT_PREFIX}{PAUSE_PREFIX}",
                                            limit=1000, exclude_keys=set())
    out = []
    for row in sorted(rows, key=lambda r: r.created or 0):
        if row.key.endswith("-response"):
            out.append(json.loads(row.value) if isinstance(row.value, str) else row.value)
    return out


def person_chose(run_id: str) -> bool:
    """Did a person answer this run with anything but 'abort'? Then their work is kept."""
    return any(isinstance(a, dict) and a.get("action") in ("apply", "recheck") for a in answers(run_id))


def queue_again(run_id: str, at: datetime, message: str) -> Any:
    """Put a running run back in its pool's queue, to start afresh at ``at``; the state the server
    gave it (Scheduled when accepted; a run being cancelled meanwhile keeps that instead)."""
    from prefect.states import Scheduled

    with get_client(sync_client=True) as client:
        result: Any = client.set_flow_run_state(UUID(run_id), Scheduled(scheduled_time=at, message=message))
    return result.state


def _tagged(tag: str, states: dict[str, list[StateType]] | None, **query: Any) -> list[Any]:
    from prefect.client.schemas.filters import (
        FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType, FlowRunFilterTags,
    )

    state = FlowRunFilterState(type=FlowRunFilterStateType(**states)) if states else None
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag]), state=state),
                                     **query)


def runs_tagged(tag: str, *, live: bool = False) -> list[Any]:
    """Flow runs carrying ``tag``, oldest first; ``live``: only those not in a final state (a
    line's jobs for one source change, or its one job under way: a few)."""
    found = _tagged(tag, {"not_any_": list(FINAL)} if live else None, limit=200)
    return sorted(found, key=lambda r: r.created)


def last_completed(tag: str) -> Any | None:
    """The most recently ended run carrying ``tag`` that completed (a line's last integration), or None."""
    from prefect.client.schemas.sorting import FlowRunSort

    found = _tagged(tag, {"any_": [StateType.COMPLETED]}, sort=FlowRunSort.END_TIME_DESC, limit=1)
    return found[0] if found else None
