"""Lines are deployments of the ``line`` flow; each has an automation that moves it on.

A line (flows/lines.py) is kept as a deployment named after it on the service's own
pool, with its spec as the default parameters and the same tags as a template
(``line``, ``visibility:...``, ``owner:...``): private lines are their owner's alone,
global ones are made by administrators. Its two automations start the deployment whenever
one of the line's jobs ends (completed, cancelled) and whenever a change is submitted to its
source (``p4.change.submitted``, deployments/watcher.py), so a line moves change by change
by itself; ``p4integ lines run`` moves it one step by hand. A batched line with a ``cron``
has that schedule on its deployment instead of the automations: it moves only when it fires.
"""
from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel

from flows.errors import P4IntegError
from flows.lines import LINE_FLOW, LineSpec
from flows.vocabulary import (
    LINE_KIND_TAG, PRODUCT_TAG, line_tag, owner_of, owner_tag, visibility_of, visibility_tag,
)

from .templates import Visibility, copied_from, cron_schedule, may_make_global, refuse_spec, refuse_ticket

BASE = f"{LINE_FLOW}/local"  # prefect.yaml's deployment every line is copied from
AUTOMATION_PREFIX = "p4-integration: move line "
# What moves a line: one of its jobs completed (or was cancelled, as a skip does to a job that
# waits), or a change was submitted to its source (deployments/watcher.py, or a Perforce trigger
# posting the same event).
_MOVED_BY = {"job ended": {"prefect.flow-run.Completed", "prefect.flow-run.Cancelled"},
             "change submitted": {"p4.change.submitted"}}


class LineError(P4IntegError, ValueError):
    """Refused: the message names the field or the rule, and the fix."""


class Line(BaseModel):
    spec: LineSpec
    owner: str | None
    visibility: Visibility
    paused: bool
    deployment_id: UUID


def _client() -> Any:
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _all() -> list[Line]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags, FlowFilter, FlowFilterName

    found: list[Any] = []
    with _client() as client:
        while True:  # the API returns at most 200 a call
            page = client.read_deployments(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[LINE_FLOW])),
                deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[PRODUCT_TAG, LINE_KIND_TAG])),
                limit=200, offset=len(found))
            found += page
            if len(page) < 200:
                break
    return [Line(spec=LineSpec.model_validate((d.parameters or {})["line"]), owner=owner_of(d.tags or []),
                 visibility="private" if visibility_of(d.tags or []) == "private" else "global",
                 paused=bool(d.paused), deployment_id=d.id) for d in found]


def all_lines() -> list[Line]:
    """Every line, whoever owns it: for the service's own watcher, never for people."""
    return _all()


def line_resource(name: str) -> dict[str, str]:
    """How an event names a line among its related resources."""
    return {"prefect.resource.id": f"p4integ.line.{name}", "prefect.resource.role": "line"}


def list_lines(user: str) -> list[Line]:
    """Global lines and the user's own private ones."""
    return sorted((li for li in _all() if li.visibility == "global" or li.owner == user), key=lambda li: li.spec.name)


def get(user: str, name: str) -> Line:
    for li in list_lines(user):
        if li.spec.name == name:
            return li
    raise LineError(f"line: no line named '{name}' (yours or global)")


def _owned(user: str, name: str) -> Line:
    li = get(user, name)
    if li.owner != user:
        raise LineError(f"line: '{name}' belongs to {li.owner}; only its owner can change it")
    return li


def create(user: str, spec: LineSpec, *, visibility: Visibility = "private", operator: bool = False) -> Line:
    """A new line owned by ``user``; refused, before anything is made, with the field to fix."""
    from prefect.exceptions import ObjectNotFound

    may_make_global(user, visibility, operator)
    if any(li.spec.name == spec.name for li in _all()):
        raise LineError(f"name: a line named '{spec.name}' exists; pick another name")
    _refuse(user, spec, operator)
    with _client() as client:
        try:
            base = client.read_deployment_by_name(BASE)
        except ObjectNotFound:
            raise LineError(f"deployment {BASE} is missing; start the service (p4integ up)") from None
        deployment_id = client.create_deployment(
            **copied_from(base), name=spec.name,
            parameters={"line": spec.model_dump(mode="json", exclude_defaults=True)},
            tags=[PRODUCT_TAG, LINE_KIND_TAG, visibility_tag(visibility), owner_tag(user)],
            description=f"{spec.mode} line: {spec.job.mode} in {spec.job.client} on {spec.job.host}")
    _set_schedule(deployment_id, spec.cron)
    _ensure_automation(spec, deployment_id)
    return get(user, spec.name)


def _refuse(user: str, spec: LineSpec, operator: bool) -> None:
    """What a line's jobs and schedule get checked for before the line is made or changed."""
    if spec.cron:
        cron_schedule(spec.cron)  # TemplateError names the cron field and the fix
    refuse_ticket(spec.job)
    refuse_spec(spec.job, None if operator else user)


