"""The integration stages as plain functions (no Prefect here).

Each stage takes the ``Job`` (spec, P4 session, site-command environment, the
job's pending changelist) and returns a typed record. The Prefect flow wraps each
one in a task; the benchmark and unit tests call them directly.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import P4 as _p4
from pydantic import BaseModel, Field

from .checks import client_problems, p4_host, server_problems, site_commands_exist, workspace_root
from .p4.errors import P4Error
from .p4.integ_messages import INTEGRATE_OPTIONS, accepted_by
from .p4.pathnames import as_argument, escape, unescape
from .p4.textcodec import encoding_of, looks_binary
from .p4.records import IntegrateResult, RefusedFile, ResolveSummary, ShelveResult, SyncResult
from . import reservation
from .errors import P4IntegError
from .p4.resolvers import action_kind
from .p4.session import P4Session
from .runner import CommandResult, Redactor, SiteCommandError, expand, run_command
from .site_commands import JobCommands, Resolved, UnknownCommand, minimal_env, resolve
from .spec import ACTION_KINDS, FileChoice, JobSpec, Stage, conflict_marker_lines

TEXT_CAP = 256 * 1024


class JobError(P4IntegError, RuntimeError):
    """A stage cannot go on; the message says why and what to do."""

    def __init__(self, stage: Stage, message: str) -> None:
        self.stage, self.message = stage, message
        super().__init__(f"{stage.value}: {message}")


class TargetMoved(JobError):
    """Submit refused because the target changed while the job waited: sync and resolve again."""


# Helix's submit refusals that mean "someone submitted to these files meanwhile"
# (MsgDm::OpenMustResolve, MsgServer::ResolveOrRevert).
_OUT_OF_DATE = ("before submitting", "out of date files must be resolved or reverted")


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
    run_id: str = "local"
    targets: list[str] = field(default_factory=list)

    _commands: JobCommands | None = field(default=None, repr=False)

    @property
    def commands(self) -> JobCommands:
        """The spec's site commands, names looked up in the administrators' list when first needed
        (also when a resumed run skips the stages that looked before)."""
        if self._commands is None:
            try:
                self._commands = resolve(self.spec)
            except UnknownCommand as exc:
                raise JobError(Stage.GET_LATEST_CL, str(exc)) from None
        return self._commands

    def env(self, command: Resolved | None = None) -> dict[str, str]:
        """A site command's environment: minimal, with the job's ticket via env, never argv."""
        return minimal_env(self.spec, self.ticket, command.env if command else {})

    def run(self, stage: Stage, command: Resolved) -> CommandResult:
        values = {"change": self.change or "", "client": self.spec.client, "cl": self.cl or "",
                  "port": self.spec.p4port, "user": self.spec.p4user, "root": self.root}
        argv = expand(command.argv, values)
        self.log(f"$ {self.redact(' '.join(argv))}" + (f"   ({command.name})" if command.name else ""))
        return run_command(argv, cwd=self.root, env=self.env(command), stage=stage.value,
                           on_line=lambda line: self.log(f"  {line}"), redact=self.redact)


class Preflight(BaseModel):
    root: str
    source_paths: list[str]


class Conflict(BaseModel):
    """One pending resolve a person decides: a file's content (four texts), or one of its
    action resolves (``kind`` filetype/move/delete/branch: both sides' actions, no texts)."""

    local_path: str
    depot_file: str
    from_file: str
    from_revs: str
    kind: str = "content"
    theirs_action: str = ""
    yours_action: str = ""
    merge_action: str = ""
    base_name: str = ""
    binary: bool = False
    truncated: bool = False
    base: str = ""
    theirs: str = ""
    yours: str = ""
    merged: str = ""
    resolve_command: str = ""
    name: str = ""  # depot_file as people read it: Helix's %40 %23 %25 %2A unescaped
    fold_case: bool = False  # the server compares file names case-insensitively


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
    kept_files: int = 0
    left_opened: list[str] = Field(default_factory=list)
    client: str = ""

    def sentence(self) -> str:
        if self.change is None:
            return "nothing to clean: no files had been opened"
        if self.submitted:
            return f"nothing to clean: change {self.change} was submitted"
        parts = [f"reverted {len(self.reverted)} file(s) of change {self.change}"]
        if self.kept_files:
            parts.append(f"the resolved work ({self.kept_files} file(s)) is kept in shelved change {self.change}: "
                         f"'p4 -c {self.client} unshelve -s {self.change} -c {self.change}' brings it back, "
                         "then resolve what is left and submit")
        elif self.shelf_kept:
            parts.append(f"kept change {self.change}: it holds the shelved files")
        elif self.change_deleted:
            parts.append(f"deleted empty change {self.change}")
        if self.left_opened:
            parts.append(f"{len(self.left_opened)} file(s) a person partly resolved stay opened in change "
                         f"{self.change}, as they were ({', '.join(unescape(f) for f in self.left_opened)}): "
                         "Helix shelves no file with a resolve still pending; finish with "
                         f"'p4 -c {self.client} resolve -c {self.change}', then submit or shelve the change")
        return "; ".join(parts)


# --- stages ------------------------------------------------------------------------

def preflight(job: Job) -> Preflight:
    """Check the spec against the server before anything is touched."""
    spec, p4 = job.spec, job.session.p4
    client = p4.fetch_client(spec.client)
    if "Access" not in client and "Update" not in client:
        raise JobError(Stage.GET_LATEST_CL, f"client: workspace '{spec.client}' does not exist on "
                       f"{spec.p4port}; create it or fix the name")
    if problems := client_problems(client, spec, p4_host(spec)):
        raise JobError(Stage.GET_LATEST_CL, "; ".join(problems.values()))
    root = workspace_root(client) or ""
    p4.cwd = root  # Helix picks the root among Root/AltRoots by the current directory
    fold = _case_insensitive(job)
    view = _p4.Map([l.lower() for l in client.get("View", [])] if fold else client.get("View", []))
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
        if view.translate(t.lower() if fold else t) is None:
            raise JobError(Stage.GET_LATEST_CL, f"target: {t} is outside the view of workspace '{spec.client}'; "
                           "add it to the client view or pick the workspace that maps it")
    if problems := {**server_problems(job.session, spec), **site_commands_exist(spec, job.commands, root, job.env())}:
        raise JobError(Stage.GET_LATEST_CL, "; ".join(problems.values()))
    job.root = root
    job.targets = [t for t in targets if t]
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
    if job.commands.sync_command:
        return job.run(Stage.SYNC, job.commands.sync_command)
    result = job.session.sync(f"//{job.spec.client}/...")
    job.log("workspace up to date" if result.up_to_date else
            f"synced: {result.added} added, {result.updated} updated, {result.deleted} deleted")
    return result


def integrate(job: Job) -> IntegrateResult:
    spec = job.spec
    if job.change is None:  # a retry after a dropped connection reuses the change
        # The tag line is the job's record in Perforce: a resumed run finds its change by it.
        job.change = job.session.create_change(
            reservation.with_tag(spec.default_description(job.cl or 0), job.run_id, job.cl or 0))
        job.log(f"created pending change {job.change}")
    result = job.session.integrate(change=job.change, source=spec.source, target=spec.target,
                                   branch=spec.branch, reverse=spec.reverse, at_change=job.cl,
                                   from_change=job.cl if spec.only_changelist else None,
                                   extra=spec.integrate_options)
    if problems := integrate_problems(result, spec.integrate_options):
        # Before anything is resolved or submitted: CLEANUP reverts what this integrate opened.
        raise JobError(Stage.INTEGRATE, problems)
    if result.already_integrated:
        job.log("nothing to integrate: all revisions are already integrated")
    else:
        job.log("integrated " + ", ".join(f"{n} {a}" for a, n in sorted(result.by_action.items())))
    return result


def integrate_problems(result: IntegrateResult, chosen: Sequence[str]) -> str:
    """Why the job cannot go on after integrate: each refused file with Perforce's reason and
    the option that would accept it, each message not understood quoted ('' = go on)."""
    parts = []
    if result.refused:
        lines = [_refusal_line(r, set(chosen)) for r in result.refused]
        parts.append(f"Perforce refused to integrate {len(lines)} file(s), nothing was submitted: "
                     + "; ".join(lines))
    if result.unknown:
        parts.append("integrate said what the job does not understand, so it stopped: "
                     + "; ".join(f"'{u}'" for u in result.unknown))
    if not parts and not result.total and not result.already_integrated:
        parts.append("integrate opened no files and did not say all revisions are already integrated"
                     + (f" (it said: {'; '.join(repr(m) for m in result.messages)})" if result.messages else ""))
    return ". ".join(parts)


def _refusal_line(r: RefusedFile, chosen: set[str]) -> str:
    line = f"{r.depot_file or 'the command'}: '{r.reason}' ({r.message.split('::')[-1]})"
    if r.option and accepted_by(r.option, chosen):
        return f"{line}; Perforce refused it although integrate_options has '{r.option}'"
    if r.option:
        also = " (or -d)" if r.option in ("-Ds", "-Dt") else ""
        meaning = INTEGRATE_OPTIONS.get(r.option, "")  # type: ignore[call-overload]
        return (f"{line}; add '{r.option}'{also} to integrate_options to accept it"
                + (f" ({meaning})" if meaning else ""))
    return f"{line}; {r.fix}" if r.fix else line


def resolve_pass_1(job: Job) -> ResolveSummary:
    summary = job.session.auto_resolve(job.spec.automerge, change=job.change)
    job.log(f"resolve -{job.spec.automerge} -c {job.change}: "
            + (", ".join(f"{n} {h}" for h, n in sorted(summary.by_how.items())) or "nothing resolved")
            + f"; {len(set(summary.skipped))} file(s) left")
    if summary.actions_left:
        job.log(f"{len(summary.actions_left)} action resolve(s) left for a person: " + ", ".join(summary.actions_left))
    if summary.actions_accepted:
        job.log("took action resolve(s) where only one side changed: " + ", ".join(summary.actions_accepted))
    return summary


class _Capture(_p4.Resolver):
    """Reads base/theirs/yours/merged for each file, then skips it (changes nothing).
    Action resolves are read and skipped too: P4Python's default ``actionResolve``
    would accept them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, Any]] = []
        self.actions: list[dict[str, str]] = []

    def actionResolve(self, md: Any) -> str:  # P4Python's name
        info = getattr(md, "info", None) or {}
        self.actions.append({"client_file": str(info.get("clientFile", "")), "kind": action_kind(md),
                             "theirs_action": str(md.their_action or ""), "yours_action": str(md.yours_action or ""),
                             "merge_action": str(md.merge_action or "")})
        return "s"

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
    """A merge file for a person, decoded as the workspace stores it (UTF-16 with its
    mark for a ``utf16`` file, UTF-8 otherwise)."""
    return encoding_of(data).decode(data[:TEXT_CAP]), len(data) > TEXT_CAP


def resolve_check(job: Job) -> list[Conflict]:
    pending = job.session.pending_resolves(change=job.change)
    if not pending:
        job.log("no conflicts left")
        return []
    capture = _Capture()
    job.session.resolve_with(capture, change=job.change)
    details = {c["your_name"]: c for c in capture.seen}
    command = f"p4 -c {job.spec.client} resolve" + (f" -c {job.change}" if job.change is not None else "")
    conflicts = []
    fold = _case_insensitive(job)
    for p in pending:
        depot = _depot_of(job, p.local_path)
        hint = f"{command} {shlex.quote(escape(p.local_path))}"
        if p.is_action:
            a = next((x for x in capture.actions if x["kind"] == p.resolve_type
                      and _same_file(x["client_file"], p.local_path)), {})
            conflicts.append(Conflict(
                local_path=p.local_path, depot_file=depot, from_file=p.from_file,
                from_revs=_revs(p.start_from_rev, p.end_from_rev) if p.end_from_rev else "", kind=p.resolve_type,
                theirs_action=a.get("theirs_action", ""), yours_action=a.get("yours_action", ""),
                merge_action=a.get("merge_action", ""), resolve_command=hint, name=unescape(depot), fold_case=fold))
            continue
        # Merge data names the file in client syntax, escaped; the local path is the name on disk.
        tail = escape(p.local_path[len(job.root):].replace(os.sep, "/"))
        d = next((v for k, v in details.items() if k in (p.local_path, depot) or k.endswith(tail)), {})
        binary = p.binary or any(looks_binary(d.get(k, b"")) for k in ("base", "theirs", "yours"))
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
            resolve_command=hint, name=unescape(depot), fold_case=fold))
    job.log(f"{len(conflicts)} resolve(s) need a person: " + ", ".join(
        c.name + ("" if c.kind == "content" else f" ({c.kind}: theirs {c.theirs_action or '?'}, "
                  f"yours {c.yours_action or '?'})") for c in conflicts))
    return conflicts


def _same_file(a: str, b: str) -> bool:
    return bool(a) and os.path.normpath(a) == os.path.normpath(b)


def _revs(start_exclusive: str, end: str) -> str:
    first = int(start_exclusive) + 1 if start_exclusive.isdigit() else 1
    return f"#{end}" if str(first) == end else f"#{first},#{end}"


def _depot_of(job: Job, local_path: str) -> str:
    try:
        rows = job.session.run("fstat", "-T", "depotFile", escape(local_path))
        return rows[0]["depotFile"] if rows and isinstance(rows[0], dict) else local_path
    except P4Error:
        return local_path


def check_choices(choices: list[FileChoice], conflicts: list[Conflict]) -> list[str]:
    """Every reason the person's answer cannot be applied as a whole (empty: apply it).

    Checked against what Perforce says is waiting now, before any file is touched, so
    one bad entry never leaves the answer half applied."""
    if not choices:
        return ["files: the answer lists no files, so nothing was applied; give a choice per file, "
                "or resume with 'recheck' after resolving on the host"]
    key = _path_key(any(c.fold_case for c in conflicts))
    by_path: dict[tuple[str, str], Conflict] = {}
    for c in conflicts:
        # A person may name the file as Helix prints it (escaped) or as it reads (c.name).
        for path in (c.depot_file, c.local_path, c.name or c.depot_file):
            by_path[key(path), c.kind] = c
    problems, seen = [], set()
    for ch in choices:
        waiting = by_path.get((key(ch.path), ch.kind))
        if waiting is None:
            others = sorted({x.kind for x in conflicts if ch.path in (x.depot_file, x.local_path)})
            if others:
                problems.append(f"files: {ch.path} has no {ch.kind} resolve waiting, only {', '.join(others)}; "
                                "give that kind with the choice (an action resolve takes theirs or yours)")
            else:
                problems.append(f"files: '{ch.path}' is not a file waiting for a resolve (waiting: "
                                f"{', '.join(_named(x) for x in conflicts) or 'none'})")
            continue
        if (waiting.depot_file, waiting.kind) in seen:
            problems.append(f"files: {_named(waiting)} is listed twice; give one choice per file and resolve")
        seen.add((waiting.depot_file, waiting.kind))
        if waiting.kind in ACTION_KINDS and ch.choice not in ("theirs", "yours"):
            problems.append(f"files: the {waiting.kind} resolve of {waiting.depot_file} takes theirs or yours, "
                            f"not '{ch.choice}'")
            continue
        if ch.choice == "merged" and (waiting.binary or conflict_marker_lines(waiting.merged)):
            problems.append(f"files: {waiting.depot_file} cannot take 'merged': the merge still has conflicts; "
                            "choose theirs or yours, or send the edited result")
        if ch.choice == "edited" and waiting.binary:
            problems.append(f"files: {waiting.depot_file} is binary; choose theirs or yours")
    return problems


def _named(c: Conflict) -> str:
    return c.depot_file if c.kind == "content" else f"{c.depot_file} ({c.kind})"


# A person's choices are applied content first and moves last: a move renames the file,
# so every other resolve of it is done while it still has the name it was listed by.
_APPLY_ORDER = {"content": 0, "filetype": 1, "delete": 2, "branch": 3, "move": 4}


def apply_choices(job: Job, choices: list[FileChoice]) -> dict[str, str]:
    """Apply each choice to its own resolve of its file, in the job's change only."""
    key = _path_key(_case_insensitive(job))
    pending = {(key(p.local_path), p.resolve_type): p.local_path
               for p in job.session.pending_resolves(change=job.change)}
    done: dict[str, str] = {}
    for c in sorted(choices, key=lambda ch: _APPLY_ORDER.get(ch.kind, 9)):
        path = c.path
        if path.startswith("//"):
            local = job.session.where_local(as_argument(path))
            path = local or path
        if (key(path), c.kind) not in pending:
            waiting = sorted(f"{local} ({kind})" for (_, kind), local in pending.items())
            raise JobError(Stage.NEEDS_RESOLVE, f"files: '{c.path}' has no {c.kind} resolve waiting "
                           f"(waiting: {', '.join(waiting) or 'none'})")
        label = c.path if c.kind == "content" else f"{c.path} ({c.kind})"
        # Helix reads '@ # % *' in an argument as syntax: the name on disk goes back escaped.
        done[label] = job.session.resolve_file(escape(pending[key(path), c.kind]), c.choice, c.text, kind=c.kind,
                                               change=job.change)
        job.log(f"{label}: {c.choice} -> {done[label]}")
    return done


def _case_insensitive(job: Job) -> bool:
    """Whether the server compares file names case-insensitively ('p4 info' caseHandling)."""
    return bool(job.session.p4.server_case_insensitive)


def _path_key(fold: bool) -> Callable[[str], str]:
    return str.lower if fold else str


def pre_submit(job: Job) -> list[CommandResult]:
    results = [job.run(Stage.PRE_SUBMIT, hook) for hook in job.commands.pre_submit]
    if job.commands.build_command:
        results.append(job.run(Stage.PRE_SUBMIT, job.commands.build_command))
    if not results:
        job.log("no pre-submit hooks configured")
    return results


def shelve(job: Job) -> ShelveReport:
    assert job.change is not None
    result: ShelveResult = job.session.shelve(job.change)
    job.log(f"shelved {result.files} file(s) in change {job.change}")
    dropped: list[str] = []
    if check := job.commands.name_check:
        for n in range(1, job.spec.name_check_passes + 1):
            listed: list[str] = []
            values = {"change": job.change}
            argv = expand(check.argv, values)
            job.log(f"name check pass {n}: $ {' '.join(argv)}")

            def on_line(line: str, listed: list[str] = listed) -> None:
                job.log(f"  {line}")
                if line.strip().startswith("//"):  # a depot path: a file the check wants out of the shelf
                    listed.append(line.strip())

            run_command(argv, cwd=job.root, env=job.env(check), stage=Stage.SHELVE.value, redact=job.redact,
                        on_line=on_line)
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
    if job.commands.push_command:
        job.run(Stage.P4PUSH, job.commands.push_command)
        info = job.session.change(job.change) if _exists(job, job.change) else None
        submitted = job.change if info is not None and info.status == "submitted" else None
        return PushReport(change=job.change, submitted=submitted, via="push_command")
    # Helix refuses to submit a change holding a shelf: drop the shelf (its files are
    # still opened in the change), then submit the change itself.
    job.session.delete_shelf(job.change)
    try:
        result = job.session.submit(job.change)
    except P4Error as exc:
        if any(m in e.lower() for e in exc.errors for m in _OUT_OF_DATE):
            raise TargetMoved(Stage.P4PUSH, "the target changed while the job waited: "
                              + "; ".join(exc.errors)) from None
        raise
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


def cleanup(job: Job, *, keep_work: bool = False) -> CleanupReport:
    """Leave the workspace clean: revert the job's files, remove its change unless it holds
    a shelf. With ``keep_work`` (a person chose resolves) the resolved files are shelved in
    the change first, so nothing a person decided is lost. Idempotent."""
    change = job.change
    if change is None:
        return CleanupReport(change=None)
    if not _exists(job, change):
        return CleanupReport(change=change)
    info = job.session.describe(change)
    if info.status == "submitted":
        return CleanupReport(change=change, submitted=True)
    kept, partly = keep_resolved_work(job) if keep_work else (0, [])
    reverted: list[str] = []
    if others := [o.depot_file for o in job.session.opened(change) if o.depot_file not in partly]:
        reverted = job.session.revert(change=change, paths=others).files
    shelved = job.session.describe(change, shelved=True).shelved
    if not shelved and not partly:
        job.session.delete_change(change)
    return CleanupReport(change=change, reverted=reverted, change_deleted=not (shelved or partly),
                         shelf_kept=bool(shelved), kept_files=kept, left_opened=partly, client=job.spec.client)


def keep_resolved_work(job: Job) -> tuple[int, list[str]]:
    """Keep what a person decided in the job's change: every resolved file shelved (Helix
    refuses to shelve unresolved ones: MsgDm::ShelveNeedsResolve), and the files with one
    resolve decided and another still pending (a content merge beside a filetype change),
    which no shelf can hold, named to be left opened rather than reverted. Returns how many
    files the shelf holds, and those partly resolved files."""
    if job.change is None:
        return 0, []
    unresolved = {p.local_path for p in job.session.pending_resolves(change=job.change)}
    keep: list[str] = []
    partly: list[str] = []
    for o in job.session.opened(job.change):
        if (job.session.where_local(o.depot_file) or "") not in unresolved:
            keep.append(o.depot_file)
        elif _partly_resolved(job, o.depot_file):
            partly.append(o.depot_file)
    if not keep:
        return 0, partly
    # -f replaces those files in an existing shelf; -r would take no file arguments.
    out = job.session.run("shelve", "-f", "-c", str(job.change), *keep)
    files = sum(1 for r in out if isinstance(r, dict) and "depotFile" in r)
    job.log(f"shelved {files} resolved file(s) in change {job.change} to keep them")
    return files, partly


def _partly_resolved(job: Job, depot_file: str) -> bool:
    """fstat's ``resolved`` field: some resolve of the opened file was already decided."""
    return any(isinstance(r, dict) and "resolved" in r for r in job.session.run("fstat", "-T", "resolved", depot_file))


__all__ = [
    "Job", "JobError", "Preflight", "Conflict", "ShelveReport", "PushReport", "CleanupReport",
    "preflight", "get_latest_cl", "sync", "integrate", "resolve_pass_1", "resolve_check", "check_choices",
    "apply_choices",
    "pre_submit", "shelve", "p4push", "cleanup", "keep_resolved_work", "SiteCommandError", "TargetMoved",
]
