"""Which job holds a workspace, kept in Perforce itself so it outlives every process.

A job's pending change carries one line in its description, ``p4integ-run: <flow run
id> @<source change>``. That line is the job's record: a run that resumes after a
suspension (in a new process, maybe after a restart of everything) finds its own
change by it, and a job that starts on the workspace finds the changes of other runs
by it. A tagged change with files opened in the workspace *reserves* the workspace
while its run is not final; once that run is final or gone, the next job (or the
cleanup flow) cleans what it left and the reservation is released.

Nothing here lives in memory or in a file on the host: Perforce holds the change,
Prefect holds the run's state.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .p4.session import P4Session

TAG = "p4integ-run:"
_TAG_LINE = re.compile(r"^p4integ-run: (?P<run>[0-9a-f-]{36}|local) @(?P<cl>\d+)\s*$", re.M)


def tag_line(run_id: str, cl: int) -> str:
    return f"{TAG} {run_id} @{cl}"


def with_tag(description: str, run_id: str, cl: int) -> str:
    return f"{description.rstrip()}\n\n{tag_line(run_id, cl)}"


@dataclass(frozen=True)
class JobChange:
    """A pending change made by a job: whose run, which source change, what is in it."""

    change: int
    run_id: str
    cl: int
    opened: int
    shelved: bool


def parse(description: str) -> tuple[str, int] | None:
    m = _TAG_LINE.search(description or "")
    return (m.group("run"), int(m.group("cl"))) if m else None


def job_changes(session: P4Session, client: str) -> list[JobChange]:
    """Every pending change of a job in this workspace, oldest first (two server calls)."""
    counts: dict[int, int] = {}
    for row in session.run("opened", "-C", client):
        if isinstance(row, dict) and str(row.get("change", "")).isdigit():
            counts[int(row["change"])] = counts.get(int(row["change"]), 0) + 1
    out = []
    for row in session.run("changes", "-l", "-s", "pending", "-c", client):
        if not isinstance(row, dict):
            continue
        found = parse(str(row.get("desc", "")))
        if found:
            change = int(row["change"])
            out.append(JobChange(change=change, run_id=found[0], cl=found[1], opened=counts.get(change, 0),
                                 shelved="shelved" in row))
    return sorted(out, key=lambda c: c.change)


def own_change(changes: list[JobChange], run_id: str) -> JobChange | None:
    """The change this run made before it was suspended (or restarted), if any."""
    mine = [c for c in changes if c.run_id == run_id]
    return mine[-1] if mine else None
