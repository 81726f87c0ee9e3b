"""The P4 session: the operations integration stages need, over P4Python's ``P4``.

One class for both servers: ``ssl:host:1666`` (or any Helix port) gets P4Python's
``P4.P4``; ``sandbox:<dir>`` gets the bundled sandbox server's ``P4``. Code above
cannot tell them apart.

Conventions:
- ``exception_level`` 1: errors raise, warnings come back in the result. The usual
  warnings ("all revision(s) already integrated", "No file(s) to resolve.",
  "file(s) up-to-date.") are outcomes, reported in the records, not failures.
- Errors become ``P4Error`` carrying the command and Perforce's messages;
  connection trouble is ``P4ConnectionError`` (transient), authentication
  ``P4AuthError``.
- Large outputs (sync, integrate of many files) are counted through a P4Python
  ``OutputHandler`` instead of building one dict per file.
- The password or ticket lives only in memory (``P4.password``); it is never
  put on a command line or in a file. ``login -p`` trades a password for a ticket
  without touching the user's ticket file.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import P4 as _p4

from .errors import EV_COMM, EV_CONFIG, P4AuthError, P4ConnectionError, P4Error
from .records import (
    ChangeInfo, Described, DescribedFile, IntegratedFile, IntegrateResult, OpenedFile, PendingResolve,
    ResolveSummary, RevertResult, ShelveResult, SubmitResult, SyncResult,
)

Choice = Literal["theirs", "yours", "merged", "edited"]
SAMPLE_LIMIT = 200
TICKET = re.compile(r"^[0-9A-F]{32}$")
_RESOLVED_INFO = re.compile(r"^(?P<file>\S.*) - (?P<how>copy from|merge from|edit from|ignored) (?P<src>//.+)$")
_SKIPPED_INFO = re.compile(r"^(?P<file>\S.*) - resolve skipped\.$")


def make_p4(port: str) -> Any:
    """P4Python's ``P4`` for a Helix port, the sandbox's for ``sandbox:<dir>``."""
    if port.startswith("sandbox:"):
        from .sandbox import P4 as SandboxP4
        return SandboxP4()
    if not port or ":" not in port and not port.isdigit():
        raise ValueError(f"P4PORT '{port}' is not a Perforce port: use 'ssl:host:1666', 'host:1666' "
                         "or 'sandbox:/path/to/depot'")
    return _p4.P4()


class _Counter(_p4.OutputHandler):
    """Counts tagged records by a key instead of keeping them; keeps a small sample."""

    def __init__(self, key: str, sample: int = SAMPLE_LIMIT) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self.sample: list[dict[str, Any]] = []
        self.first: dict[str, Any] | None = None
        self.infos: list[str] = []
        self._key, self._limit = key, sample

    def outputStat(self, h: dict[str, Any]) -> int:  # noqa: N802 - P4Python's name
        if self.first is None:
            self.first = h
        self.counts[str(h.get(self._key, ""))] += 1
        if len(self.sample) < self._limit:
            self.sample.append(h)
        return _p4.OutputHandler.HANDLED

    def outputInfo(self, i: Any) -> int:  # noqa: N802
        self.infos.append(str(i))
        return _p4.OutputHandler.HANDLED

    def outputMessage(self, m: Any) -> int:  # noqa: N802
        return _p4.OutputHandler.REPORT


class _TextResolver(_p4.Resolver):
    """Accepts a person's edited text as the result of one file's resolve."""

    def __init__(self, text: str | bytes) -> None:
        super().__init__()
        self._data = text.encode() if isinstance(text, str) else text

    def resolve(self, merge_data: Any) -> str:
        with open(merge_data.result_path, "wb") as fh:
            fh.write(self._data)
        return "ae"


class P4Session:
    def __init__(self, port: str, user: str, client: str, *, password: str | None = None,
                 cwd: str | None = None, host: str | None = None, prog: str = "p4-integration") -> None:
        self.port, self.user, self.client = port, user, client
        self._secret = password
        self._p4 = make_p4(port)
        self._p4.port = port
        self._p4.user = user
        self._p4.client = client
        self._p4.prog = prog
        self._p4.exception_level = 1
        if cwd:
            self._p4.cwd = cwd
        if host:
            self._p4.host = host

    # --- connection -----------------------------------------------------------------
    def connect(self) -> "P4Session":
        try:
            self._p4.connect()
        except _p4.P4Exception as exc:
            raise P4ConnectionError(["connect"], _errors_of(exc) or [str(exc)], generic=EV_COMM) from None
        self.login()
        return self

    def close(self) -> None:
        if self._p4.connected():
            self._p4.disconnect()

    def __enter__(self) -> "P4Session":
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def p4(self) -> Any:
        """The underlying P4 object, for callers needing a command not wrapped here."""
        return self._p4

    def login(self) -> None:
        """Exchange the secret for a ticket held in memory; a ticket is used as is."""
        if not self._secret:
            return
        if TICKET.match(self._secret):
            self._p4.password = self._secret
            return
        try:
            out = self._p4.run_login("-p", password=self._secret)
        except _p4.P4Exception as exc:
            raise P4AuthError(["login", "-p"], _errors_of(exc) or [str(exc)], generic=EV_CONFIG) from None
        ticket = next((x for x in out if isinstance(x, str) and TICKET.match(x.strip())), None)
        # A server with no password set for the user says "'login' not necessary".
        self._p4.password = ticket.strip() if ticket else self._secret

    # --- running -----------------------------------------------------------------------
    def run(self, *args: Any, handler: Any = None, **kwargs: Any) -> list[Any]:
        cmd = [str(a) for a in args]
        try:
            if handler is not None:
                with self._p4.using_handler(handler):
                    return self._p4.run(*cmd, **kwargs)
            return self._p4.run(*cmd, **kwargs)
        except _p4.P4Exception as exc:
            raise _classify(cmd, exc) from None

    @property
    def warnings(self) -> list[str]:
        return [str(w) for w in (self._p4.warnings or [])]

    # --- queries ---------------------------------------------------------------------
    def latest_change(self, path: str) -> int | None:
        """The newest submitted change touching ``path``, None if there is none."""
        rows = self.run("changes", "-m1", "-s", "submitted", path)
        return int(rows[0]["change"]) if rows else None

    def change(self, change: int) -> ChangeInfo:
        d = self.run("describe", "-s", str(change))[0]
        return ChangeInfo(change=int(d["change"]), user=d["user"], client=d["client"],
                          status=d["status"], description=d["desc"], time=int(d["time"]))

    def describe(self, change: int, *, shelved: bool = False) -> Described:
        d = self.run("describe", "-s", *(["-S"] if shelved else []), str(change))[0]
        files = [DescribedFile(depot_file=f, action=a, type=t, rev=r)
                 for f, a, t, r in zip(d.get("depotFile", []), d.get("action", []), d.get("type", []),
                                       d.get("rev", []))]
        return Described(change=int(d["change"]), status=d["status"], user=d["user"], client=d["client"],
                         description=d["desc"], files=files, shelved="shelved" in d)

    def opened(self, change: int | None = None) -> list[OpenedFile]:
        args = ["opened"] + (["-c", str(change) if change else "default"] if change is not None else [])
        return [OpenedFile(depot_file=r["depotFile"], action=r["action"], change=r["change"], type=r["type"],
                           rev=r.get("rev", "")) for r in self.run(*args) if isinstance(r, dict)]

    def pending_resolves(self, paths: Sequence[str] = ()) -> list[PendingResolve]:
        rows = self.run("resolve", "-n", *paths)
        return [PendingResolve(local_path=r["clientFile"], from_file=r["fromFile"],
                               start_from_rev=r["startFromRev"], end_from_rev=r["endFromRev"],
                               resolve_type=r.get("resolveType", "content"),
                               content_resolve_type=r.get("contentResolveType", ""))
                for r in rows if isinstance(r, dict)]

    def print_file(self, file_rev: str) -> bytes | str | None:
        out = self.run("print", file_rev)
        return out[1] if len(out) > 1 else None

    def where_local(self, depot_path: str) -> str | None:
        rows = self.run("fstat", "-T", "clientFile", depot_path)
        return rows[0].get("clientFile") if rows and isinstance(rows[0], dict) else None

    # --- workspace ---------------------------------------------------------------------
    def sync(self, path: str, *, force: bool = False) -> SyncResult:
        h = _Counter("action")
        self.run("sync", *(["-f"] if force else []), path, handler=h)
        c = h.counts
        total = int((h.first or {}).get("totalFileSize", 0) or 0)
        return SyncResult(added=c["added"], updated=c["updated"] + c["refreshed"], deleted=c["deleted"],
                          total_bytes=total, up_to_date=not c and _has(self.warnings, "up-to-date"),
                          messages=self.warnings)

    def create_change(self, description: str) -> int:
        spec = self._p4.fetch_change()
        spec["Description"] = description
        spec["Files"] = []
        out = self.run("change", "-i", input=spec)
        m = re.search(r"Change (\d+) created", " ".join(str(x) for x in out))
        if not m:
            raise P4Error(["change", "-i"], [f"unexpected reply {out!r}"])
        return int(m.group(1))

    def integrate(self, *, change: int, source: str | None = None, target: str | None = None,
                  branch: str | None = None, at_change: int | None = None, reverse: bool = False,
                  extra: Sequence[str] = ()) -> IntegrateResult:
        """Integrate by branch spec or source->target, up to ``at_change``, into ``change``."""
        rev = f"@{at_change}" if at_change else ""
        args: list[str] = ["integrate", "-c", str(change), *extra]
        if branch:
            args += ["-b", branch] + (["-r"] if reverse else []) + ([f"//...{rev}"] if rev else [])
        else:
            if not source or not target:
                raise ValueError("integrate needs a branch spec or both source and target paths")
            args += [f"{source}{rev}", target]
        h = _Counter("action")
        self.run(*args, handler=h)
        files = [IntegratedFile(depot_file=r["depotFile"], client_file=r.get("clientFile", ""),
                                action=r["action"], from_file=r.get("fromFile", ""),
                                start_from_rev=r.get("startFromRev", ""), end_from_rev=r.get("endFromRev", ""))
                 for r in h.sample]
        warnings = self.warnings + h.infos
        return IntegrateResult(by_action=dict(h.counts), files=files,
                               already_integrated=not h.counts and _has(warnings, "already integrated"),
                               messages=warnings)

    def auto_resolve(self, mode: Literal["am", "as", "af", "at", "ay"] = "am",
                     paths: Sequence[str] = ()) -> ResolveSummary:
        h = _Counter("clientFile", sample=0)
        self.run("resolve", f"-{mode}", *paths, handler=h)
        by_how: Counter[str] = Counter()
        skipped: list[str] = []
        for line in h.infos:
            m = _RESOLVED_INFO.match(line)
            if m:
                by_how[m.group("how")] += 1
                continue
            s = _SKIPPED_INFO.match(line)
            if s:
                skipped.append(s.group("file"))
        return ResolveSummary(by_how=dict(by_how), skipped=skipped,
                              nothing_to_resolve=not h.counts and _has(self.warnings, "no file(s) to resolve"))

    def resolve_file(self, path: str, choice: Choice, text: str | bytes | None = None) -> str:
        """Apply a person's decision for one file; returns Helix's record kind."""
        if choice == "edited":
            if text is None:
                raise ValueError("choice 'edited' needs the text of the result")
            out = self.run("resolve", path, resolver=_TextResolver(text))
        else:
            flag = {"theirs": "-at", "yours": "-ay", "merged": "-af"}[choice]
            out = self.run("resolve", flag, path)
        for line in out:
            if isinstance(line, str):
                m = _RESOLVED_INFO.match(line)
                if m:
                    return m.group("how")
        raise P4Error(["resolve", path], [f"file was not resolved: {[x for x in out if isinstance(x, str)]}"])

    def shelve(self, change: int, *, replace: bool = True) -> ShelveResult:
        out = self.run("shelve", "-r" if replace else "-f", "-c", str(change))
        return ShelveResult(change=change, files=sum(1 for r in out if isinstance(r, dict) and "depotFile" in r))

    def delete_shelf(self, change: int) -> bool:
        try:
            self.run("shelve", "-d", "-c", str(change))
        except P4Error as exc:
            if any("No shelved files" in e for e in exc.errors):
                return False
            raise
        return True

    def revert(self, *, change: int | None = None, paths: Iterable[str] = ()) -> RevertResult:
        """Revert the job's files only: by changelist, or given paths."""
        args = ["revert"] + (["-c", str(change)] if change is not None else [])
        targets = list(paths) or [f"//{self.client}/..."]
        out = self.run(*args, *targets)
        return RevertResult(files=[r["depotFile"] for r in out if isinstance(r, dict)])

    def delete_change(self, change: int) -> None:
        self.run("change", "-d", str(change))

    def submit(self, change: int) -> SubmitResult:
        out = self.run("submit", "-c", str(change))
        return _submit_result(change, out)

    def submit_shelf(self, change: int) -> SubmitResult:
        out = self.run("submit", "-e", str(change))
        return _submit_result(change, out)

    def changes(self, *args: str) -> list[ChangeInfo]:
        return [ChangeInfo(change=int(r["change"]), user=r["user"], client=r["client"], status=r["status"],
                           description=r["desc"], time=int(r["time"]))
                for r in self.run("changes", *args) if isinstance(r, dict)]


