"""The team configuration: the same service on PostgreSQL instead of SQLite."""
from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from flows.settings import free_port
from tests import cli

PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def _pg_available() -> str | None:
    try:
        import asyncpg
    except ImportError:
        return "asyncpg not installed"

    async def probe() -> None:
        conn = await asyncpg.connect(PG, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # noqa: BLE001 - any failure means: no server to test against
        return f"no PostgreSQL at 127.0.0.1:5432 ({exc})"
    return None


@pytest.fixture()
def database():
    reason = _pg_available()
    if reason:
        pytest.skip(reason)
    import asyncpg

    name = f"p4integ_test_{uuid.uuid4().hex[:8]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(PG)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_demo_and_resume_on_postgresql(tmp_path: Path, database) -> None:
    url, name = database
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "P4INTEG_"))}
    env.update(P4INTEG_HOME=str(tmp_path / "home"), P4INTEG_PREFECT_PORT=str(port), P4INTEG_DATABASE_URL=url,
               DO_NOT_TRACK="1")

    def p4integ(*args: str) -> subprocess.CompletedProcess[str]:
        return cli.p4integ(*args, env=env, timeout=400)

    try:
        demo = p4integ("demo", "--dir", str(tmp_path / "demo"))
        assert demo.returncode == 0, demo.stderr
        assert f"http://127.0.0.1:{port}" in demo.stdout and "state           Suspended (waiting for a person" in demo.stdout
        run_id = re.search(r"flow run\s+(\S+)", demo.stdout).group(1)  # type: ignore[union-attr]
        done = p4integ("resume", run_id, "--theirs")
        assert done.returncode == 0 and "state           Completed" in done.stdout, done.stderr
    finally:
        p4integ("down")
    import asyncpg

    async def count() -> int:
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}")
        try:
            return await conn.fetchval("SELECT count(*) FROM flow_run WHERE id = $1", uuid.UUID(run_id))
        finally:
            await conn.close()

    assert asyncio.run(count()) == 1  # the run lives in PostgreSQL
    assert not (tmp_path / "home" / "prefect" / "prefect.db").exists()
