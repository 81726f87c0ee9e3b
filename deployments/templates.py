"""Templates are deployments; schedules are their cron schedules; credentials are Secret blocks.

A template is a deployment of the ``integrate`` flow on its host's pool, copied
from the host's base deployment (``integrate/<host>``) with the job spec as its
default parameters. Tags carry what Prefect has no field for: ``template``,
``visibility:global|private`` and ``owner:<user>``. Private templates are shown to
their owner only (to anyone else they do not exist); only the owner edits,
deletes, switches or schedules a template. Only administrators (deployments/roles.py)
make a template global, when creating it or by switching it: a global template is offered
to everyone. The ``p4integ`` command counts as an administrator (``operator=True``): it
is used by whoever can read $P4INTEG_HOME. Deployments declared in prefect.yaml are
global templates owned by the project: readable and runnable by all, edited in the
file.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from flows.errors import P4IntegError
from flows.prefect_compat import cron_next_dates, sync_call
from flows.settings import FLOW_NAME, host_of_pool
from flows.spec import JobSpec
from flows.usernames import secret_name, ticket_secret_name
from flows.vocabulary import PRODUCT_TAG, TEMPLATE_TAG, owner_of, owner_tag, visibility_of, visibility_tag

from . import roles
from .commands import raw_command_problems
from .jobs import SpecRefused, refuse_bad_spec, run_tags

Visibility = Literal["global", "private"]
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PRESETS = {
    "hourly": "0 * * * *",
    "nightly at 02:00": "0 2 * * *",
    "weekdays at 02:00": "0 2 * * 1-5",
    "every 15 minutes": "*/15 * * * *",
    "weekly, Sunday 03:00": "0 3 * * 0",
}


class TemplateError(P4IntegError, ValueError):
    """Refused: the message names the field or the rule, and the fix."""


class Template(BaseModel):
    name: str
    owner: str | None
    visibility: Visibility
    host: str
    spec: dict[str, Any]
    description: str = ""
    deployment_id: UUID


class ScheduleInfo(BaseModel):
    id: UUID
    cron: str
    timezone: str
    active: bool
    next_runs: list[datetime] = Field(default_factory=list)
    last_run_state: str | None = None
    problem: str | None = Field(default=None, description="Why a stored schedule cannot fire; delete it")


def _client() -> Any:
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _tags(owner: str | None, visibility: Visibility) -> list[str]:
    return [PRODUCT_TAG, TEMPLATE_TAG, visibility_tag(visibility)] + ([owner_tag(owner)] if owner else [])


def _to_template(d: Any) -> Template:
    tags = set(d.tags or [])
    owner = owner_of(tags)
    visibility: Visibility = "private" if visibility_of(tags) == "private" else "global"
    host = host_of_pool(d.work_pool_name or "p4-local")
    return Template(name=d.name, owner=owner, visibility=visibility, host=host,
                    spec=dict((d.parameters or {}).get("spec") or {}), description=d.description or "",
                    deployment_id=d.id)


def _all() -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags, FlowFilter, FlowFilterName

    with _client() as client:
        return client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
            deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[PRODUCT_TAG])), limit=200)


def visible_to(user: str, t: Template) -> bool:
    return t.visibility == "global" or t.owner == user


def list_templates(user: str) -> list[Template]:
    """Global templates and the user's own private ones."""
    return sorted((t for t in map(_to_template, _all()) if visible_to(user, t)), key=lambda t: t.name)


def get(user: str, name: str) -> Template:
    for d in _all():
        t = _to_template(d)
        if t.name == name and visible_to(user, t):
            return t
    raise TemplateError(f"template: no template named '{name}' (yours or global)")


def _owned(user: str, name: str) -> Template:
    t = get(user, name)
    if t.owner != user:
        who = f"belongs to {t.owner}" if t.owner else "is declared in prefect.yaml"
        raise TemplateError(f"template: '{name}' {who}; only its owner can change it")
    return t


def refuse_ticket(spec: JobSpec) -> None:
    """A template's saved spec is what its schedules run, long after a sign-in's ticket
    has expired: it names the stored password, or none."""
    if spec.password_secret and spec.password_secret == ticket_secret_name(spec.p4user):
        raise TemplateError(f"password_secret: '{spec.password_secret}' is the ticket kept when {spec.p4user} "
                            "signed in, which expires; a template's schedules need the stored password: name "
                            f"'{secret_name(spec.p4user)}' (p4integ credentials set {spec.p4user}) or leave "
                            "password_secret empty")