def _submit_result(change: int, out: list[Any]) -> SubmitResult:
    final = next((int(r["submittedChange"]) for r in out if isinstance(r, dict) and "submittedChange" in r), None)
    if final is None:
        raise P4Error(["submit", "-c", str(change)], ["no submittedChange in the reply"])
    files = sum(1 for r in out if isinstance(r, dict) and "depotFile" in r)
    return SubmitResult(change=final, files=files, renamed_from=change if final != change else None)


def _errors_of(exc: Any) -> list[str]:
    return [str(e) for e in (getattr(exc, "errors", None) or [])]


def _classify(cmd: list[str], exc: Any) -> P4Error:
    errors = _errors_of(exc)
    warnings = [str(w) for w in (getattr(exc, "warnings", None) or [])]
    generic = int(getattr(exc, "generic", 0) or 0)
    text = " ".join(errors).lower()
    if generic == EV_COMM or "connect to server failed" in text or "partner exited" in text:
        return P4ConnectionError(cmd, errors or [str(exc)], warnings, generic)
    if "p4passwd" in text or "session has expired" in text or "password invalid" in text:
        return P4AuthError(cmd, errors, warnings, generic)
    return P4Error(cmd, errors or [str(exc)], warnings, generic)


def _has(messages: Iterable[str], needle: str) -> bool:
    return any(needle.lower() in m.lower() for m in messages)

