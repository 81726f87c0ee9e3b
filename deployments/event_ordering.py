"""Prefect's causal ordering of events, kept across restarts of a single server.

Prefect's triggers act on a run's state event only after they processed the event it
follows (each state event names the previous one). The default ordering remembers the
events it processed in memory only. After the server restarts, every run whose states
began before the restart has its next state events held back as "arrived early" for
15 minutes (``PRECEDING_EVENT_LOOKBACK``): for that long no notification is sent, no
cleanup runs, and the silent-run check sees heartbeats but never the Suspended or
Completed event that answers them, so it wrongly crashes runs (a job waiting for a
person among them).

This ordering also counts a leader as processed when the server stored it before this
process started: it came through the previous server's triggers. And when the leader is
the first state of a run Prefect's scheduler made: the scheduler writes that Scheduled
state with no event, yet the run's Pending event names it as the one it follows (when it
comes within 5 minutes), so every scheduled run's state events, its notifications and
cleanup with them, waited 15 minutes. Events received since the start are still ordered
in memory, exactly as Prefect does. With Redis messaging
(several API replicas) Prefect keeps this state in Redis; ``event_ordering_redis`` adds the
same two rules to Prefect's Redis ordering.

Selected with ``PREFECT_SERVER_EVENTS_CAUSAL_ORDERING=deployments.event_ordering``
(``deployments.processes.start_server``).
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from prefect.server.events.ordering import memory

STARTED = datetime.now(timezone.utc)  # this server process's start: the module loads with it


class LeadersThatNeverCome:
    """Put before one of Prefect's orderings: a leader is also seen when its event will never
    arrive (stored before this server started, or the first state of a scheduled run)."""

    async def event_has_been_seen(self, event: Any) -> bool:
        if await super().event_has_been_seen(event):  # type: ignore[misc]
            return True
        event_id = event if isinstance(event, UUID) else event.id
        return await _never_coming(event_id)


class CausalOrdering(LeadersThatNeverCome, memory.CausalOrdering):
    # Prefect's class keeps one instance per scope on the class: ours are our own.
    _instances: dict[str, Any] = {}
    _locks: dict[str, asyncio.Lock] = {}


async def _never_coming(event_id: UUID) -> bool:
    """True if ``event_id`` was stored before this server started (it came through the previous
    server's triggers), or is the first state of a run the scheduler made (a state's event
    carries the state's id, and the scheduler writes that state with no event)."""
    import sqlalchemy as sa
    from prefect.server.database import provide_database_interface
    from prefect.server.schemas.states import StateType
    from sqlalchemy.orm import aliased

    db = provide_database_interface()
    state, before = db.FlowRunState, aliased(db.FlowRunState)
    earlier = sa.select(before.id).where(before.flow_run_id == state.flow_run_id,
                                         before.timestamp < state.timestamp).exists()
    async with db.session_context() as session:  # one session for both questions
        stored = await session.execute(
            sa.select(db.Event.id).where(db.Event.id == event_id, db.Event.received < STARTED).limit(1))
        if stored.first() is not None:
            return True
        made = await session.execute(
            sa.select(state.id).join(db.FlowRun, db.FlowRun.id == state.flow_run_id)
            .where(state.id == event_id, state.type == StateType.SCHEDULED, db.FlowRun.auto_scheduled.is_(True),
                   ~earlier).limit(1))
        return made.first() is not None
