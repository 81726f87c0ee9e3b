"""``shelve`` and ``unshelve``: park opened files on the server, and bring them back."""
from __future__ import annotations

from typing import Any, Iterator

from . import forms
from . import messages as M
from .cmd_open import open_file, revert_file
from .cmd_specs import change_row
from .cmd_submit import _new_pending, _normal_desc
from .core import (
    Context, check_pending_change, command, head_of, int_opt, is_deleted, opened_rows, parse_change_arg,
    parse_opts, read_local, remove_local, write_local,
)
from .errors import CommandError


# Actions on a file the workspace has (their shelved revision is the have revision).
_FROM_HAVE = ("edit", "delete", "integrate", "move/delete")


def _mark(ctx: Context, change: int) -> None:
    has = ctx.db.execute("SELECT 1 FROM shelved WHERE change=? LIMIT 1", (change,)).fetchone() is not None
    ctx.db.execute("UPDATE changes SET shelved=? WHERE change=?", (1 if has else 0, change))


@command("shelve")
def cmd_shelve(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-c": True, "-f": False, "-r": False, "-d": False, "-i": False,
                                   "-a": True, "-p": False}, "shelve")
    if opts.get("-r") and rest:
        # -r replaces the whole shelf with the change's opened files: no file arguments.
        raise CommandError(M.msg(M.WRONG_ARGS).then(M.msg(M.USAGE_SHELVE_REPLACE)))
    if opts.get("-d"):
        if not opts.get("-c"):
            raise CommandError(M.msg(M.usage("shelve")))
        yield from _delete_shelf(ctx, int_opt(opts["-c"]), rest)
        return
    view = ctx.view()
    assert view is not None
    only: set[str] | None = None
    if opts.get("-i"):
        values = forms.coerce_input(forms.CHANGE, ctx.input)
        desc = _normal_desc(str(values.get("Description", "")))
        ident = str(values.get("Change", "new"))
        if ident == "new":
            change = _new_pending(ctx, desc)
            listed = values.get("Files")
            for w in opened_rows(ctx, change=0):
                if listed is None or w["depotFile"] in {str(f).split("\t")[0] for f in listed}:  # type: ignore[union-attr]
                    ctx.db.execute("UPDATE working SET change=? WHERE client=? AND depotFile=?",
                                   (change, ctx.client, w["depotFile"]))
        else:
            change = int_opt(ident)
            check_pending_change(ctx, change)
            ctx.db.execute("UPDATE changes SET desc=? WHERE change=?", (desc, change))
    elif opts.get("-c"):
        change = int_opt(opts["-c"])
        check_pending_change(ctx, change)
    else:
        raise CommandError(M.msg(M.usage("shelve")))
    files = list(opened_rows(ctx, change=change))
    if rest:
        matchers = [ctx.matcher(r)[1] for r in rest]
        files = [w for w in files if any(m(w["depotFile"]) for m in matchers)]
        only = {w["depotFile"] for w in files}
    if not files:
        yield M.msg(M.NO_FILES_TO_SHELVE)
        return
    existing = {r["depotFile"] for r in ctx.db.execute("SELECT depotFile FROM shelved WHERE change=?", (change,))}
    problems: list[M.Message] = []
    for w in files:
        if w["depotFile"] in existing and not (opts.get("-f") or opts.get("-r")):
            problems.append(M.msg(M.SHELF_EXISTS, depotFile=w["depotFile"]))
        unresolved = ctx.db.execute("SELECT * FROM resolves WHERE client=? AND toFile=? AND resolved=0",
                                    (ctx.client, w["depotFile"])).fetchone() or ctx.db.execute(
            "SELECT * FROM action_resolves WHERE client=? AND toFile=? AND resolved=0",
            (ctx.client, w["depotFile"])).fetchone()
        if unresolved is not None:
            problems.append(M.msg(M.SHELVE_NEEDS_RESOLVE, depotFile=w["depotFile"], file=unresolved["fromFile"],
                                  srev=f"#{unresolved['endFromRev']}"))
        if not is_deleted(w["action"]) and read_local(view.local_of(w["depotFile"])) is None:
            problems.append(M.msg(M.LOCAL_MISSING, path=view.local_of(w["depotFile"])))
    if problems:
        raise CommandError(*problems, M.msg(M.SHELVE_ABORTED, change=change))
    if opts.get("-r"):
        ctx.db.execute("DELETE FROM shelved WHERE change=?", (change,))
        ctx.db.execute("DELETE FROM shelved_resolves WHERE change=?", (change,))
        ctx.db.execute("DELETE FROM shelved_moves WHERE change=?", (change,))
    yield {"change": str(change)}
    for w in files:
        depot = w["depotFile"]
        if is_deleted(w["action"]):
            digest, size = None, None
        else:
            digest, size = ctx.store.put(read_local(view.local_of(depot)) or b"")
        head = head_of(ctx, depot)
        rev = w["haveRev"] if w["action"] in _FROM_HAVE else (head["rev"] if head else 0) + 1
        # A move's pairing is shelved with it, so unshelve and submit -e keep the pair.
        ctx.db.execute("DELETE FROM shelved_moves WHERE change=? AND depotFile=?", (change, depot))
        ctx.db.execute("INSERT INTO shelved_moves(change, depotFile, movedFile) SELECT ?, depotFile, movedFile "
                       "FROM moved WHERE client=? AND depotFile=?", (change, ctx.client, depot))
        ctx.db.execute("INSERT OR REPLACE INTO shelved(change, depotFile, action, type, digest, size, rev) "
                       "VALUES(?,?,?,?,?,?,?)", (change, depot, w["action"], w["type"], digest, size, rev))
        ctx.db.execute("DELETE FROM shelved_resolves WHERE change=? AND toFile=?", (change, depot))
        ctx.db.execute("INSERT INTO shelved_resolves(change, toFile, fromFile, startFromRev, endFromRev, baseFile, "
                       "baseRev, resolved, how) SELECT ?, toFile, fromFile, startFromRev, endFromRev, baseFile, "
                       "baseRev, resolved, how FROM resolves WHERE client=? AND toFile=?", (change, ctx.client, depot))
        yield {"depotFile": depot, "rev": str(rev), "action": w["action"]}
    del only
    _mark(ctx, change)


