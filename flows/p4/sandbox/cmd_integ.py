"""``integrate`` and ``interchanges``: propagate changes between branches."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

import P4 as _p4

from . import messages as M
from .cmd_open import open_file
from .core import (
    Context, check_pending_change, command, head_of, int_opt, is_deleted, is_exclusive,
    make_writable, parse_change_arg, parse_opts, write_local, remove_local,
)
from .errors import CommandError
from .history import credited_revs, find_base, range_label, rev_label, source_revs
from .paths import FileArg, RevPoint, literal_prefix, parse_file_arg

_INTEG_OPTS = {"-n": False, "-c": True, "-b": True, "-r": False, "-i": False, "-f": False,
               "-d": False, "-v": False, "-s": True, "-m": True, "-q": False, "-t": False,
               "-Ds": False, "-Dt": False, "-Di": False, "-Rb": False, "-Rd": False, "-Rs": False,
               "-o": False, "-h": False}


@dataclass
class Plan:
    """One file's integration: what to open and what history it will record."""

    source: str
    target: str
    src_row: Any
    start: int  # exclusive
    end: int


def _mapping(ctx: Context, opts: dict[str, Any], rest: list[str]) -> tuple[_p4.Map, list[FileArg], FileArg | None]:
    """Source->target mapping, target-side restrictions, and the source revision range."""
    if opts.get("-b"):
        row = ctx.db.execute("SELECT spec FROM branches WHERE name=?", (opts["-b"],)).fetchone()
        if row is None:
            raise CommandError(M.msg(M.NO_SUCH_DOMAIN, type="Branch", name=opts["-b"]))
        view = json.loads(row["spec"]).get("View", [])
        lines = []
        for line in view:
            lhs, rhs = line.split()
            neg = lhs.startswith("-")
            lhs, rhs = lhs.lstrip("-+"), rhs.lstrip("-+")
            if opts.get("-r"):
                lhs, rhs = rhs, lhs
            lines.append(("-" if neg else "") + f"{lhs} {rhs}")
        restrict: list[FileArg] = []
        rev_arg: FileArg | None = None
        for raw in rest:
            arg = parse_file_arg(raw)
            if arg.hi is not None or arg.lo is not None:
                rev_arg = arg
            if arg.path:
                restrict.append(arg)
        if opts.get("-s"):
            src = parse_file_arg(opts["-s"])
            rev_arg = src if (src.hi or src.lo) else rev_arg
        return _p4.Map(lines), restrict, rev_arg
    if len(rest) != 2:
        raise CommandError(M.msg(M.usage("integrate")))
    src, dst = parse_file_arg(rest[0]), parse_file_arg(rest[1])
    src_path, dst_path = _to_depot(ctx, src.path), _to_depot(ctx, dst.path)
    if src_path == dst_path:
        raise CommandError(M.msg(M.usage("integrate")))
    return _p4.Map(f"{src_path} {dst_path}"), [], src


def _to_depot(ctx: Context, path: str) -> str:
    if path.startswith(f"//{ctx.client}/"):
        view = ctx.view()
        assert view is not None
        depot = view.to_depot(path)
        if depot:
            return depot
    return path


def _range(rev_arg: FileArg | None) -> tuple[RevPoint | None, RevPoint | None]:
    if rev_arg is None:
        return None, None
    return rev_arg.lo, rev_arg.hi


