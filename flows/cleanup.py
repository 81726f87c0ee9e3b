"""Cleaning up after a job run that no process of its own could clean up after.

A job waiting for a person has no process; a job whose process or host died has none
either. When such a run ends (cancelled while suspended, its wait timed out, marked
Crashed), a Prefect automation starts ``cleanup`` on the service host, which hands
it on to ``cleanup/<host>``: the workspace's own host, the only place where reverting
its files is possible. There, under the workspace lock, it does what the job would
have done: keeps a person's resolved work shelved, reverts the rest, and writes the
outcome into the job's own log, so the job's last line says what happened.

Idempotent: a run that cleaned up after itself left nothing, and nothing is done.
"""
from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import deployment as current_deployment

from . import handled, leftovers, runs
from . import stages as S
from .integration import load_job_secret
from .p4.session import P4Session
from .reservation import job_changes
from .spec import JobSpec
from .vocabulary import FINAL, INTERNAL_TAG
from .workspace_lock import workspace_lock

FLOW_NAME = "cleanup"


def _job_log(run_id: str, message: str, level: int = 20) -> None:
    """A line in the job's own log (not this flow's), where its owner reads."""
    runs.log_to([run_id], "p4integ.cleanup", message, level)


@flow(name=FLOW_NAME, persist_result=False, log_prints=False)
def cleanup(flow_run_id: str, event: str = "") -> str:
    from prefect.deployments import run_deployment

    logger = get_run_logger()
    run_id = flow_run_id.rsplit(".", 1)[-1]  # an event's resource id is prefect.flow-run.<id>
    state, state_name = runs.read_state(run_id)
    if state is not None and state not in FINAL:
        return f"run {run_id} is {state_name}: nothing to clean yet"
    run = runs.read_run(run_id)
    spec = JobSpec.model_validate((run.parameters or {}).get("spec") or {})
    here = (current_deployment.name or "local") if current_deployment.id else "local"
    if spec.host != here:
        # Reverting files is possible only on the host that owns the workspace.
        handed: Any = run_deployment(name=f"{FLOW_NAME}/{spec.host}",
                                     parameters={"flow_run_id": run_id, "event": event},
                                     timeout=0, as_subflow=False, tags=[INTERNAL_TAG])
        logger.info(f"handed to {FLOW_NAME}/{spec.host}: flow run {handed.id}")
        handled.take("cleaned", run_id, state_name)
        return f"handed to host {spec.host}"
    secret = load_job_secret(spec)
    owner = {"flow_run_id": str(run.id), "flow_run_name": f"cleanup of {run.name}"}
    with workspace_lock(spec.p4port, spec.client, owner, on_wait=lambda h, w: None):
        with P4Session(spec.p4port, spec.p4user, spec.client, password=secret) as session:
            job = S.Job(spec=spec, session=session, log=logger.info)
            done = []
            for left in job_changes(session, spec.client):
                if left.run_id != run_id:
                    continue
                report = leftovers.clean_run(job, left, logger.info)
                if report is not None:
                    done.append(report.sentence())
    if here == "local":  # the service side's record, which the recovery sweep reads
        handled.take("cleaned", run_id, state_name)
    if not done:
        return "nothing left to clean"
    why = run.state.message if run.state and run.state.message else ""
    if state_name == "Failed" and "never resumed" in why:
        why = f"nobody answered within {spec.pause_timeout} s"
    line = f"CLEANUP after the run ended {state_name}{f' ({why})' if why else ''}: " + "; ".join(done)
    _job_log(run_id, line)
    logger.info(line)
    return line
