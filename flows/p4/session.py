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
- A ticket lasts 12 hours by default, and a connection can drop. When Perforce
  refuses a command because the ticket expired (or was logged out, or is unknown to
  it) and the session holds the password, it logs in again once and repeats the
  command: Perforce checks the ticket before running anything, so any command is
  safe to repeat then. When the
  connection dropped (or P4Python says "not connected" after a fatal error), it
  connects again once and repeats only a command that changes nothing
  (``READ_ONLY``); a dropped command that may have changed something is reported,
  and the next command runs on a fresh connection. Without a password the error
  says what the person can do.
- Large outputs (sync, integrate of many files) are counted through a P4Python
  ``OutputHandler`` instead of building one dict per file.
- The password or ticket lives only in memory (``P4.password``); it is never
  put on a command line or in a file. ``login -p`` trades a password for a ticket
  without touching the user's ticket file.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import P4 as _p4

from .errors import EV_COMM, EV_CONFIG, P4AuthError, P4ConnectionError, P4Error
from .integ_messages import Said, accepting_option, identify_info, identify_message
from .records import (
    ChangeInfo, Described, DescribedFile, IntegratedFile, IntegrateResult, OpenedFile, PendingResolve,
    RefusedFile, ResolveSummary, RevertResult, ShelveResult, SubmitResult, SyncResult,
)
from .resolvers import AutoResolver, ChoiceResolver, read_resolve

Choice = Literal["theirs", "yours", "merged", "edited"]
# What a unicode server's workspace files and the command text are translated to:
# P4Python 3 hands out str, so UTF-8 keeps every name and text intact.
UNICODE_CHARSET = "utf8"
SAMPLE_LIMIT = 200
TICKET = re.compile(r"^[0-9A-F]{32}$")
# Commands that change nothing on the server or in the workspace: repeated after a
# dropped connection. Spec commands (client, change, branch) count only with -o.
READ_ONLY = frozenset({"changes", "describe", "opened", "fstat", "print", "files", "filelog", "have", "where",
                       "info", "interchanges", "clients", "branches", "users", "counters", "dirs", "sizes",
                       "diff2", "integrated"})
# What P4Python says when a command is run on a connection it dropped after a fatal
# error (PythonClientAPI::Run).
NOT_CONNECTED = "not connected."
_SPEC_COMMANDS = frozenset({"client", "change", "branch", "user", "label", "stream"})
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

    def outputStat(self, h: dict[str, Any]) -> int:  # P4Python's name
        if self.first is None:
            self.first = h
        self.counts[str(h.get(self._key, ""))] += 1
        if len(self.sample) < self._limit:
            self.sample.append(h)
        return _p4.OutputHandler.HANDLED

    def outputInfo(self, i: Any) -> int:
        self.infos.append(str(i))
        return _p4.OutputHandler.HANDLED

    def outputMessage(self, m: Any) -> int:
        return _p4.OutputHandler.REPORT


class _IntegrateCounter(_Counter):
    """Also identifies each warning as it arrives (the P4Message is only lent to the call)."""

    def __init__(self) -> None:
        super().__init__("action")
        self.said: list[Said] = []

    def outputMessage(self, m: Any) -> int:
        self.said.append(identify_message(m))
        return _p4.OutputHandler.REPORT


