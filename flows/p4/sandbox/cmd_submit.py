"""``submit``: turn a pending changelist (or a shelf, ``-e``) into revisions."""
from __future__ import annotations

from typing import Any, Iterator

from . import forms
from . import messages as M
from .cmd_move import MOVE_ADD, partner, unpair
from .cmd_specs import NEW_CHANGE_DESC, change_row
from .core import (
    Context, check_pending_change, command, head_of, int_opt, is_deleted, make_writable, opened_rows,
    parse_opts, read_local, remove_local,
)
from .errors import CommandError
from .store import now


def _new_pending(ctx: Context, desc: str) -> int:
    change = ctx.store.next_change()
    ctx.db.execute("INSERT INTO changes(change, client, user, status, desc, time) VALUES(?,?,?,?,?,?)",
                   (change, ctx.client, ctx.user, "pending", desc, now()))
    return change


def _normal_desc(desc: str) -> str:
    if not desc.strip() or desc == NEW_CHANGE_DESC:
        raise CommandError(M.msg(M.MISSING_DESC))
    return desc if desc.endswith("\n") else desc + "\n"


@command("submit")
def cmd_submit(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-d": True, "-c": True, "-i": False, "-e": True, "-f": True,
                                   "-r": False, "-s": False, "--noretransfer": True}, "submit")
    if opts.get("-e"):
        yield from _submit_shelf(ctx, int_opt(opts["-e"]))
        return
    view = ctx.view()
    assert view is not None
    only: set[str] | None = None
    if opts.get("-c"):
        change = int_opt(opts["-c"])
        check_pending_change(ctx, change)
        desc = change_row(ctx, change)["desc"]
    elif opts.get("-i"):
        values = forms.coerce_input(forms.CHANGE, ctx.input)
        desc = _normal_desc(str(values.get("Description", "")))
        ident = str(values.get("Change", "new"))
        if ident == "new":
            change = 0
            if values.get("Files") is not None:
                only = {str(f).split("\t")[0].split("#")[0].strip() for f in values["Files"]}  # type: ignore[union-attr]
        else:
            change = int_opt(ident)
            check_pending_change(ctx, change)
            ctx.db.execute("UPDATE changes SET desc=? WHERE change=?", (desc, change))
    else:
        if not opts.get("-d"):
            raise CommandError(M.msg(M.usage("submit")))
        change, desc = 0, _normal_desc(opts["-d"])
    files = [w for w in opened_rows(ctx, change=change) if only is None or w["depotFile"] in only]
    if rest:
        matchers = [ctx.matcher(r)[1] for r in rest]
        files = [w for w in files if any(m(w["depotFile"]) for m in matchers)]
    if not files:
        raise CommandError(M.msg(M.NO_DEFAULT_SUBMIT if change == 0 else M.NO_FILES_TO_SUBMIT))
    if change and ctx.db.execute("SELECT 1 FROM shelved WHERE change=? LIMIT 1", (change,)).fetchone():
        raise CommandError(M.msg(M.SUBMIT_IS_SHELVED, change=f"Change {change}"))
    problems = list(_problems(ctx, view, files))
    if problems:
        # Like Helix: a failed submit of the default changelist leaves a numbered one.
        if change == 0:
            change = _new_pending(ctx, desc)
            for w in files:
                ctx.db.execute("UPDATE working SET change=? WHERE client=? AND depotFile=?",
                               (change, ctx.client, w["depotFile"]))
        yield from problems
        yield _failed(problems, M.msg(M.SUBMIT_FAILED, change=change))
        return
    yield from _commit(ctx, view, files, change, desc)


def _failed(problems: list[M.Message], closing: M.Message) -> M.Message:
    """Helix ends a failed submit with ONE error: the summary of what is wrong, then
    "Submit failed -- fix problems above then use 'p4 submit -c N'." on a second line."""
    kinds = {p.defn.name for p in problems}
    summary = [M.msg(d) for name, d in _SUMMARIES if name in kinds]
    if not summary:
        return closing
    return summary[0].then(*summary[1:], closing)


# Which per-file problem calls for which summary line, in Helix's order.
_SUMMARIES = (("MsgDm::OpenMustResolve", M.RESOLVE_OR_REVERT), ("MsgDm::SubmitMustResolve", M.MERGES_PENDING),
              (M.LOCAL_MISSING.name, M.BAD_TRANSFERS))


