"""A file Perforce refuses to integrate stops the job before anything is submitted."""
from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.schemas.objects import StateType

from deployments import jobs
from flows.p4.example import make_example
from flows.p4.session import P4Session
from flows.spec import FileChoice, JobSpec
from tests.p4.test_integ_messages import add_baseless_pair

from .helpers import PAUSED_OR_FINAL, logs, opened_and_pending, wait_for_log

pytestmark = pytest.mark.usefixtures("local_worker")


def test_a_baseless_file_fails_the_job_naming_it_until_the_spec_chooses_i(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    add_baseless_pair(ex)
    spec = JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client, branch=ex.branch)

    refused = jobs.submit(spec)
    assert jobs.wait(refused, timeout=120).state.type == StateType.FAILED, logs(refused)
    [error] = [l for l in wait_for_log(refused, "ERROR at INTEGRATE") if "ERROR at INTEGRATE" in l]
    assert ("//depot/rel/docs/notes.txt: '//depot/rel/docs/notes.txt - can't integrate from "
            "//depot/main/docs/notes.txt#1 without -i flag' (IntegBadBase); add '-i' to integrate_options") in error
    assert "reverted 3 file(s)" in error and "deleted empty change" in error  # what integrate opened
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])

    accepted = jobs.submit(spec.model_copy(update={"integrate_options": ["-i"]}))
    # Accepted: a baseless merge is a two-way merge, which waits for a person's choice.
    assert jobs.wait(accepted, until=PAUSED_OR_FINAL, timeout=120).state.type == StateType.PAUSED, logs(accepted)
    assert [c["depot_file"] for c in jobs.conflicts(accepted)] == ["//depot/rel/docs/notes.txt"]
    jobs.resume(accepted, "apply", [FileChoice(path="//depot/rel/docs/notes.txt", choice="theirs")])
    assert jobs.wait(accepted, timeout=120).state.type == StateType.COMPLETED, logs(accepted)
    wait_for_log(accepted, "DONE:")
    with P4Session(ex.port, ex.user, ex.client) as s:
        [log] = s.p4.run_filelog("//depot/rel/docs/notes.txt")
        assert [i.file for i in log.revisions[0].integrations] == ["//depot/main/docs/notes.txt"]
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])
