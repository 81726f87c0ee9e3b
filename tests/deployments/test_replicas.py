"""The team's scaled-out server (p4integ up --replicas 2): two API replicas behind HAProxy,
one services process, PostgreSQL and Redis. A job paused on one side of a replica's death is
resumed and finished on the other, through the same API address."""
from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from deployments import replicas
from flows.p4.example import USER
from flows.polling import poll_until
from flows.settings import free_port
from tests import cli

from .test_postgres import database  # noqa: F401 - the fixture: a fresh PostgreSQL database

REDIS = "redis://127.0.0.1:6379"


@pytest.fixture()
def redis_db():
    import redis

    db = random.randint(1, 15)  # a database number of its own: other runs may use Redis too
    client = redis.Redis.from_url(f"{REDIS}/{db}", socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS} ({exc})")
    client.flushdb()
    yield f"{REDIS}/{db}"
    client.flushdb()


def notices(url: str, run_id: str) -> list[str]:
    """The events the notification flow was started for, about run ``run_id``."""
    import asyncpg

    async def read() -> list[str]:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            rows = await conn.fetch("SELECT fr.parameters->>'event' AS event FROM flow_run fr JOIN flow f "
                                    "ON f.id = fr.flow_id WHERE f.name = 'notify' "
                                    "AND fr.parameters->>'flow_run_id' LIKE '%' || $1", run_id)
        finally:
            await conn.close()
        return sorted(r["event"] for r in rows)

    return asyncio.run(read())


def test_a_job_outlives_the_api_replica_it_started_on(tmp_path: Path, database, redis_db) -> None:  # noqa: F811
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed (.ci/team-prereqs installs it)")
    url, _name = database
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "P4INTEG_"))}
    env.update(P4INTEG_HOME=str(home), P4INTEG_PREFECT_PORT=str(free_port()), P4INTEG_DATABASE_URL=url,
               P4INTEG_REDIS_URL=redis_db, DO_NOT_TRACK="1")

    def p4integ(*args: str) -> subprocess.CompletedProcess[str]:
        return cli.p4integ(*args, env=env, timeout=400)

    try:
        up = p4integ("up", "--replicas", "2")
        assert up.returncode == 0, up.stderr
        assert "2 API replicas" in up.stdout, up.stdout
        # The demo's user hears of its jobs: their events then start the notification flow.
        told = p4integ("notify", "set", USER, "--email", "release@example.com")
        assert told.returncode == 0, told.stderr
        demo = p4integ("demo", "--dir", str(tmp_path / "demo"))
        assert demo.returncode == 0, demo.stderr
        assert "state           Suspended (waiting for a person" in demo.stdout, demo.stdout
        run_id = re.search(r"flow run\s+(\S+)", demo.stdout).group(1)  # type: ignore[union-attr]
        # One replica dies (SIGKILL: no goodbye to the balancer), the other carries on.
        pid = int((home / "run" / f"{replicas.REPLICA.format(1)}.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        done = p4integ("resume", run_id, "--theirs")
        assert done.returncode == 0 and "state           Completed" in done.stdout, done.stdout + done.stderr
        # The job's events went through Redis to the services process, whose automations acted
        # on them: the owner's notification flow was started for the pause and for the end.
        want = ["prefect.flow-run.Completed", "prefect.flow-run.Suspended"]
        assert poll_until(lambda: notices(url, run_id) == want, 60, 0.5), notices(url, run_id)
    finally:
        p4integ("down")
    assert not list((home / "run").glob("*.pid"))  # every process stopped, the killed one's file gone


def test_replicas_without_what_they_need_are_refused_before_anything_starts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "P4INTEG_"))}
    env.update(P4INTEG_HOME=str(home), P4INTEG_PREFECT_PORT=str(free_port()), DO_NOT_TRACK="1")
    up = cli.p4integ("up", "--replicas", "2", env=env, timeout=120)
    assert up.returncode != 0
    # Each missing piece named with its fix; nothing started.
    assert "P4INTEG_DATABASE_URL: set it to a PostgreSQL database" in up.stderr, up.stderr
    assert "P4INTEG_REDIS_URL: set it to a Redis database" in up.stderr, up.stderr
    assert not (home / "run").exists() or not list((home / "run").glob("*.pid"))
    bad = cli.p4integ("up", "--replicas", "0", env=env, timeout=120)
    assert bad.returncode != 0 and "--replicas 0: give 1 to 8" in bad.stderr, bad.stderr
