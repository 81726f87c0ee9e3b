"""``integrate`` and ``interchanges``: propagate changes between branches."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator

import P4 as _p4

from . import actions
from . import messages as M
from .cmd_open import open_file
from .core import (
    Context, check_pending_change, command, head_of, int_opt, is_deleted, is_exclusive,
    make_writable, parse_change_arg, parse_opts, write_local, remove_local,
)
from .errors import CommandError
from .history import (
    Base, changed_since_integrated, credited_revs, find_base, last_delete_before, range_label, rev_label,
    source_revs,
)
from .paths import FileArg, RevPoint, literal_prefix, map_line, parse_file_arg, split_view_line

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
    moved_from: str | None = None  # the branch view's target, when a move remapped it
    cherry_pick: bool = False  # a revision range left earlier revisions not integrated


def _mapping(ctx: Context, opts: dict[str, Any], rest: list[str]) -> tuple[_p4.Map, list[FileArg], FileArg | None]:
    """Source->target mapping, target-side restrictions, and the source revision range."""
    if opts.get("-b"):
        row = ctx.db.execute("SELECT spec FROM branches WHERE name=?", (opts["-b"],)).fetchone()
        if row is None:
            raise CommandError(M.msg(M.NO_SUCH_DOMAIN, type="Branch", name=opts["-b"]))
        view = json.loads(row["spec"]).get("View", [])
        lines = []
        for line in view:
            lhs, rhs = split_view_line(line)
            neg = lhs.startswith("-")
            lhs, rhs = lhs.lstrip("-+"), rhs.lstrip("-+")
            if opts.get("-r"):
                lhs, rhs = rhs, lhs
            lines.append(map_line([("-" if neg else "") + lhs, rhs]))
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
    return _p4.Map(src_path, dst_path), [], src


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
                     *, need_view: bool = True, before_readd: bool = False, skip_cherry_picked: bool = False
                     ) -> tuple[list[Plan], int, list[str | M.Message]]:
    """Files with revisions to integrate; also how many were already integrated,
    and the targets that fell outside the client view (or, as messages, the files a
    moved source could not be followed to). ``before_readd`` (-Di) also considers a
    re-added source's revisions before its delete."""
    lo, hi = _range(rev_arg)
    at_change = hi.n if hi is not None and hi.kind == "change" else None
    view = ctx.view() if need_view else None
    restrict_maps = [_p4.Map(d, d) for d in (_to_depot(ctx, a.path) for a in restrict if a.path)]
    plans: list[Plan] = []
    already = 0
    outside: list[str] = []
    refusals: list[Any] = []  # messages for files a move keeps from being integrated
    for lhs in mapping.lhs():
        lhs = lhs.replace('"', "")  # P4.Map quotes a path holding a space
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
            remap = actions.remap_moved_source(ctx, mapping, view, restrict_maps, source, src_row["action"],
                                               target, f"#{src_row['rev']}")
            if remap.refusal is not None:
                refusals.append(remap.refusal)
                continue
            if remap.target is None:
                already += 1
                continue
            target = remap.target
            if view is not None and view.to_client(target) is None:
                outside.append(target)
                continue
            credited = credited_revs(ctx, source, target)
            low = _low_bound(ctx, source, lo)
            if not before_readd:
                low = max(low, last_delete_before(ctx, source, src_row["rev"]))
            needed = [r["rev"] for r in source_revs(ctx, source, src_row["rev"])
                      if r["rev"] > low and r["rev"] not in credited]
            if not needed:
                already += 1
                continue
            t_head = head_of(ctx, target)
            if is_deleted(src_row["action"]) and (t_head is None or is_deleted(t_head["action"])):
                already += 1  # a deletion of something the target does not have
                continue
            if skip_cherry_picked:
                src_row = _first_run_end(ctx, source, needed, src_row)
            # A range that leaves earlier revisions out is a cherry-pick: only its own edits are merged.
            cherry = lo is not None and any(r["rev"] not in credited for r in source_revs(ctx, source, low)
                                            if r["rev"] > last_delete_before(ctx, source, low + 1))
            plans.append(Plan(source, target, src_row, min(needed) - 1, src_row["rev"], remap.moved_from, cherry))
    return plans, already, outside + refusals


