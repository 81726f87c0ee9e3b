"""The front page's only door to Prefect: runs, stages, logs, artifacts, jobs.

Pages draw what these functions return and never import Prefect themselves, so the
whole app's traffic to the API is here, with one reused client (a call is ~13 ms).
Nothing is cached: lists filter on the server and read one page, so a render costs
a fixed number of calls whatever the number of runs (bench/bench_dashboard.py).
"""
from __future__ import annotations

import re
import threading
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from deployments import jobs
from deployments.commands import names_for, raw_command_problems
from deployments.roles import WHO, is_admin
from deployments.templates import (  # noqa: F401 - the pages use them through this door
    PRESETS, TemplateError, runs_as_caller, spec_for_display,
)
from flows.settings import FLOW_NAME, api_url, host_of_pool, pool_name
from flows.record import JobRecord
from flows.spec import FileChoice, JobSpec, Stage
from flows.vocabulary import PAUSED, PENDING, owner_tag, user_of, user_tag

STAGES = [s.value for s in Stage if s not in (Stage.CLEANUP, Stage.ERROR)]
PAGE = 200  # the most the API returns in one call
_lock = threading.Lock()
_client: Any = None


class NotAllowed(PermissionError):
    """Refused: the action is an administrator's; the message says who may and how to become one."""


def require_admin(viewer: str, action: str) -> None:
    """Every door that changes hosts or makes something global asks here, whatever the page showed."""
    if not is_admin(viewer):
        raise NotAllowed(f"{action}: only administrators may do this, and '{viewer}' is not one; ask an "
                         f"administrator ({WHO})")


def client() -> Any:
    """One sync client for the process; it is safe to share between sessions' threads."""
    global _client
    with _lock:
        if _client is None:
            from prefect.client.orchestration import get_client

            c = get_client(sync_client=True)
            c.__enter__()
            _client = c
        return _client


# --- models the pages draw ----------------------------------------------------------

class RunRow(BaseModel):
    id: UUID
    name: str
    state: str
    host: str
    user: str | None
    created: datetime | None
    started: datetime | None
    ended: datetime | None
    since: datetime | None = None
    stage: str | None = None


class StageRow(BaseModel):
    stage: str
    state: str


class LogLine(BaseModel):
    timestamp: datetime
    message: str


class RunDetail(RunRow):
    spec: dict[str, Any]
    deployment_id: UUID | None


def _user_of(run: Any) -> str | None:
    if user := user_of(run.tags or []):
        return user
    spec = (run.parameters or {}).get("spec") or {}
    return spec.get("p4user") if isinstance(spec, dict) else None


def _row(run: Any) -> dict[str, Any]:
    state = run.state
    return dict(id=run.id, name=run.name, state=state.type.value if state else PENDING,
                host=host_of_pool(run.work_pool_name or "?"), user=_user_of(run), created=run.created,
                started=run.start_time, ended=run.end_time,
                since=state.timestamp if state else None)


# --- the dashboard ----------------------------------------------------------------------

def _filters(user: str | None, states: list[str] | None = None, host: str | None = None) -> dict[str, Any]:
    from prefect.client.schemas.filters import (
        FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterExpectedStartTime, FlowRunFilterState,
        FlowRunFilterStateType, FlowRunFilterTags, WorkPoolFilter, WorkPoolFilterName,
    )
    from prefect.client.schemas.objects import StateType

    run_filter: dict[str, Any] = {
        # Runs a schedule made ahead of time are not jobs yet: leave out the future.
        "expected_start_time": FlowRunFilterExpectedStartTime(before_=datetime.now(timezone.utc))}
    if user:
        run_filter["tags"] = FlowRunFilterTags(any_=[user_tag(user), owner_tag(user)])
    if states:
        run_filter["state"] = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(s) for s in states]))
    out: dict[str, Any] = {"flow_filter": FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
                           "flow_run_filter": FlowRunFilter(**run_filter)}
    if host:
        out["work_pool_filter"] = WorkPoolFilter(name=WorkPoolFilterName(any_=[pool_name(host)]))
    return out


def count_by_group(groups: dict[str, list[str] | None], user: str | None = None,
                   host: str | None = None) -> dict[str, int]:
    """Runs per group of state types (None: all), counted by the server: one call a group."""
    c = client()
    return {label: c.count_flow_runs(**_filters(user, states, host)) for label, states in groups.items()}


