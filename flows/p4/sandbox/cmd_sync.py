"""``sync``: bring the workspace to a revision, scheduling resolves for opened files."""
from __future__ import annotations

import os
from typing import Any, Iterator

from . import messages as M
from .core import (
    Context, check_max_results, command, int_opt, is_deleted, parse_opts, resolve_rows, write_local,
    remove_local,
)
from .errors import CommandError
from .paths import matcher_for


@command("sync")
def cmd_sync(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-f": False, "-n": False, "-k": False, "-q": False, "-p": False,
                                   "-m": True, "-s": False, "-r": False, "-N": False}, "sync")
    view = ctx.view()
    assert view is not None
    limit = int_opt(opts["-m"]) if opts.get("-m") else None
    allwrite = "allwrite" in (ctx.client_spec() or {}).get("Options", "").split()
    for raw in rest or [ctx.default_path()]:
        arg, matcher = ctx.matcher(raw, need_client=True)
        if arg.hi is not None and arg.hi.kind == "shelf":
            raise CommandError(M.msg(M.BAD_AT_REV, arg=f"={arg.hi.n}"))
        targets: dict[str, Any] = {}
        if arg.hi is None or arg.hi.kind != "none":
            for row in resolve_rows(ctx, arg, matcher):
                targets[row["depotFile"]] = row
        haves: dict[str, int] = {}
        for prefix in matcher.prefixes:
            for h in ctx.db.execute("SELECT depotFile, rev FROM have WHERE client=? AND depotFile >= ? AND "
                                    "depotFile < ?", (ctx.client, prefix, prefix + "\uffff")):
                if matcher(h["depotFile"]):
                    haves[h["depotFile"]] = h["rev"]
        if not targets and not haves:
            yield _nothing_there(ctx, raw, arg)
            continue
        check_max_results(ctx, len(set(targets) | set(haves)))  # before any file is written
        opened = {r["depotFile"]: r for r in ctx.db.execute("SELECT * FROM working WHERE client=?", (ctx.client,))
                  if r["depotFile"] in targets or r["depotFile"] in haves}
        plan: list[tuple[str, Any, int]] = []  # (depotFile, target row or None, have)
        for depot in sorted(set(targets) | set(haves)):
            row = targets.get(depot)
            have = haves.get(depot, 0)
            target_rev = row["rev"] if row is not None and not is_deleted(row["action"]) else 0
            if target_rev == have and not (opts.get("-f") and target_rev):
                continue
            if depot in opened:
                w = opened[depot]
                if w["action"] in ("edit", "integrate") and target_rev > have:
                    plan.append((depot, row, have))
                elif target_rev != have:
                    yield M.msg(M.SYNC_OPENED_SKIP, depotFile=depot, workRev=f"#{have}")
                continue
            plan.append((depot, row if target_rev else None, have))
            if limit and len(plan) >= limit:
                break
        if not plan:
            yield M.msg(M.UP_TO_DATE, argc=raw)
            continue
        total_size = sum((r["size"] or 0) for _, r, _ in plan if r is not None)
        first = True
        for depot, row, have in plan:
            local = view.local_of(depot)
            rec: dict[str, Any] = {"depotFile": depot, "clientFile": local}
            if first:
                rec["totalFileSize"] = str(total_size)
                rec["totalFileCount"] = str(len(plan))
                first = False
            if depot in opened:
                # An opened file is left alone; a resolve against the new revision is scheduled.
                rec.update(rev=str(row["rev"]), action="updated", change=str(row["change"]),
                           fileSize=str(row["size"] or 0))
                if not opts.get("-n"):
                    ctx.db.execute(
                        "INSERT OR REPLACE INTO resolves(client, toFile, fromFile, startFromRev, endFromRev, "
                        "baseFile, baseRev, resolved, how) VALUES(?,?,?,?,?,?,?,0,NULL)",
                        (ctx.client, depot, depot, have, row["rev"], depot, have))
                    ctx.db.execute("UPDATE have SET rev=? WHERE client=? AND depotFile=?",
                                   (row["rev"], ctx.client, depot))
                    ctx.db.execute("UPDATE working SET haveRev=? WHERE client=? AND depotFile=?",
                                   (row["rev"], ctx.client, depot))
                yield rec
                yield M.msg(M.SYNC_MUST_RESOLVE, depotFile=local, revRange=f"#{have + 1},#{row['rev']}"
                            if have + 1 != row["rev"] else f"#{row['rev']}")
                continue
            if row is None:
                rec.update(rev=str(have), action="deleted")
                if not opts.get("-n"):
                    if not opts.get("-k"):
                        remove_local(local)
                    ctx.db.execute("DELETE FROM have WHERE client=? AND depotFile=?", (ctx.client, depot))
                yield rec
                continue
            action = "refreshed" if have == row["rev"] else ("updated" if have else "added")
            if not opts.get("-n") and not opts.get("-k") and not opts.get("-f") and _clobbers(local):
                yield M.msg(M.CANT_CLOBBER, file=local)
                continue
            rec.update(rev=str(row["rev"]), action=action, change=str(row["change"]),
                       fileSize=str(row["size"] or 0))
            if not opts.get("-n"):
                if not opts.get("-k"):
                    write_local(local, ctx.store.get(row["digest"]), writable=allwrite)
                ctx.db.execute("INSERT INTO have(client, depotFile, rev) VALUES(?,?,?) "
                               "ON CONFLICT(client, depotFile) DO UPDATE SET rev=excluded.rev",
                               (ctx.client, depot, row["rev"]))
            yield rec


def _clobbers(local: str | None) -> bool:
    """Helix never overwrites a writable workspace file that is not opened (noclobber)."""
    return bool(local) and os.path.exists(local) and os.access(local, os.W_OK) and \
        bool(os.stat(local).st_mode & 0o200)


def _nothing_there(ctx: Context, raw: str, arg: Any) -> M.Message:
    if raw.startswith("//") and not raw.startswith(f"//{ctx.client}/"):
        depot_only = matcher_for(arg, None, ctx.cwd)
        from .core import head_rows
        if next(iter(head_rows(ctx, depot_only)), None) is not None:
            return M.msg(M.NOT_IN_CLIENT_VIEW, argc=raw)
    if arg.hi is not None and arg.hi.kind == "change":
        return M.msg(M.NO_REV_AT_CHANGE, argc=raw)
    return M.msg(M.NO_SUCH_FILES, argc=raw)
