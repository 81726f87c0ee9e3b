"""``move`` (alias ``rename``): a file opened for edit becomes a move/add + move/delete pair.

Helix (``p4 help move``, Command Reference "p4 move"): the source must be opened for
edit or add; the target is opened for ``move/add`` and the source for ``move/delete``,
each naming the other (``movedFile`` in ``opened``/``fstat``); the pair is submitted
and reverted together. Moving an added file just adds it under the new name, and
moving a ``move/add`` file again keeps the original ``move/delete`` as its partner.
"""
from __future__ import annotations

import os
from typing import Any, Iterator

import P4 as _p4

from . import filetypes
from . import messages as M
from .cmd_open import open_file
from .core import (
    Context, check_pending_change, command, have_rev, head_of, is_deleted, opened_rows, parse_change_arg, parse_opts,
)
from .errors import CommandError

MOVE_ADD, MOVE_DELETE = "move/add", "move/delete"


# --- the pairing of a pending move ---------------------------------------------------------

def partner(ctx: Context, depot: str) -> str | None:
    row = ctx.db.execute("SELECT movedFile FROM moved WHERE client=? AND depotFile=?",
                         (ctx.client, depot)).fetchone()
    return row["movedFile"] if row else None


def pair(ctx: Context, added: str, deleted: str) -> None:
    for a, b in ((added, deleted), (deleted, added)):
        ctx.db.execute("INSERT INTO moved(client, depotFile, movedFile) VALUES(?,?,?) "
                       "ON CONFLICT(client, depotFile) DO UPDATE SET movedFile=excluded.movedFile",
                       (ctx.client, a, b))


def unpair(ctx: Context, depot: str) -> None:
    ctx.db.execute("DELETE FROM moved WHERE client=? AND (depotFile=? OR movedFile=?)",
                   (ctx.client, depot, depot))


def rekey_pending(ctx: Context, old: str, new: str) -> None:
    """Scheduled resolves follow a file to its new name."""
    ctx.db.execute("UPDATE resolves SET toFile=? WHERE client=? AND toFile=?", (new, ctx.client, old))
    ctx.db.execute("UPDATE action_resolves SET toFile=? WHERE client=? AND toFile=?", (new, ctx.client, old))


def rename_local(view: Any, old: str, new: str) -> None:
    src, dst = view.local_of(old), view.local_of(new)
    if src and dst and os.path.lexists(src):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(src, dst)
        os.chmod(dst, 0o644)


def move_opened(ctx: Context, view: Any, w: Any, target: str, ftype: str, *, keep_local: bool) -> str:
    """Move one opened file to ``target``; returns the action ``target`` is opened for."""
    source = w["depotFile"]
    if w["action"] == "add":
        action, origin = "add", None
    elif w["action"] == MOVE_ADD:
        action, origin = MOVE_ADD, partner(ctx, source)
    else:
        action, origin = MOVE_ADD, source
    if origin != source:
        ctx.db.execute("DELETE FROM working WHERE client=? AND depotFile=?", (ctx.client, source))
        unpair(ctx, source)
    else:
        ctx.db.execute("UPDATE working SET action=? WHERE client=? AND depotFile=?",
                       (MOVE_DELETE, ctx.client, source))
    open_file(ctx, target, w["change"], action, ftype, 0)
    if origin is not None:
        pair(ctx, target, origin)
    rekey_pending(ctx, source, target)
    if not keep_local:
        rename_local(view, source, target)
    return action


# --- the command ------------------------------------------------------------------------------

def _depot_of(ctx: Context, view: Any, raw: str) -> str | None:
    if raw.startswith(f"//{ctx.client}/"):
        return view.to_depot(raw)
    if raw.startswith("//"):
        return raw
    client_file = view.client_of_local(os.path.normpath(os.path.join(ctx.cwd, raw)))
    return view.to_depot(client_file) if client_file else None


@command("move", "rename")
def cmd_move(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-c": True, "-f": False, "-k": False, "-n": False, "-t": True,
                                   "-r": False}, "move")
    if len(rest) != 2:
        raise CommandError(M.msg(M.usage("move")))
    view = ctx.view()
    assert view is not None
    change = parse_change_arg(opts["-c"]) if opts.get("-c") else None
    if change is not None:
        check_pending_change(ctx, change)
    src_pattern, dst_pattern = _depot_of(ctx, view, rest[0]), _depot_of(ctx, view, rest[1])
    if src_pattern is None or dst_pattern is None:
        yield M.msg(M.NOT_IN_CLIENT_VIEW, argc=rest[0] if src_pattern is None else rest[1])
        return
    mapping = _p4.Map(f"{src_pattern} {dst_pattern}")
    _, matcher = ctx.matcher(rest[0], need_client=True)
    opened = list(opened_rows(ctx, matcher))
    if not opened:
        # Helix names the argument: the source must be opened for edit (or add) first.
        yield M.msg(M.NOT_OPENED_FOR_EDIT, argc=rest[0])
        return
    for w in opened:
        yield from _move_one(ctx, view, w, mapping.translate(w["depotFile"]), change, opts)


def _move_one(ctx: Context, view: Any, w: Any, target: str | None, change: int | None,
              opts: dict[str, Any]) -> Iterator[Any]:
    source = w["depotFile"]
    if w["action"] not in ("edit", "add", MOVE_ADD):
        yield M.msg(M.MOVE_BAD_ACTION, depotFile=source, badAction=w["action"])
        return
    if target is None or view.to_client(target) is None:
        yield M.msg(M.NOT_IN_CLIENT_VIEW, argc=target or source)
        return
    head = head_of(ctx, target)
    taken = ctx.db.execute("SELECT 1 FROM working WHERE client=? AND depotFile=?", (ctx.client, target)).fetchone()
    refusal = _existing_target(ctx, view, target, head, bool(taken), bool(opts.get("-f")))
    if refusal is not None:
        yield refusal
        return
    ftype = filetypes.apply(w["type"], opts["-t"]) if opts.get("-t") else w["type"]
    action = w["action"] if w["action"] == "add" else MOVE_ADD
    if not opts.get("-n"):
        if change is not None:
            ctx.db.execute("UPDATE working SET change=? WHERE client=? AND depotFile=?", (change, ctx.client, source))
            w = ctx.db.execute("SELECT * FROM working WHERE client=? AND depotFile=?", (ctx.client, source)).fetchone()
        action = move_opened(ctx, view, w, target, ftype, keep_local=bool(opts.get("-k")))
    work_rev = (head["rev"] if head else 0) + 1
    yield {"depotFile": target, "clientFile": view.local_of(target), "workRev": str(work_rev),
           "action": action, "fromFile": source, "startFromRev": _rev(w["haveRev"]),
           "endFromRev": _rev(w["haveRev"]), "type": ftype}


def _existing_target(ctx: Context, view: Any, target: str, head: Any, taken: bool, force: bool) -> M.Message | None:
    """A live target is refused unless ``-f`` and synced (Command Reference "p4 move": -f
    "forces a move to an existing target file. The file must be synced and not opened")."""
    if taken:
        return M.msg(M.MOVE_EXISTS, depotFile=target)
    if head is None or is_deleted(head["action"]):
        return None
    synced = have_rev(ctx, target) == head["rev"]
    if force:
        return None if synced else M.msg(M.MOVE_NOT_SYNCED, depotFile=target)
    if synced:
        return M.msg(M.MOVE_NEED_FORCE, clientFile=view.to_client(target) or target)
    return M.msg(M.MOVE_EXISTS, depotFile=target)


def _rev(n: int) -> str:
    return str(n) if n else "none"
