"""The job's typed record reads the same to the front page as its markdown summary does to people."""
from __future__ import annotations

from flows.record import JobRecord
from flows.spec import Stage


def test_a_done_record_says_what_was_submitted_or_why_not() -> None:
    base = JobRecord(host="h", workspace="rel-integ", mode="branch", outcome="DONE", integrated="2 integrate")
    assert base.model_copy(update={"submitted_change": 12}).facts()["submitted change"] == "12"
    assert base.model_copy(update={"trial": True}).facts()["submitted change"] == "trial: not submitted"
    assert base.facts()["submitted change"] == "pending"  # shelved for the site's push tool
    assert base.headline() == "DONE"


def test_an_error_record_names_its_stage_and_leaves_out_what_never_happened() -> None:
    r = JobRecord(host="h", workspace="w", mode="paths", outcome="ERROR", failed_stage=Stage.SHELVE,
                  reason="name check failed", cleanup="reverted 3 file(s)")
    assert r.headline() == "ERROR at SHELVE"
    facts = r.facts()
    assert facts["outcome"] == "ERROR at SHELVE" and "submitted change" not in facts and "conflicts" not in facts
    assert "| reason | name check failed |" in r.markdown().splitlines()
    assert JobRecord.model_validate(r.model_dump(mode="json")) == r  # what the artifact stores reads back


def test_a_record_of_a_job_still_running_has_no_outcome() -> None:
    r = JobRecord(host="h", workspace="w", mode="branch", pending_change=7)
    assert r.headline() == "" and "outcome" not in r.facts() and r.facts()["pending change"] == "7"
