"""The integration flow through a real Prefect server and a real process worker."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from prefect.client.schemas.objects import StateType

from deployments import jobs
from flows.p4.example import Example, make_example
from flows.p4.session import P4Session
from flows.spec import FileChoice

from .helpers import (
    PAUSED_OR_FINAL, head_text, logs, opened_and_pending, processes_with, spec_for, task_runs, until, wait_for_log,
)

pytestmark = pytest.mark.usefixtures("local_worker")

STAGES = {"GET_LATEST_CL", "SYNC", "INTEGRATE", "RESOLVE_PASS_1", "RESOLVE_CHECK", "PRE_SUBMIT", "SHELVE", "P4PUSH"}


def test_clean_integration_is_done_with_each_stage_as_a_task(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    run_id = jobs.submit(spec_for(ex))
    run = jobs.wait(run_id, timeout=120)
    assert run.state.type == StateType.COMPLETED, logs(run_id)
    # Task runs reach the API as events, shortly after the flow run ends.
    names = until(lambda: (lambda n: n if STAGES <= n else None)({t.name.rsplit("-", 1)[0] for t in task_runs(run_id)}),
                  30, "a task run for every stage")
    assert "NEEDS_RESOLVE" not in names
    lines = wait_for_log(run_id, "DONE:")
    assert any("integrated 1 branch, 3 integrate" in l for l in lines)
    app = head_text(ex, "//depot/rel/src/app.py")
    assert "# main feature" in app and "# rel hotfix" in app
    assert head_text(ex, "//depot/rel/src/config.ini") == head_text(ex, "//depot/main/src/config.ini")
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])


def test_already_integrated_ends_done_saying_so(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    first = jobs.submit(spec_for(ex))
    assert jobs.wait(first, timeout=120).state.type == StateType.COMPLETED
    second = jobs.submit(spec_for(ex))
    assert jobs.wait(second, timeout=120).state.type == StateType.COMPLETED
    lines = wait_for_log(second, "DONE: nothing to integrate")
    assert any("deleted empty change" in l for l in lines)
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])


CHOICES = [  # (choice, the text of an edited resolve, the line the depot then holds)
    ("theirs", None, "version = 2.1"),
    ("yours", None, "version = 2.0.1"),
    ("edited", "[product]\nname = widget\nversion = 2.1.1\nchannel = stable\n", "version = 2.1.1"),
]


def test_conflict_pauses_and_the_choice_is_submitted(tmp_path: Path) -> None:
    """Each choice on a depot of its own, the three jobs under way at once."""
    started = {}
    for choice, text, expected in CHOICES:
        ex = make_example(tmp_path / choice)
        started[choice] = (ex, text, expected, jobs.submit(spec_for(ex)))
    for choice, (_, text, _, run_id) in started.items():
        run = jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120)
        assert run.state.type == StateType.PAUSED, logs(run_id)
        conflicts = jobs.conflicts(run_id)
        assert [c["depot_file"] for c in conflicts] == ["//depot/rel/src/config.ini"]
        c = conflicts[0]
        assert ">>>> ORIGINAL" in c["merged"] and "version = 2.0" in c["base"]
        assert "version = 2.1" in c["theirs"] and "version = 2.0.1" in c["yours"] and not c["binary"]
        jobs.resume(run_id, "apply", [FileChoice(path=c["depot_file"], choice=choice, text=text)])  # type: ignore[arg-type]
    for choice, (ex, _, expected, run_id) in started.items():
        run = jobs.wait(run_id, timeout=120)
        assert run.state.type == StateType.COMPLETED, (choice, logs(run_id))
        assert expected in head_text(ex, "//depot/rel/src/config.ini").splitlines(), choice
        assert opened_and_pending(ex.port, ex.user, ex.client) == ([], []), choice


def test_recheck_without_resolving_pauses_again_then_abort_cleans(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex")
    run_id = jobs.submit(spec_for(ex))
    assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120).state.type == StateType.PAUSED
    jobs.resume(run_id, "recheck")
    wait_for_log(run_id, "answer: 'recheck'")
    run = jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=240)
    assert run.state.type == StateType.PAUSED
    jobs.resume(run_id, "abort")
    run = jobs.wait(run_id, timeout=240)
    assert run.state.type == StateType.FAILED
    lines = wait_for_log(run_id, "CLEANUP:")
    assert any("aborted by the person resolving" in l and "deleted empty change" in l for l in lines)
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])


def _delete_branch_script(ex: Example) -> list[str]:
    code = ("import os; from flows.p4.sandbox import P4; p = P4(port=os.environ['P4PORT'], "
            "user=os.environ['P4USER'], client=os.environ['P4CLIENT']).connect(); "
            f"p.run_sync(); p.run_branch('-d', {ex.branch!r}); print('branch spec deleted')")
    return [sys.executable, "-c", code]


@pytest.mark.parametrize("case", ["failing hook", "failing sync command", "perforce error in INTEGRATE"])
def test_failures_end_in_error_with_a_clean_workspace(tmp_path: Path, case: str) -> None:
    ex = make_example(tmp_path / "ex")
    if case == "failing hook":
        ex = make_example(tmp_path / "ex2", conflict=False)  # no person involved: nothing to keep
        run_id = jobs.submit(spec_for(ex, pre_submit=[["sh", "-c", "echo checking; echo 'lint: 3 problems' >&2; exit 3"]]))
        stage, detail = "PRE_SUBMIT", "lint: 3 problems"
    elif case == "failing sync command":
        run_id = jobs.submit(spec_for(ex, sync_command=["sh", "-c", "echo syncing; exit 7"]))
        stage, detail = "SYNC", "exited with code 7"
    else:
        run_id = jobs.submit(spec_for(ex, sync_command=_delete_branch_script(ex)))
        stage, detail = "INTEGRATE", "Branch 'main-to-rel' doesn't exist"
    run = jobs.wait(run_id, timeout=120)
    assert run.state.type == StateType.FAILED, logs(run_id)
    lines = wait_for_log(run_id, f"ERROR at {stage}")
    error = next(l for l in lines if l.startswith(f"ERROR at {stage}"))
    assert detail in error and "CLEANUP:" in error
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])


def test_cancel_during_a_long_hook_kills_its_tree_and_cleans(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    marker = str(tmp_path / "started")
    hook = ["sh", "-c", f"sleep 600 & touch {marker}; exec sleep 601"]
    run_id = jobs.submit(spec_for(ex, pre_submit=[hook]))
    until(lambda: Path(marker).exists() and len(processes_with(["sleep", "600"]) + processes_with(["sleep", "601"])) == 2,
          120, "hook processes")
    jobs.cancel(run_id)
    run = jobs.wait(run_id, timeout=240)
    assert run.state.type == StateType.CANCELLED
    until(lambda: not processes_with(["sleep", "600"]) and not processes_with(["sleep", "601"]), 240,
          "hook processes to end")
    wait_for_log(run_id, "ERROR at PRE_SUBMIT: cancelled")
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])


def test_cancel_while_suspended_cleans_up_on_the_host(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex")
    run_id = jobs.submit(spec_for(ex))
    assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120).state.name == "Suspended"
    jobs.cancel(run_id)
    assert jobs.wait(run_id, timeout=240).state.type == StateType.CANCELLED
    # No process of the job is alive: the cleanup flow, started by an automation, writes here.
    lines = wait_for_log(run_id, "CLEANUP after the run ended Cancelled", timeout=240)
    assert any("reverted 4 file(s)" in l and "deleted empty change" in l for l in lines), lines
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])


def test_a_wait_that_times_out_keeps_what_the_person_resolved(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex")
    run_id = jobs.submit(spec_for(ex, pause_timeout=20))
    assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120).state.type == StateType.PAUSED
    jobs.resume(run_id, "recheck")  # "I resolved on the host": from now on the work is the person's
    wait_for_log(run_id, "answer: 'recheck'")
    assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120).state.type == StateType.PAUSED
    run = jobs.wait(run_id, timeout=120)  # nobody answers the second wait
    assert run.state.type == StateType.FAILED
    lines = wait_for_log(run_id, "CLEANUP after the run ended Failed", timeout=240)
    last = next(l for l in lines if "CLEANUP after the run ended Failed" in l)
    assert "nobody answered within 20 s" in last
    change = int(last.split("kept in shelved change ")[1].split(":")[0])
    assert f"unshelve -s {change}" in last
    with P4Session(ex.port, ex.user, ex.client) as s:
        shelf = s.describe(change, shelved=True)
        assert s.opened() == []
    assert sorted(f.depot_file for f in shelf.files) == [
        "//depot/rel/assets/logo.bin", "//depot/rel/docs/notes.txt", "//depot/rel/src/app.py"]


def test_a_resumed_job_that_fails_its_first_checks_keeps_what_the_person_resolved(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex")
    run_id = jobs.submit(spec_for(ex))
    assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120).state.type == StateType.PAUSED
    jobs.resume(run_id, "recheck")  # "I resolved on the host": from now on the work is the person's
    wait_for_log(run_id, "answer: 'recheck'")
    assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120).state.type == StateType.PAUSED
    with P4Session(ex.port, ex.user, ex.client) as s:  # while it waits, the branch spec goes away
        s.run("branch", "-d", ex.branch)
    jobs.resume(run_id, "recheck")
    assert jobs.wait(run_id, timeout=240).state.type == StateType.FAILED, logs(run_id)
    lines = wait_for_log(run_id, "ERROR at ")
    last = next(l for l in lines if "ERROR at " in l)
    assert f"branch spec '{ex.branch}' does not exist" in last and "kept in shelved change " in last, lines
    change = int(last.split("kept in shelved change ")[1].split(":")[0])
    with P4Session(ex.port, ex.user, ex.client) as s:
        shelf = s.describe(change, shelved=True)
        assert s.opened() == []
    assert sorted(f.depot_file for f in shelf.files) == [
        "//depot/rel/assets/logo.bin", "//depot/rel/docs/notes.txt", "//depot/rel/src/app.py"]


def test_a_partly_resolved_file_outlives_a_timeout_and_stops_the_next_job(tmp_path: Path) -> None:
    from .helpers import add_action_changes

    ex = make_example(tmp_path / "ex")
    add_action_changes(ex, rename=False)  # config.ini: a content conflict and a filetype resolve
    run_id = jobs.submit(spec_for(ex, pause_timeout=20))
    assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120).state.type == StateType.PAUSED
    # The person decides config.ini's content only; nobody answers the wait that follows.
    jobs.resume(run_id, "apply", [FileChoice(path="//depot/rel/src/config.ini", choice="theirs")])
    wait_for_log(run_id, "answer: 'apply'")
    assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120).state.type == StateType.PAUSED
    assert jobs.wait(run_id, timeout=120).state.type == StateType.FAILED
    lines = wait_for_log(run_id, "CLEANUP after the run ended Failed", timeout=240)
    last = next(l for l in lines if "CLEANUP after the run ended Failed" in l)
    assert "partly resolved stay opened in change" in last and "//depot/rel/src/config.ini" in last, last
    opened, pending = opened_and_pending(ex.port, ex.user, ex.client)
    assert opened == ["//depot/rel/src/config.ini"] and len(pending) == 1
    decided = head_text(ex, "//depot/main/src/config.ini")
    assert Path(ex.workspace, "src", "config.ini").read_text() == decided
    # The next job on the workspace neither reverts that work nor integrates around it.
    second = jobs.submit(spec_for(ex))
    assert jobs.wait(second, timeout=240).state.type == StateType.FAILED, logs(second)
    wait_for_log(second, "holds resolves a person began and did not finish")
    assert opened_and_pending(ex.port, ex.user, ex.client) == (opened, pending)
    assert Path(ex.workspace, "src", "config.ini").read_text() == decided


def test_the_jobs_record_and_summary_name_the_submitted_change(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    run_id = jobs.submit(spec_for(ex))
    assert jobs.wait(run_id, timeout=120).state.type == StateType.COMPLETED
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    summary = next(a for a in arts if a.key == "integration-summary")  # for people, in the Prefect UI
    assert "| submitted change | 6 |" in summary.data and "| integrated | 1 branch, 3 integrate |" in summary.data
    record = jobs.record(run_id)  # for the front page and the command line: typed
    assert (record.outcome, record.submitted_change, record.integrated) == ("DONE", 6, "1 branch, 3 integrate")
    assert record.failed_stage is None and record.pending_change and record.source_changelist