def list_runs(user: str | None = None, states: list[str] | None = None, host: str | None = None,
              limit: int = 50, offset: int = 0) -> list[RunRow]:
    """Newest first, each with the stage it is at (or ended at)."""
    from prefect.client.schemas.sorting import FlowRunSort

    runs = client().read_flow_runs(**_filters(user, states, host), sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                                   limit=limit, offset=offset)
    rows = [RunRow(**_row(r)) for r in runs]
    latest = current_stages([r.id for r in rows])
    for r in rows:
        r.stage = Stage.NEEDS_RESOLVE.value if r.state == PAUSED else latest.get(r.id)
    return rows


def _stage_name(task_run_name: str) -> str:
    return task_run_name.split("-", 1)[0]


def current_stages(run_ids: list[UUID]) -> dict[UUID, str]:
    """The latest stage of each run, from one query for all of them."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    out: dict[UUID, str] = {}
    offset = 0
    while len(out) < len(run_ids):  # newest task runs first: usually one page has every run's latest
        tasks = client().read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=run_ids)),
                                        sort=TaskRunSort.EXPECTED_START_TIME_DESC, limit=PAGE, offset=offset)
        for t in tasks:
            if _stage_name(t.name) != Stage.CLEANUP:  # where a failed job stopped, not its cleanup
                out.setdefault(t.flow_run_id, _stage_name(t.name))
        if len(tasks) < PAGE:
            break
        offset += PAGE
    return out


def hosts_with_pools() -> list[str]:
    """Hosts that have a work pool: where jobs can run."""
    return sorted(host_of_pool(p.name) for p in client().read_work_pools() if p.name.startswith(pool_name("")))


# --- one job ---------------------------------------------------------------------------

def run_detail(run_id: UUID | str) -> RunDetail:
    run = client().read_flow_run(UUID(str(run_id)))
    spec = (run.parameters or {}).get("spec") or {}
    return RunDetail(**_row(run), spec=spec if isinstance(spec, dict) else {}, deployment_id=run.deployment_id,
                     stage=current_stages([run.id]).get(run.id))


def may_read_contents(viewer: str, run: RunRow) -> bool:
    """A job's log, conflict contents and summary hold depot file contents: its owner and administrators
    read them; anyone else sees its name, state, stage, host, user and age, and the page fetches no more."""
    return run.user == viewer or is_admin(viewer)


def state_of(run_id: UUID | str) -> str:
    """The run's state type alone: what the job page polls for."""
    state = client().read_flow_run(UUID(str(run_id))).state
    return state.type.value if state else PENDING


def stages(run_id: UUID | str) -> list[StageRow]:
    """Every stage task run, oldest first (a recheck shows RESOLVE_CHECK again)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    tasks = client().read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(str(run_id))])),
                                    sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=PAGE)
    return [StageRow(stage=_stage_name(t.name), state=t.state.type.value if t.state else PENDING) for t in tasks]


def logs_after(run_id: UUID | str, after: datetime | None = None, limit: int = 1000) -> list[LogLine]:
    """The run's log lines newer than ``after``: the job page appends these."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterTimestamp
    from prefect.client.schemas.sorting import LogSort

    flt: dict[str, Any] = {"flow_run_id": LogFilterFlowRunId(any_=[UUID(str(run_id))])}
    if after is not None:
        flt["timestamp"] = LogFilterTimestamp(after_=after)
    rows: list[Any] = []
    while len(rows) < limit:
        page = client().read_logs(log_filter=LogFilter(**flt), limit=PAGE, offset=len(rows),
                                  sort=LogSort.TIMESTAMP_ASC)
        rows += page
        if len(page) < PAGE:
            break
    return [LogLine(timestamp=r.timestamp, message=r.message) for r in rows
            if after is None or r.timestamp > after]


def record(run_id: UUID | str) -> JobRecord | None:
    """What the job did, once it ended or failed (None before)."""
    return jobs.record(run_id)


def conflicts(run_id: UUID | str) -> list[dict[str, Any]]:
    return jobs.conflicts(run_id)


def prefect_ui_url(run_id: UUID | str) -> str:
    return f"{api_url().removesuffix('/api')}/runs/flow-run/{run_id}"


# --- acting on jobs -----------------------------------------------------------------------

def secret_for(user: str) -> str | None:
    """The name of the Secret block holding the ticket from the user's sign-in, if one is kept:
    the jobs they start here use it."""
    from deployments.templates import signin_secret

    return signin_secret(user)


def schedule_secret_for(user: str) -> str | None:
    """The name of the user's stored password's block (``p4integ credentials set``), if any: a
    template's schedules run long after a sign-in's ticket expired, so a template saved here names it."""
    from deployments.templates import stored_secret

    return stored_secret(user)


def store_ticket(user: str, ticket: str) -> str:
    """Keep the ticket from sign-in for the user's own jobs (their ticket block, never a parameter),
    leaving the password an administrator stored for them as it is."""
    from deployments.templates import store_ticket

    return store_ticket(user, ticket)


