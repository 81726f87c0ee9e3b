"""The integration job as a Prefect flow: one task per stage, a pause for a person.

Pause, not suspend (see docs/architecture.md): the flow process stays alive while
it waits for a person, so it keeps holding the workspace lock, a cancel reaches it
as SIGTERM and it cleans up in-process, and no stage runs twice. The price is one
worker slot per paused job, which the host pool's limit accounts for.
"""
from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run as current_run
from prefect.utilities.annotations import quote
from pydantic import Field

from . import stages as S
from .p4.errors import P4Error
from .p4.session import P4Session
from .runner import Redactor, SiteCommandError
from .spec import FileChoice, JobSpec, Stage
from .workspace_lock import workspace_lock

T = TypeVar("T")
RESUME_POLL_SECONDS = 1


class ResolveInput(RunInput):
    """What a person sends to a job paused at NEEDS_RESOLVE."""

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
    return task(fn, name=stage.value, cache_policy=NONE, persist_result=False, retries=retries,
                retry_delay_seconds=2, retry_condition_fn=_transient, log_prints=False)


# --- run state kept on the host, for the crash/cancel backstop -------------------------

def _runs_dir() -> Path:
    base = os.environ.get("P4INTEG_HOME") or os.path.join(os.path.expanduser("~"), ".p4integ")
    path = Path(base) / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save_run_state(run_id: str, spec: JobSpec, change: int | None, cleaned: bool) -> None:
    (_runs_dir() / f"{run_id}.json").write_text(json.dumps(
        {"spec": spec.model_dump(mode="json"), "change": change, "cleaned": cleaned}))


def _stale_runs(spec: JobSpec, run_id: str) -> list[tuple[Path, dict[str, Any]]]:
    """Earlier runs on this workspace that ended without cleaning (killed, host died)."""
    out = []
    for path in _runs_dir().glob("*.json"):
        if path.stem == run_id:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        s = data.get("spec") or {}
        if not data.get("cleaned") and data.get("change") and s.get("p4port") == spec.p4port \
                and s.get("client") == spec.client:
            out.append((path, data))
    return out


