"""What a job did, as one typed record.

The flow publishes it as a table artifact (``RECORD_KEY``) each time it ends or fails; the
front page and the command line read it back through ``deployments.jobs.record``. The
markdown summary made from it stays for people reading the run in the Prefect UI.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from .spec import Stage

RECORD_KEY = "integration-record"
SUMMARY_KEY = "integration-summary"  # the same facts in markdown, for the Prefect UI

Outcome = Literal["DONE", "NOTHING_TO_INTEGRATE", "ERROR"]


class JobRecord(BaseModel):
    host: str
    workspace: str
    mode: str
    outcome: Outcome | None = None  # None while the job runs or waits
    failed_stage: Stage | None = None  # the stage an ERROR stopped at
    reason: str | None = None
    cleanup: str | None = None
    source_changelist: int | None = None
    pending_change: int | None = None
    integrated: str | None = None  # e.g. "3 integrate, 1 branch"
    auto_resolved: str | None = None
    conflicts: int | None = None  # files a person had to resolve at the last check
    shelved_change: int | None = None
    submitted_change: int | None = None
    trial: bool = False

    def headline(self) -> str:
        if self.outcome == "ERROR":
            return f"ERROR at {self.failed_stage.value if self.failed_stage else '?'}"
        return {"DONE": "DONE", "NOTHING_TO_INTEGRATE": "DONE: nothing to integrate"}.get(self.outcome or "", "")

    def submitted_text(self) -> str | None:
        if self.submitted_change:
            return str(self.submitted_change)
        if self.outcome != "DONE":
            return None
        return "trial: not submitted" if self.trial else "pending"

    def facts(self) -> dict[str, str]:
        """For people: each known fact under its label, in the order a job learns them."""
        rows = {
            "host": self.host, "workspace": self.workspace, "mode": self.mode,
            "source changelist": self.source_changelist, "pending change": self.pending_change,
            "integrated": self.integrated, "auto-resolved": self.auto_resolved, "conflicts": self.conflicts,
            "shelved change": self.shelved_change, "submitted change": self.submitted_text(),
            "outcome": self.headline() or None, "reason": self.reason, "cleanup": self.cleanup,
        }
        return {k: str(v) for k, v in rows.items() if v is not None}

    def markdown(self) -> str:
        return "\n".join(["| item | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in self.facts().items())])
