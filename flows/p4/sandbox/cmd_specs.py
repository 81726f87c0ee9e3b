"""Spec commands: info, client(s), branch(es), change(s), describe."""
from __future__ import annotations

import json
import os
import time
from typing import Any, Iterator

from . import forms
from . import messages as M
from .core import (
    Context, check_pending_change, client_unknown, command, describe_files, int_opt,
    name_filter, opened_rows, parse_opts,
)
from .errors import CommandError
from .paths import map_line, split_view_line, validate_view
from .store import now

NEW_CHANGE_DESC = "<enter description here>\n"


@command("info")
def cmd_info(ctx: Context, args: list[str]) -> Iterator[Any]:
    parse_opts(args, {"-s": False}, "info")
    spec = ctx.client_spec(required=False)
    rec = {
        "userName": ctx.user,
        "clientName": ctx.client if spec else "*unknown*",
        "clientHost": ctx.host,
        "clientCwd": ctx.cwd,
        "serverAddress": ctx.port,
        "serverRoot": str(ctx.store.root),
        "serverDate": time.strftime("%Y/%m/%d %H:%M:%S %z %Z"),
        "serverVersion": "P4D/SANDBOX/2026.1/0000000 (2026/11/01)",
        "serverLicense": "none",
        "caseHandling": "insensitive" if ctx.store.case_insensitive else "sensitive",
        "serverServices": "standard",
    }
    if ctx.store.unicode:
        rec["unicode"] = "enabled"  # Helix's tagged info adds this field in unicode mode only
    if spec:
        rec["clientRoot"] = forms.client_root(spec, ctx.cwd)
    yield rec


# --- clients ---------------------------------------------------------------------------

def _default_client(ctx: Context, name: str) -> dict[str, Any]:
    return {
        "Client": name, "Owner": ctx.user, "Host": ctx.host,
        "Description": f"Created by {ctx.user}.\n", "Root": ctx.cwd,
        "Options": forms.DEFAULT_CLIENT_OPTIONS, "SubmitOptions": "submitunchanged",
        "LineEnd": "local", "View": [f"//depot/... //{name}/..."],
    }


def load_client(ctx: Context, name: str) -> dict[str, Any] | None:
    row = ctx.db.execute("SELECT spec FROM clients WHERE name=?", (name,)).fetchone()
    return json.loads(row["spec"]) if row else None


@command("client", "workspace")
def cmd_client(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-o": False, "-i": False, "-d": False, "-f": False,
                                   "-t": True}, "client")
    name = rest[0] if rest else ctx.client
    if opts.get("-d"):
        old = load_client(ctx, name)
        if old is None:
            raise CommandError(client_unknown(name))
        if _locked_against(ctx, old, opts):
            raise CommandError(M.msg(M.SPEC_LOCKED_DELETE, type="Client", name=name))
        n = ctx.db.execute("SELECT COUNT(*) c FROM working WHERE client=?", (name,)).fetchone()["c"]
        if n:
            raise CommandError(M.msg(M.CLIENT_HAS_OPENED, client=name))
        ctx.db.execute("DELETE FROM clients WHERE name=?", (name,))
        ctx.db.execute("DELETE FROM have WHERE client=?", (name,))
        yield M.msg(M.DOMAIN_DELETED, domainType="Client", domainName=name)
        return
    if opts.get("-i"):
        values = forms.coerce_input(forms.CLIENT, ctx.input)
        forms.require(forms.CLIENT, values)
        name = str(values["Client"])
        if any(c in name for c in "*@#") or "..." in name:
            raise CommandError(M.msg(M.ID_WILD, id=name))
        root = str(values["Root"])
        if not os.path.isabs(root):
            raise CommandError(M.msg(M.BAD_VIEW, spec="client",
                                     detail=f"Root '{root}' must be an absolute path."))
        view = list(values.get("View") or [])
        validate_view(view, name, "client")
        old = load_client(ctx, name)
        if old is not None and _locked_against(ctx, old, opts):
            raise CommandError(M.msg(M.SPEC_LOCKED_UPDATE, type="client", name=name, user=old.get("Owner", "")))
        spec = {**(old or _default_client(ctx, name)), **values}
        spec["View"] = view
        spec["Update"] = forms.timestamp()
        spec.setdefault("Access", spec["Update"])
        if old is not None and {k: v for k, v in old.items() if k not in ("Update", "Access")} == \
                {k: v for k, v in spec.items() if k not in ("Update", "Access")}:
            yield M.msg(M.DOMAIN_NOT_CHANGED, domainType="Client", domainName=name)
            return
        ctx.db.execute("INSERT INTO clients(name, spec) VALUES(?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET spec=excluded.spec",
                       (name, json.dumps(spec)))
        yield M.msg(M.DOMAIN_SAVED, domainType="Client", domainName=name)
        return
    if opts.get("-t"):
        template = load_client(ctx, opts["-t"])
        if template is None:
            raise CommandError(client_unknown(opts["-t"]))
        spec = {**_default_client(ctx, name),
                "View": [_retarget(l, opts["-t"], name) for l in template.get("View", [])],
                "Options": template.get("Options", forms.DEFAULT_CLIENT_OPTIONS)}
    else:
        spec = load_client(ctx, name) or _default_client(ctx, name)
    yield forms.new_spec(forms.CLIENT, spec)


