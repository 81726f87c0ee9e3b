"""The integration stages as plain functions (no Prefect here).

Each stage takes the ``Job`` (spec, P4 session, site-command environment, the
job's pending changelist) and returns a typed record. The Prefect flow wraps each
one in a task; the benchmark and unit tests call them directly.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import P4 as _p4
from pydantic import BaseModel, Field

from .p4.errors import P4Error
from .p4.records import IntegrateResult, ResolveSummary, ShelveResult, SyncResult
from .p4.session import P4Session
from .runner import CommandResult, Redactor, SiteCommandError, expand, run_command
from .spec import FileChoice, JobSpec, Stage

TEXT_CAP = 256 * 1024


class JobError(RuntimeError):
    """A stage cannot go on; the message says why and what to do."""

    def __init__(self, stage: Stage, message: str) -> None:
        self.stage, self.message = stage, message
        super().__init__(f"{stage.value}: {message}")


@dataclass
class Job:
    spec: JobSpec
    session: P4Session
    log: Callable[[str], None]
    redact: Redactor = field(default_factory=Redactor)
    ticket: str | None = None
    root: str = ""
    change: int | None = None
    cl: int | None = None

    def env(self) -> dict[str, str]:
        """The job's Perforce environment for site commands (ticket via env, never argv)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("P4", "PREFECT_API_KEY"))}
        env.update(self.spec.env)
        env.update(P4PORT=self.spec.p4port, P4USER=self.spec.p4user, P4CLIENT=self.spec.client)
        if self.ticket:
            env["P4PASSWD"] = self.ticket
        return env

    def run(self, stage: Stage, argv: list[str]) -> CommandResult:
        values = {"change": self.change or "", "client": self.spec.client, "cl": self.cl or "",
                  "port": self.spec.p4port, "user": self.spec.p4user, "root": self.root}
        argv = expand(argv, values)
        self.log(f"$ {self.redact(' '.join(argv))}")
        return run_command(argv, cwd=self.root, env=self.env(), stage=stage.value,
                           on_line=lambda line: self.log(f"  {line}"), redact=self.redact)


class Preflight(BaseModel):
    root: str
    source_paths: list[str]


class Conflict(BaseModel):
    local_path: str
    depot_file: str
    from_file: str
    from_revs: str
    base_name: str = ""
    binary: bool = False
    truncated: bool = False
    base: str = ""
    theirs: str = ""
    yours: str = ""
    merged: str = ""
    resolve_command: str = ""


class ShelveReport(BaseModel):
    change: int
    files: int
    dropped_by_name_check: list[str] = Field(default_factory=list)


class PushReport(BaseModel):
    change: int
    submitted: int | None = None
    trial: bool = False
    via: str = "submit"


class CleanupReport(BaseModel):
    change: int | None
    reverted: list[str] = Field(default_factory=list)
    change_deleted: bool = False
    shelf_kept: bool = False
    submitted: bool = False

    def sentence(self) -> str:
        if self.change is None:
            return "nothing to clean: no files had been opened"
        if self.submitted:
            return f"nothing to clean: change {self.change} was submitted"
        parts = [f"reverted {len(self.reverted)} file(s) of change {self.change}"]
        if self.shelf_kept:
            parts.append(f"kept change {self.change}: it holds the shelved files")
        elif self.change_deleted:
            parts.append(f"deleted empty change {self.change}")
        return "; ".join(parts)


# --- stages ------------------------------------------------------------------------

