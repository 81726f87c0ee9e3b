"""Action resolves: filename (move), filetype, delete and branch, as Helix schedules them.

``p4 integrate`` schedules, next to the content merge, one resolve per non-content
difference (Command Reference "p4 resolve": "Content and non-content changes are
resolved separately"): a *filetype* resolve when the source's type changed since the
base and differs from the target's, a *move* (filename) resolve when the source was
moved and the target is remapped to the source's old name, and with ``-Rd``/``-Rb``
*delete*/*branch* resolves instead of deleting/branching outright.

``p4 resolve`` hands each action resolve to ``Resolver.actionResolve(merge_info)``
(P4Python ``PythonClientUser::Resolve(ClientResolveA*)``) with an object shaped like
P4Python's ``P4API.P4ActionMergeData``: ``merge_action``, ``yours_action``,
``their_action``, ``type``, ``merge_hint``, ``info`` (the tagged resolve record), texts
from Helix's messages (``MsgDm::ResolveFiletype`` "Filetype resolve",
``MsgDm::ResolveFiletypeAction`` "(%type%)", ``MsgDm::ResolveMove`` "Filename resolve", ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import P4 as _p4

from . import filetypes
from . import messages as M
from .cmd_move import move_opened
from .core import Context, remove_local, write_local
from .errors import CommandError
from .history import range_label

FILETYPE, MOVE, DELETE, BRANCH = "filetype", "move", "delete", "branch"
# resolveFlag: the letter of the ``resolve -A<flags>`` option that selects the kind.
FLAGS = {"content": "c", FILETYPE: "t", MOVE: "m", DELETE: "d", BRANCH: "b"}
# Within one file: the name first (later resolves follow the file), content last.
ORDER = {MOVE: 0, FILETYPE: 1, DELETE: 2, BRANCH: 3, "content": 4}
ANSWERS = ("at", "ay", "am", "s")
HOW = {"at": "copy from", "am": "merge from", "ay": "ignored"}


@dataclass(frozen=True)
class Sides:
    """What a resolve chooses between: theirs, yours, and the base they both came from."""

    theirs: str
    yours: str
    base: str | None


def schedule(ctx: Context, kind: str, target: str, source: str, start: int, end: int,
             base_file: str | None, base_rev: int, sides: Sides) -> None:
    ctx.db.execute(
        "INSERT INTO action_resolves(client, toFile, kind, fromFile, startFromRev, endFromRev, baseFile, baseRev, "
        "theirs, yours, base, resolved, how) VALUES(?,?,?,?,?,?,?,?,?,?,?,0,NULL) "
        "ON CONFLICT(client, toFile, kind) DO UPDATE SET fromFile=excluded.fromFile, "
        "startFromRev=MIN(startFromRev, excluded.startFromRev), endFromRev=excluded.endFromRev, "
        "baseFile=excluded.baseFile, baseRev=excluded.baseRev, theirs=excluded.theirs, yours=excluded.yours, "
        "base=excluded.base, resolved=0, how=NULL",
        (ctx.client, target, kind, source, start, end, base_file, base_rev, sides.theirs, sides.yours, sides.base))


def filetype_sides(ctx: Context, source_type: str, target_type: str, base_file: str | None,
                   base_rev: int) -> Sides | None:
    """A filetype resolve is due when the source changed its type since the base and
    the target's type is not already the same."""
    base_type = None
    if base_file is not None:
        row = ctx.db.execute("SELECT type FROM revs WHERE depotFile=? AND rev=?", (base_file, base_rev)).fetchone()
        base_type = row["type"] if row else None
    if source_type == target_type or source_type == base_type:
        return None
    return Sides(source_type, target_type, base_type)


# --- resolve -------------------------------------------------------------------------------------

class ActionMergeData:
    """What P4Python hands ``Resolver.actionResolve``: the same attribute names as
    ``P4API.P4ActionMergeData`` (see P4Python's ``P4API.pyi`` and ``p4test.py`` testResolve)."""

    def __init__(self, type_: str, merge_action: str, yours_action: str, their_action: str,
                 hint: str, info: dict[str, Any]) -> None:
        self.type, self.merge_action = type_, merge_action
        self.yours_action, self.their_action = yours_action, their_action
        self.merge_hint, self.info = hint, info

    def __str__(self) -> str:
        return (f"P4ActionMergeData\n\tmergeAction: {self.merge_action}\n\ttheirAction: {self.their_action}\n"
                f"\tyoursAction: {self.yours_action}\n\ttype: {self.type}\n\thint: {self.merge_hint}\n")