def _problems(ctx: Context, view: Any, files: list[Any]) -> Iterator[M.Message]:
    names = {w["depotFile"] for w in files}
    for w in files:
        depot = w["depotFile"]
        local = view.local_of(depot)
        pending = ctx.db.execute("SELECT * FROM resolves WHERE client=? AND toFile=? AND resolved=0",
                                 (ctx.client, depot)).fetchall()
        pending += ctx.db.execute("SELECT * FROM action_resolves WHERE client=? AND toFile=? AND resolved=0",
                                  (ctx.client, depot)).fetchall()
        for _ in pending:
            yield M.msg(M.MUST_RESOLVE, depotFile=local)
        other = partner(ctx, depot)
        if other is not None and other not in names:
            # Both halves of a move go in one submit.
            yield M.msg(M.MOVE_NO_MATCH, depotFile=depot, movedFile=other,
                        direction="from" if w["action"] == MOVE_ADD else "to")
        if w["action"] in ("edit", "delete", "integrate") and not pending:
            head = head_of(ctx, depot)
            if head is not None and head["rev"] > w["haveRev"]:
                yield M.msg(M.MUST_SYNC_RESOLVE, depotFile=local, workRev=f"#{head['rev']}")
        if not is_deleted(w["action"]) and read_local(local) is None:
            yield M.msg(M.LOCAL_MISSING, path=local)


def _commit(ctx: Context, view: Any, files: list[Any], change: int, desc: str) -> Iterator[Any]:
    counter = ctx.store.change_counter()
    final = change
    if change == 0:
        final = ctx.store.next_change()
        ctx.db.execute("INSERT INTO changes(change, client, user, status, desc, time) VALUES(?,?,?,?,?,?)",
                       (final, ctx.client, ctx.user, "pending", desc, now()))
    elif change < counter:
        # Helix renumbers a change submitted after newer ones were created.
        final = ctx.store.next_change()
        ctx.db.execute("UPDATE changes SET change=? WHERE change=?", (final, change))
    yield {"change": str(change or final), "locked": str(len(files))}
    allwrite = "allwrite" in (ctx.client_spec() or {}).get("Options", "").split()
    t = now()
    new_revs: dict[str, int] = {}
    moves: list[tuple[str, str]] = []  # (move/add file, its move/delete partner)
    for w in files:
        depot = w["depotFile"]
        local = view.local_of(depot)
        head = head_of(ctx, depot)
        rev = (head["rev"] if head else 0) + 1
        if is_deleted(w["action"]):
            digest, size = None, None
        else:
            digest, size = ctx.store.put(read_local(local) or b"")
        new_revs[depot] = rev
        if w["action"] == MOVE_ADD and partner(ctx, depot):
            moves.append((depot, partner(ctx, depot) or ""))
        ctx.db.execute("INSERT INTO revs(depotFile, rev, change, action, type, digest, size, time) "
                       "VALUES(?,?,?,?,?,?,?,?)", (depot, rev, final, w["action"], w["type"], digest, size, t))
        for r in ctx.db.execute("SELECT * FROM resolves WHERE client=? AND toFile=?", (ctx.client, depot)).fetchall():
            if r["fromFile"] != depot:
                ctx.db.execute("INSERT INTO integed(toFile, fromFile, startFromRev, endFromRev, startToRev, "
                               "endToRev, how, change) VALUES(?,?,?,?,?,?,?,?)",
                               (depot, r["fromFile"], r["startFromRev"], r["endFromRev"], rev - 1, rev,
                                r["how"] or "merge from", final))
        ctx.db.execute("DELETE FROM resolves WHERE client=? AND toFile=?", (ctx.client, depot))
        ctx.db.execute("DELETE FROM action_resolves WHERE client=? AND toFile=?", (ctx.client, depot))
        ctx.db.execute("DELETE FROM working WHERE client=? AND depotFile=?", (ctx.client, depot))
        if is_deleted(w["action"]):
            ctx.db.execute("DELETE FROM have WHERE client=? AND depotFile=?", (ctx.client, depot))
            remove_local(local)
        else:
            ctx.db.execute("INSERT INTO have(client, depotFile, rev) VALUES(?,?,?) ON CONFLICT(client, depotFile) "
                           "DO UPDATE SET rev=excluded.rev", (ctx.client, depot, rev))
            make_writable(local, allwrite)
        yield {"depotFile": depot, "rev": str(rev), "action": w["action"]}
    for added, deleted in moves:
        _record_move(ctx, added, deleted, new_revs, final)
        unpair(ctx, added)
    ctx.db.execute("UPDATE changes SET status='submitted', time=?, desc=?, client=?, user=? WHERE change=?",
                   (t, desc, ctx.client, ctx.user, final))
    if change and final != change:
        yield M.msg(M.SUBMIT_RENAMED, change=f"Change {change}", newChange=f"change {final}")
    yield {"submittedChange": str(final)}