class P4Session:
    def __init__(self, port: str, user: str, client: str, *, password: str | None = None,
                 cwd: str | None = None, host: str | None = None, prog: str = "p4-integration",
                 charset: str | None = None, on_ticket: Callable[[str], None] | None = None) -> None:
        self.port, self.user, self.client = port, user, client
        self._secret = password
        self._charset = charset  # None: follow the server (UNICODE_CHARSET or none)
        # Told each new ticket, so a caller can keep it out of its logs and hand it on.
        self.on_ticket = on_ticket
        self._p4 = make_p4(port)
        if charset is not None:
            self._p4.charset = charset  # P4Python: set before connect
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
            if self._charset is None:
                self._follow_server_charset()
        except _p4.P4Exception as exc:
            raise P4ConnectionError(["connect"], _errors_of(exc) or [str(exc)], generic=EV_COMM) from None
        self.login()
        return self

    def _follow_server_charset(self) -> None:
        """A unicode server serves only clients with a charset, any other server refuses
        one (MsgServer::Unicode, MsgServer::Unicode2). P4Python learns the server's mode
        from its reply to the first command, even a refused one; on a mismatch the
        session reconnects with the charset set first, as P4Python asks."""
        try:
            self._p4.run("info")
        except _p4.P4Exception:
            pass  # refused for the charset; the mode arrived with the refusal
        current = str(self._p4.charset or "")
        wanted = UNICODE_CHARSET if self._p4.server_unicode else "none"
        if (current not in ("", "none")) == (wanted != "none"):
            return
        self._p4.disconnect()
        self._p4.charset = wanted
        self._p4.connect()

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

    @property
    def has_password(self) -> bool:
        """Holds a password (not a ticket): can log in again on this host whenever needed."""
        return bool(self._secret) and not TICKET.match(str(self._secret))

    def login(self) -> None:
        """Exchange the password for a ticket of this host, held in memory; a ticket is used as is."""
        if not self._secret:
            return
        if not self.has_password:
            self._p4.password = self._secret
            return
        try:
            out = self._p4.run_login("-p", password=self._secret)
        except _p4.P4Exception as exc:
            raise P4AuthError(["login", "-p"], _errors_of(exc) or [str(exc)], generic=EV_CONFIG,
                              advice=self.auth_advice()) from None
        ticket = next((x.strip() for x in out if isinstance(x, str) and TICKET.match(x.strip())), None)
        # A server with no password set for the user says "'login' not necessary".
        self._p4.password = ticket or self._secret
        if ticket and self.on_ticket:
            self.on_ticket(ticket)

    def auth_advice(self) -> str:
        """What the person can do when Perforce refuses this session's credentials."""
        u = self.user
        if not self._secret:
            return (f"no password or ticket is stored for Perforce user '{u}': sign in on the front page, or store "
                    f"the password (p4integ credentials set {u}) and name it in the job's password_secret; then run "
                    "the job again")
        if not self.has_password:
            return (f"the ticket stored for Perforce user '{u}' is not accepted (tickets expire, after 12 hours by "
                    "default): sign in again on the front page, or store the password (p4integ credentials set "
                    f"{u}) so jobs log in by themselves; then run the job again")
        return (f"Check the Perforce password or ticket stored for user '{u}': store the current password "
                f"(p4integ credentials set {u}), then run the job again")

    def _reconnect(self) -> None:
        """A fresh connection (and login) after the old one dropped."""
        if self._p4.connected():  # P4Python disconnects a dropped connection here
            self._p4.disconnect()
        self.connect()

    # --- running -----------------------------------------------------------------------
    def run(self, *args: Any, handler: Any = None, **kwargs: Any) -> list[Any]:
        cmd = [str(a) for a in args]
        if not self._p4.connected():
            self._reconnect()  # dropped after an earlier command; this one was not sent yet
        try:
            return self._run_once(cmd, handler, kwargs)
        except P4AuthError as exc:
            if not (exc.ticket_refused and self.has_password):
                raise
            self.login()  # Perforce refused before running anything: repeat whatever it was
        except P4ConnectionError:
            if not _repeatable(cmd) or handler is not None:
                raise
            self._reconnect()
        return self._run_once(cmd, handler, kwargs)

    def _run_once(self, cmd: list[str], handler: Any, kwargs: dict[str, Any]) -> list[Any]:
        try:
            if handler is not None:
                with self._p4.using_handler(handler):
                    return self._p4.run(*cmd, **kwargs)
            return self._p4.run(*cmd, **kwargs)
        except _p4.P4Exception as exc:
            raise _classify(cmd, exc, self.auth_advice()) from None

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

    def pending_resolves(self, paths: Sequence[str] = (), *, change: int | None = None) -> list[PendingResolve]:
        """One row per pending resolve (a file may have a content and an action resolve);
        with ``change`` only the files opened in that pending change."""
        rows = self.run("resolve", "-n", *_change_args(change), *paths)
        return [PendingResolve(local_path=r["clientFile"], from_file=r.get("fromFile", ""),
                               start_from_rev=r.get("startFromRev", ""), end_from_rev=r.get("endFromRev", ""),
                               resolve_type=r.get("resolveType", "content"),
                               content_resolve_type=r.get("contentResolveType", ""))
                for r in rows if isinstance(r, dict) and "clientFile" in r]

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
        spec = self.run("change", "-o")[0]  # fetch_change, through run: reconnects if dropped
        spec["Description"] = description
        spec["Files"] = []
        out = self.run("change", "-i", input=spec)
        m = re.search(r"Change (\d+) created", " ".join(str(x) for x in out))
        if not m:
            raise P4Error(["change", "-i"], [f"unexpected reply {out!r}"])
        return int(m.group(1))

    def integrate(self, *, change: int, source: str | None = None, target: str | None = None,
                  branch: str | None = None, at_change: int | None = None, reverse: bool = False,
                  from_change: int | None = None, extra: Sequence[str] = ()) -> IntegrateResult:
        """Integrate by branch spec or source->target, up to ``at_change`` (from ``from_change``
        on: ``@from,@at``, the revisions of those changes only), into ``change``.

        ``extra`` holds Perforce's own integrate options (-i, -Ds, ...). Every message of
        the reply is identified: files refused and messages not understood are returned,
        never dropped."""
        rev = (f"@{from_change},@{at_change}" if from_change else f"@{at_change}") if at_change else ""
        args: list[str] = ["integrate", "-c", str(change), *extra]
        if branch:
            args += ["-b", branch] + (["-r"] if reverse else []) + ([f"//...{rev}"] if rev else [])
        else:
            if not source or not target:
                raise ValueError("integrate needs a branch spec or both source and target paths")
            args += [f"{source}{rev}", target]
        h = _IntegrateCounter()
        self.run(*args, handler=h)
        files = [IntegratedFile(depot_file=r["depotFile"], client_file=r.get("clientFile", ""),
                                action=r["action"], from_file=r.get("fromFile", ""),
                                start_from_rev=r.get("startFromRev", ""), end_from_rev=r.get("endFromRev", ""))
                 for r in h.sample]
        said = h.said + [identify_info(i) for i in h.infos] + self._unseen_warnings(h.said)
        return _integrate_result(dict(h.counts), files, said, self.warnings + h.infos)

    def _unseen_warnings(self, seen: list[Said]) -> list[Said]:
        """Warnings that reached the result without passing the handler."""
        texts = {s.text for s in seen}
        return [identify_message(m) for m in (self._p4.messages or [])
                if int(getattr(m, "severity", 0)) == _p4.P4.E_WARN and str(m) not in texts]

    def auto_resolve(self, mode: Literal["am", "as", "af", "at", "ay"] = "am",
                     paths: Sequence[str] = (), *, change: int | None = None) -> ResolveSummary:
        """Resolve what needs no person. When an action resolve is pending the pass runs
        through ``AutoResolver`` (content by ``mode``; an action resolve only where one side
        alone changed) rather than the ``-a`` flag, whose handling of action resolves is
        the server's merge hint; what it took is reported in ``actions_accepted``."""
        actions = any(p.is_action for p in self.pending_resolves(paths, change=change))
        h = _Counter("clientFile", sample=0)
        cmd = ["resolve", *_change_args(change), *paths]
        if actions and mode in ("am", "as"):
            self.run(*cmd, handler=h, resolver=AutoResolver(mode))
        else:
            self.run(cmd[0], f"-{mode}", *cmd[1:], handler=h)
        nothing = not h.counts and _has(self.warnings, "no file(s) to resolve")
        outcome = read_resolve(cmd, h.infos)
        left = [p for p in self.pending_resolves(paths, change=change) if p.is_action] if actions else []
        return ResolveSummary(
            by_how=dict(Counter(how for _, how in outcome.content)), skipped=outcome.skipped,
            actions_accepted=[f"{f} ({k}: {how})" for f, k, how in outcome.actions],
            actions_left=[f"{p.local_path} ({p.resolve_type})" for p in left], nothing_to_resolve=nothing)

    def resolve_with(self, resolver: Any, *, change: int | None = None, paths: Sequence[str] = ()) -> None:
        """``resolve [-c N] [paths]`` through a P4Python ``Resolver``; every reply line understood."""
        cmd = ["resolve", *_change_args(change), *paths]
        out = self.run(*cmd, resolver=resolver)
        read_resolve(cmd, [str(x) for x in out if isinstance(x, str)])

    def resolve_file(self, path: str, choice: Choice, text: str | bytes | None = None, *,
                     kind: str = "content", change: int | None = None) -> str:
        """Apply a person's decision to one resolve of one file (its content, or the action
        resolve ``kind``); returns what Helix recorded. Anything else the file has pending
        is skipped, not decided."""
        if choice == "edited" and text is None:
            raise ValueError("choice 'edited' needs the text of the result")
        answer = {"theirs": "at", "yours": "ay", "merged": "am", "edited": "ae"}[choice]
        if kind != "content" and answer not in ("at", "ay"):
            raise ValueError(f"the {kind} resolve of {path} takes theirs or yours, not {choice}")
        cmd = ["resolve", *_change_args(change), path]
        out = self.run(*cmd, resolver=ChoiceResolver(kind, answer, text))
        lines = [str(x) for x in out if isinstance(x, str)]
        outcome = read_resolve(cmd, lines)
        if kind == "content" and outcome.content:
            return outcome.content[0][1]
        done = [how for _, k, how in outcome.actions if k == kind]
        if kind != "content" and done:
            return done[0]
        raise P4Error(cmd, [f"the {kind} resolve of {path} was not done; Perforce said: {lines or 'nothing'}"])

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

    def interchanges(self, *, source: str | None = None, target: str | None = None, branch: str | None = None,
                     reverse: bool = False) -> list[ChangeInfo]:
        """Source changes the target has not got yet, oldest first (``p4 interchanges -l``: full
        descriptions). Perforce's integration records decide, so a change integrated (or
        integrated as ignored) is never listed again. Nothing pending is Helix's "all
        revision(s) already integrated" warning; any other message stops, quoted."""
        args = ["interchanges", "-l", *(["-b", branch, *(["-r"] if reverse else [])] if branch else [source, target])]
        if not branch and not (source and target):
            raise ValueError("interchanges needs a branch spec or both source and target paths")
        out = self.run(*args)
        warned = [m for m in (self._p4.messages or []) if int(getattr(m, "severity", 0)) == _p4.P4.E_WARN]
        for said in map(identify_message, warned):
            if said.message is None or said.message.kind != "already":
                raise P4Error(args, [], [said.text])
        rows = [ChangeInfo(change=int(r["change"]), user=r["user"], client=r["client"], status=r["status"],
                           description=r["desc"], time=int(r["time"])) for r in out if isinstance(r, dict)]
        return sorted(rows, key=lambda c: c.change)

    def key(self, name: str) -> int:
        """A Perforce key holding a change number (``p4 key name``; one never set is 0, as Helix says)."""
        out = [r for r in self.run("key", name) if isinstance(r, dict)]
        value = str(out[0].get("value", "0")) if out else "0"
        if not value.isdigit():
            raise P4Error(["key", name], [f"key {name} holds '{value}', not a change number"])
        return int(value)

    def keys(self, pattern: str) -> dict[str, str]:
        """The keys whose names match ``pattern`` (``p4 keys -e``: ``*`` matches anything)."""
        return {str(r["key"]): str(r["value"]) for r in self.run("keys", "-e", pattern) if isinstance(r, dict)}

    def set_key(self, name: str, value: str) -> None:
        self.run("key", name, value)

    def changes(self, *args: str) -> list[ChangeInfo]:
        return [ChangeInfo(change=int(r["change"]), user=r["user"], client=r["client"], status=r["status"],
                           description=r["desc"], time=int(r["time"]), path=r.get("path", ""))
                for r in self.run("changes", *args) if isinstance(r, dict)]


