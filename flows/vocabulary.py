"""The service's words, defined once: the states a run ends in and the tags runs and templates carry.

Tags are how Prefect's server filters for us (a person's jobs, a template's owner), so they
are built and read here only.
"""
from __future__ import annotations

from collections.abc import Iterable

from prefect.client.schemas.objects import StateType

# A run in one of these states never runs again.
FINAL = frozenset({StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED})
FINAL_NAMES = frozenset(s.value for s in FINAL)  # the same, as the front page reads states
# The same states by name, as the front page compares them (a run row carries the name).
RUNNING, PENDING, SCHEDULED, CANCELLING = "RUNNING", "PENDING", "SCHEDULED", "CANCELLING"
PAUSED, COMPLETED, FAILED, CRASHED, CANCELLED = "PAUSED", "COMPLETED", "FAILED", "CRASHED", "CANCELLED"
assert {RUNNING, PENDING, SCHEDULED, CANCELLING, PAUSED} | FINAL_NAMES <= {s.value for s in StateType}
# The state name of a run waiting for a person with no process (Prefect's Paused type, suspended).
SUSPENDED = "Suspended"
# What a caller waiting on a job waits for: it needs a person (Paused, or Suspended) or it is over.
PAUSED_OR_FINAL = FINAL | {StateType.PAUSED}

PRODUCT_TAG = "p4-integration"  # every job run and template; prefect.yaml's deployments too
INTERNAL_TAG = "p4-integration-internal"  # the service's own runs about a job (cleanup, notify)
TEMPLATE_TAG = "template"
LINE_KIND_TAG = "line"  # on a line's deployment (deployments/lines.py)
_USER, _OWNER, _VISIBILITY, _LINE, _AUTHOR = "p4user:", "owner:", "visibility:", "line:", "author:"


def user_tag(user: str) -> str:
    """On every job run: the Perforce user it runs as."""
    return f"{_USER}{user}"


def owner_tag(user: str) -> str:
    """On a template (and the runs made from it): who owns it."""
    return f"{_OWNER}{user}"


def author_tag(user: str) -> str:
    """On a line's job: who wrote the source change it integrates."""
    return f"{_AUTHOR}{user}"


def line_tag(line: str) -> str:
    """On every job run a line started: which line."""
    return f"{_LINE}{line}"


def line_change_tag(line: str, change: int) -> str:
    """On the same runs: which source change of the line the job integrates (found by it, exactly)."""
    return f"{_LINE}{line}@{change}"


def job_tags(p4user: str, line: str | None = None, change: int | None = None, author: str | None = None,
             owner: str | None = None) -> list[str]:
    """Tags every job run carries: whose job it is, so lists can filter on the server; a line's
    jobs also say which line and which source change (a retried job keeps those two), who wrote
    that change and who owns the line (both told when the job waits for a person)."""
    of_line = [line_tag(line), line_change_tag(line, change)] if line and change else []
    people = ([author_tag(author)] if author else []) + ([owner_tag(owner)] if owner else [])
    return [PRODUCT_TAG, user_tag(p4user), *of_line, *people]


def visibility_tag(visibility: str) -> str:
    return f"{_VISIBILITY}{visibility}"


def _value(tags: Iterable[str], prefix: str) -> str | None:
    return next((t[len(prefix):] for t in tags if t.startswith(prefix)), None)


def user_of(tags: Iterable[str]) -> str | None:
    return _value(tags, _USER)


def line_of(tags: Iterable[str]) -> str | None:
    """The line a job run belongs to (its ``line:<name>`` tag, not ``line:<name>@<change>``)."""
    return next((t[len(_LINE):] for t in tags if t.startswith(_LINE) and "@" not in t), None)


def author_of(tags: Iterable[str]) -> str | None:
    return _value(tags, _AUTHOR)


def owner_of(tags: Iterable[str]) -> str | None:
    return _value(tags, _OWNER)


def visibility_of(tags: Iterable[str]) -> str | None:
    return _value(tags, _VISIBILITY)
