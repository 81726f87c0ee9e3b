"""Numbers and addresses given to ``p4integ``: refused before anything starts or changes."""
from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from agent import registry
from agent.records import HostRecord
from agent import pools
from deployments import processes
from flows.settings import free_port, pool_name

from tests.cli import p4integ

pytestmark = pytest.mark.usefixtures("local_worker")


def _pool_limit() -> int | None:
    with get_client(sync_client=True) as client:
        return client.read_work_pool(pool_name("local")).concurrency_limit


@pytest.mark.parametrize("limit", ["0", "-1", "65"])
def test_up_refuses_a_host_limit_that_would_stop_every_job(limit: str) -> None:
    before = _pool_limit()
    out = p4integ("up", "--host-limit", limit)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"error: --host-limit: {limit} parallel jobs is not usable; give a number from 1 to 64" in out.stderr
    assert _pool_limit() == before


def test_pool_worker_and_host_record_refuse_a_limit_below_one() -> None:
    with pytest.raises(ValueError, match="^limit: 0 parallel jobs is not usable"):
        pools.ensure_pool("local", 0)
    with pytest.raises(ValueError, match="^limit: -1 parallel jobs is not usable"):
        processes.start_worker("never-started", -1)
    assert "worker-never-started" not in processes.running()
    fields = dict(name="h1", address="h1.example.com", user="p4build", key_file="/k", host_key="ssh-ed25519 AAAA")
    with pytest.raises(ValueError, match="limit: 0 parallel jobs is not usable; give a number from 1 to 64"):
        HostRecord(**fields, limit=0)
    with pytest.raises(ValueError, match="port: 70000 is not a TCP port; give a number from 1 to 65535"):
        HostRecord(**fields, port=70000)


@pytest.mark.parametrize("option,value,message", [
    ("--port", "70000", "--port: 70000 is not a TCP port; give a number from 1 to 65535"),
    ("--port", "0", "--port: 0 is not a TCP port"),
    ("--limit", "0", "--limit: 0 parallel jobs is not usable"),
])
def test_hosts_add_refuses_bad_numbers_before_connecting(tmp_path: Path, option: str, value: str,
                                                         message: str) -> None:
    before = registry.load_all()
    # 127.0.0.1:9 (discard) answers no SSH: a connection attempt would say "cannot reach"
    args = {"--port": "9", "--limit": "4", option: value}
    out = p4integ("hosts", "add", "bad-numbers", "--address", "127.0.0.1", "--user", "p4build",
                  "--key", str(tmp_path / "key"), "--fingerprint", "SHA256:x", *[x for kv in args.items() for x in kv])
    assert out.returncode == 2 and f"error: {message}" in out.stderr, out.stderr
    assert "cannot reach" not in out.stderr
    assert registry.load_all() == before


def test_ui_refuses_a_port_that_is_not_a_port_and_starts_nothing() -> None:
    out = p4integ("ui", "--p4port", "not a port at all")
    assert out.returncode == 2
    assert "error: --p4port: 'not a port at all' is not a Perforce port" in out.stderr, out.stderr
    assert "ui" not in processes.running()
    out = p4integ("ui", "--p4port", "http://perforce:1666")
    assert out.returncode == 2 and "is a URL; Perforce does not speak http://" in out.stderr


def _p4port_of(pid: int) -> str:
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next(e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"P4INTEG_P4PORT="))


def test_ui_restarts_when_it_runs_with_another_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P4INTEG_UI_PORT", str(free_port()))
    first, second = f"sandbox:{tmp_path}/a", f"sandbox:{tmp_path}/b"
    try:
        assert processes.start_ui(first) == "started"
        pid = processes.running()["ui"]
        assert processes.start_ui(first) == "running" and processes.running()["ui"] == pid
        assert processes.start_ui(second) == "restarted"
        now = processes.running()["ui"]
        assert now != pid and _p4port_of(now) == second
        assert not processes.alive(pid)
    finally:
        processes.stop("ui")