def pending(ctx: Context, include_resolved: bool, change: int | None) -> list[Any]:
    q = ("SELECT a.*, a.rowid rid, w.type wtype FROM action_resolves a JOIN working w ON w.client=a.client "
         "AND w.depotFile=a.toFile WHERE a.client=?" + ("" if include_resolved else " AND a.resolved=0"))
    params: list[Any] = [ctx.client]
    if change is not None:
        q += " AND w.change=?"
        params.append(change)
    return ctx.db.execute(q + " ORDER BY a.toFile", params).fetchall()


def blocks_content(ctx: Context, target: str) -> bool:
    """A target waiting on a delete or branch resolve has no content to merge yet."""
    return ctx.db.execute("SELECT 1 FROM action_resolves WHERE client=? AND toFile=? AND kind IN (?, ?)",
                          (ctx.client, target, DELETE, BRANCH)).fetchone() is not None


def record(view: Any, a: Any) -> dict[str, Any]:
    return {"clientFile": view.local_of(a["toFile"]), "fromFile": a["fromFile"],
            "startFromRev": "none" if a["startFromRev"] <= 0 else str(a["startFromRev"]),
            "endFromRev": str(a["endFromRev"]), "resolveType": a["kind"], "resolveFlag": FLAGS[a["kind"]]}


def resolve_one(ctx: Context, view: Any, rowid: int, mode: str | None, preview: bool) -> Iterator[Any]:
    a = ctx.db.execute("SELECT a.*, a.rowid rid FROM action_resolves a WHERE a.rowid=?", (rowid,)).fetchone()
    if a is None:
        return
    info = record(view, a)
    yield info
    if preview:
        return
    hint, conflict = _hint(ctx, a)
    answer = _decide(ctx, a, mode, hint, conflict, info)
    client_file = view.to_client(a["toFile"]) or a["toFile"]
    if answer == "s":
        yield M.msg(M.RESOLVE_SKIPPED, toFile=client_file)
        return
    if answer == "q":
        raise ResolveQuit()
    target = _apply(ctx, view, a, answer)
    how = HOW[answer]
    ctx.db.execute("UPDATE action_resolves SET resolved=1, how=? WHERE rowid=?", (how, rowid))
    local = view.local_of(target)
    if a["kind"] == MOVE:
        yield M.msg(M.RESOLVED_MOVE, localPath=local, how=how, fromFile=a["fromFile"])
    else:
        yield M.msg(M.RESOLVED_ACTION, localPath=local, resolveType=a["kind"], fromFile=a["fromFile"],
                    fromRev=range_label(a["startFromRev"], a["endFromRev"]))


class ResolveQuit(Exception):
    """The resolver answered ``q``: P4Python stops the resolve there (CMS_QUIT)."""


def _hint(ctx: Context, a: Any) -> tuple[str, bool]:
    """The auto-resolve answer (P4Python's ``merge_hint``) and whether both sides changed."""
    theirs, yours, base = a["theirs"], a["yours"], a["base"]
    if a["kind"] in (FILETYPE, MOVE):
        if base is None or yours == base:
            return "at", False
        if theirs == base:
            return "ay", False
        return "am", True
    if a["kind"] == DELETE:
        # Deleting a target edited since the base would lose that edit: not automatic.
        return ("at", False) if _target_unchanged_since_base(ctx, a) else ("ay", True)
    return "at", False


def _target_unchanged_since_base(ctx: Context, a: Any) -> bool:
    row = ctx.db.execute("SELECT MAX(endToRev) m FROM integed WHERE toFile=? AND fromFile=?",
                         (a["toFile"], a["fromFile"])).fetchone()
    last_in = row["m"] if row and row["m"] else None
    head = ctx.db.execute("SELECT MAX(rev) m FROM revs WHERE depotFile=?", (a["toFile"],)).fetchone()["m"]
    if last_in is None:
        first = ctx.db.execute("SELECT MIN(rev) m FROM revs WHERE depotFile=?", (a["toFile"],)).fetchone()["m"]
        return head == first
    return head == last_in


