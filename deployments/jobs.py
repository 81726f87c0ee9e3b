"""Starting, resuming, cancelling and following integration jobs through Prefect."""
from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run
from prefect.states import Cancelling

from flows.errors import P4IntegError
from flows.polling import poll_until
from flows.prefect_compat import sync_call
from flows.record import RECORD_KEY, JobRecord
from flows.vocabulary import FINAL, job_tags
from flows.settings import FLOW_NAME
from flows.spec import FileChoice, JobSpec
from flows.usernames import foreign_secret


class NotWaiting(P4IntegError, ValueError):
    """The run cannot take a person's answer now (finished, running, gone)."""


class SpecRefused(P4IntegError, ValueError):
    """A job spec wrong for its host or server; ``problems`` maps each field to its message."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems.values()))


def check_host(host: str) -> None:
    """Refuse a job for a host that has no work pool, before anything runs."""
    from prefect.exceptions import ObjectNotFound

    from flows.settings import pool_name

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool_name(host))
        except ObjectNotFound:
            raise ValueError(f"host: unknown host '{host}'; enrol it first (p4integ hosts add) "
                             "or use host 'local'") from None


def spec_problems(spec: JobSpec) -> dict[str, str]:
    """Everything that can be known wrong before a run exists: the host, the stored password,
    and what the Perforce server does not know (flows.checks). Keyed by field."""
    from prefect.blocks.system import Secret

    from flows.checks import check_spec
    from flows.site_commands import UnknownCommand, resolve as resolve_site_commands

    from .commands import field_of

    try:
        check_host(spec.host)
    except ValueError as exc:
        return {"host": str(exc)}
    try:
        resolve_site_commands(spec)
    except UnknownCommand as exc:
        return {field_of(f): message for f, message in exc.problems.items()}
    password = None
    if problem := foreign_secret(spec.p4user, spec.password_secret):
        return {"password_secret": problem}
    if spec.password_secret:
        try:
            password = str(Secret.load(spec.password_secret).get())
        except ValueError:
            return {"password_secret": f"password_secret: no Prefect Secret block named '{spec.password_secret}'; "
                                       f"store the password first (p4integ credentials set {spec.p4user})"}
    return check_spec(spec, password)


def refuse_bad_spec(spec: JobSpec) -> None:
    """Raise ``SpecRefused`` naming every problem ``spec_problems`` finds."""
    problems = spec_problems(spec)
    if problems:
        raise SpecRefused(problems)


def run_tags(spec: JobSpec) -> list[str]:
    """flows.vocabulary.job_tags for the spec."""
    return job_tags(spec.p4user, spec.line, spec.changelist)


def submit(spec: JobSpec, deployment: str | UUID | None = None, name: str | None = None) -> UUID:
    """Create a flow run for the job on its host's deployment; returns at once.

    Refused (``SpecRefused``) before the run exists when the spec is wrong for its host or server."""
    refuse_bad_spec(spec)
    run = sync_call(run_deployment, name=deployment or f"{FLOW_NAME}/{spec.host}",
                    parameters={"spec": spec.model_dump(mode="json", exclude_defaults=True)},
                    timeout=0, flow_run_name=name, as_subflow=False, tags=run_tags(spec))
    return run.id


def run_uuid(run_id: UUID | str) -> UUID:
    try:
        return UUID(str(run_id))
    except ValueError:
        raise ValueError(f"run: '{run_id}' is not a flow run id; copy the id from 'p4integ' or the "
                         "Prefect UI (e.g. 8c0e3f9a-...)") from None


def read(run_id: UUID | str) -> FlowRun:
    from prefect.exceptions import ObjectNotFound

    rid = run_uuid(run_id)
    with get_client(sync_client=True) as client:
        try:
            return client.read_flow_run(rid)
        except ObjectNotFound:
            raise NotWaiting(f"run: there is no flow run {rid} (deleted, or on another server)") from None


def waiting_for_person(run: FlowRun) -> bool:
    return run.state is not None and run.state.type == StateType.PAUSED


def state_label(run: FlowRun) -> str:
    """The run's state as people read it: waiting for a person is not running."""
    if run.state is None:
        return "no state"
    if waiting_for_person(run):
        return f"{run.state.name} (waiting for a person; no process runs meanwhile)"
    return run.state.name or run.state.type.value


def resume(run_id: UUID | str, action: str = "recheck", files: list[FileChoice] | None = None) -> None:
    """Send a person's answer, checked first: a run that cannot take it, or an answer that
    cannot be applied as a whole, is refused here at once and the run keeps waiting."""
    from flows.integration import ResolveInput
    from flows.stages import Conflict, check_choices

    run = read(run_id)
    if not waiting_for_person(run):
        state = run.state.name if run.state else "without a state"
        raise NotWaiting(f"run: flow run {run.id} is not waiting for a person: it is {state}")
    answer = ResolveInput(action=action, files=files or [])  # type: ignore[arg-type]
    if answer.action == "apply":
        problems = check_choices(answer.files, [Conflict.model_validate(c) for c in conflicts(run.id)])
        if problems:
            raise ValueError("; ".join(problems) + ". Nothing was sent; the job is still waiting")
    payload: dict[str, Any] = answer.model_dump(mode="json")
    try:  # also from a caller with an event loop of its own (the front page)
        sync_call(resume_flow_run, run.id, run_input=payload)
    except Exception as exc:  # noqa: BLE001 - Prefect says why in its own exception types
        raise NotWaiting(f"run: flow run {run.id} did not take the answer: {exc}") from None


def cancel(run_id: UUID | str) -> None:
    """Ask the run to stop; a run that already ended says so at once (nothing to cancel)."""
    run = read(run_id)
    if run.state is not None and run.state.type in FINAL:
        raise NotWaiting(f"run: flow run {run.id} already ended {run.state.name}; there is nothing to cancel")
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Cancelling(), force=True)


def wait(run_id: UUID | str, *, until: set[StateType] | None = None, timeout: float = 120.0,
         poll: float = 0.5) -> FlowRun:
    """Poll until the run reaches one of ``until`` (default: a final state)."""
    wanted = until or FINAL
    last: dict[str, FlowRun] = {}

    def reached() -> FlowRun | None:
        last["run"] = run = read(run_id)
        return run if run.state is not None and run.state.type in wanted else None

    run = poll_until(reached, timeout, poll)
    if run is None:
        state = last["run"].state.name if last["run"].state else "no state"
        raise TimeoutError(f"flow run {run_id} still {state} after {timeout:.0f} s")
    return run


def _latest_table(run_id: UUID | str, key: str) -> list[dict[str, Any]]:
    """The rows of the run's latest table artifact with this key ([] if it wrote none)."""
    import json

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_uuid(run_id)]),
                                           key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC, limit=1)
    if not found:
        return []
    data = found[0].data
    return json.loads(data) if isinstance(data, str) else list(data or [])


def conflicts(run_id: UUID | str) -> list[dict[str, Any]]:
    """The files a paused run waits on, from its latest 'conflicts' table artifact."""
    return _latest_table(run_id, "conflicts")


def record(run_id: UUID | str) -> JobRecord | None:
    """What the job did (``flows.record``), once it ended or failed; None before."""
    rows = _latest_table(run_id, RECORD_KEY)
    return JobRecord.model_validate(rows[0]) if rows else None
