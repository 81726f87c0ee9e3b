"""What every sandbox command shares: the request context, options, common queries.

A command is a generator ``fn(ctx, args)`` yielding tagged records (``dict``),
``Content`` (file text for ``print``) and ``Message`` objects, in output order, so
a P4Python output handler can consume a large result without a list being built.
"""
from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

from . import messages as M
from .errors import CommandError
from .forms import check_client_use, client_root
from .paths import ClientView, FileArg, Matcher, RevPoint, matcher_for, parse_file_arg
from .store import Store, now

Item = Any  # dict | Content | Message
Command = Callable[["Context", list[str]], Iterator[Item]]
COMMANDS: dict[str, Command] = {}


def command(*names: str) -> Callable[[Command], Command]:
    def register(fn: Command) -> Command:
        for n in names:
            COMMANDS[n] = fn
        return fn
    return register


@dataclass
class Content:
    data: bytes | str


@dataclass
class Context:
    store: Store
    port: str
    user: str
    client: str
    cwd: str
    host: str
    input: Any = None
    resolver: Any = None
    _client_spec: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def db(self):  # noqa: ANN201 - sqlite3.Connection
        return self.store.db

    # --- client -------------------------------------------------------------
    def client_spec(self, required: bool = True) -> dict[str, Any] | None:
        if self._client_spec is None:
            row = self.db.execute("SELECT spec FROM clients WHERE name=?", (self.client,)).fetchone()
            if row is None:
                if required:
                    raise CommandError(client_unknown(self.client))
                return None
            self._client_spec = json.loads(row["spec"])
        if required:
            check_client_use(self._client_spec, self.user, self.host)
        return self._client_spec

    def view(self, required: bool = True) -> ClientView | None:
        spec = self.client_spec(required)
        if spec is None:
            return None
        return ClientView(spec["Client"], client_root(spec, self.cwd), spec.get("View", []),
                          fold=self.store.case_insensitive)

    def matcher(self, raw: str, *, need_client: bool = False) -> tuple[FileArg, Matcher]:
        arg = parse_file_arg(raw)
        view = self.view(required=need_client or not raw.startswith("//"))
        return arg, matcher_for(arg, view, self.cwd, need_client=need_client, fold=self.store.case_insensitive)

    def default_path(self) -> str:
        return f"//{self.client}/..."


# --- limits (a group's MaxResults) ------------------------------------------------

# Commands whose whole answer is rows read from the depot: the limit is checked on
# what they would return, before any of it is delivered. Commands that change the
# workspace check it themselves before changing anything (``check_max_results``).
RESULT_LIMITED = frozenset({"files", "fstat", "filelog", "print", "have", "opened", "changes",
                            "changelists", "describe", "clients", "workspaces", "branches",
                            "interchanges", "users"})


def max_results(ctx: Context) -> int:
    """The depot's MaxResults limit (0 = unset, unlimited)."""
    row = ctx.db.execute("SELECT value FROM limits WHERE name='MaxResults'").fetchone()
    return int(row["value"]) if row else 0


def check_max_results(ctx: Context, rows: int) -> None:
    limit = max_results(ctx)
    if limit and rows > limit:
        raise CommandError(M.msg(M.MAX_RESULTS, maxResults=limit))


# --- options -------------------------------------------------------------------

def client_unknown(name: str) -> M.Message:
    return M.msg(M.NO_SUCH_DOMAIN2, type="Client", name=name, command="client")


def name_pattern(pattern: str, case_sensitive: bool = True) -> re.Pattern[str]:
    """A spec name filter (``clients -e``, ``branches -e``, ``users``): ``*`` and ``...``
    match any characters, everything else itself; ``-E`` filters ignore case."""
    body = "".join(".*" if tok in ("*", "...") else re.escape(tok) for tok in re.split(r"(\.\.\.|\*)", pattern))
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE)