def _delete_shelf(ctx: Context, change: int, rest: list[str]) -> Iterator[Any]:
    row = change_row(ctx, change)
    if row["client"] != ctx.client:
        raise CommandError(M.msg(M.CHANGE_NOT_YOURS, change=f"Change {change}", client=row["client"]))
    rows = ctx.db.execute("SELECT depotFile FROM shelved WHERE change=?", (change,)).fetchall()
    if rest:
        matchers = [ctx.matcher(r)[1] for r in rest]
        rows = [r for r in rows if any(m(r["depotFile"]) for m in matchers)]
    if not rows:
        raise CommandError(M.msg(M.NO_SHELVE_DELETE))
    for r in rows:
        ctx.db.execute("DELETE FROM shelved WHERE change=? AND depotFile=?", (change, r["depotFile"]))
        ctx.db.execute("DELETE FROM shelved_resolves WHERE change=? AND toFile=?", (change, r["depotFile"]))
        ctx.db.execute("DELETE FROM shelved_moves WHERE change=? AND depotFile=?", (change, r["depotFile"]))
    left = ctx.db.execute("SELECT COUNT(*) c FROM shelved WHERE change=?", (change,)).fetchone()["c"]
    _mark(ctx, change)
    yield M.msg(M.SHELVE_DELETED, change=change, count=left or None)


@command("unshelve")
def cmd_unshelve(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-s": True, "-f": False, "-c": True, "-n": False, "-b": True}, "unshelve")
    if not opts.get("-s"):
        raise CommandError(M.msg(M.usage("unshelve")))
    source = int_opt(opts["-s"])
    row = change_row(ctx, source)
    view = ctx.view()
    assert view is not None
    target = parse_change_arg(opts["-c"]) if opts.get("-c") else 0
    check_pending_change(ctx, target)
    shelved = ctx.db.execute("SELECT * FROM shelved WHERE change=? ORDER BY depotFile", (source,)).fetchall()
    if rest:
        matchers = [ctx.matcher(r)[1] for r in rest]
        shelved = [s for s in shelved if any(m(s["depotFile"]) for m in matchers)]
    if not shelved:
        yield M.msg(M.NOTHING_TO_UNSHELVE, argc=f"@={source}") if rest else M.msg(M.CHANGE_NOT_SHELVED, change=source)
        return
    del row
    for s in shelved:
        depot = s["depotFile"]
        local = view.local_of(depot)
        if local is None:
            yield M.msg(M.NOT_IN_CLIENT_VIEW, argc=depot)
            continue
        w = ctx.db.execute("SELECT * FROM working WHERE client=? AND depotFile=?", (ctx.client, depot)).fetchone()
        if w is not None:
            if not opts.get("-f"):
                yield M.msg(M.UNSHELVE_BAD_ACTION, depotFile=depot, badAction=w["action"])
                continue
            revert_file(ctx, view, w)
        if opts.get("-n"):
            yield {"depotFile": depot, "rev": str(s["rev"]), "action": s["action"]}
            continue
        have = s["rev"] if s["action"] in _FROM_HAVE else 0
        open_file(ctx, depot, target, s["action"], s["type"], have)
        if have:
            ctx.db.execute("INSERT INTO have(client, depotFile, rev) VALUES(?,?,?) ON CONFLICT(client, depotFile) "
                           "DO UPDATE SET rev=excluded.rev", (ctx.client, depot, have))
        if is_deleted(s["action"]):
            remove_local(local)
        else:
            write_local(local, ctx.store.get(s["digest"]), writable=True)
        ctx.db.execute("DELETE FROM resolves WHERE client=? AND toFile=?", (ctx.client, depot))
        ctx.db.execute("INSERT INTO resolves(client, toFile, fromFile, startFromRev, endFromRev, baseFile, baseRev, "
                       "resolved, how) SELECT ?, toFile, fromFile, startFromRev, endFromRev, baseFile, baseRev, "
                       "resolved, how FROM shelved_resolves WHERE change=? AND toFile=?", (ctx.client, source, depot))
        ctx.db.execute("INSERT OR REPLACE INTO moved(client, depotFile, movedFile) SELECT ?, depotFile, movedFile "
                       "FROM shelved_moves WHERE change=? AND depotFile=?", (ctx.client, source, depot))
        yield {"depotFile": depot, "rev": str(s["rev"]), "action": s["action"]}