def _decide(ctx: Context, a: Any, mode: str | None, hint: str, conflict: bool, info: dict[str, Any]) -> str:
    if mode == "-at":
        return "at"
    if mode == "-ay":
        return "ay"
    if mode in ("-am", "-as"):
        return "s" if conflict else hint
    if mode == "-af":
        return hint
    resolver = ctx.resolver if ctx.resolver is not None else _p4.Resolver()
    answer = resolver.actionResolve(_merge_data(a, hint, info))
    if answer not in ANSWERS + ("q",):
        raise CommandError(M.msg(M.RESOLVE_BAD_ANSWER, answer=answer))
    if answer == "am" and a["kind"] in (DELETE, BRANCH):
        return hint  # delete and branch resolves take yours or theirs only
    return answer


def _merge_data(a: Any, hint: str, info: dict[str, Any]) -> ActionMergeData:
    kind = a["kind"]
    if kind == FILETYPE:
        merged = filetypes.merge(a["base"] or a["yours"], a["theirs"], a["yours"])

        def ft(t: str) -> str:
            return M.msg(M.RESOLVE_FILETYPE_ACTION, type=t).text
        return ActionMergeData(M.msg(M.RESOLVE_FILETYPE).text, ft(merged), ft(a["yours"]), ft(a["theirs"]),
                               hint, info)
    if kind == MOVE:
        def path(p: str) -> str:
            return M.msg(M.RESOLVE_MOVE_ACTION, depotPath=p).text
        return ActionMergeData(M.msg(M.RESOLVE_MOVE).text, path(a["theirs"]), path(a["yours"]),
                               path(a["theirs"]), hint, info)
    if kind == DELETE:
        return ActionMergeData(M.msg(M.RESOLVE_DELETE).text, "", M.msg(M.RESOLVE_DELETE_YOURS).text,
                               M.msg(M.RESOLVE_DELETE_THEIRS).text, hint, info)
    return ActionMergeData(M.msg(M.RESOLVE_BRANCH).text, "", M.msg(M.RESOLVE_BRANCH_YOURS).text,
                           M.msg(M.RESOLVE_BRANCH_THEIRS).text, hint, info)


def _apply(ctx: Context, view: Any, a: Any, answer: str) -> str:
    """Carry out the chosen side; returns the target's depot path afterwards."""
    target, kind = a["toFile"], a["kind"]
    w = ctx.db.execute("SELECT * FROM working WHERE client=? AND depotFile=?", (ctx.client, target)).fetchone()
    if kind == FILETYPE:
        chosen = {"at": a["theirs"], "ay": a["yours"],
                  "am": filetypes.merge(a["base"] or a["yours"], a["theirs"], a["yours"])}[answer]
        ctx.db.execute("UPDATE working SET type=? WHERE client=? AND depotFile=?", (chosen, ctx.client, target))
        return target
    if kind == MOVE:
        new = a["theirs"]
        if answer == "ay" or new == target:  # kept, or already moved (resolve -f)
            return target
        move_opened(ctx, view, w, new, w["type"], keep_local=False)
        return new
    if kind == DELETE:
        if answer == "at":
            ctx.db.execute("UPDATE working SET action='delete' WHERE client=? AND depotFile=?", (ctx.client, target))
            local = view.local_of(target)
            if local:
                remove_local(local)
        _set_history(ctx, target, a["fromFile"], "delete from" if answer == "at" else "ignored")
        return target
    # branch
    if answer == "ay":
        # Ignoring a branch leaves nothing to submit: the target leaves the changelist.
        for table, col in (("working", "depotFile"), ("resolves", "toFile"), ("action_resolves", "toFile")):
            ctx.db.execute(f"DELETE FROM {table} WHERE client=? AND {col}=?", (ctx.client, target))
        return target
    if answer == "at":
        src = ctx.db.execute("SELECT digest FROM revs WHERE depotFile=? AND rev=?",
                             (a["fromFile"], a["endFromRev"])).fetchone()
        local = view.local_of(target)
        if local and src is not None:
            write_local(local, ctx.store.get(src["digest"]), writable=True)
        ctx.db.execute("UPDATE working SET action='branch' WHERE client=? AND depotFile=?", (ctx.client, target))
    _set_history(ctx, target, a["fromFile"], "branch from" if answer == "at" else "ignored")
    return target


def _set_history(ctx: Context, target: str, source: str, how: str) -> None:
    ctx.db.execute("UPDATE resolves SET resolved=1, how=? WHERE client=? AND toFile=? AND fromFile=?",
                   (how, ctx.client, target, source))


