"""Keys: ``key`` reads, sets or deletes one of the server's user-managed key/value pairs;
``keys`` lists them.

Helix's command reference (``p4 key``): ``key name`` returns the value, ``key name value``
sets it (creating the key), ``key -d name`` deletes it, and a key that does not exist has the
value zero. Tagged output of a read: ``key`` and ``value``. ``p4 keys [-e nameFilter] [-m max]``
lists the keys set, with their values, those whose names match the filter (``*`` a wildcard).
Scripts and CI systems use keys to publish a state, such as the last change a check marked
good (what a line's gate reads); a line records a skipped change in one.
"""
from __future__ import annotations

import fnmatch
from typing import Any, Iterator

from . import messages as M
from .core import Context, command, int_opt, parse_opts
from .errors import CommandError


@command("key")
def cmd_key(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-d": False}, "key")
    if opts.get("-d"):
        if len(rest) != 1:
            raise CommandError(M.msg(M.WRONG_ARGS))
        ctx.db.execute("DELETE FROM keys WHERE name=?", (rest[0],))
        return
    if len(rest) == 1:
        row = ctx.db.execute("SELECT value FROM keys WHERE name=?", (rest[0],)).fetchone()
        yield {"key": rest[0], "value": row["value"] if row else "0"}
    elif len(rest) == 2:
        ctx.db.execute("INSERT INTO keys(name, value) VALUES(?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET value=excluded.value", (rest[0], rest[1]))
    else:
        raise CommandError(M.msg(M.WRONG_ARGS))


@command("keys")
def cmd_keys(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-e": True, "-m": True}, "keys")
    if rest:
        raise CommandError(M.msg(M.WRONG_ARGS))
    pattern, limit = opts.get("-e") or "*", int_opt(opts["-m"], "max") if opts.get("-m") else None
    rows = [r for r in ctx.db.execute("SELECT name, value FROM keys ORDER BY name")
            if fnmatch.fnmatchcase(r["name"], pattern)]
    for r in rows[:limit]:
        yield {"key": r["name"], "value": r["value"]}
