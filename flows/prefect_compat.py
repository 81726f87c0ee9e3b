"""Prefect's private corners, used here only, each with the version it was checked on and why.

Checked on Prefect 3.9.1. ``tests/flows/test_prefect_compat.py`` exercises every wrapper, so a
Prefect upgrade that changes one of them fails there, not in a person's job.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

T = TypeVar("T")


def sync_call(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a Prefect call that is sync-or-async depending on its caller to completion, here.

    ``run_deployment``, ``resume_flow_run`` and ``Block.load``/``save`` return a coroutine when
    the calling thread has an event loop running (a Streamlit script, a browser driver, a web
    server), and the work silently never happens. Their private ``_sync=True`` keyword forces
    the synchronous path (Prefect 3.9.1: ``prefect._internal.compatibility.async_dispatch``).
    """
    return fn(*args, _sync=True, **kwargs)


def load_secret(name: str) -> Any:
    """A Secret block's value; ``ValueError`` when no block has that name (Prefect's own)."""
    from prefect.blocks.system import Secret

    block: Any = sync_call(Secret.load, name)
    return block.get()


def save_secret(name: str, value: str) -> None:
    from prefect.blocks.system import Secret

    sync_call(Secret(value=cast(Any, value)).save, name, overwrite=True)  # pydantic makes it a SecretStr


def cron_next_dates(cron: str, tz: str, n: int) -> list[datetime]:
    """The next ``n`` fire times by the Prefect server's own schedule model.

    ``CronSchedule.get_dates()`` is a coroutine around the private ``_get_dates_generator``
    (Prefect 3.9.1: ``prefect.server.schemas.schedules``); the generator gives the same dates
    with or without an event loop running in the caller's thread."""
    from prefect.server.schemas.schedules import CronSchedule

    if n <= 0:
        return []
    dates = sorted(CronSchedule(cron=cron, timezone=tz)._get_dates_generator(n=n))
    return [datetime.fromisoformat(d.isoformat()) for d in dates]