# --- integrate: what a moved source or a changed filetype schedules ---------------------------------

@dataclass(frozen=True)
class Remap:
    """Where a source's changes go: ``target`` (None: nowhere, the other half of its
    move carries them), the name the branch view gave (``moved_from``) when the target
    was remapped to the file the source's old name was integrated into, or a refusal."""

    target: str | None
    moved_from: str | None = None
    refusal: M.Message | None = None


def moved_origin(ctx: Context, source: str) -> str | None:
    row = ctx.db.execute("SELECT fromFile FROM integed WHERE toFile=? AND how='moved from' ORDER BY endToRev DESC "
                         "LIMIT 1", (source,)).fetchone()
    return row["fromFile"] if row else None


def moved_into(ctx: Context, source: str) -> str | None:
    row = ctx.db.execute("SELECT toFile FROM integed WHERE fromFile=? AND how='moved from' ORDER BY endFromRev DESC "
                         "LIMIT 1", (source,)).fetchone()
    return row["toFile"] if row else None


def _live(ctx: Context, depot: str) -> bool:
    head = ctx.db.execute("SELECT action FROM revs WHERE depotFile=? ORDER BY rev DESC LIMIT 1", (depot,)).fetchone()
    return head is not None and head["action"] not in ("delete", "move/delete", "purge", "archive")


def remap_moved_source(ctx: Context, mapping: _p4.Map, view: Any, restrict: list[_p4.Map], source: str,
                       src_action: str, target: str, from_rev: str) -> Remap:
    """Helix follows moves (Command Reference "p4 integrate": integrate "detects these
    actions, adjusts the source-to-target mappings appropriately, and schedules a filename
    resolve for each remapped file pair"); the refusals are MsgDm::IntegMovedNoFrom,
    IntegMovedOutScope and IntegMovedUnmapped."""
    if src_action == "move/delete":
        new = moved_into(ctx, source)
        return Remap(None) if new is not None and mapping.translate(new) is not None else Remap(target)
    origin = moved_origin(ctx, source)
    if origin is None or _live(ctx, target) or ctx.db.execute(
            "SELECT 1 FROM working WHERE client=? AND depotFile=?", (ctx.client, target)).fetchone():
        return Remap(target)
    old_target = mapping.translate(origin)
    if old_target is None:
        # The old name is outside the branch view: if it was integrated into the target's
        # branch, the target is there under the old name and Helix asks for a wider view.
        branch_root = "/".join(target.split("/")[:4]) + "/"
        related = ctx.db.execute("SELECT 1 FROM integed WHERE fromFile=? AND how != 'moved from' AND toFile >= ? "
                                 "AND toFile < ? LIMIT 1", (origin, branch_root, branch_root + "\uffff")).fetchone()
        if related is not None:
            return Remap(None, refusal=M.msg(M.INTEG_MOVED_NO_FROM, depotFile=target, action="integrate",
                                             fromFile=source, fromRev=from_rev, movedFrom=origin))
        return Remap(target)
    if restrict and not any(m.includes(old_target) for m in restrict):
        return Remap(None, refusal=M.msg(M.INTEG_MOVED_OUT_SCOPE, depotFile=old_target, movedFrom=target))
    if not _live(ctx, old_target):
        return Remap(target)
    if view is not None and view.to_client(old_target) is None:
        return Remap(None, refusal=M.msg(M.INTEG_MOVED_UNMAPPED, depotFile=old_target, movedFrom=target))
    return Remap(old_target, moved_from=target)


def schedule_for_merge(ctx: Context, target: str, source: str, start: int, end: int, base_file: str | None,
                       base_rev: int, moved_from: str | None) -> None:
    """The action resolves an integrate into an existing target schedules next to the content merge."""
    src = ctx.db.execute("SELECT type FROM revs WHERE depotFile=? AND rev=?", (source, end)).fetchone()
    w = ctx.db.execute("SELECT type FROM working WHERE client=? AND depotFile=?", (ctx.client, target)).fetchone()
    if src is not None and w is not None:
        sides = filetype_sides(ctx, src["type"], w["type"], base_file, base_rev)
        if sides is not None:
            schedule(ctx, FILETYPE, target, source, start, end, base_file, base_rev, sides)
    if moved_from is not None:
        schedule(ctx, MOVE, target, source, start, end, base_file, base_rev, Sides(moved_from, target, target))