def name_filter(opts: dict[str, Any]) -> Callable[[str], bool]:
    """``-e nameFilter`` (case-sensitive) or ``-E nameFilter`` (case-insensitive); none = all."""
    if opts.get("-e"):
        return name_pattern(opts["-e"]).match  # type: ignore[return-value]
    if opts.get("-E"):
        return name_pattern(opts["-E"], case_sensitive=False).match  # type: ignore[return-value]
    return lambda name: True


def parse_opts(args: list[str], spec: dict[str, bool], cmd: str) -> tuple[dict[str, Any], list[str]]:
    """``spec`` maps each flag to whether it takes a value. Flags may repeat
    (the last value wins, except ``-v`` style lists, which callers read via ``*``)."""
    opts: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = str(args[i])
        if a == "--":
            rest.extend(str(x) for x in args[i + 1:])
            break
        if a.startswith("-") and len(a) > 1 and not rest:
            if a in spec:
                if spec[a]:
                    if i + 1 >= len(args):
                        raise CommandError(M.msg(M.NEEDS_ARG, option=a.lstrip('-')), M.msg(M.usage(cmd)))
                    opts[a] = str(args[i + 1])
                    i += 2
                    continue
                opts[a] = True
                i += 1
                continue
            # value glued to the flag: -m5, -cdefault
            for flag, takes in spec.items():
                if takes and a.startswith(flag) and len(a) > len(flag) and len(flag) == 2:
                    opts[flag] = a[len(flag):]
                    break
            else:
                raise CommandError(M.msg(M.INVALID_OPTION, option=a.lstrip('-')), M.msg(M.usage(cmd)))
            i += 1
            continue
        rest.append(a)
        i += 1
    return opts, rest


def int_opt(value: str, what: str = "change") -> int:
    if not str(value).isdigit():
        raise CommandError(M.msg(M.INVALID_CHANGE, change=value))
    return int(value)


# --- revisions -----------------------------------------------------------------

def head_rows(ctx: Context, matcher: Matcher, at_change: int | None = None) -> Iterator[Any]:
    """Latest revision (at or before ``at_change``) of each depot file matched."""
    seen: set[str] = set()
    for prefix in matcher.prefixes:
        params: list[Any] = [prefix, prefix + "\uffff"]
        change_clause = ""
        if at_change is not None:
            change_clause = " AND change <= ?"
            params.append(at_change)
        if matcher.exact is not None:
            q = ("SELECT * FROM revs WHERE depotFile = ?" + change_clause + " ORDER BY rev DESC LIMIT 1")
            rows = ctx.db.execute(q, [matcher.exact] + params[2:]).fetchall()
        else:
            q = (
                "SELECT r.* FROM revs r JOIN (SELECT depotFile, MAX(rev) m FROM revs "
                "WHERE depotFile >= ? AND depotFile < ?" + change_clause + " GROUP BY depotFile) x "
                "ON r.depotFile = x.depotFile AND r.rev = x.m ORDER BY r.depotFile"
            )
            rows = ctx.db.execute(q, params)
        for row in rows:
            d = row["depotFile"]
            if d not in seen and matcher(d):
                seen.add(d)
                yield row


def rev_row(ctx: Context, depot_file: str, rev: int) -> Any:
    return ctx.db.execute("SELECT * FROM revs WHERE depotFile=? AND rev=?", (depot_file, rev)).fetchone()


def head_of(ctx: Context, depot_file: str, at_change: int | None = None) -> Any:
    if at_change is None:
        return ctx.db.execute(
            "SELECT * FROM revs WHERE depotFile=? ORDER BY rev DESC LIMIT 1", (depot_file,)).fetchone()
    return ctx.db.execute(
        "SELECT * FROM revs WHERE depotFile=? AND change<=? ORDER BY rev DESC LIMIT 1",
        (depot_file, at_change)).fetchone()


def have_rev(ctx: Context, depot_file: str) -> int:
    row = ctx.db.execute("SELECT rev FROM have WHERE client=? AND depotFile=?",
                         (ctx.client, depot_file)).fetchone()
    return row["rev"] if row else 0


