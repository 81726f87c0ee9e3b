"""The worker's engine server (flows/engine_server.py): a run's process hands its run to a
child of a process that imported Prefect already, and nothing the worker relies on changes:
arguments, environment, working directory and streams are the run's; the exit status comes
back; a signal to the run's process reaches the run; killing that process kills the run; the
server ends with its worker; without a server the process runs the engine itself.

The service's jobs run through the server in every other test that starts a worker."""
from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployments.processes import alive
from tests.flows.helpers import until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, dict[str, str]]]:
    """A stand-in worker (it waits for its stdin to close) started through the engine server."""
    env = {**os.environ, "P4INTEG_HOME": str(tmp_path / "home")}
    worker = subprocess.Popen([sys.executable, "-m", "flows.engine_server", "--", sys.executable, "-c",
                               "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, env=env, cwd=ROOT)
    path = (tmp_path / "home" / "run" / f"engine-{worker.pid}.sock")
    try:
        until(path.exists, 60, "the engine server's socket")
        yield worker, path, env
    finally:
        worker.kill()
        worker.wait()


def _client(path: Path, env: dict[str, str], cwd: Path, *argv: str) -> subprocess.Popen[bytes]:
    code = ("from flows.engine_start import _through_server, exit_as; "
            f"code = _through_server({str(path)!r}, module='tests.flows.engine_probe'); "
            "exit_as(99 if code is None else code)")
    return subprocess.Popen([sys.executable, "-c", code, *argv], env=env, cwd=cwd, stdout=subprocess.PIPE)


def test_a_run_gets_its_own_arguments_environment_directory_streams_and_exit_status(server, tmp_path: Path) -> None:
    worker, path, env = server
    # The worker's alone: what connects to it runs code with the environment it sends.
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    cwd = tmp_path / "site"
    cwd.mkdir()
    run_env = {**env, "PROBE_MARK": "job-42", "PREFECT_API_URL": "http://127.0.0.1:1/api"}
    client = _client(path, run_env, cwd, "report", "--flag")
    out, _ = client.communicate(timeout=120)
    assert client.returncode == 7, out  # the run's exit status, not the server's
    seen = json.loads(out.splitlines()[0])
    assert seen["argv"] == ["report", "--flag"] and seen["mark"] == "job-42" and seen["cwd"] == str(cwd)
    # Prefect's settings are the run's environment's, not the server's it was imported in.
    assert seen["api_url"] == "http://127.0.0.1:1/api" != env.get("PREFECT_API_URL")
    # Forked from the server with the flows imported, in a session of its own.
    assert seen["pid"] != client.pid and seen["ppid"] != client.pid and seen["preloaded"] is True
    assert seen["sid"] == seen["pid"]
    # The server is a child of the worker (it dies with it, below).
    assert Path(f"/proc/{seen['ppid']}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(worker.pid)


def test_a_runs_logging_is_set_up_from_its_own_settings(server, tmp_path: Path) -> None:
    """The server keeps its logging set-up for a run whose settings are its own (setting it up
    again is a tenth of a second of every start), and sets it up afresh for one whose are not."""
    _worker, path, env = server
    fresh = subprocess.run([sys.executable, "-c", "import logging, prefect.logging.configuration as c; "
                            "c.setup_logging(incremental=False); print(logging.getLogger('prefect').getEffectiveLevel())"],
                           env=env, capture_output=True, text=True, check=True)
    as_server = int(fresh.stdout.split()[-1])  # Prefect's logging set up in the server's environment
    other = "ERROR" if as_server == logging.WARNING else "WARNING"
    for run_env, level in ((env, as_server), ({**env, "PREFECT_LOGGING_LEVEL": other}, logging.getLevelName(other)),
                           (env, as_server)):
        client = _client(path, run_env, tmp_path, "report")
        out, _ = client.communicate(timeout=120)
        assert client.returncode == 7, out
        assert json.loads(out.splitlines()[0])["log_level"] == level, run_env.get("PREFECT_LOGGING_LEVEL")


def test_a_signal_to_the_runs_process_reaches_the_run_and_a_kill_ends_it(server, tmp_path: Path) -> None:
    _worker, path, env = server
    client = _client(path, env, tmp_path, "term")
    assert client.stdout is not None
    seen = json.loads(client.stdout.readline())
    client.send_signal(signal.SIGTERM)  # what the worker sends to cancel a run
    out, _ = client.communicate(timeout=60)
    assert b"got SIGTERM" in out and client.returncode == 3

    client = _client(path, env, tmp_path, "sleep")
    seen = json.loads(client.stdout.readline())
    assert alive(seen["pid"])
    client.kill()  # the run's process killed outright: the run goes with it
    client.wait()
    until(lambda: not alive(seen["pid"]), 30, "the run to end with its process")

    client = _client(path, env, tmp_path, "sleep")
    seen = json.loads(client.stdout.readline())
    os.kill(seen["pid"], signal.SIGKILL)  # the run killed (say, by the kernel's OOM killer)
    client.communicate(timeout=60)
    assert client.returncode == -signal.SIGKILL  # as the worker saw it when the run was its own child


def test_the_server_ends_with_its_worker_and_runs_then_start_their_own_engine(server, tmp_path: Path) -> None:
    worker, path, env = server
    client = _client(path, env, tmp_path, "report")
    out, _ = client.communicate(timeout=120)
    engine_server = json.loads(out.splitlines()[0])["ppid"]
    assert alive(engine_server)
    assert worker.stdin is not None
    worker.stdin.close()  # the worker ends
    worker.wait(timeout=30)
    until(lambda: not alive(engine_server), 30, "the engine server to end with its worker")
    client = _client(path, env, tmp_path, "report")
    client.communicate(timeout=60)
    assert client.returncode == 99  # nobody took the run: the caller runs the engine itself


def test_the_services_deployments_load_their_flows_by_import(local_worker: str) -> None:
    """Every deployment the service makes names its flow by module path, which Prefect imports
    (in a run forked from the engine server: finds imported) instead of executing the flow's
    file afresh in every run's process. A host's deployment made with a script path before is
    changed to the module path."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.flows import load_flow_from_entrypoint

    from agent import pools
    from flows.engine_server import PRELOAD
    from flows.settings import FLOW_ENTRYPOINT, FLOW_NAME

    host = "entry-probe"
    pools.ensure_pool(host, 1)
    with get_client(sync_client=True) as c:
        old = c.create_deployment(flow_id=c.create_flow_from_name(FLOW_NAME), name=host,
                                  work_pool_name=pools.pool_name(host), entrypoint="flows/integration.py:integrate")
    try:
        assert pools.ensure_deployment(host, str(ROOT)) is True
        with get_client(sync_client=True) as c:
            made = c.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["local", host])))
        assert {d.name for d in made} == {"local", host} and len(made) >= 6  # 4 flows on local, 2 on a host
        for d in made:
            flow = load_flow_from_entrypoint(d.entrypoint, use_placeholder_flow=False)
            # The same object each time: imported once, not run again (a script path gives a new flow).
            assert load_flow_from_entrypoint(d.entrypoint, use_placeholder_flow=False) is flow, d.entrypoint
            assert flow.fn.__module__ in PRELOAD, d.entrypoint
        assert next(d for d in made if d.id == old).entrypoint == FLOW_ENTRYPOINT
    finally:
        with get_client(sync_client=True) as c:
            for d in c.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[host]))):
                c.delete_deployment(d.id)
            c.delete_work_pool(pools.pool_name(host))