def _integrate_result(by_action: dict[str, int], files: list[IntegratedFile], said: list[Said],
                      messages: list[str]) -> IntegrateResult:
    refused = [RefusedFile(depot_file=s.file, reason=s.text, message=s.message.name, option=accepting_option(s),
                           fix=s.message.fix)
               for s in said if s.message is not None and s.message.kind == "refused"]
    unknown = [s.text for s in said if s.message is None]
    already = (not by_action and not refused and not unknown
               and any(s.message is not None and s.message.kind == "already" for s in said))
    return IntegrateResult(by_action=by_action, files=files, already_integrated=already, refused=refused,
                           unknown=unknown, messages=messages)


def _change_args(change: int | None) -> list[str]:
    """``-c N``: resolve only the files of that pending change, never a person's other work."""
    return ["-c", str(change)] if change is not None else []


def _submit_result(change: int, out: list[Any]) -> SubmitResult:
    final = next((int(r["submittedChange"]) for r in out if isinstance(r, dict) and "submittedChange" in r), None)
    if final is None:
        raise P4Error(["submit", "-c", str(change)], ["no submittedChange in the reply"])
    files = sum(1 for r in out if isinstance(r, dict) and "depotFile" in r)
    return SubmitResult(change=final, files=files, renamed_from=change if final != change else None)