def refuse_spec(spec: JobSpec, author: str | None = None) -> None:
    """The checks a job gets when it is submitted, made when its template is saved or run; a
    template's author gives a program or environment only as an administrator."""
    if author is not None and (problems := raw_command_problems(spec, author)):
        raise TemplateError("; ".join(problems.values()))
    try:
        refuse_bad_spec(spec)
    except SpecRefused as exc:
        raise TemplateError(str(exc)) from None


def may_make_global(user: str, visibility: Visibility, operator: bool) -> None:
    if visibility == "global" and not operator and not roles.is_admin(user):
        raise TemplateError(f"visibility: only administrators make a template global, and '{user}' is not one; "
                            f"keep it private, or ask an administrator ({roles.WHO})")


def copied_from(base: Any) -> dict[str, Any]:
    """What a deployment made from ``base`` (a template, a line) keeps of it: the flow, and how
    and where its runs start (pool, entrypoint, pull step, flows/engine_start.py's command)."""
    return {"flow_id": base.flow_id, "work_pool_name": base.work_pool_name, "entrypoint": base.entrypoint,
            "path": base.path, "pull_steps": base.pull_steps, "job_variables": base.job_variables,
            "parameter_openapi_schema": base.parameter_openapi_schema}


def create(user: str, name: str, spec: JobSpec, *, visibility: Visibility = "private", description: str = "",
           operator: bool = False) -> Template:
    """A new template owned by ``user``; ``operator``: asked through the p4integ command (an administrator)."""
    from prefect.exceptions import ObjectNotFound

    if not _NAME.match(name):
        raise TemplateError(f"name: '{name}' is not usable; use lowercase letters, digits and '-'")
    may_make_global(user, visibility, operator)
    if name in {"local"} or any(d.name == name for d in _all()):
        raise TemplateError(f"name: a template or deployment named '{name}' exists; pick another name")
    refuse_ticket(spec)
    refuse_spec(spec, None if operator else user)
    with _client() as client:
        try:
            base = client.read_deployment_by_name(f"{FLOW_NAME}/{spec.host}")
        except ObjectNotFound:
            raise TemplateError(f"host: unknown host '{spec.host}'; enrol it first (p4integ hosts add)") from None
        client.create_deployment(
            **copied_from(base), name=name,
            parameters={"spec": spec.model_dump(mode="json", exclude_defaults=True)},
            tags=_tags(user, visibility), description=description or f"{spec.mode} in {spec.client}")
    return get(user, name)


def edit(user: str, name: str, *, spec: JobSpec | None = None, description: str | None = None,
         operator: bool = False) -> Template:
    from prefect.client.schemas.actions import DeploymentUpdate

    t = _owned(user, name)
    update: dict[str, Any] = {}
    if spec is not None:
        if spec.host != t.host:
            raise TemplateError("host: a template stays on its host; create a new template for another host")
        refuse_ticket(spec)
        refuse_spec(spec, None if operator else user)
        update["parameters"] = {"spec": spec.model_dump(mode="json", exclude_defaults=True)}
    if description is not None:
        update["description"] = description
    with _client() as client:
        client.update_deployment(t.deployment_id, DeploymentUpdate(**update))
    return get(user, name)


def switch(user: str, name: str, visibility: Visibility, *, operator: bool = False) -> Template:
    """The owner makes their template global (an administrator only) or private again."""
    from prefect.client.schemas.actions import DeploymentUpdate

    t = _owned(user, name)
    if t.visibility != visibility:
        may_make_global(user, visibility, operator)
    with _client() as client:
        client.update_deployment(t.deployment_id, DeploymentUpdate(tags=_tags(user, visibility)))
    return get(user, name)


def delete(user: str, name: str) -> None:
    t = _owned(user, name)
    with _client() as client:
        client.delete_deployment(t.deployment_id)