def _first_run_end(ctx: Context, source: str, needed: list[int], head_row: Any) -> Any:
    """``-Rs``: stop before the first revision already integrated (cherry-picked), so
    the merge does not carry it again. Helix schedules one resolve per run of needed
    revisions; the sandbox schedules the first run and a later integrate the next."""
    run_end = needed[0]
    for rev in needed[1:]:
        if rev != run_end + 1:
            break
        run_end = rev
    if run_end == head_row["rev"]:
        return head_row
    return ctx.db.execute("SELECT * FROM revs WHERE depotFile=? AND rev=?", (source, run_end)).fetchone()


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
    plans, already, outside = plan_integration(ctx, mapping, restrict, rev_arg, before_readd=bool(opts.get("-Di")),
                                               skip_cherry_picked=bool(opts.get("-Rs")))
    refused = [m for m in outside if isinstance(m, M.Message)]
    outside = [t for t in outside if not isinstance(t, M.Message)]
    yield from refused
    display = rest[-1] if rest else (mapping.rhs()[0].replace('"', "") if mapping.count() else "")
    if not plans:
        if refused:
            return
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
        other = ctx.db.execute("SELECT 1 FROM working WHERE depotFile=? AND client != ?",
                               (target, ctx.client)).fetchone()
        if other:
            yield M.msg(M.INTEG_EXCLUSIVE, depotFile=target, action="integrate")
            return
    src = plan.src_row
    rec = {"depotFile": target, "clientFile": local, "workRev": "", "action": "",
           "fromFile": source, "startFromRev": rev_label(plan.start), "endFromRev": str(plan.end)}
    preview = bool(opts.get("-n"))
    if refusal := _deleted_refusal(ctx, plan, t_head, opts):
        yield refusal
        return
    if is_deleted(src["action"]) and opts.get("-Rd"):
        yield from _delete_resolve(ctx, plan, change, rec, local, t_head, w, preview)
        return
    if is_deleted(src["action"]):
        rec.update(workRev=str(t_head["rev"]), action="delete", otherAction="sync")
        if not preview:
            open_file(ctx, target, change, "delete", t_head["type"], t_head["rev"])
            _set_have(ctx, target, t_head["rev"])
            remove_local(local)
            _record(ctx, target, source, plan, None, "delete from")
        yield rec
        return
    if (t_head is None or is_deleted(t_head["action"])) and opts.get("-Rb"):
        rec.update(workRev=str((t_head["rev"] if t_head else 0) + 1), action="branch")
        if not preview:
            # Nothing is written to the workspace until the branch resolve takes theirs.
            open_file(ctx, target, change, "branch", src["type"], 0)
            _record(ctx, target, source, plan, None, "ignored")
            actions.schedule(ctx, actions.BRANCH, target, source, plan.start, plan.end, None, 0,
                             actions.Sides("branch", "ignore", None))
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
    if (opts.get("-Rs") or plan.cherry_pick) and plan.start:
        # A run after a cherry-pick (-Rs), or a cherry-pick itself: merged from the revision before it.
        base = Base(source, plan.start)
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
        actions.schedule_for_merge(ctx, target, source, plan.start, plan.end, base.file, base.rev, plan.moved_from)
    yield rec


def _delete_resolve(ctx: Context, plan: Plan, change: int, rec: dict[str, Any], local: str, t_head: Any,
                    w: Any, preview: bool) -> Iterator[Any]:
    """``-Rd``: the target stays, opened for integrate, until a delete resolve decides."""
    rec.update(workRev=str(t_head["rev"]), action="integrate" if w is None else w["action"])
    if not preview:
        if w is None:
            if ctx.db.execute("SELECT 1 FROM have WHERE client=? AND depotFile=? AND rev=?",
                              (ctx.client, plan.target, t_head["rev"])).fetchone() is None:
                write_local(local, ctx.store.get(t_head["digest"]), writable=True)
                _set_have(ctx, plan.target, t_head["rev"])
            open_file(ctx, plan.target, change, "integrate", t_head["type"], t_head["rev"])
            make_writable(local)
        _record(ctx, plan.target, plan.source, plan, None, "ignored")
        actions.schedule(ctx, actions.DELETE, plan.target, plan.source, plan.start, plan.end, None, 0,
                         actions.Sides("delete", "ignore", None))
    yield rec


def _deleted_refusal(ctx: Context, plan: Plan, t_head: Any, opts: dict[str, Any]) -> Any:
    """Helix's refusal to mix outstanding edits with a deleted file (MsgDm::IntegBadAncestor):
    source deleted and target edited needs -Ds; target deleted and source edited needs -Dt
    (unless the target's delete came from this source); -d allows both."""
    if t_head is None or opts.get("-d"):
        return None
    src_deleted, tgt_deleted = is_deleted(plan.src_row["action"]), is_deleted(t_head["action"])
    if (src_deleted and opts.get("-Rd")) or (tgt_deleted and opts.get("-Rb")):
        return None  # the delete or branch becomes a resolve a person decides: nothing is lost
    if src_deleted and not tgt_deleted and not opts.get("-Ds") \
            and changed_since_integrated(ctx, plan.source, plan.target, t_head["rev"]):
        action, flag = "delete", "-Ds"
    elif tgt_deleted and not src_deleted and not opts.get("-Dt") \
            and changed_since_integrated(ctx, plan.source, plan.target, t_head["rev"]):
        action, flag = "branch", "-Dt"
    else:
        return None
    return M.msg(M.INTEG_BAD_ANCESTOR, depotFile=plan.target, action=action, fromFile=plan.source,
                 fromRev=range_label(plan.start, plan.end), flag=flag)


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