def _errors_of(exc: Any) -> list[str]:
    return [str(e) for e in (getattr(exc, "errors", None) or [])]


def _classify(cmd: list[str], exc: Any, advice: str | None = None) -> P4Error:
    errors = _errors_of(exc)
    warnings = [str(w) for w in (getattr(exc, "warnings", None) or [])]
    generic = int(getattr(exc, "generic", 0) or 0)
    text = " ".join(errors).lower()
    if (generic == EV_COMM or "connect to server failed" in text or "partner exited" in text
            or NOT_CONNECTED in errors):
        return P4ConnectionError(cmd, errors or [str(exc)], warnings, generic or EV_COMM)
    if any(s in text for s in ("p4passwd", "session has expired", "session was logged out", "password invalid",
                                "password must be set", "password not allowed")):
        return P4AuthError(cmd, errors, warnings, generic, advice=advice)
    return P4Error(cmd, errors or [str(exc)], warnings, generic)


def _repeatable(cmd: list[str]) -> bool:
    """Whether repeating ``cmd`` after a dropped connection cannot do anything twice."""
    name, flags = (cmd[0] if cmd else ""), cmd[1:]
    if name in READ_ONLY:
        return True
    if name in _SPEC_COMMANDS:
        return "-o" in flags
    return (name == "resolve" and "-n" in flags) or (name == "login" and "-s" in flags)


def _has(messages: Iterable[str], needle: str) -> bool:
    return any(needle.lower() in m.lower() for m in messages)