def identity_for(user: str, t: Template, *, signed_in: bool = False) -> dict[str, Any]:
    """Whose Perforce identity a run the user starts now uses: the owner's spec as saved, or the caller's.

    Anyone but the owner runs a (global) template as themselves, with their own
    credential (or none): overrides let them change the workspace, description and trial
    switch, so running with the owner's identity would let them submit as the owner.
    Which credential: ``signed_in`` (started on the front page by a person signed in
    there) the ticket kept at their sign-in, like their New jobs; else (the command line)
    their stored password. The owner's run from the front page keeps the saved spec and,
    when it is the owner's own, signs in with the owner's ticket if one is kept.
    Scheduled runs take the saved spec, which names the stored password (``refuse_ticket``):
    they are the owner's schedule and must outlive tickets."""
    credential = signin_secret if signed_in else stored_secret
    if runs_as_caller(user, t):
        return {"p4user": user, "password_secret": credential(user)}
    if signed_in and t.spec.get("p4user") == user and (ticket := signin_secret(user)):
        return {"password_secret": ticket}
    return {}


def runs_as_caller(user: str, t: Template) -> bool:
    return t.owner != user


def spec_for_display(spec: dict[str, Any]) -> dict[str, Any]:
    """A template's spec as shown to everyone who can see it: whose Secret block holds the password is not said.

    The block's name is not the password, but it names whose credential a schedule uses;
    readers only need to know that one is stored."""
    if not spec.get("password_secret"):
        return dict(spec)
    return {**spec, "password_secret": "(a stored credential)"}


def run(user: str, name: str, *, signed_in: bool = False, **overrides: Any) -> UUID:
    """Start a run now, with overrides (changelist, description, trial, client), as ``identity_for`` says
    (``signed_in``: started on the front page, with the sign-in's ticket)."""
    from prefect.deployments import run_deployment

    allowed = {"changelist", "description", "trial", "client"}
    unknown = set(overrides) - allowed
    if unknown:
        raise TemplateError(f"{sorted(unknown)[0]}: not an override; allowed: {', '.join(sorted(allowed))}")
    t = get(user, name)
    spec = JobSpec.model_validate({**t.spec, **{k: v for k, v in overrides.items() if v is not None},
                                   **identity_for(user, t, signed_in=signed_in)})
    refuse_spec(spec)
    flow_run = sync_call(run_deployment, name=f"{FLOW_NAME}/{name}", timeout=0, as_subflow=False,
                         tags=run_tags(spec), parameters={"spec": spec.model_dump(mode="json", exclude_defaults=True)})
    return flow_run.id


# --- schedules ------------------------------------------------------------------------------

def cron_schedule(cron: str, tz: str = "UTC") -> Any:
    """A Prefect CronSchedule that fires: five fields (or a preset or @-alias) and a next date."""
    from prefect.client.schemas.schedules import CronSchedule

    cron = PRESETS.get(cron, cron)
    fields = cron.split()
    if not cron.strip().startswith("@") and len(fields) != 5:
        extra = (" A sixth field would be read as seconds: '*' there fires every second of each matching minute."
                 if len(fields) == 6 else "")
        raise TemplateError(f"cron: '{cron}' has {len(fields)} fields; give five (minute hour day month weekday), "
                            f"e.g. '0 2 * * *' for 02:00 daily.{extra}")
    try:
        schedule = CronSchedule(cron=cron, timezone=tz)
    except ValueError as exc:
        detail = str(exc).split("Value error, ")[-1].split("[")[0].strip()
        if "timezone" in detail.lower():
            raise TemplateError(f"timezone: '{tz}' is not a time zone; use an IANA name such as UTC, "
                                "Europe/Berlin or America/New_York") from None
        raise TemplateError(f"cron: '{cron}' ({tz}) is not valid: {detail}. Use five fields, e.g. '0 2 * * *' "
                            f"for 02:00 daily, or a preset: {', '.join(PRESETS)}") from None
    # Prefect accepts a line that never fires (30 February); stored, it breaks listing and
    # makes the scheduler fail on every pass for all of the template's schedules.
    try:
        next_dates(schedule.cron, tz, 1)
    except ValueError:
        raise TemplateError(f"cron: '{cron}' never fires: no date matches its day and month fields "
                            "(e.g. 30 February, 31 April); fix the day or the month") from None
    return schedule


