"""Integration lines: a standing integration from a source to a target, one change at a time.

A line's position is Perforce's own: ``p4 interchanges`` lists the source changes the
target has not got yet, so a change once integrated is never listed again, whatever
restarts, duplicate triggers or overlapping runs happen. The ``line`` flow looks at the
oldest of them and starts one integration job for it (per change), or one for all of
them (batched); the job's end starts the flow again (deployments/lines.py), so the line
moves change by change, in order. A job waiting for a person holds the line at its
change: later changes wait behind it.

Exactly once: the job for a change is created with an idempotency key naming the line
and the change, so two triggers at once make one job; a change already integrated is
not listed; a job that ended without integrating its change holds the line there until
a person retries it.
"""
from __future__ import annotations

import fnmatch
import re
from datetime import datetime, timezone
from typing import Any, Literal

from prefect import flow, get_run_logger
from prefect.runtime import flow_run as current_run
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import runs
from .p4.records import ChangeInfo
from .p4.session import P4Session
from .settings import FLOW_NAME
from .spec import LINE_NAME, JobSpec
from .vocabulary import PAUSED, author_of, job_tags, line_change_tag, line_tag, owner_of

LINE_FLOW = "line"
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
Mode = Literal["per-change", "batched"]


class LineSpec(BaseModel):
    """One line: where and how its jobs run (``job``: server, user, workspace, host, branch or
    source and target, hooks), and how it moves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The line's name: lowercase letters, digits and '-'")
    job: JobSpec
    mode: Mode = Field(default="per-change", description="per-change: each source change integrated and "
                       "submitted on its own, in order; batched: one job up to the latest change")
    gate: str | None = Field(default=None, description="A Perforce key holding the last source change a check "
                             "marked good (e.g. set by CI with 'p4 key ci-good-main 12345'): the line integrates "
                             "no change past it")
    cron: str | None = Field(default=None, description="Batched lines only: move on this cron schedule (UTC, "
                             "e.g. '0 2 * * *' nightly) instead of on each submit")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not LINE_NAME.match(v):
            raise ValueError(f"name: '{v}' is not a line name; use lowercase letters, digits and '-'")
        return v

    @field_validator("gate")
    @classmethod
    def _gate(cls, v: str | None) -> str | None:
        if v is not None and not _KEY.match(v):
            raise ValueError(f"gate: '{v}' is not a Perforce key name; use letters, digits, '-', '_' and '.'")
        return v or None

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        return (v or "").strip() or None

    @model_validator(mode="after")
    def _scheduled_lines_are_batched(self) -> LineSpec:
        if self.cron and self.mode != "batched":
            raise ValueError("cron: a per-change line moves on each submit; only a batched line runs on a "
                             "schedule. Set mode to batched, or leave cron empty")
        return self

    @field_validator("job")
    @classmethod
    def _job(cls, v: JobSpec) -> JobSpec:
        if v.changelist is not None:
            raise ValueError("job.changelist: a line picks its changes itself; leave it empty")
        if v.trial:
            raise ValueError("job.trial: a line submits what it integrates; trial jobs would hold it forever")
        return v


_NAMED = re.compile(r"^[a-z_][a-z0-9_.\[\]]*: ")  # a message our validators begin with its field


def spec_problem(error: Any) -> str:
    """One pydantic error of a LineSpec as 'job.client: what is wrong', named from the top as in
    a lines file (the command line and the New line form both say it so)."""
    loc = [str(part) for part in error.get("loc", ())]
    msg = str(error["msg"]).removeprefix("Value error, ")
    if not loc or msg.startswith(".".join(loc) + "."):
        return msg
    if msg.startswith(f"{loc[-1]}:"):
        return ".".join(loc[:-1] + [msg])
    return ".".join(loc + [msg]) if _NAMED.match(msg) else f"{'.'.join(loc)}: {msg}"


SKIP_KEY = "p4integ-skip-{line}-{change}"  # a Perforce key per skipped change; its value: who skipped it


def skip_key(line: str, change: int) -> str:
    return SKIP_KEY.format(line=line, change=change)


def skipped(session: P4Session, line: str) -> dict[int, str]:
    """Source change -> who skipped it for this line (one query for all of them)."""
    prefix = skip_key(line, 0).removesuffix("0")
    return {int(k.removeprefix(prefix)): who for k, who in session.keys(prefix + "*").items()
            if k.removeprefix(prefix).isdigit()}


# In a change's description: "#p4integ skip" keeps it out of every line, "#p4integ only rel-*"
# out of every line whose name matches none of the patterns.
_MARKER = re.compile(r"#p4integ[ \t]+(skip|only)\b([^\n]*)")


def left_out_by_author(line: str, description: str) -> bool:
    """What the change's author asked for in its description, for this line."""
    for kind, rest in _MARKER.findall(description):
        if kind == "skip":
            return True
        patterns = rest.split()
        if patterns and not any(fnmatch.fnmatchcase(line, p) for p in patterns):
            return True
    return False


def pending(session: P4Session, line: LineSpec) -> list[ChangeInfo]:
    """The source changes the line has still to integrate, oldest first: what Perforce lists as not
    integrated into the target, less those a person skipped for this line and those whose
    description leaves them out of it."""
    job = line.job
    passed = skipped(session, line.name)
    return [c for c in session.interchanges(source=job.source, target=job.target, branch=job.branch,
                                            reverse=job.reverse)
            if c.change not in passed and not left_out_by_author(line.name, c.description)]


