"""Users, passwords and tickets: ``users``, ``login`` (``-s``, ``-p``, ``-a``, ``-h``), ``logout``,
the auth check, and the depot's security settings.

As on a Helix server with default settings, a user is created the first time they
run a command that changes something (``remember_user``), or when an administrator
sets their password; ``users`` lists the known ones.

Passwords are stored as salted PBKDF2 hashes. At security level 0 a user without a
password needs no login; from level 1 every user needs one (``MustSetPassword``), and
from level 3 only tickets are accepted (``TicketOnly``), as Helix's ``security``
configurable says.

A ticket is bound to the host that asked for it, or to the host named by ``login -h``;
``login -a`` makes one valid on all hosts. Helix binds a ticket to the client's IP
address; the sandbox has no network, so it uses what the client calls its host: the
P4 object's ``host`` attribute (``P4HOST``, else the machine's hostname). A ticket
lasts ``ticket.timeout`` seconds (12 hours unless the depot says otherwise, standing
for the ``Timeout`` of the user's groups); a ticket used after that is refused with
Helix's ``LoginExpired``. Logging in again from the same host while the ticket lives
renews it. ``login`` writes the ticket to the ticket file (``P4TICKETS``) the way the
P4 API does; ``login -p`` only prints it, leaving the user's ticket file alone.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from typing import Any, Iterator

from . import messages as M
from .core import Context, command, name_pattern, parse_opts
from .errors import CommandError
from .store import Store, now

_OPEN_COMMANDS = {"info", "login", "logout"}
ALL_HOSTS = ""  # the host of a ticket from ``login -a``


@dataclass(frozen=True)
class Setting:
    default: int
    low: int
    high: int
    meaning: str


# The depot's settings, as ``p4 configure`` (and the group spec's Timeout) set them on Helix.
SETTINGS: dict[str, Setting] = {
    "security": Setting(0, 0, 6, "Helix's security level: 0 passwords optional, 1-2 every user needs a "
                                 "password, 3-6 only tickets are accepted"),
    "ticket.timeout": Setting(12 * 3600, 1, 2**31 - 1, "seconds a ticket lasts (the Timeout of the user's "
                                                        "groups on Helix; 43200 = 12 hours)"),
    "auth.tickets.nounlocked": Setting(0, 0, 2, "1: 'login -a' silently gives a host-locked ticket; "
                                                "2: 'login -a' is refused"),
}


def setting(db: Any, name: str) -> int:
    row = db.execute("SELECT value FROM config WHERE name=?", (name,)).fetchone()
    return int(row["value"]) if row else SETTINGS[name].default


def configure(store: Store, name: str, value: int | None) -> None:
    """Set a depot setting (None: back to its default); refuses unknown names and values."""
    if name not in SETTINGS:
        raise ValueError(f"unknown sandbox setting '{name}'; known: {', '.join(sorted(SETTINGS))}")
    spec = SETTINGS[name]
    with store.transaction():
        if value is None:
            store.db.execute("DELETE FROM config WHERE name=?", (name,))
            return
        if not spec.low <= int(value) <= spec.high:
            raise ValueError(f"{name}={value}: give a whole number from {spec.low} to {spec.high} ({spec.meaning})")
        store.db.execute("INSERT INTO config(name, value) VALUES(?,?) ON CONFLICT(name) DO UPDATE SET "
                         "value=excluded.value", (name, str(int(value))))


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


@dataclass(frozen=True)
class TicketState:
    """What the server makes of a ticket presented from ``host``."""

    left: int  # seconds the ticket still lives; 0 = expired
    known: bool  # a ticket of this user, valid from this host


def _ticket_state(ctx: Context, user: str, ticket: str, host: str) -> TicketState:
    row = ctx.db.execute("SELECT host, expires FROM tickets WHERE ticket=? AND user=?", (ticket, user)).fetchone()
    if row is None or (row["host"] or ALL_HOSTS) not in (ALL_HOSTS, host):
        return TicketState(left=0, known=False)
    return TicketState(left=max(0, row["expires"] - now()), known=True)


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


def _presented(ctx: Context, user: str) -> str:
    """What the client sends as the password: P4PASSWD (``P4.password``) if set, else the
    ticket-file entry, as the P4 API chooses."""
    return str(getattr(ctx, "password", "") or "") or (_ticket_from_file(ctx, user) or "")


def remember_user(ctx: Context) -> None:
    """The user of a command that wrote something becomes known (Helix's user auto-creation)."""
    ctx.db.execute("INSERT INTO users(user, update_time, access) VALUES(?,?,?) ON CONFLICT(user) DO NOTHING",
                   (ctx.user, now(), now()))


@command("users")
def cmd_users(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, names = parse_opts(args, {"-a": False, "-m": True}, "users")
    limit = int(opts["-m"]) if opts.get("-m") else None
    rows = ctx.db.execute("SELECT * FROM users ORDER BY user").fetchall()
    patterns = [name_pattern(n) for n in names]
    found = [r for r in rows if not patterns or any(p.match(r["user"]) for p in patterns)][:limit]
    for r in found:
        yield {"User": r["user"], "Type": "standard", "Email": r["email"] or f"{r['user']}@{ctx.host}",
               "Update": str(r["update_time"] or 0), "Access": str(r["access"] or 0),
               "FullName": r["fullname"] or r["user"]}
    if not found:
        yield M.msg(M.NO_SUCH_USERS, user=" ".join(names) or "*")


def check_auth(ctx: Context, cmd: str) -> None:
    """Refuse the command unless the user is authenticated, with Helix's message."""
    if cmd in _OPEN_COMMANDS:
        return
    stored = _stored_password(ctx, ctx.user)
    security = setting(ctx.db, "security")
    if stored is None:
        if security >= 1:
            raise CommandError(M.msg(M.MUST_SET_PASSWORD))
        return
    presented = _presented(ctx, ctx.user)
    if presented and verify_password(stored, presented):
        if security >= 3:
            raise CommandError(M.msg(M.TICKET_ONLY))
        return
    state = _ticket_state(ctx, ctx.user, presented, ctx.host) if presented else TicketState(0, False)
    if not state.known:
        raise CommandError(M.msg(M.PASSWORD_INVALID))
    if not state.left:
        raise CommandError(M.msg(M.LOGIN_EXPIRED))


def _issue_ticket(ctx: Context, user: str, host: str) -> tuple[str, int]:
    """The user's ticket for ``host``: the live one renewed, else a new one. Returns it and its lifetime."""
    lifetime = setting(ctx.db, "ticket.timeout")
    row = ctx.db.execute("SELECT ticket FROM tickets WHERE user=? AND host=? AND expires>?",
                         (user, host, now())).fetchone()
    ticket = row["ticket"] if row else secrets.token_hex(16).upper()
    ctx.db.execute("DELETE FROM tickets WHERE user=? AND host=? AND ticket<>?", (user, host, ticket))
    ctx.db.execute("INSERT INTO tickets(ticket, user, host, expires) VALUES(?,?,?,?) ON CONFLICT(ticket) "
                   "DO UPDATE SET expires=excluded.expires", (ticket, user, host, now() + lifetime))
    return ticket, lifetime


def _ticket_host(ctx: Context, opts: dict[str, Any]) -> str:
    """``-a``: all hosts (unless the depot's auth.tickets.nounlocked says no); ``-h``: that host;
    else the host asking."""
    if opts.get("-a") and opts.get("-h"):
        raise CommandError(M.msg(M.usage("login")))
    if opts.get("-a"):
        locked = setting(ctx.db, "auth.tickets.nounlocked")
        if locked == 2:
            raise CommandError(M.msg(M.NO_HOSTLESS_TICKETS))
        return ctx.host if locked == 1 else ALL_HOSTS
    return str(opts.get("-h") or ctx.host)


def _login_status(ctx: Context, user: str, stored: str) -> Iterator[Any]:
    """The status of the user's ticket for the host asking (or an all-hosts one), as the
    server keeps tickets per user and host."""
    row = ctx.db.execute("SELECT expires FROM tickets WHERE user=? AND host IN (?, ?) ORDER BY expires DESC",
                         (user, ctx.host, ALL_HOSTS)).fetchone()
    if row is None:
        presented = _presented(ctx, user)
        if presented and verify_password(stored, presented) and setting(ctx.db, "security") < 3:
            yield M.msg(M.LOGIN_NO_TICKET, user=user)
            return
        raise CommandError(M.msg(M.PASSWORD_INVALID))
    left = row["expires"] - now()
    if left <= 0:
        raise CommandError(M.msg(M.LOGIN_EXPIRED))
    yield {"User": user, "TicketExpiration": str(left)}


def _supplied_password(ctx: Context) -> str:
    supplied = ctx.input
    if isinstance(supplied, (list, tuple)):
        supplied = supplied[0] if supplied else None
    if isinstance(supplied, bytes):
        supplied = supplied.decode()
    return str(supplied or "").rstrip("\n")


@command("login")
def cmd_login(ctx: Context, args: list[str]) -> Iterator[Any]:
    opts, rest = parse_opts(args, {"-s": False, "-p": False, "-a": False, "-h": True}, "login")
    if opts.get("-s") and opts.get("-p"):
        raise CommandError(M.msg(M.usage("login")))
    user = rest[0] if rest else ctx.user
    stored = _stored_password(ctx, user)
    if stored is None:
        if setting(ctx.db, "security") >= 1:
            raise CommandError(M.msg(M.MUST_SET_PASSWORD))
        yield M.msg(M.LOGIN_NOT_REQUIRED)
        return
    if opts.get("-s"):
        yield from _login_status(ctx, user, stored)
        return
    host = _ticket_host(ctx, opts)
    supplied = _supplied_password(ctx)
    if not supplied or not verify_password(stored, supplied):
        raise CommandError(M.msg(M.LOGIN_BAD_PASSWORD))
    ticket, lifetime = _issue_ticket(ctx, user, host)
    if opts.get("-p"):
        yield {"User": user, "TicketExpiration": str(lifetime)}
        yield M.Message(M.MsgDef("Sandbox::ticket", (M.E_INFO << 28), "%ticket%"), {"ticket": ticket})
        return
    _write_ticket_file(ctx, user, ticket)
    yield {"User": user, "TicketExpiration": str(lifetime)}


@command("logout")
def cmd_logout(ctx: Context, args: list[str]) -> Iterator[Any]:
    """Ends the presented ticket; ``-a`` ends every ticket of the user, on every host."""
    opts, _ = parse_opts(args, {"-a": False}, "logout")
    if opts.get("-a"):
        ctx.db.execute("DELETE FROM tickets WHERE user=?", (ctx.user,))
    else:
        ctx.db.execute("DELETE FROM tickets WHERE user=? AND ticket=?", (ctx.user, _presented(ctx, ctx.user)))
    yield M.msg(M.LOGOUT_OK, user=ctx.user)