def plan_integration(ctx: Context, mapping: _p4.Map, restrict: list[FileArg], rev_arg: FileArg | None,
                     *, need_view: bool = True) -> tuple[list[Plan], int, list[str]]:
    """Files with revisions to integrate; also how many were already integrated,
    and the targets that fell outside the client view."""
    lo, hi = _range(rev_arg)
    at_change = hi.n if hi is not None and hi.kind == "change" else None
    view = ctx.view() if need_view else None
    restrict_maps = [_p4.Map(_to_depot(ctx, a.path)) for a in restrict if a.path]
    plans: list[Plan] = []
    already = 0
    outside: list[str] = []
    for lhs in mapping.lhs():
        if lhs.startswith("-"):
            continue
        prefix = literal_prefix(lhs.lstrip("+"))
        q = ("SELECT r.* FROM revs r JOIN (SELECT depotFile, MAX(rev) m FROM revs WHERE depotFile >= ? "
             "AND depotFile < ?" + (" AND change <= ?" if at_change is not None else "") +
             " GROUP BY depotFile) x ON r.depotFile=x.depotFile AND r.rev=x.m ORDER BY r.depotFile")
        params: list[Any] = [prefix, prefix + "\uffff"] + ([at_change] if at_change is not None else [])
        # Streamed, not fetchall(): memory follows the files to integrate, not the whole branch.
        for src_row in ctx.db.execute(q, params):
            source = src_row["depotFile"]
            target = mapping.translate(source)
            if target is None:
                continue
            if restrict_maps and not any(m.includes(target) for m in restrict_maps):
                continue
            if hi is not None and hi.kind == "rev":
                src_row = ctx.db.execute("SELECT * FROM revs WHERE depotFile=? AND rev<=? ORDER BY rev DESC LIMIT 1",
                                         (source, hi.n)).fetchone()
                if src_row is None:
                    continue
            if view is not None and view.to_client(target) is None:
                outside.append(target)
                continue
            credited = credited_revs(ctx, source, target)
            low = _low_bound(ctx, source, lo)
            needed = [r["rev"] for r in source_revs(ctx, source, src_row["rev"])
                      if r["rev"] > low and r["rev"] not in credited]
            if not needed:
                already += 1
                continue
            t_head = head_of(ctx, target)
            if is_deleted(src_row["action"]) and (t_head is None or is_deleted(t_head["action"])):
                already += 1  # a deletion of something the target does not have
                continue
            plans.append(Plan(source, target, src_row, min(needed) - 1, src_row["rev"]))
    return plans, already, outside


def _low_bound(ctx: Context, source: str, lo: RevPoint | None) -> int:
    """Revisions at or below this are outside an ``@a,@b`` / ``#a,#b`` range."""
    if lo is None:
        return 0
    if lo.kind == "rev":
        return lo.n - 1
    if lo.kind == "change":
        row = ctx.db.execute("SELECT MAX(rev) m FROM revs WHERE depotFile=? AND change < ?", (source, lo.n)).fetchone()
        return row["m"] or 0
    return 0


@command("integrate", "integ")
def cmd_integrate(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, _INTEG_OPTS, "integrate")
    view = ctx.view()
    assert view is not None
    change = parse_change_arg(opts["-c"]) if opts.get("-c") else 0
    check_pending_change(ctx, change)
    mapping, restrict, rev_arg = _mapping(ctx, opts, rest)
    plans, already, outside = plan_integration(ctx, mapping, restrict, rev_arg)
    display = rest[-1] if rest else (mapping.rhs()[0] if mapping.count() else "")
    if not plans:
        if already:
            yield M.msg(M.ALREADY_INTEGRATED, argc=display)
        elif outside:
            yield M.msg(M.NOT_IN_CLIENT_VIEW, argc=display)
        else:
            yield M.msg(M.NO_SUCH_FILES, argc=rest[0] if rest else display)
        return
    limit = int_opt(opts["-m"]) if opts.get("-m") else None
    for n, plan in enumerate(plans):
        if limit and n >= limit:
            break
        yield from _integrate_one(ctx, view, plan, change, opts)


