"""The integration job as a Prefect flow: one task per stage, and a wait for a person
that holds no process.

At NEEDS_RESOLVE the job publishes its conflicts and *suspends*: the flow process
exits, so a waiting job holds neither memory nor a worker slot, and it survives any
restart of workers, hosts or the server. When a person answers, Prefect reschedules
the run; a worker on the job's host runs the flow again from the top, which finds the
job's own pending change in Perforce by its tag line (``reservation.py``), skips what
was done, applies the answer and goes on from RESOLVE_CHECK.

The workspace stays reserved meanwhile by that same pending change: a second job on
the workspace waits, naming the holder, until the holder's run is final; then the
holder's leftovers are cleaned (``leftovers.py``). What no process is alive to clean
(a cancel or a timeout while suspended, a crash) is cleaned by the ``cleanup`` flow,
which a Prefect automation starts on the run's host (``flows/cleanup.py``).

Once a person has chosen resolves, no failure throws them away: they are submitted,
or kept in a shelved pending change named by the job's last line.
"""
from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, TypeVar

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import StateType
from prefect.exceptions import Pause, TerminationSignal
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment as current_deployment
from prefect.runtime import flow_run as current_run
from prefect.utilities.annotations import quote
from pydantic import Field, ValidationError

from . import leftovers, runs
from . import stages as S
from .checks import p4_host, trust_problem
from .usernames import foreign_secret
from .p4.errors import P4Error
from .prefect_compat import load_secret
from .p4.pathnames import unescape
from .p4.session import P4Session
from .record import RECORD_KEY, SUMMARY_KEY, JobRecord
from .reservation import JobChange, job_changes, own_change
from .runner import Redactor, SiteCommandError
from .spec import FileChoice, JobSpec, Stage
from .workspace_lock import workspace_lock
from .vocabulary import SUSPENDED

T = TypeVar("T")
# How often a job waiting for another job's workspace looks again, and tells.
HOLDER_POLL_SECONDS = 3.0
HOLDER_REPORT_SECONDS = 30.0
# A job whose workspace is held by a run that is not running (it waits for a person, or for a
# slot on the host to go on in) ends its process and is queued again: 20 s later, twice that
# each time it finds the workspace still held, at most 2 minutes (a person may take days).
HOLDER_REQUEUE_SECONDS = (20.0, 120.0)
# Submit refused because the target moved: sync, resolve and try again this often.
PUSH_ATTEMPTS = 3


class ResolveInput(RunInput):
    """What a person sends to a job waiting at NEEDS_RESOLVE."""

    action: Literal["recheck", "apply", "abort"] = Field(
        default="recheck",
        description="recheck: I resolved on the host; apply: use the per-file choices; abort: stop and clean up")
    files: list[FileChoice] = Field(default_factory=list, description="Per-file choices for 'apply'")


