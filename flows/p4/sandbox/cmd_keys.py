"""Keys: ``key`` reads, sets or deletes one of the server's user-managed key/value pairs.

Helix's command reference (``p4 key``): ``key name`` returns the value, ``key name value``
sets it (creating the key), ``key -d name`` deletes it, and a key that does not exist has the
value zero. Tagged output of a read: ``key`` and ``value``. Scripts and CI systems use keys
to publish a state, such as the last change a check marked good (what a line's gate reads).
"""
from __future__ import annotations

from typing import Any, Iterator

from . import messages as M
from .core import Context, command, parse_opts
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
