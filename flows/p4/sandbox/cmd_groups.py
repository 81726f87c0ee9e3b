"""Groups: ``groups`` lists the groups a user (or group) belongs to, as Helix does.

A group lists users (``Users:``), other groups whose members it includes
(``Subgroups:``) and the users who may edit it (``Owners:``). On Helix a superuser (or
an owner) writes groups with ``p4 group``; in the sandbox an administrator does it with
``admin.set_group``. ``groups`` needs only ``list`` access, so any user may ask which
groups they belong to: what the service does to learn whether someone is an administrator.

Tagged output: one record per (group, member) row, with Helix's field names (``group``,
``user``, ``isUser``, ``isSubGroup``, ``isOwner`` and the group's limits). With a name,
only groups holding that name; ``-i`` adds the groups that hold it through subgroups.
"""
from __future__ import annotations

import json
from typing import Any, Iterator

from .core import Context, command, parse_opts
from .errors import CommandError
from . import messages as M

# What Helix shows for a group whose limits were never set (Timeout: its 12-hour default).
_LIMITS = {"maxResults": "unset", "maxScanRows": "unset", "maxLockTime": "unset", "maxOpenFiles": "unset",
           "maxMemory": "unset", "timeout": "43200", "passTimeout": "unset"}


def load_groups(ctx: Context) -> dict[str, dict[str, list[str]]]:
    return {r["name"]: json.loads(r["spec"]) for r in ctx.db.execute("SELECT name, spec FROM groups ORDER BY name")}


def _record(group: str, member: str, *, user: bool = False, subgroup: bool = False,
            owner: bool = False) -> dict[str, str]:
    return {"group": group, **_LIMITS, "isSubGroup": "1" if subgroup else "0", "isOwner": "1" if owner else "0",
            "isUser": "1" if user else "0", "user": member}


def _holding(groups: dict[str, dict[str, list[str]]], name: str, *, as_user: bool, as_group: bool,
             as_owner: bool) -> list[str]:
    """Groups that name ``name`` directly, in the roles asked for."""
    return [g for g, spec in groups.items()
            if (as_user and name in spec.get("Users", [])) or (as_group and name in spec.get("Subgroups", []))
            or (as_owner and name in spec.get("Owners", []))]


def _enclosing(groups: dict[str, dict[str, list[str]]], start: list[str]) -> list[str]:
    """``start`` and every group that includes one of them as a subgroup, at any depth."""
    found, todo = list(start), list(start)
    while todo:
        for g in _holding(groups, todo.pop(), as_user=False, as_group=True, as_owner=False):
            if g not in found:  # a cycle of subgroups ends here
                found.append(g)
                todo.append(g)
    return found


@command("groups")
def cmd_groups(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-i": False, "-v": False, "-m": True, "-g": False, "-u": False,
                                   "-o": False}, "groups")
    if len(rest) > 1 or (rest == [] and any(opts.get(f) for f in ("-i", "-g", "-u", "-o"))):
        raise CommandError(M.msg(M.WRONG_ARGS))
    limit = int(opts["-m"]) if opts.get("-m") else None
    groups = load_groups(ctx)
    rows: list[dict[str, str]] = []
    if not rest:
        for g, spec in groups.items():
            rows += [_record(g, u, user=True) for u in spec.get("Users", [])]
            rows += [_record(g, s, subgroup=True) for s in spec.get("Subgroups", [])]
            rows += [_record(g, o, owner=True) for o in spec.get("Owners", [])]
    else:
        name = rest[0]
        # Without -g/-u/-o the name is looked up as a user and as a group, as on Helix.
        only = [f for f in ("-g", "-u", "-o") if opts.get(f)]
        as_user, as_group, as_owner = (not only or "-u" in only, not only or "-g" in only, "-o" in only)
        direct = _holding(groups, name, as_user=as_user, as_group=as_group, as_owner=as_owner)
        names = _enclosing(groups, direct) if opts.get("-i") else direct
        for g in sorted(names):
            spec = groups[g]
            rows.append(_record(g, name, user=name in spec.get("Users", []) and as_user,
                                subgroup=name in spec.get("Subgroups", []) and as_group,
                                owner=name in spec.get("Owners", []) and as_owner))
    yield from rows[:limit]
