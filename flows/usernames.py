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
    """The Secret block holding a user's password: one per user, whatever the name holds."""
    return f"p4-password-{encode_user(user)}"


def foreign_secret(user: str, secret: str | None) -> str | None:
    """Why ``secret`` may not sign ``user`` in, or None: a job runs only with its own
    user's stored password, so a spec cannot borrow someone else's identity by naming
    their Secret block."""
    if not secret or secret == secret_name(user):
        return None
    return (f"password_secret: '{secret}' is not the stored password of p4user '{user}'; a job signs in only "
            f"with its own user's: name '{secret_name(user)}' (stored by 'p4integ credentials set {user}' "
            "or by signing in on the front page) or leave password_secret empty")


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