def description(line: LineSpec, change: ChangeInfo) -> str:
    """The source change's own description, prefixed with its number and author."""
    first, _, rest = change.description.strip().partition("\n")
    return (f"[{line.name}] @{change.change} by {change.user}: {first}\n{rest}".rstrip()
            + f"\n\nIntegrated from change {change.change} by p4-integration line {line.name}.")


def job_for(line: LineSpec, changes: list[ChangeInfo]) -> tuple[int, JobSpec]:
    """The next job: the oldest change alone (per change), or all up to the newest (batched)."""
    if line.mode == "per-change":
        change = changes[0]
        # The change's own revisions only (@N,@N): changes skipped before it stay out.
        return change.change, line.job.model_copy(update={"changelist": change.change, "line": line.name,
                                                          "only_changelist": True,
                                                          "description": description(line, change)})
    newest = changes[-1].change
    return newest, line.job.model_copy(update={"changelist": newest, "line": line.name})


def _state(run: Any) -> str:
    return run.state.name if run.state and run.state.name else "?"


State = Literal["up to date", "ready", "running", "waiting for a person", "held", "gated"]


class LineStatus(BaseModel):
    """Where a line is, read from Perforce (what waits) and Prefect (its jobs): what the line flow
    acts on and what the Lines page shows."""

    state: State
    message: str
    change: int | None = Field(default=None, description="The source change the line is at, or takes next")
    author: str | None = Field(default=None, description="Who submitted that change")
    behind: int = Field(default=0, description="Source changes not integrated yet (past a gate too)")
    oldest: datetime | None = Field(default=None, description="When the oldest of them was submitted")
    job_id: str | None = None
    job_name: str | None = None
    since: datetime | None = Field(default=None, description="Since when the job at the change is in its state")
    next_job: JobSpec | None = Field(default=None, description="State 'ready': the job to start")


def line_status(session: P4Session, line: LineSpec) -> LineStatus:
    waiting = pending(session, line)
    # One job at a time: while one is under way or waits for a person, the line is at its change.
    # Looked at first: Perforce may no longer list that change (an integration opened in the
    # workspace is not submitted, yet the sandbox's interchanges already counts it).
    live = runs.runs_tagged(line_tag(line.name), live=True)
    if live:
        run = live[-1]
        at = (run.parameters or {}).get("spec", {}).get("changelist")
        count = len({c.change for c in waiting} | ({at} if at else set()))
        return LineStatus(state="waiting for a person" if run.state and run.state.type.value == PAUSED else "running",
                          change=at, author=author_of(run.tags or []), job_id=str(run.id), job_name=run.name,
                          since=run.state.timestamp if run.state else None, behind=count,
                          oldest=datetime.fromtimestamp(waiting[0].time, timezone.utc) if waiting else None,
                          message=f"line {line.name}: at job {run.name} ({run.id}), {_state(run)} "
                                  f"({count} change(s) not integrated yet)")
    if not waiting:
        return LineStatus(state="up to date", message=f"line {line.name}: up to date")
    base: dict[str, Any] = {"behind": len(waiting),
                            "oldest": datetime.fromtimestamp(waiting[0].time, timezone.utc)}
    behind = f"{len(waiting)} change(s) not integrated yet"
    if line.gate:
        good = session.key(line.gate)
        passed = [c for c in waiting if c.change <= good]
        if not passed:
            return LineStatus(state="gated", change=good, **base,
                              message=f"line {line.name}: gated at change {good} (key {line.gate}): {len(waiting)} "
                                      f"change(s) wait for the check, the oldest {waiting[0].change}")
        waiting = passed
    change, spec = job_for(line, waiting)
    author = next(c.user for c in waiting if c.change == change)
    earlier = runs.runs_tagged(line_change_tag(line.name, change))
    if earlier:  # ended, yet Perforce still lists the change: it was not integrated
        last = earlier[-1]
        return LineStatus(state="held", change=change, author=author, job_id=str(last.id), job_name=last.name,
                          since=last.state.timestamp if last.state else None, **base,
                          message=f"line {line.name}: held at change {change} ({behind}): its job {last.name} "
                                  f"({last.id}) ended {_state(last)} without integrating it; start the job again, "
                                  "or skip the change")
    return LineStatus(state="ready", change=change, author=author, next_job=spec, **base,
                      message=f"line {line.name}: change {change} is next ({behind})")


@flow(name=LINE_FLOW, persist_result=False, log_prints=False)
def line(line: LineSpec) -> str:
    """Move the line one step: start the job for its next change, or say why not."""
    from prefect.deployments import run_deployment

    from .integration import load_job_secret

    logger = get_run_logger()
    job = line.job
    with P4Session(job.p4port, job.p4user, job.client, password=load_job_secret(job)) as session:
        status = line_status(session, line)
    if status.state != "ready" or status.next_job is None or status.change is None:
        (logger.warning if status.state == "held" else logger.info)(status.message)
        return status.message
    change = status.change
    run: Any = run_deployment(
        name=f"{FLOW_NAME}/{job.host}",
        parameters={"spec": status.next_job.model_dump(mode="json", exclude_defaults=True)},
        timeout=0, as_subflow=False, flow_run_name=f"{line.name}-{change}",
        tags=job_tags(job.p4user, line.name, change, author=status.author, owner=owner_of(current_run.tags or [])),
        # Two triggers at once (a duplicate event, an overlapping run) make one job.
        idempotency_key=f"{line_change_tag(line.name, change)}#1")
    said = f"line {line.name}: started job {run.name} ({run.id}) for change {change} ({status.behind} behind)"
    logger.info(said)
    return said
