"""Users, passwords and tickets: ``login`` (``-s``, ``-p``), ``logout``, the auth check.

Passwords are stored as salted PBKDF2 hashes. A user without a password needs no
login, as on a Helix server at security level 0. A ticket is valid for 12 hours;
``login`` writes it to the ticket file (``P4TICKETS``) the way the P4 API does;
``login -p`` only prints it, leaving the user's ticket file alone.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from typing import Any, Iterator

from . import messages as M
from .core import Context, command, parse_opts
from .errors import CommandError
from .store import Store, now

TICKET_SECONDS = 12 * 3600
_OPEN_COMMANDS = {"info", "login", "logout"}


def hash_password(password: str) -> str:
    salt = secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 20000).hex()
    return f"pbkdf2${salt}${digest}"


def verify_password(stored: str, password: str) -> bool:
    try:
        _, salt, digest = stored.split("$", 2)
    except ValueError:
        return False
    got = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 20000).hex()
    return hmac.compare_digest(got, digest)


def set_password(store: Store, user: str, password: str | None) -> None:
    """The administrator's call: set (or clear, with None) a user's password."""
    with store.transaction():
        stored = hash_password(password) if password else None
        store.db.execute(
            "INSERT INTO users(user, password, update_time, access) VALUES(?,?,?,?) "
            "ON CONFLICT(user) DO UPDATE SET password=excluded.password, update_time=excluded.update_time",
            (user, stored, now(), now()))
        if password is None:
            store.db.execute("DELETE FROM tickets WHERE user=?", (user,))


def _stored_password(ctx: Context, user: str) -> str | None:
    row = ctx.db.execute("SELECT password FROM users WHERE user=?", (user,)).fetchone()
    return row["password"] if row and row["password"] else None


def _ticket_valid(ctx: Context, user: str, ticket: str) -> int:
    """Seconds left on the ticket, 0 if it is not a live ticket of this user."""
    row = ctx.db.execute("SELECT expires FROM tickets WHERE ticket=? AND user=?", (ticket, user)).fetchone()
    if row is None:
        return 0
    return max(0, row["expires"] - now())


def _ticket_from_file(ctx: Context, user: str) -> str | None:
    path = getattr(ctx, "ticket_file", None)
    if not path or not os.path.exists(path):
        return None
    prefix = f"{ctx.port}="
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith(prefix):
                who, _, ticket = line[len(prefix):].rpartition(":")
                if who == user:
                    return ticket
    return None


def _write_ticket_file(ctx: Context, user: str, ticket: str) -> None:
    path = getattr(ctx, "ticket_file", None)
    if not path:
        return
    lines: list[str] = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            lines = [l.rstrip("\n") for l in fh if not l.startswith(f"{ctx.port}={user}:")]
    lines.append(f"{ctx.port}={user}:{ticket}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def seconds_left(ctx: Context, user: str) -> int:
    """How long the caller stays authenticated; 0 = not authenticated."""
    password = str(getattr(ctx, "password", "") or "")
    if password:
        left = _ticket_valid(ctx, user, password)
        if left:
            return left
    ticket = _ticket_from_file(ctx, user)
    if ticket:
        return _ticket_valid(ctx, user, ticket)
    return 0


def check_auth(ctx: Context, cmd: str) -> None:
    if cmd in _OPEN_COMMANDS:
        return
    stored = _stored_password(ctx, ctx.user)
    if stored is None:
        return
    password = str(getattr(ctx, "password", "") or "")
    if password and verify_password(stored, password):
        return
    if seconds_left(ctx, ctx.user):
        return
    raise CommandError(M.msg(M.PASSWORD_INVALID))


def _issue_ticket(ctx: Context, user: str) -> str:
    ticket = secrets.token_hex(16).upper()
    ctx.db.execute("DELETE FROM tickets WHERE expires < ?", (now(),))
    ctx.db.execute("INSERT INTO tickets(ticket, user, host, expires) VALUES(?,?,?,?)",
                   (ticket, user, ctx.host, now() + TICKET_SECONDS))
    return ticket


@command("login")
def cmd_login(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-s": False, "-p": False, "-a": False, "-h": True}, "login")
    user = rest[0] if rest else ctx.user
    stored = _stored_password(ctx, user)
    if opts.get("-s"):
        if stored is None:
            yield M.msg(M.LOGIN_NOT_REQUIRED)
            return
        left = seconds_left(ctx, user)
        if not left:
            raise CommandError(M.msg(M.PASSWORD_INVALID))
        yield {"User": user, "TicketExpiration": str(left)}
        return
    if stored is None:
        yield M.msg(M.LOGIN_NOT_REQUIRED)
        return
    supplied = ctx.input
    if isinstance(supplied, (list, tuple)):
        supplied = supplied[0] if supplied else None
    if isinstance(supplied, bytes):
        supplied = supplied.decode()
    if not supplied or not verify_password(stored, str(supplied).rstrip("\n")):
        raise CommandError(M.msg(M.LOGIN_BAD_PASSWORD))
    ticket = _issue_ticket(ctx, user)
    if opts.get("-p"):
        yield {"User": user, "TicketExpiration": str(TICKET_SECONDS)}
        yield M.Message(M.MsgDef("Sandbox::ticket", (M.E_INFO << 28), "%ticket%"), {"ticket": ticket})
        return
    _write_ticket_file(ctx, user, ticket)
    yield {"User": user, "TicketExpiration": str(TICKET_SECONDS)}


@command("logout")
def cmd_logout(ctx: Context, args: list[str]) -> Iterator[Any]:
    parse_opts(args, {"-a": False}, "logout")
    ticket = _ticket_from_file(ctx, ctx.user) or str(getattr(ctx, "password", "") or "")
    ctx.db.execute("DELETE FROM tickets WHERE user=? AND ticket=?", (ctx.user, ticket))
    yield M.msg(M.LOGOUT_OK, user=ctx.user)