def preflight(job: Job) -> Preflight:
    """Check the spec against the server before anything is touched."""
    spec, p4 = job.spec, job.session.p4
    client = p4.fetch_client(spec.client)
    if "Access" not in client and "Update" not in client:
        raise JobError(Stage.GET_LATEST_CL, f"client: workspace '{spec.client}' does not exist on "
                       f"{spec.p4port}; create it or fix the name")
    root = os.path.normpath(client["Root"])
    if not os.path.isdir(root):
        raise JobError(Stage.GET_LATEST_CL, f"client: the root '{root}' of workspace '{spec.client}' does not "
                       f"exist on this host ({spec.host}); run the job on the host that owns the workspace")
    view = _p4.Map(client.get("View", []))
    if spec.branch:
        branch = p4.fetch_branch(spec.branch)
        if "Access" not in branch and "Update" not in branch:
            raise JobError(Stage.GET_LATEST_CL, f"branch: branch spec '{spec.branch}' does not exist")
        lines = [l.split() for l in branch.get("View", []) if not l.startswith("-")]
        sources = [(l[1] if spec.reverse else l[0]).lstrip("+") for l in lines]
        targets = [(l[0] if spec.reverse else l[1]).lstrip("+") for l in lines]
    else:
        sources, targets = [spec.source], [spec.target]
    for t in targets:
        if view.translate(t) is None:
            raise JobError(Stage.GET_LATEST_CL, f"target: {t} is outside the view of workspace '{spec.client}'; "
                           "add it to the client view or pick the workspace that maps it")
    job.root = root
    return Preflight(root=root, source_paths=[s for s in sources if s])


def get_latest_cl(job: Job) -> int:
    """Check the spec against the server, then pick the source changelist."""
    pre = preflight(job)
    if job.spec.changelist:
        try:
            info = job.session.change(job.spec.changelist)
        except P4Error as exc:
            raise JobError(Stage.GET_LATEST_CL, f"changelist: {job.spec.changelist} does not exist "
                           f"({'; '.join(exc.errors)})") from None
        if info.status != "submitted":
            raise JobError(Stage.GET_LATEST_CL, f"changelist: {job.spec.changelist} is {info.status}, not "
                           "submitted; give a submitted changelist")
        job.cl = job.spec.changelist
        return job.cl
    latest = [c for c in (job.session.latest_change(p) for p in pre.source_paths) if c]
    if not latest:
        raise JobError(Stage.GET_LATEST_CL, f"source: no submitted changes under {', '.join(pre.source_paths)}")
    job.cl = max(latest)
    job.log(f"latest submitted change in the source: {job.cl}")
    return job.cl


def sync(job: Job) -> SyncResult | CommandResult:
    if job.spec.sync_command:
        return job.run(Stage.SYNC, job.spec.sync_command)
    result = job.session.sync(f"//{job.spec.client}/...")
    job.log("workspace up to date" if result.up_to_date else
            f"synced: {result.added} added, {result.updated} updated, {result.deleted} deleted")
    return result


def integrate(job: Job) -> IntegrateResult:
    spec = job.spec
    if job.change is None:  # a retry after a dropped connection reuses the change
        job.change = job.session.create_change(spec.default_description(job.cl or 0))
        job.log(f"created pending change {job.change}")
    result = job.session.integrate(change=job.change, source=spec.source, target=spec.target,
                                   branch=spec.branch, reverse=spec.reverse, at_change=job.cl)
    if result.already_integrated:
        job.log("nothing to integrate: all revisions are already integrated")
    else:
        job.log("integrated " + ", ".join(f"{n} {a}" for a, n in sorted(result.by_action.items())))
    return result


def resolve_pass_1(job: Job) -> ResolveSummary:
    summary = job.session.auto_resolve(job.spec.automerge)
    job.log(f"resolve -{job.spec.automerge}: " + (", ".join(f"{n} {h}" for h, n in sorted(summary.by_how.items()))
                                                  or "nothing resolved") + f"; {len(summary.skipped)} left")
    return summary