def _integrate_one(ctx: Context, view: Any, plan: Plan, change: int, opts: dict[str, Any]) -> Iterator[Any]:
    target, source = plan.target, plan.source
    local = view.local_of(target)
    t_head = head_of(ctx, target)
    w = ctx.db.execute("SELECT * FROM working WHERE client=? AND depotFile=?", (ctx.client, target)).fetchone()
    if w is not None and w["action"] not in ("edit", "integrate"):
        yield M.msg(M.INTEG_BAD_ACTION, depotFile=target, action="integrate", badAction=w["action"])
        return
    if t_head is not None and is_exclusive(t_head["type"]):
        other = ctx.db.execute("SELECT 1 FROM working WHERE depotFile=? AND client != ?", (target, ctx.client)).fetchone()
        if other:
            yield M.msg(M.INTEG_EXCLUSIVE, depotFile=target, action="integrate")
            return
    src = plan.src_row
    rec = {"depotFile": target, "clientFile": local, "workRev": "", "action": "",
           "fromFile": source, "startFromRev": rev_label(plan.start), "endFromRev": str(plan.end)}
    preview = bool(opts.get("-n"))
    if is_deleted(src["action"]):
        rec.update(workRev=str(t_head["rev"]), action="delete", otherAction="sync")
        if not preview:
            open_file(ctx, target, change, "delete", t_head["type"], t_head["rev"])
            _set_have(ctx, target, t_head["rev"])
            remove_local(local)
            _record(ctx, target, source, plan, None, "delete from")
        yield rec
        return
    if t_head is None or is_deleted(t_head["action"]):
        rec.update(workRev=str((t_head["rev"] if t_head else 0) + 1), action="branch", otherAction="sync")
        if not preview:
            open_file(ctx, target, change, "branch", src["type"], 0)
            write_local(local, ctx.store.get(src["digest"]), writable=True)
            _record(ctx, target, source, plan, None, "branch from")
        yield rec
        return
    base = find_base(ctx, source, target, t_head["rev"])
    if base.baseless and not opts.get("-i"):
        yield M.msg(M.BASELESS, depotFile=target, action="integrate", fromFile=source,
                    fromRev=range_label(plan.start, plan.end))
        return
    have = ctx.db.execute("SELECT rev FROM have WHERE client=? AND depotFile=?", (ctx.client, target)).fetchone()
    rec.update(workRev=str(t_head["rev"]), action="integrate" if w is None else w["action"])
    if have is None or have["rev"] != t_head["rev"]:
        rec["otherAction"] = "sync"
    if not preview:
        if w is None:
            if have is None or have["rev"] != t_head["rev"]:
                # Helix brings the target to its head revision before scheduling the merge.
                write_local(local, ctx.store.get(t_head["digest"]), writable=True)
                _set_have(ctx, target, t_head["rev"])
            open_file(ctx, target, change, "integrate", t_head["type"], t_head["rev"])
            make_writable(local)
        _record(ctx, target, source, plan, base, None)
    yield rec


def _set_have(ctx: Context, depot: str, rev: int) -> None:
    ctx.db.execute("INSERT INTO have(client, depotFile, rev) VALUES(?,?,?) ON CONFLICT(client, depotFile) "
                   "DO UPDATE SET rev=excluded.rev", (ctx.client, depot, rev))


def _record(ctx: Context, target: str, source: str, plan: Plan, base: Any, how: str | None) -> None:
    """A pending integration: unresolved for merges, already 'resolved' for branch/delete."""
    ctx.db.execute(
        "INSERT INTO resolves(client, toFile, fromFile, startFromRev, endFromRev, baseFile, baseRev, resolved, how) "
        "VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT(client, toFile, fromFile) DO UPDATE SET "
        "startFromRev=MIN(startFromRev, excluded.startFromRev), endFromRev=excluded.endFromRev, "
        "baseFile=excluded.baseFile, baseRev=excluded.baseRev, resolved=excluded.resolved, how=excluded.how",
        (ctx.client, target, source, plan.start, plan.end, base.file if base else None,
         base.rev if base else 0, 1 if how else 0, how))


@command("interchanges")
def cmd_interchanges(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-b": True, "-r": False, "-l": False, "-f": False, "-t": False,
                                   "-u": True, "-s": True}, "interchanges")
    mapping, restrict, rev_arg = _mapping(ctx, opts, rest)
    plans, _, _ = plan_integration(ctx, mapping, restrict, rev_arg, need_view=False)
    changes: set[int] = set()
    for p in plans:
        for r in source_revs(ctx, p.source, p.end):
            if r["rev"] > p.start and r["rev"] not in credited_revs(ctx, p.source, p.target):
                changes.add(r["change"])
    if not changes:
        yield M.msg(M.ALREADY_INTEGRATED, argc=rest[-1] if rest else "")
        return
    for c in sorted(changes, reverse=True):
        row = ctx.db.execute("SELECT * FROM changes WHERE change=?", (c,)).fetchone()
        yield {"change": str(c), "time": str(row["time"]), "user": row["user"], "client": row["client"],
               "status": row["status"], "changeType": "public",
               "desc": row["desc"] if opts.get("-l") else row["desc"][:31]}
