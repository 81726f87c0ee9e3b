"""Opening files: add, edit, delete, revert, reopen."""
from __future__ import annotations

import os
from typing import Any, Iterator

from . import filetypes
from . import messages as M
from .core import (
    Context, change_label, check_pending_change, command, detect_type, have_rev, head_of, head_rows,
    is_deleted, is_exclusive, make_writable, opened_rows, parse_change_arg, parse_opts, read_local,
    remove_local, write_local,
)
from .errors import CommandError
from ..pathnames import escape, has_reserved
from .paths import FileArg, matcher_for, parse_file_arg

_OPEN_OPTS = {"-c": True, "-t": True, "-n": False, "-f": False, "-k": False, "-v": False,
              "-d": False, "-I": False}


def _target_change(ctx: Context, opts: dict[str, Any]) -> int:
    change = parse_change_arg(opts["-c"]) if opts.get("-c") else 0
    check_pending_change(ctx, change)
    return change


def _exclusive_conflict(ctx: Context, depot: str, ftype: str) -> Any:
    if not is_exclusive(ftype):
        return None
    return ctx.db.execute("SELECT * FROM working WHERE depotFile=? AND client != ?", (depot, ctx.client)).fetchone()


def _others(ctx: Context, depot: str) -> Iterator[M.Message]:
    for o in ctx.db.execute("SELECT * FROM working WHERE depotFile=? AND client != ?", (depot, ctx.client)):
        yield M.msg(M.ALSO_OPENED_BY, depotFile=depot, user=o["user"], client=o["client"])


def open_file(ctx: Context, depot: str, change: int, action: str, ftype: str, have: int) -> None:
    ctx.db.execute(
        "INSERT INTO working(client, depotFile, change, action, type, user, haveRev) VALUES(?,?,?,?,?,?,?) "
        "ON CONFLICT(client, depotFile) DO UPDATE SET change=excluded.change, action=excluded.action, "
        "type=excluded.type, user=excluded.user, haveRev=excluded.haveRev",
        (ctx.client, depot, change, action, ftype, ctx.user, have))


@command("add")
def cmd_add(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, _OPEN_OPTS, "add")
    if not rest:
        raise CommandError(M.msg(M.usage("add")))
    view = ctx.view()
    assert view is not None
    change = _target_change(ctx, opts)
    for raw in rest:
        arg = _add_arg(raw, force=bool(opts.get("-f")))
        if arg is None:
            yield M.msg(M.WILD_ADD)
            continue
        if arg.path.startswith("//"):
            client_file = arg.path if arg.path.startswith(f"//{ctx.client}/") else view.to_client(arg.path)
        else:
            local = os.path.normpath(os.path.join(ctx.cwd, arg.path))
            client_file = view.client_of_local(local)
            if client_file is None:
                yield M.msg(M.NOT_UNDER_ROOT, path=local, root=view.root)
                continue
        depot = view.to_depot(client_file) if client_file else None
        if depot is None:
            yield M.msg(M.NOT_IN_CLIENT_VIEW, argc=raw)
            continue
        if view.fold:
            depot = _stored_spelling(ctx, depot)
        local = view.local(client_file)
        data = read_local(local)
        if data is None:
            yield M.msg(M.NO_SUCH_FILES, argc=raw)
            continue
        w = ctx.db.execute("SELECT * FROM working WHERE client=? AND depotFile=?", (ctx.client, depot)).fetchone()
        head = head_of(ctx, depot)
        if w is not None:
            yield M.msg(M.CURRENTLY_OPENED, depotFile=depot, workRev=f"#{(head['rev'] if head else 0) + 1}",
                        action=w["action"])
            continue
        if head is not None and not is_deleted(head["action"]):
            yield M.msg(M.CANT_EXISTS, depotFile=depot, action="add")
            continue
        detected = head["type"] if head else detect_type(data)
        ftype = filetypes.apply(detected, opts["-t"]) if opts.get("-t") else detected
        if _exclusive_conflict(ctx, depot, ftype) is not None:
            # Per file, like Helix: the command goes on with the other files.
            yield M.msg(M.EXCLUSIVE_OPENED, depotFile=depot, action="add")
            continue
        work_rev = (head["rev"] if head else 0) + 1
        if not opts.get("-n"):
            open_file(ctx, depot, change, "add", ftype, 0)
        yield {"depotFile": depot, "clientFile": local, "workRev": str(work_rev), "action": "add",
               "type": ftype}
        yield from _others(ctx, depot)