def _record_move(ctx: Context, added: str, deleted: str, new_revs: dict[str, int], change: int) -> None:
    """The pair's history: the new name "moved from" the old one's whole line (#1 up to
    the move/delete), which filelog shows mirrored as "moved into" on the old name."""
    ctx.db.execute("INSERT INTO integed(toFile, fromFile, startFromRev, endFromRev, startToRev, endToRev, "
                   "how, change) VALUES(?,?,?,?,?,?,?,?)",
                   (added, deleted, 0, new_revs[deleted], new_revs[added] - 1, new_revs[added], "moved from", change))


def _submit_shelf(ctx: Context, change: int) -> Iterator[Any]:
    row = change_row(ctx, change)
    if row["status"] != "pending":
        raise CommandError(M.msg(M.CHANGE_SUBMITTED, change=f"Change {change}"))
    shelved = ctx.db.execute("SELECT * FROM shelved WHERE change=? ORDER BY depotFile", (change,)).fetchall()
    if not shelved:
        raise CommandError(M.msg(M.RESUBMIT_NO_FILES, change=f"change {change}"))
    if ctx.db.execute("SELECT 1 FROM working WHERE change=? LIMIT 1", (change,)).fetchone():
        raise CommandError(M.msg(M.CHANGE_HAS_FILES, change=f"Change {change}", count="some"),
                           M.msg(M.SUBMIT_SHELVED_FAILED, change=change))
    unresolved = ctx.db.execute("SELECT 1 FROM shelved_resolves WHERE change=? AND resolved=0", (change,)).fetchone()
    if unresolved:
        raise CommandError(M.msg(M.MERGES_PENDING).then(M.msg(M.SUBMIT_SHELVED_FAILED, change=change)))
    final = change if change >= ctx.store.change_counter() else ctx.store.next_change()
    if final != change:
        ctx.db.execute("UPDATE changes SET change=? WHERE change=?", (final, change))
    yield {"change": str(change), "locked": str(len(shelved))}
    t = now()
    new_revs: dict[str, int] = {}
    for s in shelved:
        head = head_of(ctx, s["depotFile"])
        rev = (head["rev"] if head else 0) + 1
        deleted = is_deleted(s["action"])
        new_revs[s["depotFile"]] = rev
        ctx.db.execute("INSERT INTO revs(depotFile, rev, change, action, type, digest, size, time) "
                       "VALUES(?,?,?,?,?,?,?,?)", (s["depotFile"], rev, final, s["action"], s["type"],
                                                   None if deleted else s["digest"], None if deleted else s["size"], t))
        for r in ctx.db.execute("SELECT * FROM shelved_resolves WHERE change=? AND toFile=?",
                                (change, s["depotFile"])).fetchall():
            if r["fromFile"] != s["depotFile"]:
                ctx.db.execute("INSERT INTO integed(toFile, fromFile, startFromRev, endFromRev, startToRev, "
                               "endToRev, how, change) VALUES(?,?,?,?,?,?,?,?)",
                               (s["depotFile"], r["fromFile"], r["startFromRev"], r["endFromRev"], rev - 1, rev,
                                r["how"] or "merge from", final))
        yield {"depotFile": s["depotFile"], "rev": str(rev), "action": s["action"]}
    for m in ctx.db.execute("SELECT * FROM shelved_moves WHERE change=?", (change,)).fetchall():
        added, deleted_file = m["depotFile"], m["movedFile"]
        if added in new_revs and deleted_file in new_revs and \
                next(s["action"] for s in shelved if s["depotFile"] == added) == MOVE_ADD:
            _record_move(ctx, added, deleted_file, new_revs, final)
    ctx.db.execute("DELETE FROM shelved WHERE change=?", (change,))
    ctx.db.execute("DELETE FROM shelved_resolves WHERE change=?", (change,))
    ctx.db.execute("DELETE FROM shelved_moves WHERE change=?", (change,))
    ctx.db.execute("UPDATE changes SET status='submitted', shelved=0, time=? WHERE change=?", (t, final))
    yield {"submittedChange": str(final)}
