"""Perforce user names inside Prefect object names (Secret blocks, variables).

Prefect allows lowercase letters, digits and dashes in block names; Perforce user
names may hold dots, underscores, capitals (servers can be case-sensitive) and any
other character. The encoding must be injective, or ``rel.bot`` and ``rel_bot``
would share one stored password: lowercase letters and digits stand for
themselves, every other character is written as its UTF-8 bytes, each as ``-xx-``
in hex. A dash itself is escaped, so an escape can never be confused with text.
"""
from __future__ import annotations

import re

_KEPT = re.compile(r"[a-z0-9]")
_TOKEN = re.compile(r"[a-z0-9]|-([0-9a-f]{2})-")


def encode_user(user: str) -> str:
    """``john.smith`` -> ``john-2e-smith``; ``John`` -> ``-4a-ohn``."""
    if not user:
        raise ValueError("user: empty; give the Perforce user name")
    return "".join(c if _KEPT.fullmatch(c) else "".join(f"-{b:02x}-" for b in c.encode()) for c in user)


def secret_name(user: str) -> str:
    """The Secret block holding the password an administrator stored for a user
    (``p4integ credentials set``): one per user, whatever the name holds."""
    return f"p4-password-{encode_user(user)}"


def ticket_secret_name(user: str) -> str:
    """The Secret block holding the ticket from the user's last sign-in on the front page.

    Apart from the stored password: signing in must not replace a password that
    schedules rely on with a ticket that expires. Injective like ``secret_name``, and
    never equal to any user's password block (the prefixes differ)."""
    return f"p4-ticket-{encode_user(user)}"


def foreign_secret(user: str, secret: str | None) -> str | None:
    """Why ``secret`` may not sign ``user`` in, or None: a job runs only with its own
    user's stored password or sign-in ticket, so a spec cannot borrow someone else's
    identity by naming their Secret block."""
    if not secret or secret in (secret_name(user), ticket_secret_name(user)):
        return None
    return (f"password_secret: '{secret}' is not a credential of p4user '{user}'; a job signs in only with its "
            f"own user's: '{secret_name(user)}' (the password stored by 'p4integ credentials set {user}'), "
            f"'{ticket_secret_name(user)}' (the ticket kept when {user} signs in on the front page), "
            "or leave password_secret empty")


def decode_user(encoded: str) -> str:
    """The inverse of ``encode_user``."""
    raw = bytearray()
    pos = 0
    while pos < len(encoded):
        m = _TOKEN.match(encoded, pos)
        if m is None:
            raise ValueError(f"user: '{encoded}' is not an encoded user name (at position {pos})")
        raw += bytes.fromhex(m.group(1)) if m.group(1) else m.group(0).encode()
        pos = m.end()
    return raw.decode()
