"""Small drawing helpers shared by the pages: badges, ages, field errors, the stage line."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import streamlit as st

from flows.vocabulary import (
    CANCELLED, CANCELLING, COMPLETED, CRASHED, FAILED, PAUSED, PENDING, RUNNING, SCHEDULED,
)

# What a run's Prefect state means to the person who started the job.
STATE_LOOK: dict[str, tuple[str, str]] = {
    RUNNING: ("Running", "blue"),
    PAUSED: ("Needs you", "orange"),
    PENDING: ("Starting", "violet"),
    SCHEDULED: ("Queued", "violet"),
    COMPLETED: ("Done", "green"),
    FAILED: ("Error", "red"),
    CRASHED: ("Crashed", "red"),
    CANCELLING: ("Cancelling", "gray"),
    CANCELLED: ("Cancelled", "gray"),
}


# What markdown (and Streamlit's additions to it) could turn into a link, an image, HTML, a
# :color[...] directive, code or maths: escaped (an asterisk, as in a cron line, can only
# emphasise). Bare URLs and addresses become links by themselves (GFM autolinks), so "://",
# "www." and "@" are broken up too.
_MARKDOWN_ACTIVE = re.compile(r"([\\`\[\]<>~$|@]|:(?=//)|(?<=www)\.)", re.IGNORECASE)
_BACKTICKS = re.compile(r"`+")


def plain(text: object) -> str:
    """Text from a URL, a log line, a file name or a server's message, made safe to put in
    markdown (st.error, st.markdown, ...): it draws as typed, never as a link or a directive."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", str(text)).replace("\n", "  \n")


def code(text: object) -> str:
    """A markdown code span showing ``text`` as typed: fenced by more backticks than it holds,
    so a backtick in a file name cannot end the span and start markdown."""
    text = str(text).replace("\n", " ")
    fence = "`" * (max((len(m) for m in _BACKTICKS.findall(text)), default=0) + 1)
    return f"{fence} {text} {fence}" if text.startswith("`") or text.endswith("`") else f"{fence}{text}{fence}"


def state_badge(state: str) -> str:
    """Markdown for a coloured badge, usable inside any st.markdown text."""
    label, color = STATE_LOOK.get(state, (state.title(), "gray"))
    return f":{color}-badge[{label}]"


def age(when: datetime | None, now: datetime | None = None) -> str:
    if when is None:
        return "-"
    seconds = int(((now or datetime.now(timezone.utc)) - when).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    seconds = int(((end or datetime.now(timezone.utc)) - start).total_seconds())
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60} s"


def field_error(errors: dict[str, str], field: str) -> None:
    """The error for one form field, drawn right under it."""
    if field in errors:
        st.error(plain(errors[field]), icon=":material/error:")


def stage_line(stages: list[str], done: set[str], current: str | None, failed: str | None) -> str:
    """The whole pipeline in one line: done green, current blue, failed red, rest grey."""
    parts = []
    for s in stages:
        if s == failed:
            parts.append(f":red-badge[:material/close: {s}]")
        elif s == current:
            parts.append(f":blue-badge[:material/play_arrow: {s}]")
        elif s in done:
            parts.append(f":green-badge[:material/check: {s}]")
        else:
            parts.append(f":gray-badge[{s}]")
    return " → ".join(parts)


def empty(message: str, icon: str = ":material/inbox:") -> None:
    st.info(message, icon=icon)


def run_identity(t: Any, user: str) -> str:
    """Whose Perforce identity the template's runs use (deployments.templates.identity_for), in words."""
    from ui.backend import runs_as_caller

    saved = t.spec.get("p4user") or t.owner or "-"
    now = user if runs_as_caller(user, t) else saved
    return (f"Run now runs as {'you' if now == user else now} · "
            f"its schedules run as {'you' if saved == user else saved} (scheduled)")
