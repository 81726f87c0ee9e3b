"""The wrappers around Prefect's private corners (flows/prefect_compat.py) do what the service
relies on: a Prefect upgrade that changes one fails here first."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from flows.prefect_compat import cron_next_dates, load_secret, save_secret, sync_call


@pytest.mark.usefixtures("prefect_server")
def test_secrets_are_read_and_written_from_a_thread_whose_event_loop_runs() -> None:
    async def inside_a_running_loop() -> str:  # as in a web server or a browser driver
        save_secret("compat-probe", "from-a-loop")
        return load_secret("compat-probe")

    assert asyncio.run(inside_a_running_loop()) == "from-a-loop"
    save_secret("compat-probe", "replaced")  # and outside one, overwriting
    assert load_secret("compat-probe") == "replaced"
    with pytest.raises(ValueError):
        load_secret("compat-no-such-block")


@pytest.mark.usefixtures("prefect_server")
def test_sync_call_finishes_the_work_where_a_plain_call_would_hand_back_a_coroutine() -> None:
    from prefect.blocks.system import Secret

    async def inside_a_running_loop() -> tuple[bool, str]:
        plain = Secret.load("compat-probe-2")  # what the wrapper exists for: here, a coroutine
        is_coroutine = asyncio.iscoroutine(plain)
        if is_coroutine:
            plain.close()
        return is_coroutine, sync_call(Secret.load, "compat-probe-2").get()

    save_secret("compat-probe-2", "value")
    assert asyncio.run(inside_a_running_loop()) == (True, "value")


def test_cron_dates_follow_the_time_zone_and_its_daylight_saving() -> None:
    nightly = cron_next_dates("0 2 * * *", "Europe/Paris", 3)
    assert len(nightly) == 3 and nightly == sorted(nightly)
    assert all(d.astimezone(ZoneInfo("Europe/Paris")).hour == 2 for d in nightly)
    assert nightly[1] - nightly[0] in (timedelta(hours=23), timedelta(hours=24), timedelta(hours=25))
    every = cron_next_dates("*/15 * * * *", "UTC", 4)
    assert [b - a for a, b in zip(every, every[1:])] == [timedelta(minutes=15)] * 3
    assert cron_next_dates("0 2 * * *", "UTC", 0) == []