class _Capture(_p4.Resolver):
    """Reads base/theirs/yours/merged for each file, then skips it (changes nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, Any]] = []

    def resolve(self, md: Any) -> str:
        def read(path: str) -> bytes:
            try:
                with open(path, "rb") as fh:
                    return fh.read(TEXT_CAP + 1)
            except (OSError, TypeError):
                return b""
        self.seen.append({"your_name": md.your_name, "their_name": md.their_name, "base_name": md.base_name,
                          "base": read(md.base_path), "theirs": read(md.their_path),
                          "yours": read(md.your_path), "merged": read(md.result_path)})
        return "s"


def _text(data: bytes) -> tuple[str, bool]:
    return data[:TEXT_CAP].decode("utf-8", "replace"), len(data) > TEXT_CAP


def resolve_check(job: Job) -> list[Conflict]:
    pending = job.session.pending_resolves()
    if not pending:
        job.log("no conflicts left")
        return []
    capture = _Capture()
    job.session.run("resolve", resolver=capture)
    details = {c["your_name"]: c for c in capture.seen}
    conflicts = []
    for p in pending:
        depot = _depot_of(job, p.local_path)
        d = next((v for k, v in details.items() if k in (p.local_path, depot) or
                  k.endswith(p.local_path[len(job.root):].replace(os.sep, "/"))), {})
        binary = p.binary or any(b"\0" in d.get(k, b"") for k in ("base", "theirs", "yours"))
        texts: dict[str, str] = {}
        truncated = False
        if not binary:
            for k in ("base", "theirs", "yours", "merged"):
                texts[k], cut = _text(d.get(k, b""))
                truncated = truncated or cut
        conflicts.append(Conflict(
            local_path=p.local_path, depot_file=depot, from_file=p.from_file,
            from_revs=_revs(p.start_from_rev, p.end_from_rev),
            base_name=str(d.get("base_name") or ""), binary=binary, truncated=truncated, **texts,
            resolve_command=f"p4 -c {job.spec.client} resolve {p.local_path}"))
    job.log(f"{len(conflicts)} file(s) need a person: " + ", ".join(c.depot_file for c in conflicts))
    return conflicts


def _revs(start_exclusive: str, end: str) -> str:
    first = int(start_exclusive) + 1 if start_exclusive.isdigit() else 1
    return f"#{end}" if str(first) == end else f"#{first},#{end}"


def _depot_of(job: Job, local_path: str) -> str:
    try:
        rows = job.session.run("fstat", "-T", "depotFile", local_path)
        return rows[0]["depotFile"] if rows and isinstance(rows[0], dict) else local_path
    except P4Error:
        return local_path


def apply_choices(job: Job, choices: list[FileChoice]) -> dict[str, str]:
    pending = {p.local_path for p in job.session.pending_resolves()}
    done: dict[str, str] = {}
    for c in choices:
        path = c.path
        if path.startswith("//"):
            local = job.session.where_local(path)
            path = local or path
        if path not in pending:
            raise JobError(Stage.NEEDS_RESOLVE, f"files: '{c.path}' is not a file waiting for a resolve "
                           f"(waiting: {', '.join(sorted(pending)) or 'none'})")
        done[c.path] = job.session.resolve_file(path, c.choice, c.text)
        job.log(f"{c.path}: {c.choice} -> {done[c.path]}")
    return done


def pre_submit(job: Job) -> list[CommandResult]:
    results = [job.run(Stage.PRE_SUBMIT, hook) for hook in job.spec.pre_submit]
    if job.spec.build_command:
        results.append(job.run(Stage.PRE_SUBMIT, job.spec.build_command))
    if not results:
        job.log("no pre-submit hooks configured")
    return results


def shelve(job: Job) -> ShelveReport:
    assert job.change is not None
    result: ShelveResult = job.session.shelve(job.change)
    job.log(f"shelved {result.files} file(s) in change {job.change}")
    dropped: list[str] = []
    if job.spec.name_check:
        for n in range(1, job.spec.name_check_passes + 1):
            listed: list[str] = []
            values = {"change": job.change}
            argv = expand(job.spec.name_check, values)
            job.log(f"name check pass {n}: $ {' '.join(argv)}")
            run_command(argv, cwd=job.root, env=job.env(), stage=Stage.SHELVE.value, redact=job.redact,
                        on_line=lambda line: (job.log(f"  {line}"),
                                              listed.append(line.strip()) if line.strip().startswith("//") else None))
            if not listed:
                break
            job.session.revert(change=job.change, paths=listed)
            dropped.extend(listed)
            if not job.session.opened(job.change):
                raise JobError(Stage.SHELVE, "name check removed every file from the change; nothing to push")
            result = job.session.shelve(job.change)
            job.log(f"name check dropped {len(listed)} file(s); re-shelved {result.files}")
        else:
            raise JobError(Stage.SHELVE, f"name check still lists files after {job.spec.name_check_passes} "
                           "passes; fix the files or raise name_check_passes")
    return ShelveReport(change=job.change, files=result.files, dropped_by_name_check=dropped)


def p4push(job: Job) -> PushReport:
    assert job.change is not None
    if job.spec.trial:
        # The shelf holds the result; the workspace goes back to clean.
        reverted = job.session.revert(change=job.change).files
        job.log(f"trial run: change {job.change} stays shelved and is not submitted; "
                f"reverted its {len(reverted)} opened file(s) in the workspace")
        return PushReport(change=job.change, trial=True, via="trial")
    if job.spec.push_command:
        job.run(Stage.P4PUSH, job.spec.push_command)
        info = job.session.change(job.change) if _exists(job, job.change) else None
        submitted = job.change if info is not None and info.status == "submitted" else None
        return PushReport(change=job.change, submitted=submitted, via="push_command")
    # Helix refuses to submit a change holding a shelf: drop the shelf (its files are
    # still opened in the change), then submit the change itself.
    job.session.delete_shelf(job.change)
    result = job.session.submit(job.change)
    job.log(f"submitted change {result.change} ({result.files} files)"
            + (f", renumbered from {job.change}" if result.renamed_from else ""))
    pending, job.change = job.change, result.change
    return PushReport(change=pending, submitted=result.change)


def _exists(job: Job, change: int) -> bool:
    try:
        job.session.change(change)
        return True
    except P4Error:
        return False


def cleanup(job: Job, *, keep_shelf: bool = True) -> CleanupReport:
    """Revert the job's files and remove its empty changelist. Idempotent."""
    change = job.change
    if change is None:
        return CleanupReport(change=None)
    if not _exists(job, change):
        return CleanupReport(change=change)
    info = job.session.describe(change)
    if info.status == "submitted":
        return CleanupReport(change=change, submitted=True)
    reverted: list[str] = []
    if job.session.opened(change):
        reverted = job.session.revert(change=change).files
    shelved = job.session.describe(change, shelved=True).shelved
    if shelved and not keep_shelf:
        job.session.delete_shelf(change)
        shelved = False
    if not shelved:
        job.session.delete_change(change)
    return CleanupReport(change=change, reverted=reverted, change_deleted=not shelved, shelf_kept=shelved)


def shelve_resolved_work(job: Job) -> ShelveReport | None:
    """Before giving up on a paused job, keep what a person already resolved."""
    if job.change is None:
        return None
    unresolved = {p.local_path for p in job.session.pending_resolves()}
    opened = job.session.opened(job.change)
    keep = [o.depot_file for o in opened if (job.session.where_local(o.depot_file) or "") not in unresolved]
    if not keep:
        return None
    out = job.session.run("shelve", "-r", "-c", str(job.change), *keep)
    files = sum(1 for r in out if isinstance(r, dict) and "depotFile" in r)
    job.log(f"shelved {files} resolved file(s) in change {job.change} before stopping")
    return ShelveReport(change=job.change, files=files)


__all__ = [
    "Job", "JobError", "Preflight", "Conflict", "ShelveReport", "PushReport", "CleanupReport",
    "preflight", "get_latest_cl", "sync", "integrate", "resolve_pass_1", "resolve_check", "apply_choices",
    "pre_submit", "shelve", "p4push", "cleanup", "shelve_resolved_work", "SiteCommandError",
]