def _add_arg(raw: str, *, force: bool) -> FileArg | None:
    """What ``add`` reads from an argument. With ``-f`` the name is literal and stored
    escaped (``@``->``%40``, ``#``->``%23``, ``%``->``%25``, ``*``->``%2A``), so a stored
    ``*`` is never a wildcard; without it a name with ``@ # % *`` is refused
    (MsgDm::WildAdd; Command Reference, p4 add: "To add files containing the
    characters @, #, *, and %, use the -f flag")."""
    if force:
        return FileArg(raw, escape(raw))
    if has_reserved(raw):
        return None
    return parse_file_arg(raw)


def _stored_spelling(ctx: Context, depot: str) -> str:
    """On a case-insensitive server a name is the file already known in any case."""
    row = ctx.db.execute("SELECT depotFile FROM revs WHERE lower(depotFile) = lower(?) UNION ALL "
                         "SELECT depotFile FROM working WHERE lower(depotFile) = lower(?) LIMIT 1",
                         (depot, depot)).fetchone()
    return row["depotFile"] if row else depot


def _open_existing(ctx: Context, args: list[str], action: str) -> Iterator[Any]:
    opts, rest = parse_opts(args, _OPEN_OPTS, action)
    if not rest:
        raise CommandError(M.msg(M.usage(action)))
    view = ctx.view()
    assert view is not None
    change = _target_change(ctx, opts)
    for raw in rest:
        arg, matcher = ctx.matcher(raw, need_client=True)
        found = False
        for prefix in matcher.prefixes:
            rows = ctx.db.execute("SELECT * FROM have WHERE client=? AND depotFile >= ? AND depotFile < ? "
                                  "ORDER BY depotFile", (ctx.client, prefix, prefix + "\uffff")).fetchall()
            for h in rows:
                depot = h["depotFile"]
                if not matcher(depot):
                    continue
                found = True
                yield from _open_one(ctx, view, depot, h["rev"], action, change, opts)
        if not found:
            yield _not_on_client(ctx, arg, raw)


def _not_on_client(ctx: Context, arg: Any, raw: str) -> M.Message:
    """Helix tells a depot path outside the view from a file merely not synced."""
    if raw.startswith("//") and not raw.startswith(f"//{ctx.client}/"):
        if next(iter(head_rows(ctx, matcher_for(arg, None, ctx.cwd))), None) is not None and \
                next(iter(head_rows(ctx, matcher_for(arg, ctx.view(), ctx.cwd, need_client=True))), None) is None:
            return M.msg(M.NOT_IN_CLIENT_VIEW, argc=raw)
    return M.msg(M.NOT_ON_CLIENT, argc=raw)


def _open_one(ctx: Context, view: Any, depot: str, have: int, action: str, change: int,
              opts: dict[str, Any]) -> Iterator[Any]:
    w = ctx.db.execute("SELECT * FROM working WHERE client=? AND depotFile=?", (ctx.client, depot)).fetchone()
    head = head_of(ctx, depot)
    if w is not None:
        if action == "delete" and w["action"] in ("move/add", "move/delete"):
            yield M.msg(M.DELETE_MOVED, clientFile=view.to_client(depot) or depot)
        elif w["action"] == action:
            yield M.msg(M.CURRENTLY_OPENED, depotFile=depot, workRev=f"#{have}", action=action)
        else:
            yield M.msg(M.BAD_ACTION, depotFile=depot, action=action, badAction=w["action"])
        return
    if head is not None and is_deleted(head["action"]):
        yield M.msg(M.NOT_ON_CLIENT, argc=depot)
        return
    ftype = filetypes.apply(head["type"], opts["-t"]) if opts.get("-t") else head["type"]
    if _exclusive_conflict(ctx, depot, ftype) is not None:
        # Per file, like Helix: the command goes on with the other files.
        yield M.msg(M.EXCLUSIVE_OPENED, depotFile=depot, action=action)
        return
    local = view.local_of(depot)
    if not opts.get("-n"):
        open_file(ctx, depot, change, action, ftype, have)
        if action == "edit":
            make_writable(local)
        elif not opts.get("-k"):
            remove_local(local)
    yield {"depotFile": depot, "clientFile": local, "workRev": str(have), "action": action, "type": ftype}
    yield from _others(ctx, depot)


@command("edit")
def cmd_edit(ctx: Context, args: list[str]) -> Iterator[Any]:
    yield from _open_existing(ctx, args, "edit")


@command("delete")
def cmd_delete(ctx: Context, args: list[str]) -> Iterator[Any]:
    yield from _open_existing(ctx, args, "delete")


