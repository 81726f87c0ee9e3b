"""Who is signed in: Perforce credentials checked once, then a signed HttpOnly cookie.

The password goes from the browser's sign-in form straight to ``POST /auth/login``
(a plain form post, never through Streamlit's session) and is exchanged for a
ticket with ``login -a -p``, which prints the ticket instead of writing it to the
user's tickets file. The ticket is kept for the user's jobs, which run on worker
hosts: a plain ticket would be valid only from this host's address, so it is asked
for all hosts (``-a``). Where the server refuses all-host tickets
(``auth.tickets.nounlocked=2``) it falls back to a ticket for this host, good for
jobs on this host only. The password itself is not kept: a job started from here
works as long as the ticket lives (12 hours by default); for jobs that must outlive
that, the user stores the password (``p4integ credentials set``).
The browser then holds only a signed, HttpOnly, SameSite=Strict cookie naming the
user, so a reload, a new tab or a deep link stays signed in, and page scripts cannot
read it. The cookie is checked again on every page run; signed-out sessions (one
cookie, or every session of a user whose ticket stopped working) are kept in a 0600
file under ``$P4INTEG_HOME`` until the cookies they name would have expired anyway,
so a restart of the front page does not bring them back.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from flows.settings import signing_key

COOKIE = "p4integ_session"
SESSION_SECONDS = 12 * 3600
# Failed sign-ins allowed per user name and per client address within the window.
MAX_FAILURES, FAILURE_WINDOW_SECONDS = 5, 300
REFUSED = "Perforce refused this user name and password."
LIMITED = "Too many failed sign-ins; wait a few minutes and try again."
UNREACHABLE = "Cannot reach the Perforce server; try again later."
EMPTY = "Enter your Perforce user name and password."
TICKET_ENDED = "Your Perforce ticket no longer works (it expired or was logged out); sign in again."
# The only sign-in messages the sign-in page shows: it comes back with one of them in its
# address, and text from an address is never drawn as given.
MESSAGES = frozenset({REFUSED, LIMITED, UNREACHABLE, EMPTY})


class LoginRefused(Exception):
    """Credentials the server did not accept; the message is safe to show."""


@dataclass(frozen=True)
class Login:
    user: str
    ticket: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_cookie(user: str, now: float | None = None) -> str:
    # Milliseconds, so a sign-in right after its user's sessions were ended is told apart.
    expires = int(((now or time.time()) + SESSION_SECONDS) * 1000)
    body = f"{_b64(user.encode())}.{expires}.{secrets.token_hex(8)}"
    sig = hmac.new(signing_key(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(sig)}"


def user_from_cookie(value: str | None, now: float | None = None) -> str | None:
    """The user a cookie names, or None when it is missing, forged, expired or signed out."""
    if not value or value.count(".") != 3:
        return None
    body, _, sig = value.rpartition(".")
    try:
        good = hmac.compare_digest(_unb64(sig), hmac.new(signing_key(), body.encode(), hashlib.sha256).digest())
        user_b64, expires, sid = body.split(".")
        user = _unb64(user_b64).decode()
        expires_s = int(expires) / 1000
    except (ValueError, UnicodeDecodeError):
        return None
    if not good or expires_s <= (now or time.time()):
        return None
    return None if _is_revoked(user, sid, expires_s - SESSION_SECONDS) else user


# --- signed-out sessions, on disk -----------------------------------------------------------

_lock = threading.Lock()


def _revoked_path() -> Path:
    from flows.settings import home

    return home() / "ui-revoked.json"


def _read_revoked() -> dict[str, dict[str, float]]:
    """{"sessions": {session id: its cookie's expiry}, "users": {user: when their sessions ended}}."""
    try:
        raw = json.loads(_revoked_path().read_text())
    except (OSError, ValueError):
        raw = {}
    return {"sessions": dict(raw.get("sessions", {})), "users": dict(raw.get("users", {}))}


def _write_revoked(revoked: dict[str, dict[str, float]], now: float) -> None:
    """Entries whose cookies have expired anyway are dropped, so the file stays small."""
    revoked = {"sessions": {k: v for k, v in revoked["sessions"].items() if v > now},
               "users": {k: v for k, v in revoked["users"].items() if v + SESSION_SECONDS > now}}
    path = _revoked_path()
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(revoked, fh)
    os.replace(tmp, path)


def _is_revoked(user: str, sid: str, issued: float) -> bool:
    revoked = _read_revoked()
    return sid in revoked["sessions"] or issued < revoked["users"].get(user, float("-inf"))


def revoke(value: str | None, now: float | None = None) -> None:
    """Sign one cookie out, for good (until it would have expired)."""
    if not value or value.count(".") != 3:
        return
    _, expires, sid, _ = value.split(".")
    try:
        expires_s = int(expires) / 1000
    except ValueError:
        return
    now = now or time.time()
    with _lock:
        revoked = _read_revoked()
        revoked["sessions"][sid] = expires_s
        _write_revoked(revoked, now)


def revoke_user(user: str, now: float | None = None) -> None:
    """End every session of ``user`` made until now (their ticket stopped working)."""
    now = int((now or time.time()) * 1000) / 1000  # cookies say when they were made to the ms
    with _lock:
        revoked = _read_revoked()
        revoked["users"][user] = now
        _write_revoked(revoked, now)


# --- failed sign-ins --------------------------------------------------------------------------

class FailureLimiter:
    """Failed sign-ins per user name and per client address over a sliding window.

    Kept in the front page's memory: a restart forgets them, which costs an attacker a
    restart of someone else's service per MAX_FAILURES guesses."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW_SECONDS) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def limited(self, user: str, address: str, now: float | None = None) -> bool:
        now = now or time.time()
        with self._lock:
            return any(len(self._recent(k, now)) >= self.limit for k in (f"user:{user}", f"addr:{address}"))

    def failed(self, user: str, address: str, now: float | None = None) -> None:
        now = now or time.time()
        with self._lock:
            for key in (f"user:{user}", f"addr:{address}"):
                self._recent(key, now).append(now)


def p4port() -> str:
    """The Perforce server people sign in against (and the default for new jobs)."""
    from flows.settings import P4PORT_VAR

    port = os.environ.get(P4PORT_VAR, "").strip()
    if not port:
        raise RuntimeError(f"{P4PORT_VAR} is not set; start the front page with `p4integ ui --p4port ...`")
    return port


def _login_for_jobs(p4: object, password: str) -> list[object]:
    """A ticket valid on every host (jobs run on workers), or this host's where the server
    refuses all-host tickets (MsgServer::NoHostlessTickets)."""
    try:
        return p4.run_login("-a", "-p", password=password)  # type: ignore[attr-defined]
    except Exception as exc:  # P4Exception
        if not any("login -a' has been disabled" in str(e) for e in getattr(exc, "errors", None) or []):
            raise
    return p4.run_login("-p", password=password)  # type: ignore[attr-defined]


def check_credentials(user: str, password: str, port: str | None = None) -> Login:
    """Ask the Perforce server; a user without a password is refused (anyone could claim it)."""
    from flows.p4.session import TICKET, make_p4

    user = user.strip()
    if not user or not password:
        raise LoginRefused(EMPTY)
    p4 = make_p4(port or p4port())
    p4.port, p4.user, p4.prog = port or p4port(), user, "p4-integration-ui"
    p4.exception_level = 1
    try:
        p4.connect()
    except Exception:  # noqa: BLE001 - P4Exception; the page names the port above the form
        raise LoginRefused(UNREACHABLE) from None
    try:
        out = _login_for_jobs(p4, password)
    except Exception:  # noqa: BLE001 - wrong password or unknown user: say the same for both
        raise LoginRefused(REFUSED) from None
    finally:
        p4.disconnect()
    ticket = next((x.strip() for x in out if isinstance(x, str) and TICKET.match(x.strip())), None)
    if not ticket:  # no password set: anyone could claim the name; said like a wrong password
        raise LoginRefused(REFUSED)
    return Login(user=user, ticket=ticket)
