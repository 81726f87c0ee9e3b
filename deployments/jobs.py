"""Starting, resuming, cancelling and following integration jobs through Prefect."""
from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run
from prefect.states import Cancelling

from flows.spec import FileChoice, JobSpec

from .settings import FLOW_NAME

FINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}


def check_host(host: str) -> None:
    """Refuse a job for a host that has no work pool, before anything runs."""
    from prefect.exceptions import ObjectNotFound

    from .settings import pool_name

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool_name(host))
        except ObjectNotFound:
            raise ValueError(f"host: unknown host '{host}'; enrol it first (p4integ hosts add) "
                             "or use host 'local'") from None


def user_tag(user: str) -> str:
    return f"p4user:{user}"


def run_tags(spec: JobSpec) -> list[str]:
    """Tags every job run carries: whose job it is, so lists can filter on the server."""
    return ["p4-integration", user_tag(spec.p4user)]


def submit(spec: JobSpec, deployment: str | UUID | None = None, name: str | None = None) -> UUID:
    """Create a flow run for the job on its host's deployment; returns at once."""
    check_host(spec.host)
    run = run_deployment(name=deployment or f"{FLOW_NAME}/{spec.host}",
                         parameters={"spec": spec.model_dump(mode="json", exclude_defaults=True)},
                         timeout=0, flow_run_name=name, as_subflow=False, tags=run_tags(spec), _sync=True)
    return run.id


def read(run_id: UUID | str) -> FlowRun:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(str(run_id)))


def resume(run_id: UUID | str, action: str = "recheck", files: list[FileChoice] | None = None) -> None:
    payload: dict[str, Any] = {"action": action, "files": [f.model_dump() for f in files or []]}
    # _sync: callers with an event loop of their own (a browser driver, a web server) would
    # otherwise get an un-awaited coroutine and the run would never resume.
    resume_flow_run(UUID(str(run_id)), run_input=payload, _sync=True)


def cancel(run_id: UUID | str) -> None:
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(str(run_id)), Cancelling(), force=True)


def wait(run_id: UUID | str, *, until: set[StateType] | None = None, timeout: float = 120.0,
         poll: float = 0.5) -> FlowRun:
    """Poll until the run reaches one of ``until`` (default: a final state)."""
    until = until or FINAL
    end = time.monotonic() + timeout
    run = read(run_id)
    while run.state is None or run.state.type not in until:
        if time.monotonic() > end:
            state = run.state.name if run.state else "no state"
            raise TimeoutError(f"flow run {run_id} still {state} after {timeout:.0f} s")
        time.sleep(poll)
        run = read(run_id)
    return run


def conflicts(run_id: UUID | str) -> list[dict[str, Any]]:
    """The files a paused run waits on, from its latest 'conflicts' table artifact."""
    import json

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(str(run_id))]),
                                           key=ArtifactFilterKey(any_=["conflicts"])),
            sort=ArtifactSort.CREATED_DESC, limit=1)
    if not found:
        return []
    data = found[0].data
    return json.loads(data) if isinstance(data, str) else list(data or [])