def _locked_against(ctx: Context, spec: dict[str, Any], opts: dict[str, Any]) -> bool:
    """A locked workspace's spec is its owner's to change or delete; ``-f`` (an
    administrator's force) overrides. The sandbox has no protections table, so it
    does not ask whether the user of ``-f`` is an administrator."""
    return forms.is_locked(spec) and spec.get("Owner", ctx.user) != ctx.user and not opts.get("-f")


def _retarget(line: str, old: str, new: str) -> str:
    lhs, rhs = split_view_line(line)
    return map_line([lhs, rhs.replace(f"//{old}/", f"//{new}/", 1)])


def listed_specs(ctx: Context, table: str, key: str, opts: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Specs as ``clients``/``branches`` list them: ``-u`` owner, ``-e``/``-E`` name filter, ``-m`` max."""
    limit = int(opts["-m"]) if opts.get("-m") else None
    wanted = name_filter(opts)
    count = 0
    for row in ctx.db.execute(f"SELECT spec FROM {table} ORDER BY name"):  # our table names
        spec = json.loads(row["spec"])
        if (opts.get("-u") and spec.get("Owner") != opts["-u"]) or not wanted(spec[key]):
            continue
        yield spec
        count += 1
        if limit and count >= limit:
            return


@command("clients", "workspaces")
def cmd_clients(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, _ = parse_opts(args, {"-u": True, "-e": True, "-E": True, "-m": True}, "clients")
    for spec in listed_specs(ctx, "clients", "Client", opts):
        yield {"client": spec["Client"], "Update": str(now()), "Access": str(now()),
               "Owner": spec.get("Owner", ""), "Options": spec.get("Options", ""),
               "SubmitOptions": spec.get("SubmitOptions", ""), "LineEnd": spec.get("LineEnd", ""),
               "Root": spec.get("Root", ""), "Host": spec.get("Host", ""),
               "Description": spec.get("Description", ""),
               **({"Stream": spec["Stream"]} if spec.get("Stream") else {})}


# --- branches ----------------------------------------------------------------------------

def load_branch(ctx: Context, name: str) -> dict[str, Any] | None:
    row = ctx.db.execute("SELECT spec FROM branches WHERE name=?", (name,)).fetchone()
    return json.loads(row["spec"]) if row else None


@command("branch")
def cmd_branch(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-o": False, "-i": False, "-d": False, "-f": False}, "branch")
    if opts.get("-i"):
        values = forms.coerce_input(forms.BRANCH, ctx.input)
        forms.require(forms.BRANCH, values)
        name = str(values["Branch"])
        view = list(values.get("View") or [])
        if view == ["//depot/... //depot/..."]:
            raise CommandError(M.msg(M.DEFAULT_BRANCH_VIEW))
        validate_view(view, None, "branch")
        old = load_branch(ctx, name)
        spec = {"Branch": name, "Owner": ctx.user, "Description": f"Created by {ctx.user}.\n",
                "Options": "unlocked", **(old or {}), **values, "View": view,
                "Update": forms.timestamp()}
        spec.setdefault("Access", spec["Update"])
        ctx.db.execute("INSERT INTO branches(name, spec) VALUES(?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET spec=excluded.spec",
                       (name, json.dumps(spec)))
        yield M.msg(M.DOMAIN_SAVED, domainType="Branch", domainName=name)
        return
    if not rest:
        raise CommandError(M.msg(M.usage("branch")))
    name = rest[0]
    if opts.get("-d"):
        if load_branch(ctx, name) is None:
            raise CommandError(M.msg(M.NO_SUCH_DOMAIN, type="Branch", name=name))
        ctx.db.execute("DELETE FROM branches WHERE name=?", (name,))
        yield M.msg(M.DOMAIN_DELETED, domainType="Branch", domainName=name)
        return
    spec = load_branch(ctx, name) or {
        "Branch": name, "Owner": ctx.user, "Description": f"Created by {ctx.user}.\n",
        "Options": "unlocked", "View": ["//depot/... //depot/..."]}
    yield forms.new_spec(forms.BRANCH, spec)


@command("branches")
def cmd_branches(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, _ = parse_opts(args, {"-u": True, "-e": True, "-E": True, "-m": True, "-t": False}, "branches")
    for spec in listed_specs(ctx, "branches", "Branch", opts):
        yield {"branch": spec["Branch"], "Update": str(now()), "Access": str(now()),
               "Owner": spec.get("Owner", ""), "Options": spec.get("Options", ""),
               "Description": spec.get("Description", "")}


# --- changes -----------------------------------------------------------------------------

def change_row(ctx: Context, change: int) -> Any:
    row = ctx.db.execute("SELECT * FROM changes WHERE change=?", (change,)).fetchone()
    if row is None:
        raise CommandError(M.msg(M.CHANGE_UNKNOWN, change=f"Change {change}"))
    return row


@command("change", "changelist")
def cmd_change(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-o": False, "-i": False, "-d": False, "-f": False,
                                   "-u": False, "-s": False}, "change")
    if opts.get("-d"):
        if not rest:
            raise CommandError(M.msg(M.usage("change")))
        change = int_opt(rest[0])
        row = change_row(ctx, change)
        if row["status"] == "submitted":
            raise CommandError(M.msg(M.CHANGE_SUBMITTED, change=f"Change {change}"))
        n = ctx.db.execute("SELECT COUNT(*) c FROM working WHERE change=?", (change,)).fetchone()["c"]
        if n:
            raise CommandError(M.msg(M.CHANGE_HAS_FILES, change=f"Change {change}", count=n))
        if ctx.db.execute("SELECT 1 FROM shelved WHERE change=? LIMIT 1", (change,)).fetchone():
            raise CommandError(M.msg(M.CHANGE_HAS_SHELF, change=f"Change {change}"))
        ctx.db.execute("DELETE FROM changes WHERE change=?", (change,))
        yield M.msg(M.CHANGE_DELETED, change=f"Change {change}")
        return
    if opts.get("-i"):
        yield from _change_in(ctx, forms.coerce_input(forms.CHANGE, ctx.input))
        return
    if rest:
        change = int_opt(rest[0])
        row = change_row(ctx, change)
        files = [r["depotFile"] for r in opened_rows(ctx, change=change, all_clients=True)] \
            if row["status"] == "pending" else []
        spec = {"Change": str(change), "Date": forms.timestamp(row["time"]), "Client": row["client"],
                "User": row["user"], "Status": row["status"], "Type": "public",
                "Description": row["desc"], "Files": files}
    else:
        ctx.client_spec()
        files = [r["depotFile"] for r in opened_rows(ctx, change=0)]
        spec = {"Change": "new", "Client": ctx.client, "User": ctx.user, "Status": "new",
                "Description": NEW_CHANGE_DESC, "Files": files}
    yield forms.new_spec(forms.CHANGE, spec)


def _change_in(ctx: Context, values: dict[str, Any]) -> Iterator[Any]:
    forms.require(forms.CHANGE, values)
    desc = str(values.get("Description", ""))
    if not desc.strip() or desc == NEW_CHANGE_DESC:
        raise CommandError(M.msg(M.MISSING_DESC))
    if not desc.endswith("\n"):
        desc += "\n"
    files = values.get("Files")
    if str(values["Change"]) == "new":
        ctx.client_spec()
        change = ctx.store.next_change()
        ctx.db.execute("INSERT INTO changes(change, client, user, status, desc, time) VALUES(?,?,?,?,?,?)",
                       (change, ctx.client, ctx.user, "pending", desc, now()))
        moved = _move_files(ctx, files, change) if files is not None else 0
        yield M.msg(M.CHANGE_CREATED, change=f"Change {change}", workCount=moved or None)
        return
    change = int_opt(str(values["Change"]))
    check_pending_change(ctx, change)
    ctx.db.execute("UPDATE changes SET desc=? WHERE change=?", (desc, change))
    if files is not None:
        listed = set(files)
        for r in opened_rows(ctx, change=change):
            if r["depotFile"] not in listed:
                ctx.db.execute("UPDATE working SET change=0 WHERE client=? AND depotFile=?",
                               (ctx.client, r["depotFile"]))
        _move_files(ctx, files, change)
    yield M.msg(M.CHANGE_UPDATED, change=f"Change {change}")


def _move_files(ctx: Context, files: list[str], change: int) -> int:
    moved = 0
    for f in files:
        path = f.split("\t")[0].split("#")[0].strip()
        cur = ctx.db.execute("UPDATE working SET change=? WHERE client=? AND depotFile=?",
                             (change, ctx.client, path))
        moved += cur.rowcount
    return moved


def change_path(ctx: Context, change: int) -> str | None:
    """Helix's 'path' of a submitted change: the files' common directory, then
    '/*' when they all sit in it, '/...' when they spread below it."""
    dirs = {r["depotFile"].rsplit("/", 1)[0]
            for r in ctx.db.execute("SELECT depotFile FROM revs WHERE change=?", (change,))}
    if not dirs:
        return None
    if len(dirs) == 1:
        return f"{dirs.pop()}/*"
    parts = [d.split("/") for d in dirs]
    common: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return "/".join(common) + "/..."


def _desc_short(desc: str) -> str:
    # Without -l Helix shows the first 31 characters of the description.
    return desc[:31]


@command("changes", "changelists")
def cmd_changes(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-m": True, "-s": True, "-l": False, "-L": False, "-c": True,
                                   "-u": True, "-t": False, "-r": False, "-i": False}, "changes")
    where, params = [], []
    if opts.get("-s"):
        status = opts["-s"]
        if status == "shelved":
            where.append("shelved = 1 AND status = 'pending'")
        else:
            where.append("status = ?")
            params.append(status)
    if opts.get("-c"):
        where.append("client = ?")
        params.append(opts["-c"])
    if opts.get("-u"):
        where.append("user = ?")
        params.append(opts["-u"])
    if rest:
        wanted: set[int] = set()
        for raw in rest:
            wanted |= _changes_for_path(ctx, raw)
        where.append(f"change IN ({','.join(str(c) for c in wanted) or 'NULL'})")
    q = "SELECT * FROM changes" + (" WHERE " + " AND ".join(where) if where else "")
    q += " ORDER BY change " + ("ASC" if opts.get("-r") else "DESC")
    if opts.get("-m"):
        q += f" LIMIT {int_opt(opts['-m'])}"
    for row in ctx.db.execute(q, params).fetchall():
        rec = {"change": str(row["change"]), "time": str(row["time"]), "user": row["user"],
               "client": row["client"], "status": row["status"], "changeType": "public"}
        path = change_path(ctx, row["change"]) if row["status"] == "submitted" else None
        if path:
            rec["path"] = path
        rec["desc"] = row["desc"] if (opts.get("-l") or opts.get("-L")) else _desc_short(row["desc"])
        if row["shelved"]:
            rec["shelved"] = ""
        yield rec


def _changes_for_path(ctx: Context, raw: str) -> set[int]:
    arg, matcher = ctx.matcher(raw)
    lo = hi = None
    if arg.lo is not None:
        lo = arg.lo.n if arg.lo.kind == "change" else None
    if arg.hi is not None and arg.hi.kind == "change":
        hi = arg.hi.n
    found: set[int] = set()
    for prefix in matcher.prefixes:
        for r in ctx.db.execute("SELECT depotFile, change, rev FROM revs WHERE depotFile >= ? AND depotFile < ?",
                                (prefix, prefix + "\uffff")):
            if not matcher(r["depotFile"]):
                continue
            c = r["change"]
            if (lo is not None and c < lo) or (hi is not None and c > hi):
                continue
            if arg.hi is not None and arg.hi.kind == "rev" and r["rev"] > arg.hi.n:
                continue
            found.add(c)
    if arg.hi is None:
        for r in opened_rows(ctx, matcher, all_clients=True):
            if r["change"]:
                found.add(r["change"])
    return found


@command("describe")
def cmd_describe(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-s": False, "-S": False, "-d": False, "-du": False,
                                   "-m": True, "-a": False, "-f": False, "-O": False}, "describe")
    if not rest:
        raise CommandError(M.msg(M.usage("describe")))
    for c in rest:
        change = int_opt(c)
        row = change_row(ctx, change)
        rec: dict[str, Any] = {"change": str(change), "user": row["user"], "client": row["client"],
                               "time": str(row["time"]), "desc": row["desc"], "status": row["status"],
                               "changeType": "public"}
        path = change_path(ctx, change) if row["status"] == "submitted" else None
        if path:
            rec["path"] = path
        if row["shelved"]:
            rec["shelved"] = ""
        if opts.get("-S"):
            files = ctx.db.execute("SELECT * FROM shelved WHERE change=? ORDER BY depotFile", (change,)).fetchall()
        elif row["status"] == "submitted":
            files = ctx.db.execute("SELECT * FROM revs WHERE change=? ORDER BY depotFile", (change,)).fetchall()
        else:
            files = [dict(depotFile=r["depotFile"], action=r["action"], type=r["type"],
                          rev=r["haveRev"], size=0, digest="")
                     for r in opened_rows(ctx, change=change, all_clients=True)]
        if files:
            rec.update(describe_files(files))
        yield rec
