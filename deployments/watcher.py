"""New submitted changes on the lines' sources become Prefect events (``p4.change.submitted``).

Every ``WATCH_SECONDS`` the service's background process asks each Perforce server that an
active line integrates from ONE question, however many lines it has: the newest submitted
changes under all their sources at once (``p4 changes -l -s submitted -m 50 <sources>``).
Each change newer than the last one seen becomes one event, naming the change, its path
and its author, related to every line whose source it touches; each line's automation
(deployments/lines.py) runs the line on it. A Perforce change-commit trigger may post the
same event to Prefect's API directly instead (README, "Integration lines").

Nothing here needs to survive a restart: a line integrates whatever Perforce lists as not
integrated yet, so an event missed while the service was down is made up by the first
poll after it starts, which wakes every line once.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Any

from flows.p4.records import ChangeInfo
from flows.p4.session import P4Session
from flows.prefect_compat import load_secret

from .lines import Line, line_resource

log = logging.getLogger("p4integ.watcher")
EVENT = "p4.change.submitted"
WATCH_SECONDS = float(os.environ.get("P4INTEG_WATCH_SECONDS", "5"))
NEWEST = 50  # changes asked for a poll: more between two polls only wake the lines once more, which is enough
VIEW_SECONDS = 600.0  # a branch spec's view is read again after this long


def _under(path: str) -> str:
    return path.removesuffix("...").removesuffix("/") + "/"


def touches(change_path: str, source: str) -> bool:
    """A change whose files all lie under ``change_path`` may touch a line reading ``source``."""
    a, b = _under(change_path), _under(source)
    return a.startswith(b) or b.startswith(a)


def server_id(port: str) -> str:
    return hashlib.sha256(port.encode()).hexdigest()[:12]


class Watcher:
    def __init__(self) -> None:
        self._last: dict[str, int] = {}  # server -> the newest change seen (since this process started)
        self._sessions: dict[str, P4Session] = {}
        self._views: dict[tuple[str, str, bool], tuple[float, list[str]]] = {}

    def poll(self, lines: list[Line]) -> list[dict[str, Any]]:
        """One poll of every server with an active line; returns the events emitted."""
        servers: dict[str, list[Line]] = {}
        for li in lines:
            if not li.paused and not li.spec.cron:  # a scheduled line moves when its schedule fires
                servers.setdefault(li.spec.job.p4port, []).append(li)
        emitted = []
        for port, on_server in servers.items():
            try:
                emitted += self._poll_server(port, on_server)
            except Exception as exc:  # noqa: BLE001 - one server's trouble must not stop the others
                log.warning("watching %s: %s", port, exc)
                self._drop(port)
        return emitted

    def _session(self, port: str, line: Line) -> P4Session:
        if port not in self._sessions:
            job = line.spec.job
            secret = str(load_secret(job.password_secret)) if job.password_secret else None
            self._sessions[port] = P4Session(port, job.p4user, job.client, password=secret).__enter__()
        return self._sessions[port]

    def _drop(self, port: str) -> None:
        session = self._sessions.pop(port, None)
        if session is not None:
            session.close()

    def sources(self, session: P4Session, line: Line) -> list[str]:
        job = line.spec.job
        if not job.branch:
            return [str(job.source)]
        key = (job.p4port, job.branch, job.reverse)
        seen = self._views.get(key)
        if seen is None or time.monotonic() - seen[0] > VIEW_SECONDS:
            view = [v.split() for v in session.p4.fetch_branch(job.branch).get("View", []) if not v.startswith("-")]
            seen = (time.monotonic(), [(v[1] if job.reverse else v[0]).lstrip("+") for v in view])
            self._views[key] = seen
        return seen[1]

    def _poll_server(self, port: str, lines: list[Line]) -> list[dict[str, Any]]:
        session = self._session(port, lines[0])
        by_line = {li.spec.name: self.sources(session, li) for li in lines}
        wanted = sorted({s for sources in by_line.values() for s in sources})
        changes = session.changes("-l", "-s", "submitted", "-m", str(NEWEST), *wanted)
        first = port not in self._last
        newest = max((c.change for c in changes), default=0)
        last = self._last.get(port, newest)
        self._last[port] = max(last, newest)
        if first:  # the service (re)started: wake every line once, so what was missed is integrated
            fresh = changes[:1]
            targets = {c.change: list(by_line) for c in fresh}
        else:
            fresh = sorted((c for c in changes if c.change > last), key=lambda c: c.change)
            targets = {c.change: [n for n, sources in by_line.items()
                                  if any(touches(c.path or "//...", s) for s in sources)]
                       for c in fresh}
        return [self._emit(port, c, targets[c.change]) for c in fresh if targets[c.change]]

    @staticmethod
    def _emit(port: str, change: ChangeInfo, lines: list[str]) -> dict[str, Any]:
        from prefect.events import emit_event

        resource = {"prefect.resource.id": f"p4.change.{server_id(port)}.{change.change}",
                    "p4.change": str(change.change), "p4.author": change.user, "p4.path": change.path}
        emit_event(event=EVENT, resource=resource, related=[line_resource(n) for n in lines])
        return {"change": change.change, "author": change.user, "path": change.path, "lines": lines}