def _clean_leftovers(job: S.Job, run_id: str, log: Callable[[str], None]) -> None:
    """Under the workspace lock: clean what a dead earlier run left behind."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from uuid import UUID

    final = {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}
    for path, data in _stale_runs(job.spec, run_id):
        try:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(UUID(path.stem)).state
        except Exception:  # noqa: BLE001 - an unknown run is as dead as a final one
            state = None
        if state is not None and state.type not in final:
            continue
        old = S.Job(spec=job.spec, session=job.session, log=log, change=int(data["change"]))
        report = S.cleanup(old)
        log(f"cleaned what flow run {path.stem} left behind: {report.sentence()}")
        data["cleaned"] = True
        path.write_text(json.dumps(data))


def _backstop(flow: Any, flow_run: Any, state: Any) -> None:  # noqa: ARG001 - hook signature
    """on_crashed / on_cancellation: clean up when the flow process could not."""
    from prefect.logging.loggers import flow_run_logger

    path = _runs_dir() / f"{flow_run.id}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return
    if data.get("cleaned") or not data.get("change"):
        return
    logger = flow_run_logger(flow_run)
    spec = JobSpec.model_validate(data["spec"])
    try:
        with P4Session(spec.p4port, spec.p4user, spec.client, password=_load_secret(spec)) as session:
            job = S.Job(spec=spec, session=session, log=logger.info, change=int(data["change"]))
            report = S.cleanup(job)
    except Exception as exc:  # noqa: BLE001 - the next job on this workspace retries
        logger.error(f"CLEANUP after {state.name} failed ({exc}); the next job on {spec.client} will retry")
        return
    data["cleaned"] = True
    path.write_text(json.dumps(data))
    logger.info(f"CLEANUP after {state.name}: {report.sentence()}")


def _load_secret(spec: JobSpec) -> str | None:
    if not spec.password_secret:
        return None
    from prefect.blocks.system import Secret

    try:
        return str(Secret.load(spec.password_secret).get())
    except ValueError:
        raise S.JobError(Stage.GET_LATEST_CL, f"password_secret: no Prefect Secret block named "
                         f"'{spec.password_secret}'; store the user's password under that name first") from None


def _connect(spec: JobSpec, secret: str | None, log: Callable[[str], None]) -> P4Session:
    for attempt in range(1, 4):
        session = P4Session(spec.p4port, spec.p4user, spec.client, password=secret)
        try:
            return session.connect()
        except P4Error as exc:
            if not exc.transient or attempt == 3:
                raise S.JobError(Stage.GET_LATEST_CL, str(exc)) from None
            log(f"cannot reach {spec.p4port} ({exc}); retrying")
            time.sleep(2 * attempt)
    raise AssertionError("unreachable")


# --- artifacts ------------------------------------------------------------------------

def _publish_conflicts(conflicts: list[S.Conflict], run_id: str) -> None:
    rows = [c.model_dump() for c in conflicts]
    create_table_artifact(key="conflicts", table=rows,
                          description=f"Files waiting for a person in flow run {run_id}")
    lines = ["| file | from | base | binary |", "|---|---|---|---|"]
    lines += [f"| {c.depot_file} | {c.from_file}{c.from_revs} | {c.base_name or '(none)'} | "
              f"{'yes' if c.binary else 'no'} |" for c in conflicts]
    lines += ["", "Resolve on the host, then resume with `recheck`:", ""]
    lines += [f"    {c.resolve_command}" for c in conflicts]
    create_markdown_artifact(key="conflicts-summary", markdown="\n".join(lines),
                             description="Conflicts at NEEDS_RESOLVE")


def _publish_summary(summary: dict[str, Any]) -> None:
    lines = ["| item | value |", "|---|---|"]
    for k, v in summary.items():
        lines.append(f"| {k} | {v} |")
    create_markdown_artifact(key="integration-summary", markdown="\n".join(lines),
                             description="What this integration did")


# --- the flow ---------------------------------------------------------------------------

def _run_name() -> str:
    params = current_run.parameters or {}
    spec = params.get("spec") or {}
    if isinstance(spec, JobSpec):
        spec = spec.model_dump()
    what = spec.get("branch") or f"{spec.get('source')} -> {spec.get('target')}"
    return f"{spec.get('client', '?')}: {what}"


@flow(name="integrate", flow_run_name=_run_name, persist_result=False, log_prints=False,
      on_crashed=[_backstop], on_cancellation=[_backstop])
def integrate(spec: JobSpec) -> dict[str, Any]:
    logger = get_run_logger()
    redact = Redactor()
    run_id = str(current_run.id or "local")

    def log(message: str) -> None:
        logger.info(redact(message))

    def refuse(exc: S.JobError) -> None:
        logger.error(redact(f"ERROR at {exc.stage.value}: {exc.message}. CLEANUP: nothing to clean: "
                            "no files had been opened"))

    try:
        secret = _load_secret(spec)
    except S.JobError as exc:
        refuse(exc)
        raise
    redact.add(secret)
    log(f"job on host {socket.gethostname()} ({spec.host}): {spec.mode} in workspace {spec.client}")

    def waiting(holder: dict[str, str] | None, waited: float) -> None:
        who = f"flow run {holder.get('flow_run_name')} ({holder.get('flow_run_id')})" if holder else "another job"
        log(f"waiting for workspace {spec.client}: in use by {who} for {int(waited)} s")

    owner = {"flow_run_id": run_id, "flow_run_name": str(current_run.name or "")}
    with workspace_lock(spec.p4port, spec.client, owner, on_wait=waiting):
        try:
            session = _connect(spec, secret, log)
        except S.JobError as exc:
            refuse(exc)
            raise
        job = S.Job(spec=spec, session=session, log=log, redact=redact,
                    ticket=session.p4.password if secret else None)
        redact.add(job.ticket)
        _save_run_state(run_id, spec, None, cleaned=False)
        stage = Stage.GET_LATEST_CL
        summary: dict[str, Any] = {"host": socket.gethostname(), "workspace": spec.client, "mode": spec.mode}
        try:
            _clean_leftovers(job, run_id, log)
            summary["source changelist"] = _stage(Stage.GET_LATEST_CL, S.get_latest_cl)(quote(job))
            stage = Stage.SYNC
            _stage(Stage.SYNC, S.sync, retries=0 if spec.sync_command else 2)(quote(job))
            stage = Stage.INTEGRATE
            result = _stage(Stage.INTEGRATE, S.integrate, retries=0)(quote(job))
            _save_run_state(run_id, spec, job.change, cleaned=False)
            summary["pending change"] = job.change
            summary["integrated"] = ", ".join(f"{n} {a}" for a, n in sorted(result.by_action.items())) or "nothing"
            if result.already_integrated or result.total == 0:
                report = S.cleanup(job)
                log(f"DONE: nothing to integrate (all revisions already integrated); {report.sentence()}")
                summary["outcome"] = "DONE: nothing to integrate"
                _publish_summary(summary)
                _save_run_state(run_id, spec, job.change, cleaned=True)
                return {"outcome": "DONE", "nothing_to_integrate": True, **summary}
            stage = Stage.RESOLVE_PASS_1
            auto = _stage(Stage.RESOLVE_PASS_1, S.resolve_pass_1)(quote(job))
            summary["auto-resolved"] = ", ".join(f"{n} {h}" for h, n in sorted(auto.by_how.items())) or "none"
            stage = Stage.RESOLVE_CHECK
            conflicts = _stage(Stage.RESOLVE_CHECK, S.resolve_check)(quote(job))
            summary["conflicts"] = len(conflicts)
            while conflicts:
                stage = Stage.NEEDS_RESOLVE
                _publish_conflicts(conflicts, run_id)
                log(f"NEEDS_RESOLVE: {len(conflicts)} file(s) need a person; resume with 'recheck' after "
                    "resolving on the host, or with per-file choices")
                try:
                    answer = pause_flow_run(wait_for_input=ResolveInput, timeout=spec.pause_timeout,
                                            poll_interval=RESUME_POLL_SECONDS)
                except FlowPauseTimeout:
                    kept = S.shelve_resolved_work(job)
                    where = f"; resolved work shelved in change {kept.change}" if kept else ""
                    raise S.JobError(Stage.NEEDS_RESOLVE, f"nobody resumed within {spec.pause_timeout} s{where}") from None
                log(f"resumed with '{answer.action}'" + (f" for {len(answer.files)} file(s)" if answer.files else ""))
                if answer.action == "abort":
                    raise S.JobError(Stage.NEEDS_RESOLVE, "aborted by the person resolving")
                if answer.action == "apply":
                    _stage(Stage.NEEDS_RESOLVE, S.apply_choices, retries=0)(quote(job), answer.files)
                stage = Stage.RESOLVE_CHECK
                conflicts = _stage(Stage.RESOLVE_CHECK, S.resolve_check)(quote(job))
            stage = Stage.PRE_SUBMIT
            _stage(Stage.PRE_SUBMIT, S.pre_submit, retries=0)(quote(job))
            stage = Stage.SHELVE
            shelf = _stage(Stage.SHELVE, S.shelve, retries=0)(quote(job))
            summary["shelved change"] = shelf.change
            stage = Stage.P4PUSH
            push = _stage(Stage.P4PUSH, S.p4push, retries=0)(quote(job))
            summary["submitted change"] = push.submitted if push.submitted else ("trial: not submitted" if push.trial
                                                                                else "pending")
            summary["outcome"] = "DONE"
            _save_run_state(run_id, spec, job.change, cleaned=True)
            log(f"DONE: {summary['integrated']}; submitted change {push.submitted}" if push.submitted else
                f"DONE: shelved change {shelf.change} ({'trial' if push.trial else 'pushed by the site tool'})")
            _publish_summary(summary)
            return {"outcome": "DONE", **summary}
        except BaseException as exc:
            reason = _reason(stage, exc)
            report = _cleanup(job, log)
            _save_run_state(run_id, spec, job.change, cleaned=report is not None)
            summary["outcome"] = f"ERROR at {stage.value}"
            summary["reason"] = reason
            summary["cleanup"] = report.sentence() if report else "cleanup failed; see the log"
            try:
                _publish_summary(summary)
            except Exception:  # noqa: BLE001 - a cancelled run may not write artifacts
                pass
            logger.error(redact(f"ERROR at {stage.value}: {reason}. CLEANUP: {summary['cleanup']}"))
            raise
        finally:
            session.close()


def _reason(stage: Stage, exc: BaseException) -> str:
    if isinstance(exc, S.JobError):
        return exc.message
    if isinstance(exc, (SiteCommandError, P4Error)):
        text = str(exc)
        return text[len(stage.value) + 2:] if text.startswith(f"{stage.value}: ") else text
    name = type(exc).__name__
    if name == "TerminationSignal":
        return "cancelled"
    return f"{name}: {exc}"


def _cleanup(job: S.Job, log: Callable[[str], None]) -> S.CleanupReport | None:
    """CLEANUP as a task when the engine still takes tasks, in-process otherwise."""
    try:
        return _stage(Stage.CLEANUP, S.cleanup)(quote(job))
    except BaseException:  # noqa: BLE001 - cancelling: the task machinery may refuse
        try:
            report = S.cleanup(job)
            log(f"CLEANUP: {report.sentence()}")
            return report
        except Exception as exc:  # noqa: BLE001
            log(f"CLEANUP failed: {exc}")
            return None