def revert_file(ctx: Context, view: Any, w: Any, keep: bool = False) -> dict[str, Any]:
    """Undo one opened file; the workspace goes back to the have revision."""
    depot = w["depotFile"]
    local = view.local_of(depot) if view else None
    have = have_rev(ctx, depot)
    how = "reverted"
    if w["action"] in ("add", "branch", "move/add") and not have:
        # An added file stays in the workspace; a branched or moved-in one goes.
        how = "abandoned" if w["action"] == "add" else "deleted"
        if w["action"] != "add" and local and not keep:
            remove_local(local)
    elif local and not keep:
        row = ctx.db.execute("SELECT * FROM revs WHERE depotFile=? AND rev=?", (depot, have)).fetchone()
        if row is not None and not is_deleted(row["action"]):
            write_local(local, ctx.store.get(row["digest"]), writable=False)
        else:
            remove_local(local)
    ctx.db.execute("DELETE FROM working WHERE client=? AND depotFile=?", (ctx.client, depot))
    ctx.db.execute("DELETE FROM resolves WHERE client=? AND toFile=?", (ctx.client, depot))
    ctx.db.execute("DELETE FROM action_resolves WHERE client=? AND toFile=?", (ctx.client, depot))
    ctx.db.execute("DELETE FROM moved WHERE client=? AND depotFile=?", (ctx.client, depot))
    return {"depotFile": depot, "clientFile": local or "", "haveRev": str(have) if have else "none",
            "oldAction": w["action"], "action": how}


@command("revert")
def cmd_revert(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-a": False, "-n": False, "-k": False, "-c": True, "-w": False,
                                   "-C": True}, "revert")
    if not rest:
        raise CommandError(M.msg(M.usage("revert")))
    view = ctx.view()
    change = parse_change_arg(opts["-c"]) if opts.get("-c") else None
    for raw in rest:
        _, matcher = ctx.matcher(raw, need_client=False)
        found = False
        for w in _with_move_partners(ctx, list(opened_rows(ctx, matcher, change=change))):
            if opts.get("-a") and not _unchanged(ctx, view, w):
                continue
            found = True
            if opts.get("-n"):
                yield {"depotFile": w["depotFile"], "oldAction": w["action"], "action": "reverted"}
                continue
            yield revert_file(ctx, view, w, keep=bool(opts.get("-k")))
        if not found:
            yield M.msg(M.NOT_OPENED, argc=raw)


def _with_move_partners(ctx: Context, rows: list[Any]) -> list[Any]:
    """Helix reverts both halves of a move together: a matched half brings its partner."""
    names = {w["depotFile"] for w in rows}
    out = list(rows)
    for w in rows:
        p = ctx.db.execute("SELECT w.* FROM moved m JOIN working w ON w.client=m.client AND "
                           "w.depotFile=m.movedFile WHERE m.client=? AND m.depotFile=?",
                           (ctx.client, w["depotFile"])).fetchone()
        if p is not None and p["depotFile"] not in names:
            names.add(p["depotFile"])
            out.append(p)
    return out


def _unchanged(ctx: Context, view: Any, w: Any) -> bool:
    if w["action"] != "edit":
        return False
    row = ctx.db.execute("SELECT digest FROM revs WHERE depotFile=? AND rev=?",
                         (w["depotFile"], w["haveRev"])).fetchone()
    local = view.local_of(w["depotFile"]) if view else None
    data = read_local(local) if local else None
    return row is not None and data is not None and ctx.store.get(row["digest"]) == data


@command("reopen")
def cmd_reopen(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-c": True, "-t": True}, "reopen")
    if not rest:
        raise CommandError(M.msg(M.usage("reopen")))
    change = _target_change(ctx, opts) if opts.get("-c") else None
    view = ctx.view()
    for raw in rest:
        _, matcher = ctx.matcher(raw)
        found = False
        for w in list(opened_rows(ctx, matcher)):
            found = True
            new_change = w["change"] if change is None else change
            ftype = filetypes.apply(w["type"], opts["-t"]) if opts.get("-t") else w["type"]
            ctx.db.execute("UPDATE working SET change=?, type=? WHERE client=? AND depotFile=?",
                           (new_change, ftype, ctx.client, w["depotFile"]))
            yield {"depotFile": w["depotFile"], "clientFile": view.local_of(w["depotFile"]) if view else "",
                   "workRev": str(w["haveRev"]), "action": w["action"], "change": change_label(new_change),
                   "type": ftype}
        if not found:
            yield M.msg(M.NOT_OPENED, argc=raw)