def _transient(task_: Any, task_run: Any, state: Any) -> bool:
    """Retry only what may pass by itself: a dropped or refused connection."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - a result we cannot read is not worth a retry
        return False
    return isinstance(exc, P4Error) and exc.transient


def _stage(stage: Stage, fn: Callable[..., T], retries: int = 2) -> Any:
    # Prefect 3.9.1's overloads type cache_policy without its NONE policy; the call is as documented.
    return task(fn, name=stage.value, cache_policy=NONE, persist_result=False, retries=retries,  # type: ignore[call-overload]
                retry_delay_seconds=2, retry_condition_fn=_transient, log_prints=False)



def load_job_secret(spec: JobSpec) -> str | None:
    if not spec.password_secret:
        return None
    problem = foreign_secret(spec.p4user, spec.password_secret)
    if problem:  # before the Secret is read or anything is touched
        raise S.JobError(Stage.GET_LATEST_CL, problem)
    try:
        return str(load_secret(spec.password_secret))
    except ValueError:
        raise S.JobError(Stage.GET_LATEST_CL, f"password_secret: no Prefect Secret block named "
                         f"'{spec.password_secret}'; store the user's password under that name first") from None


def _connect(spec: JobSpec, secret: str | None, log: Callable[[str], None],
             on_ticket: Callable[[str], None] | None = None) -> P4Session:
    """The job's session on this host: a stored password is exchanged for a ticket of this
    host (``login -p`` here), so it works wherever the job runs; a stored ticket is used as is."""
    if untrusted := trust_problem(spec):
        raise S.JobError(Stage.GET_LATEST_CL, untrusted)
    for attempt in range(1, 4):
        session = P4Session(spec.p4port, spec.p4user, spec.client, password=secret, host=p4_host(spec),
                            on_ticket=on_ticket)
        try:
            return session.connect()
        except P4Error as exc:
            if not exc.transient or attempt == 3:
                raise S.JobError(Stage.GET_LATEST_CL, str(exc)) from None
            log(f"cannot reach {spec.p4port} ({exc}); retrying")
            time.sleep(2 * attempt)
    raise AssertionError("unreachable")


def _keep_ticket(job: S.Job, redact: Redactor) -> Callable[[str], None]:
    """A ticket from logging in again: kept out of the logs, and handed to site commands."""
    def keep(ticket: str) -> None:
        redact.add(ticket)
        job.ticket = ticket
    return keep


def _refusal_cleanup(spec: JobSpec, run_id: str) -> str:
    """What a job that cannot start leaves: nothing, unless it had waited for a person."""
    try:
        waited = runs.pauses_so_far(run_id) if run_id != "local" else 0
    except Exception:  # noqa: BLE001 - the run's record is unreadable: say what is certain
        waited = 0
    if not waited:
        return "nothing to clean: no files had been opened"
    return (f"none: without a login the job's pending change and its files stay in workspace {spec.client}; "
            "the next job in that workspace cleans them up, keeping a person's resolves shelved")


# --- artifacts ------------------------------------------------------------------------

def _publish_conflicts(conflicts: list[S.Conflict], run_id: str) -> None:
    rows = [c.model_dump() for c in conflicts]
    create_table_artifact(key="conflicts", table=rows,
                          description=f"Files waiting for a person in flow run {run_id}")
    lines = ["| file | resolve | from | theirs | yours |", "|---|---|---|---|---|"]
    lines += [f"| {c.name or c.depot_file} | {c.kind} | {unescape(c.from_file)}{c.from_revs} | {_side(c, 'theirs')} | "
              f"{_side(c, 'yours')} |" for c in conflicts]
    lines += ["", "Resolve on the host, then resume with `recheck`:", ""]
    lines += [f"    {c.resolve_command}" for c in conflicts]
    create_markdown_artifact(key="conflicts-summary", markdown="\n".join(lines),
                             description="Conflicts at NEEDS_RESOLVE")


def _side(c: S.Conflict, side: str) -> str:
    """What one side did: its action for an action resolve, else its content kind."""
    if c.kind != "content":
        return (c.theirs_action if side == "theirs" else c.yours_action) or "?"
    return "binary" if c.binary else f"text (base {c.base_name or 'none'})"


def _publish_record(record: JobRecord) -> None:
    """The typed record for the front page and the command line, and the same facts for people."""
    create_table_artifact(key=RECORD_KEY, table=[record.model_dump(mode="json")],
                          description="What this integration did, as data")
    create_markdown_artifact(key=SUMMARY_KEY, markdown=record.markdown(), description="What this integration did")


# --- the flow ---------------------------------------------------------------------------

def _run_name() -> str:
    params = current_run.parameters or {}
    spec = params.get("spec") or {}
    if isinstance(spec, JobSpec):
        spec = spec.model_dump()
    what = spec.get("branch") or f"{spec.get('source')} -> {spec.get('target')}"
    if spec.get("line"):  # one change of a line: which, where people look first
        return f"line {spec['line']} @{spec.get('changelist')}: {spec.get('client', '?')}: {what}"
    return f"{spec.get('client', '?')}: {what}"


@flow(name="integrate", flow_run_name=_run_name, persist_result=False, log_prints=False)
def integrate(spec: JobSpec) -> dict[str, Any]:
    logger = get_run_logger()
    redact = Redactor()
    run_id = str(current_run.id or "local")

    def log(message: str) -> None:
        logger.info(redact(message))

    def refuse(exc: S.JobError) -> None:
        logger.error(redact(f"ERROR at {exc.stage.value}: {exc.message}. CLEANUP: {_refusal_cleanup(spec, run_id)}"))

    try:
        secret = load_job_secret(spec)
        redact.add(secret)
        log(f"job on host {socket.gethostname()} ({spec.host}): {spec.mode} in workspace {spec.client}")
        session = _connect(spec, secret, log, on_ticket=redact.add)
    except S.JobError as exc:
        refuse(exc)
        raise
    job = S.Job(spec=spec, session=session, log=log, redact=redact, run_id=run_id,
                ticket=session.p4.password if secret else None)
    redact.add(job.ticket)
    session.on_ticket = _keep_ticket(job, redact)
    owner = {"flow_run_id": run_id, "flow_run_name": str(current_run.name or "")}
    try:
        waited_since, next_report = time.monotonic(), 0.0
        while True:
            with workspace_lock(spec.p4port, spec.client, owner, on_wait=_lock_waiter(spec, log)):
                holder = _settle(job, log, refuse)
                if holder is None:
                    return _Job(job, logger, redact).run()
            # Another run holds the workspace: wait without the lock, so that run can come
            # back and finish.
            waited = time.monotonic() - waited_since
            kind, _ = runs.read_state(holder.run_id)
            if kind != StateType.RUNNING and current_deployment.id:
                # It waits for a person (maybe for days), or for a slot on this host to go on in:
                # waiting here would hold a slot it may need. With as many such waiters as the
                # host has slots, nothing would run there again.
                first, most = HOLDER_REQUEUE_SECONDS
                delay = min(most, first * 2 ** max(0, int(current_run.run_count or 1) - 1))
                later = datetime.now(timezone.utc) + timedelta(seconds=delay)
                state = runs.queue_again(run_id, later, f"waiting for workspace {spec.client}, held by flow run "
                                         f"{holder.run_id}")
                if state is not None and state.type == StateType.SCHEDULED:
                    log(f"{_holder_sentence(spec, holder, waited)}; leaving this host's slot free: "
                        f"queued again for {later:%H:%M:%S} UTC")
                    raise Pause(state=state)  # as suspend_flow_run ends its process: the engine exits cleanly
            if waited >= next_report:
                log(_holder_sentence(spec, holder, waited))
                next_report = waited + HOLDER_REPORT_SECONDS
            time.sleep(HOLDER_POLL_SECONDS)
    finally:
        session.close()


def _lock_waiter(spec: JobSpec, log: Callable[[str], None]) -> Callable[[dict[str, str] | None, float], None]:
    def waiting(holder: dict[str, str] | None, waited: float) -> None:
        who = f"flow run {holder.get('flow_run_name')} ({holder.get('flow_run_id')})" if holder else "another job"
        log(f"waiting for workspace {spec.client}: in use by {who} for {int(waited)} s")
    return waiting


def _holder_sentence(spec: JobSpec, holder: JobChange, waited: float) -> str:
    _, state = runs.read_state(holder.run_id)
    what = "waiting for a person" if state == SUSPENDED else state.lower()
    return (f"waiting for workspace {spec.client}: flow run {holder.run_id} holds it with pending change "
            f"{holder.change} ({what}) for {int(waited)} s; this job starts when that run ends")


def _settle(job: S.Job, log: Callable[[str], None], refuse: Callable[[S.JobError], None]) -> JobChange | None:
    try:
        return leftovers.settle(job, log)
    except S.JobError as err:  # the workspace holds a person's unfinished resolves
        refuse(err)
        raise
    except P4Error as exc:
        failed = S.JobError(Stage.GET_LATEST_CL, f"cannot check workspace {job.spec.client} for earlier jobs: {exc}")
        refuse(failed)
        raise failed from None


class _Job:
    """One start of the job's flow run: fresh, or resumed after a suspension."""

    def __init__(self, job: S.Job, logger: Any, redact: Redactor) -> None:
        self.job, self.logger, self.redact = job, logger, redact
        self.stage = Stage.GET_LATEST_CL
        self.person = False  # has a person chosen resolves? then their work is never thrown away
        self.record = JobRecord(host=socket.gethostname(), workspace=job.spec.client, mode=job.spec.mode)

    def step(self, stage: Stage, fn: Callable[..., T], *args: Any, retries: int = 2) -> T:
        self.stage = stage
        return _stage(stage, fn, retries=retries)(quote(self.job), *args)

    def run(self) -> dict[str, Any]:
        job = self.job
        try:
            pauses = runs.pauses_so_far(job.run_id)
            # Known before anything can fail on Perforce's side (a workspace or branch spec
            # changed while the job waited): a failure from here on keeps the person's work.
            self.person = bool(pauses) and runs.person_chose(job.run_id)
            mine = own_change(job_changes(job.session, job.spec.client), job.run_id)
            if mine is None and pauses:
                raise S.JobError(Stage.NEEDS_RESOLVE, "the job's pending change is gone from the workspace "
                                 "(reverted or deleted by hand while it waited); start the job again")
            if mine is None:
                if self.start() is False:
                    return self.done_nothing()
            else:
                self.resume(mine, pauses)
            return self.finish(pauses)
        except Pause:
            raise  # suspended: the process ends here, the workspace stays reserved by the change
        except BaseException as exc:
            self.fail(exc)
            raise

    # --- the first start ------------------------------------------------------------
    def start(self) -> bool:
        job = self.job
        self.record.source_changelist = self.step(Stage.GET_LATEST_CL, S.get_latest_cl)
        self.step(Stage.SYNC, S.sync, retries=0 if job.spec.sync_command else 2)
        result = self.step(Stage.INTEGRATE, S.integrate, retries=0)
        self.record.pending_change = job.change
        self.record.integrated = ", ".join(f"{n} {a}" for a, n in sorted(result.by_action.items())) or "nothing"
        if result.already_integrated or result.total == 0:
            _check_nothing_is_pending(job)
            return False
        auto = self.step(Stage.RESOLVE_PASS_1, S.resolve_pass_1)
        self.record.auto_resolved = ", ".join(f"{n} {h}" for h, n in sorted(auto.by_how.items())) or "none"
        return True

    def done_nothing(self) -> dict[str, Any]:
        report = S.cleanup(self.job)
        self.job.log(f"DONE: nothing to integrate (all revisions already integrated); {report.sentence()}")
        self.record.outcome = "NOTHING_TO_INTEGRATE"
        _publish_record(self.record)
        return self.record.model_dump(mode="json")

    # --- a start after a person answered --------------------------------------------
    def resume(self, mine: JobChange, pauses: int) -> None:
        job = self.job
        job.change, job.cl = mine.change, mine.cl
        self.stage = Stage.NEEDS_RESOLVE
        S.preflight(job)
        self.record.source_changelist, self.record.pending_change = mine.cl, mine.change
        raw = runs.answer(job.run_id, pauses)
        job.log(f"resumed: going on with pending change {mine.change} after wait {pauses} for a person")
        try:
            answer = ResolveInput.model_validate(raw if raw is not None else {})
        except ValidationError as exc:
            job.log("the answer was refused, nothing was applied: " + _validation_text(exc)
                    + "; still waiting for a person")
            return
        job.log(f"answer: '{answer.action}'" + (f" for {len(answer.files)} file(s)" if answer.files else ""))
        if answer.action == "abort":
            self.person = False  # the person chose to throw the work away
            raise S.JobError(Stage.NEEDS_RESOLVE, "aborted by the person resolving")
        if answer.action == "apply":
            conflicts = self.step(Stage.RESOLVE_CHECK, S.resolve_check)
            problems = S.check_choices(answer.files, conflicts)
            if problems:
                job.log("the answer was refused, nothing was applied: " + "; ".join(problems)
                        + "; still waiting for a person")
                return
            self.step(Stage.NEEDS_RESOLVE, S.apply_choices, answer.files, retries=0)

    # --- from RESOLVE_CHECK to DONE -------------------------------------------------
    def finish(self, pauses: int) -> dict[str, Any]:
        job = self.job
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            conflicts = self.step(Stage.RESOLVE_CHECK, S.resolve_check)
            self.record.conflicts = len(conflicts)
            if conflicts:
                self.wait_for_person(conflicts, pauses + 1)
            self.step(Stage.PRE_SUBMIT, S.pre_submit, retries=0)
            shelf = self.step(Stage.SHELVE, S.shelve, retries=0)
            self.record.shelved_change = shelf.change
            try:
                push = self.step(Stage.P4PUSH, S.p4push, retries=0)
            except S.TargetMoved as moved:
                if attempt == PUSH_ATTEMPTS:
                    raise
                job.log(f"{moved.message}; syncing and resolving again (attempt {attempt + 1} of {PUSH_ATTEMPTS})")
                self.step(Stage.SYNC, S.sync, retries=0)
                self.step(Stage.RESOLVE_PASS_1, S.resolve_pass_1)
                continue
            self.record.submitted_change, self.record.trial = push.submitted or None, push.trial
            self.record.outcome = "DONE"
            job.log(f"DONE: {self.record.integrated or 'integrated'}; submitted change {push.submitted}"
                    if push.submitted else
                    f"DONE: shelved change {shelf.change} ({'trial' if push.trial else 'pushed by the site tool'})")
            _publish_record(self.record)
            return self.record.model_dump(mode="json")
        raise AssertionError("unreachable")

    def wait_for_person(self, conflicts: list[S.Conflict], n: int) -> None:
        """Publish the conflicts and suspend; this process ends here (Pause)."""
        job = self.job
        self.stage = Stage.NEEDS_RESOLVE
        _publish_conflicts(conflicts, job.run_id)
        job.log(f"NEEDS_RESOLVE: {len(conflicts)} file(s) need a person; the job waits without a process, "
                f"holding workspace {job.spec.client} with pending change {job.change}; resume with 'recheck' "
                "after resolving on the host, or with per-file choices")
        suspend_flow_run(wait_for_input=ResolveInput, timeout=job.spec.pause_timeout, key=runs.pause_key(n))
        # Only reached if Prefect says this wait was already answered, which a fresh
        # key never is: treat it as a bug rather than go on without the person.
        raise S.JobError(Stage.NEEDS_RESOLVE, f"wait {n} was answered before it began")

    # --- failures -------------------------------------------------------------------
    def fail(self, exc: BaseException) -> None:
        job = self.job
        reason = _reason(self.stage, exc)
        report = _cleanup(job, self.person, job.log)
        r = self.record
        r.outcome, r.failed_stage, r.reason = "ERROR", self.stage, reason
        r.cleanup = report.sentence() if report else "cleanup failed; see the log"
        try:
            _publish_record(r)
        except Exception:  # noqa: BLE001, S110 - a cancelled run may not write artifacts
            pass
        self.logger.error(self.redact(f"ERROR at {self.stage.value}: {reason}. CLEANUP: {r.cleanup}"))


