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
process started: it came through the previous server's triggers. Events received since
the start are still ordered in memory, exactly as Prefect does. With Redis messaging
(several API replicas) Prefect keeps this state in Redis and this module is not used.

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


class CausalOrdering(memory.CausalOrdering):
    # Prefect's class keeps one instance per scope on the class: ours are our own.
    _instances: dict[str, Any] = {}
    _locks: dict[str, asyncio.Lock] = {}

    async def event_has_been_seen(self, event: Any) -> bool:
        if await super().event_has_been_seen(event):
            return True
        event_id = event if isinstance(event, UUID) else event.id
        return await _stored_before_start(event_id)


async def _stored_before_start(event_id: UUID) -> bool:
    import sqlalchemy as sa
    from prefect.server.database import provide_database_interface

    db = provide_database_interface()
    async with db.session_context() as session:
        found = await session.execute(
            sa.select(db.Event.id).where(db.Event.id == event_id, db.Event.received < STARTED).limit(1))
        return found.first() is not None