def next_dates(cron: str, tz: str, n: int = 3) -> list[datetime]:
    """The next fire times, computed by Prefect's own schedule model (the server's rules)."""
    return cron_next_dates(cron, tz, n)


def add_schedule(user: str, name: str, cron: str, tz: str = "UTC", active: bool = True) -> ScheduleInfo:
    t = _owned(user, name)
    with _client() as client:
        created = client.create_deployment_schedules(t.deployment_id, [(cron_schedule(cron, tz), active)])
    return next(s for s in schedules(user, name) if s.id == created[0].id)


def set_active(user: str, name: str, schedule_id: UUID, active: bool) -> None:
    t = _owned(user, name)
    with _client() as client:
        client.update_deployment_schedule(t.deployment_id, schedule_id, active=active)


def edit_schedule(user: str, name: str, schedule_id: UUID, cron: str, tz: str = "UTC") -> None:
    t = _owned(user, name)
    with _client() as client:
        client.update_deployment_schedule(t.deployment_id, schedule_id, schedule=cron_schedule(cron, tz))


def delete_schedule(user: str, name: str, schedule_id: UUID) -> None:
    t = _owned(user, name)
    with _client() as client:
        client.delete_deployment_schedule(t.deployment_id, schedule_id)


def schedules(user: str, name: str, upcoming: int = 3) -> list[ScheduleInfo]:
    from prefect.client.schemas.filters import (
        DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterStartTime,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    t = get(user, name)
    with _client() as client:
        found = client.read_deployment_schedules(t.deployment_id)
        last = client.read_flow_runs(  # the latest run that started; scheduled ones have not
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(is_null_=False)),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[t.deployment_id])),
            sort=FlowRunSort.START_TIME_DESC, limit=1)
    state = last[0].state.name if last and last[0].state else None
    out = []
    for s in found:
        sched = s.schedule
        tz = sched.timezone or "UTC"
        try:  # one stored before lines were checked is shown as broken, not a crash
            cron_schedule(sched.cron, tz)
            problem = None
        except TemplateError as exc:
            problem = str(exc)
        nxt = next_dates(sched.cron, tz, upcoming) if s.active and problem is None else []
        out.append(ScheduleInfo(id=s.id, cron=sched.cron, timezone=tz, active=s.active, next_runs=nxt,
                                last_run_state=state, problem=problem))
    return out


# --- credentials ----------------------------------------------------------------------------

def _existing(name: str) -> str | None:
    from prefect.blocks.system import Secret

    try:
        Secret.load(name)
    except ValueError:
        return None
    return name


def stored_secret(user: str) -> str | None:
    """The name of the user's stored password's block (``p4integ credentials set``) if one was
    stored, else None (the job logs in without a password). Schedules and the command line use it."""
    return _existing(secret_name(user))


def signin_secret(user: str) -> str | None:
    """The name of the block holding the ticket from the user's last sign-in on the front page,
    if one is kept, else None. Jobs the user starts there use it."""
    return _existing(ticket_secret_name(user))


def store_password(user: str, password: str) -> str:
    """Keep a user's Perforce password (or a long-lived ticket) in their stored password's block; returns its name."""
    return _keep(user, password, secret_name(user), "password", "the Perforce password or a long-lived ticket")


def forget_password(user: str) -> bool:
    """Delete the user's stored password's block; False when none was stored. Their templates'
    schedules then log in without one, and Perforce says so in the run if it wants a password."""
    from prefect.exceptions import ObjectNotFound

    with _client() as client:
        try:
            block = client.read_block_document_by_name(secret_name(user), block_type_slug="secret")
        except ObjectNotFound:
            return False
        client.delete_block_document(block.id)
    return True


def store_ticket(user: str, ticket: str) -> str:
    """Keep the ticket from a sign-in in the user's ticket block; their stored password stays as it is."""
    return _keep(user, ticket, ticket_secret_name(user), "ticket", "the ticket from 'p4 login -a -p'")


def _keep(user: str, value: str, name: str, field: str, what: str) -> str:
    from prefect.blocks.system import Secret

    if not user.strip():
        raise TemplateError("user: empty; give the Perforce user name")
    if not value.strip():
        raise TemplateError(f"{field}: empty or only spaces; give {what}")
    Secret(value=value).save(name, overwrite=True)
    return name