def _check_nothing_is_pending(job: S.Job) -> None:
    """'Nothing to integrate' only when no other pending change in the workspace holds
    the target's files: Perforce counts pending integrations as integrated."""
    held: dict[str, list[str]] = {}
    for row in job.session.run("opened", "-C", job.spec.client, *job.targets):
        if isinstance(row, dict) and str(row.get("change")) != str(job.change):
            held.setdefault(str(row.get("change")), []).append(str(row.get("depotFile")))
    if held:
        which = "; ".join(f"change {c}: {', '.join(files[:3])}{' ...' if len(files) > 3 else ''}"
                          for c, files in sorted(held.items()))
        raise S.JobError(Stage.INTEGRATE, f"nothing was integrated, because target files are already opened in "
                         f"other pending changes of workspace {job.spec.client} ({which}); submit or revert "
                         "them, then run the job again")


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg'].removeprefix('Value error, ')}"
                     for e in exc.errors())


def _reason(stage: Stage, exc: BaseException) -> str:
    if isinstance(exc, S.JobError):
        return exc.message
    if isinstance(exc, (SiteCommandError, P4Error)):
        text = str(exc)
        return text[len(stage.value) + 2:] if text.startswith(f"{stage.value}: ") else text
    if isinstance(exc, TerminationSignal):  # the worker's SIGTERM on cancel
        return "cancelled"
    return f"{type(exc).__name__}: {exc}"


def _cleanup(job: S.Job, keep_work: bool, log: Callable[[str], None]) -> S.CleanupReport | None:
    """CLEANUP as a task when the engine still takes tasks, in-process otherwise."""
    try:
        return _stage(Stage.CLEANUP, S.cleanup)(quote(job), keep_work=keep_work)
    except BaseException:  # noqa: BLE001 - cancelling: the task machinery may refuse
        try:
            report = S.cleanup(job, keep_work=keep_work)
            log(f"CLEANUP: {report.sentence()}")
            return report
        except Exception as exc:  # noqa: BLE001
            log(f"CLEANUP failed: {exc}")
            return None
