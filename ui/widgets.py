"""Small drawing helpers shared by the pages: badges, ages, field errors, the stage line."""
from __future__ import annotations

from datetime import datetime, timezone

import streamlit as st

# What a run's Prefect state means to the person who started the job.
STATE_LOOK: dict[str, tuple[str, str]] = {
    "RUNNING": ("Running", "blue"),
    "PAUSED": ("Needs you", "orange"),
    "PENDING": ("Starting", "violet"),
    "SCHEDULED": ("Queued", "violet"),
    "COMPLETED": ("Done", "green"),
    "FAILED": ("Error", "red"),
    "CRASHED": ("Crashed", "red"),
    "CANCELLING": ("Cancelling", "gray"),
    "CANCELLED": ("Cancelled", "gray"),
}


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
        st.error(errors[field], icon=":material/error:")


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