def select_rev(ctx: Context, depot_file: str, point: RevPoint | None) -> Any:
    """The revision row a revision specifier names for one file (None if none)."""
    if point is None or point.kind == "head":
        return head_of(ctx, depot_file)
    if point.kind == "none":
        return None
    if point.kind == "rev":
        return rev_row(ctx, depot_file, point.n)
    if point.kind == "change":
        return head_of(ctx, depot_file, point.n)
    if point.kind == "have":
        h = have_rev(ctx, depot_file)
        return rev_row(ctx, depot_file, h) if h else None
    return None


def resolve_rows(ctx: Context, arg: FileArg, matcher: Matcher) -> Iterator[Any]:
    """Revision rows for an argument: files existing at the argument's revision."""
    at = arg.hi.n if arg.hi is not None and arg.hi.kind == "change" else None
    for row in head_rows(ctx, matcher, at):
        if arg.hi is not None and arg.hi.kind in ("rev", "have", "none"):
            row = select_rev(ctx, row["depotFile"], arg.hi)
            if row is None:
                continue
        yield row


def is_deleted(action: str) -> bool:
    return action in ("delete", "move/delete", "purge", "archive")


# --- opened files ----------------------------------------------------------------

def opened_rows(ctx: Context, matcher: Matcher | None = None, *, change: int | None = None,
                all_clients: bool = False) -> Iterator[Any]:
    q = "SELECT * FROM working"
    params: list[Any] = []
    where = []
    if not all_clients:
        where.append("client = ?")
        params.append(ctx.client)
    if change is not None:
        where.append("change = ?")
        params.append(change)
    if where:
        q += " WHERE " + " AND ".join(where)
    q += " ORDER BY depotFile"
    for row in ctx.db.execute(q, params).fetchall():
        if matcher is None or matcher(row["depotFile"]):
            yield row


def change_label(change: int) -> str:
    return "default" if change == 0 else str(change)


def parse_change_arg(value: str) -> int:
    if value == "default":
        return 0
    return int_opt(value)


def check_pending_change(ctx: Context, change: int) -> None:
    if change == 0:
        return
    row = ctx.db.execute("SELECT * FROM changes WHERE change=?", (change,)).fetchone()
    if row is None:
        raise CommandError(M.msg(M.CHANGE_UNKNOWN, change=f"Change {change}"))
    if row["status"] == "submitted":
        raise CommandError(M.msg(M.CHANGE_SUBMITTED, change=f"Change {change}"))
    if row["client"] != ctx.client:
        raise CommandError(M.msg(M.CHANGE_NOT_YOURS, change=f"Change {change}", client=row["client"]))


# --- workspace files -------------------------------------------------------------

def write_local(path: str, data: bytes, writable: bool) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
        os.unlink(path)
    with open(path, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o644 if writable else 0o444)


def remove_local(path: str) -> None:
    if os.path.lexists(path):
        os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
        os.unlink(path)
        # Helix's rmdir option is off by default: empty directories stay.


def make_writable(path: str, writable: bool = True) -> None:
    if os.path.exists(path):
        os.chmod(path, 0o644 if writable else 0o444)


def read_local(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def is_binary_type(ftype: str) -> bool:
    base = ftype.split("+", 1)[0]
    return base in ("binary", "ubinary", "apple", "resource")


def is_exclusive(ftype: str) -> bool:
    return "+" in ftype and "l" in ftype.split("+", 1)[1]


def detect_type(data: bytes | None) -> str:
    return "binary" if data is not None and b"\0" in data[:8192] else "text"


def decode_text(data: bytes) -> str | bytes:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def timestamp_now() -> int:
    return now()


def describe_files(rows: Iterable[Any]) -> dict[str, list[str]]:
    """Indexed file fields the way P4Python presents them: parallel lists."""
    out: dict[str, list[str]] = {"depotFile": [], "action": [], "type": [], "rev": [],
                                 "fileSize": [], "digest": []}
    for r in rows:
        out["depotFile"].append(r["depotFile"])
        out["action"].append(r["action"])
        out["type"].append(r["type"])
        out["rev"].append(str(r["rev"]))
        out["fileSize"].append(str(r["size"] or 0))
        out["digest"].append(r["digest"] or "")
    return out