def start_job(spec: JobSpec, author: str) -> UUID:
    """Submit a person's job; a program or environment they may not give is refused here too."""
    if problems := raw_command_problems(spec, author):
        raise jobs.SpecRefused(problems)
    return jobs.submit(spec)


def retry(run_id: UUID | str) -> UUID:
    """A new run with the same job spec on the same deployment (a template's stays its)."""
    old = run_detail(run_id)
    return jobs.submit(JobSpec.model_validate(old.spec), deployment=old.deployment_id)


def cancel(run_id: UUID | str) -> None:
    jobs.cancel(run_id)


def resume(run_id: UUID | str, action: str, files: list[FileChoice] | None = None) -> None:
    jobs.resume(run_id, action, files)


def spec_problems(spec: JobSpec, author: str) -> dict[str, str]:
    """What is wrong with a spec for its author, host and server, by field: site commands only
    administrators may give (deployments.commands), then deployments.jobs.spec_problems."""
    return raw_command_problems(spec, author) or jobs.spec_problems(spec)


def site_command_names(host: str) -> list[str]:
    """The site commands a job on ``host`` may name."""
    return names_for(host)


# --- templates and schedules (through deployments.templates) ------------------------------

def list_templates(user: str) -> list[Any]:
    from deployments import templates

    return templates.list_templates(user)


def create_template(user: str, name: str, spec: JobSpec, visibility: str = "private") -> Any:
    from deployments import templates

    return templates.create(user, name, spec, visibility=visibility)  # type: ignore[arg-type]


def run_template(user: str, name: str, **overrides: Any) -> UUID:
    from deployments import templates

    return templates.run(user, name, signed_in=True, **overrides)  # with the sign-in's ticket


def switch_template(user: str, name: str, visibility: str) -> None:
    from deployments import templates

    templates.switch(user, name, visibility)  # type: ignore[arg-type]


def delete_template(user: str, name: str) -> None:
    from deployments import templates

    templates.delete(user, name)


def schedules(user: str, name: str) -> list[Any]:
    from deployments import templates

    return templates.schedules(user, name)


def add_schedule(user: str, name: str, cron: str, tz: str, active: bool = True) -> Any:
    from deployments import templates

    return templates.add_schedule(user, name, cron, tz, active)


def set_schedule_active(user: str, name: str, schedule_id: UUID, active: bool) -> None:
    from deployments import templates

    templates.set_active(user, name, schedule_id, active)


def delete_schedule(user: str, name: str, schedule_id: UUID) -> None:
    from deployments import templates

    templates.delete_schedule(user, name, schedule_id)


def preview_cron(cron: str, tz: str, n: int = 5) -> tuple[str, list[datetime]]:
    """Plain words for a cron line and its next fire times; TemplateError names the problem."""
    from cron_descriptor import get_description

    from deployments import templates

    sched = templates.cron_schedule(cron, tz)  # validates, and maps presets
    return get_description(sched.cron), templates.next_dates(sched.cron, tz, n)


# --- hosts (through agent/) ------------------------------------------------------------------

def hosts(check_process: bool = False) -> list[Any]:
    """Enrolled hosts with their health; the SSH check of the process only when asked."""
    from agent import health, registry

    return [health.health(h, check_process=check_process) for h in registry.load_all().values()]


def deploy_host(viewer: str, name: str) -> Any:
    """Install or update the host's worker and start it: administrators only."""
    from agent import converge, registry

    require_admin(viewer, f"deploy {name}")
    return converge.converge(registry.get(name), api_url())


def stop_host(viewer: str, name: str) -> bool:
    """Stop the host's worker: administrators only."""
    from agent import converge, registry
    from agent.ssh import Connection

    require_admin(viewer, f"stop {name}")
    with Connection(registry.get(name)) as c:
        return converge.stop_worker(c)


# --- integration lines ----------------------------------------------------------------------

class LineRow(BaseModel):
    name: str
    owner: str | None
    mode: str
    source: str  # what it reads: a branch spec's name, or the source path
    target: str
    state: str  # "flowing", "scheduled", "blocked", "held", "gated", "paused", "up to date", "unreadable"
    detail: str  # the sentence the page shows
    change: int | None = None
    behind: int = 0
    oldest: datetime | None = None
    since: datetime | None = None
    job_id: str | None = None
    last: str | None = None  # the last source change integrated, and the target change it became
    last_at: datetime | None = None


