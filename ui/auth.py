"""Who is signed in: Perforce credentials checked once, then a signed HttpOnly cookie.

The password goes from the browser's sign-in form straight to ``POST /auth/login``
(a plain form post, never through Streamlit's session) and is exchanged for a
ticket with ``login -p``, which prints the ticket instead of writing it to the
user's tickets file. The browser then holds only a signed, HttpOnly,
SameSite=Strict cookie naming the user, so a reload, a new tab or a deep link
stays signed in, and page scripts cannot read it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

COOKIE = "p4integ_session"
SESSION_SECONDS = 12 * 3600


class LoginRefused(Exception):
    """Credentials the server did not accept; the message is safe to show."""


@dataclass(frozen=True)
class Login:
    user: str
    ticket: str


def _key_path() -> Path:
    from deployments.settings import home

    return home() / "ui-secret"


def _key() -> bytes:
    """The signing key, made once per installation, readable by its owner only."""
    path = _key_path()
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    return path.read_bytes()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_revoked: set[str] = set()  # signed-out session ids, for as long as this server runs


def make_cookie(user: str, now: float | None = None) -> str:
    expires = int((now or time.time()) + SESSION_SECONDS)
    body = f"{_b64(user.encode())}.{expires}.{secrets.token_hex(8)}"
    sig = hmac.new(_key(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(sig)}"


def user_from_cookie(value: str | None, now: float | None = None) -> str | None:
    """The user a cookie names, or None when it is missing, forged, expired or signed out."""
    if not value or value.count(".") != 3:
        return None
    body, _, sig = value.rpartition(".")
    try:
        good = hmac.compare_digest(_unb64(sig), hmac.new(_key(), body.encode(), hashlib.sha256).digest())
        user_b64, expires, sid = body.split(".")
        user = _unb64(user_b64).decode()
        fresh = int(expires) > (now or time.time())
    except (ValueError, UnicodeDecodeError):
        return None
    return user if good and fresh and sid not in _revoked else None


def revoke(value: str | None) -> None:
    if value and value.count(".") == 3:
        _revoked.add(value.split(".")[2])


def p4port() -> str:
    """The Perforce server people sign in against (and the default for new jobs)."""
    port = os.environ.get("P4INTEG_P4PORT", "").strip()
    if not port:
        raise RuntimeError("P4INTEG_P4PORT is not set; start the front page with `p4integ ui --p4port ...`")
    return port


def check_credentials(user: str, password: str, port: str | None = None) -> Login:
    """Ask the Perforce server; a user without a password is refused (anyone could claim it)."""
    from flows.p4.session import TICKET, make_p4

    user = user.strip()
    if not user or not password:
        raise LoginRefused("Enter your Perforce user name and password.")
    p4 = make_p4(port or p4port())
    p4.port, p4.user, p4.prog = port or p4port(), user, "p4-integration-ui"
    p4.exception_level = 1
    try:
        p4.connect()
    except Exception:  # noqa: BLE001 - P4Exception; the message may echo the port only
        raise LoginRefused(f"Cannot reach the Perforce server {p4.port}; try again later.") from None
    try:
        out = p4.run_login("-p", password=password)
    except Exception:  # noqa: BLE001 - wrong password or unknown user: say the same for both
        raise LoginRefused("Perforce refused this user name and password.") from None
    finally:
        p4.disconnect()
    ticket = next((x.strip() for x in out if isinstance(x, str) and TICKET.match(x.strip())), None)
    if not ticket:
        raise LoginRefused(f"Perforce user '{user}' has no password; set one (p4 passwd) to sign in here.")
    return Login(user=user, ticket=ticket)
