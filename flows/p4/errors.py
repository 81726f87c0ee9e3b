"""Errors from Perforce, carrying the command and what the server said."""
from __future__ import annotations

from collections.abc import Sequence

from flows.errors import P4IntegError

# Helix generic codes (P4.P4.EV_*) that decide how a failure is treated.
EV_COMM = 0x26  # connection dropped / refused: worth a retry
EV_CONFIG = 0x24  # P4PASSWD invalid or unset, bad P4PORT
EV_ILLEGAL = 0x04


class P4Error(P4IntegError):
    """A Perforce command failed. ``str()`` names the command and Perforce's messages."""

    transient = False

    def __init__(self, command: Sequence[str], errors: Sequence[str], warnings: Sequence[str] = (),
                 generic: int = 0) -> None:
        self.command = list(command)
        self.errors = [str(e) for e in errors]
        self.warnings = [str(w) for w in warnings]
        self.generic = generic
        said = "; ".join(self.errors or self.warnings) or "no message"
        super().__init__(f"'p4 {' '.join(self.command)}' failed: {said}")


class P4ConnectionError(P4Error):
    """The server could not be reached or the connection dropped: retrying may help."""

    transient = True


class P4AuthError(P4Error):
    """Perforce did not accept the user's password or ticket. ``advice`` tells the person
    what to do; by default, to check the stored password or ticket."""

    DEFAULT_ADVICE = "check the Perforce password or ticket stored for this user (or log in again) and retry"

    def __init__(self, command: Sequence[str], errors: Sequence[str], warnings: Sequence[str] = (),
                 generic: int = 0, advice: str | None = None) -> None:
        super().__init__(command, errors, warnings, generic)
        self.advice = advice or self.DEFAULT_ADVICE
        said = "; ".join(self.errors or self.warnings) or "no message"
        self.args = (f"Perforce refused the job's login: \"{said}\" ('p4 {' '.join(self.command)}'); "
                     f"{self.advice}",)

    @property
    def ticket_refused(self) -> bool:
        """The ticket held was refused: expired (Helix's LoginExpired), logged out (LoggedOut),
        or unknown to the server (BadPassword). Logging in again may cure it."""
        return any(s in e for e in self.errors
                   for s in ("session has expired", "session was logged out", "(P4PASSWD) invalid or unset"))