def _set_schedule(deployment_id: UUID, cron: str | None) -> None:
    """The deployment's one schedule is the line's cron, or none."""
    with _client() as client:
        for old in client.read_deployment_schedules(deployment_id):
            client.delete_deployment_schedule(deployment_id, old.id)
        if cron:
            client.create_deployment_schedules(deployment_id, [(cron_schedule(cron), True)])


def apply(user: str, wanted: list[tuple[LineSpec, Visibility]], *, operator: bool = False) -> dict[str, str]:
    """Make the user's lines what a lines file says: each one created, updated or left as it is
    (lines the file does not name are left alone). Returns name -> what was done."""
    from prefect.client.schemas.actions import DeploymentUpdate

    existing = {li.spec.name: li for li in _all()}
    for spec, visibility in wanted:  # every entry checked before any line is touched
        now = existing.get(spec.name)
        if now is not None and now.owner != user:
            raise LineError(f"line: '{spec.name}' belongs to {now.owner}; only its owner can change it")
        may_make_global(user, visibility, operator)
        _refuse(user, spec, operator)
    done = {}
    for spec, visibility in wanted:
        now = existing.get(spec.name)
        if now is None:
            create(user, spec, visibility=visibility, operator=operator)
            done[spec.name] = "created"
            continue
        if now.spec == spec and now.visibility == visibility:
            done[spec.name] = "unchanged"
            continue
        with _client() as client:
            client.update_deployment(now.deployment_id, DeploymentUpdate(
                parameters={"line": spec.model_dump(mode="json", exclude_defaults=True)},
                tags=[PRODUCT_TAG, LINE_KIND_TAG, visibility_tag(visibility), owner_tag(user)]))
        if now.spec.cron != spec.cron:
            _set_schedule(now.deployment_id, spec.cron)
            _ensure_automation(spec, now.deployment_id)
            if now.paused:  # new automations start active
                set_paused(user, spec.name, True)
        done[spec.name] = "updated"
    return done


def _ensure_automation(spec: LineSpec, deployment_id: UUID) -> None:
    """The line takes its next step when one of its jobs ends (completed, cancelled) or a change
    reaches its source; a scheduled line only when its schedule fires."""
    from prefect.automations import Automation
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import EventTrigger, Posture

    name = spec.name
    _remove_automation(name)
    if spec.cron:
        return
    related = {"job ended": {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{line_tag(name)}"},
               "change submitted": line_resource(name)}
    for why, events in _MOVED_BY.items():
        Automation(name=f"{AUTOMATION_PREFIX}{name}: {why}", trigger=EventTrigger(
            expect=events, posture=Posture.Reactive, threshold=1, match_related=related[why]),
            actions=[RunDeployment(source="selected", deployment_id=deployment_id)]).create()


def _automations(client: Any, name: str) -> list[Any]:
    return [a for why in _MOVED_BY for a in client.read_automations_by_name(f"{AUTOMATION_PREFIX}{name}: {why}")]


def _remove_automation(name: str) -> None:
    with _client() as client:
        for old in _automations(client, name):
            client.delete_automation(old.id)


def run(user: str, name: str) -> UUID:
    """One step of the line now (what its automation and a submit do)."""
    from prefect.deployments import run_deployment

    from flows.prefect_compat import sync_call

    li = get(user, name)
    if li.paused:
        raise LineError(f"line: '{name}' is paused; resume it first (p4integ lines resume {name})")
    return sync_call(run_deployment, name=f"{LINE_FLOW}/{name}", timeout=0, as_subflow=False).id


def skip(user: str, name: str, change: int) -> None:
    """Skip a source change for this line: the line never integrates it, and the record (a
    Perforce key, ``p4integ-skip-<line>-<change>``, whose value names ``user``) says who skipped
    it. A job of the line for that change still under way or waiting is cancelled first; a
    person's resolves it held are kept shelved by its cleanup, as for any cancelled job."""
    from flows import runs
    from flows.integration import load_job_secret
    from flows.lines import pending, skip_key
    from flows.p4.session import P4Session
    from flows.vocabulary import line_change_tag

    from . import jobs

    li = get(user, name)
    job = li.spec.job
    holding = runs.runs_tagged(line_change_tag(name, change), live=True)  # a job of the line at that change
    with P4Session(job.p4port, job.p4user, job.client, password=load_job_secret(job)) as session:
        if not holding and change not in [c.change for c in pending(session, li.spec)]:
            raise LineError(f"change: {change} is not waiting on line {name} (integrated, skipped, or not "
                            "in its source)")
        session.set_key(skip_key(name, change), user)  # first: the cancelled job's end moves the line on
    for held in holding:
        jobs.cancel(held.id)
    if not li.paused:
        run(user, name)


def set_paused(user: str, name: str, paused: bool) -> Line:
    """A paused line starts no job: its deployment (and so any schedule) and its automation are paused."""
    li = _owned(user, name)
    with _client() as client:
        (client.pause_deployment if paused else client.resume_deployment)(li.deployment_id)
        for automation in _automations(client, name):
            (client.pause_automation if paused else client.resume_automation)(automation.id)
    return get(user, name)


def remove(user: str, name: str) -> None:
    li = _owned(user, name)
    _remove_automation(name)
    with _client() as client:
        client.delete_deployment(li.deployment_id)
