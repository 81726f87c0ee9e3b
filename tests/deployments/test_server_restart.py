"""A job whose process starts while the Prefect server restarts waits for the server and runs,
where Prefect's engine alone fails at its first call and its run is reported Crashed."""
from __future__ import annotations

import shlex
import subprocess

from prefect.client.orchestration import get_client
from prefect.states import Pending

from deployments import processes
from flows.settings import prefect_env

from ..flows.helpers import until


def test_a_run_whose_process_starts_while_the_server_restarts_waits_and_runs(local_worker: str) -> None:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("cleanup/local")
        # Pending: claimed, as by a worker just before the server went away; no worker takes it.
        run = client.create_flow_run_from_deployment(deployment.id, state=Pending(), parameters={"flow_run_id": ""})
        # The cleanup of a run that has not ended (itself) has nothing to do and completes.
        client.update_flow_run(run.id, parameters={"flow_run_id": str(run.id)})
    command = (deployment.job_variables or {}).get("command")
    assert command, "the deployment does not set the command that starts its runs"
    env = {**prefect_env(), "PREFECT__FLOW_RUN_ID": str(run.id)}
    processes.stop("server")
    try:
        job = subprocess.Popen(shlex.split(command), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        bare = subprocess.run([env["P4INTEG_PYTHON"], "-m", "prefect.engine"], env=env, capture_output=True,
                              text=True, timeout=120)
        # Prefect's engine alone gives up at once: a refused first connection is not retried.
        assert bare.returncode != 0 and "ConnectError" in bare.stdout + bare.stderr, bare.stderr[-2000:]
        assert job.poll() is None, job.communicate()[0].decode()[-2000:]  # ours still waits
    finally:
        processes.start_server()
    out, _ = job.communicate(timeout=180)
    assert job.returncode == 0, out.decode()[-3000:]
    with get_client(sync_client=True) as client:
        ended = until(lambda: (s := client.read_flow_run(run.id).state) and s.is_final() and s, 60, "the run's end")
    assert ended.name == "Completed", ended.message