def lines_overview(user: str) -> list[LineRow]:
    """Every line the user may see, with where it is: per line one Perforce session (what waits,
    its gate, its skips), a Prefect query for its jobs and one for its last completed job (with
    that job's record). A page of a few lines, refreshed every 10 s."""
    from deployments import lines
    from flows.integration import load_job_secret
    from flows.lines import line_status
    from flows.p4.session import P4Session

    out = []
    for li in lines.list_lines(user):
        job = li.spec.job
        mode = f"{li.spec.mode}, on '{li.spec.cron}'" if li.spec.cron else li.spec.mode
        row: dict[str, Any] = {"name": li.spec.name, "owner": li.owner, "mode": mode,
                               "source": f"branch {job.branch}" if job.branch else str(job.source),
                               "target": f"{job.client} on {job.host}" if job.branch else str(job.target)}
        row.update(_last_integrated(li.spec.name))
        if li.paused:
            out.append(LineRow(**row, state="paused", detail="paused: starts no job until resumed"))
            continue
        try:
            with P4Session(job.p4port, job.p4user, job.client, password=load_job_secret(job)) as session:
                status = line_status(session, li.spec)
        except Exception as exc:  # noqa: BLE001 - one line's trouble is shown on its row, not the page's
            out.append(LineRow(**row, state="unreadable", detail=f"cannot read its state: {exc}"))
            continue
        state = {"ready": "scheduled" if li.spec.cron else "flowing", "running": "flowing",
                 "waiting for a person": "blocked"}.get(status.state, status.state)
        detail = {"blocked": f"blocked at change {status.change} by {status.author or '?'}: waits for a person",
                  "held": f"held at change {status.change}: its job ended without integrating it; retry or skip",
                  "gated": f"gated at change {status.change}: later changes wait for the check",
                  "scheduled": f"changes up to {status.change} wait for its schedule ({li.spec.cron}, UTC)",
                  "up to date": "up to date"}.get(state, f"flowing: change {status.change}")
        out.append(LineRow(**row, state=state, detail=detail, change=status.change, behind=status.behind,
                           oldest=status.oldest, since=status.since, job_id=status.job_id))
    return out


def _last_integrated(name: str) -> dict[str, Any]:
    """Which source change the line's last completed job integrated, and as which target change."""
    from flows.runs import last_completed
    from flows.vocabulary import line_tag

    run = last_completed(line_tag(name))
    if run is None:
        return {}
    done = jobs.record(run.id)
    source = ((run.parameters or {}).get("spec") or {}).get("changelist")
    target = done.submitted_change if done else None  # a site push tool submits later, under its own number
    return {"last": f"change {source} integrated" + (f" as change {target}" if target else ""),
            "last_at": run.end_time}


def skip_change(user: str, line: str, change: int) -> None:
    from deployments import lines

    lines.skip(user, line, change)


def create_line(user: str, name: str, template: str, mode: str, gate: str, cron: str,
                visibility: str) -> dict[str, str]:
    """A line that runs the template's job change by change, as ``user`` with their stored password
    (its jobs start long after any sign-in's ticket expired), and its first step. Returns the
    problems by form field (name, template, mode, gate, cron, visibility); when there are any,
    nothing was made."""
    from pydantic import ValidationError

    from deployments import lines, templates
    from flows.lines import LineSpec, spec_problem

    try:
        t = templates.get(user, template)
    except TemplateError as exc:
        return {"template": str(exc)}
    # A template's changelist is a fixed point; a line picks each change itself.
    job = {k: v for k, v in t.spec.items() if k != "changelist"}
    job |= {"p4user": user, "password_secret": templates.stored_secret(user)}
    try:
        spec = LineSpec.model_validate({"name": name, "mode": mode, "gate": gate.strip() or None, "cron": cron,
                                        "job": job})
    except ValidationError as exc:
        return dict(_line_field(spec_problem(e)) for e in exc.errors())
    try:
        lines.create(user, spec, visibility=visibility)  # type: ignore[arg-type]
    except (TemplateError, lines.LineError) as exc:
        return dict([_line_field(str(exc))])
    if not spec.cron:  # its first step now: the watcher wakes lines only for changes submitted from here on
        lines.run(user, name)
    return {}


def _line_field(text: str) -> tuple[str, str]:
    """A line's problem (flows.lines.spec_problem, or the service's refusal) as (form field,
    message): what is not the form's own field is the template's job's."""
    head = re.split(r"[.:\[]", text, maxsplit=1)[0]
    if head in ("name", "mode", "gate", "cron", "visibility"):
        return head, text
    return "template", f"template: {text}; change the template or pick another"


def set_line_paused(user: str, name: str, paused: bool) -> None:
    from deployments import lines

    lines.set_paused(user, name, paused)


def remove_line(user: str, name: str) -> None:
    from deployments import lines

    lines.remove(user, name)
