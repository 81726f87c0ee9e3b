"""Jobs waiting for a person hold no process, survive restarts, and never lose a person's work."""
from __future__ import annotations

import os
import signal
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.schemas.objects import StateType
from prefect.flow_runs import resume_flow_run

from agent import pools

from deployments import jobs, processes
from flows.settings import PROJECT_DIR
from flows.p4.example import AUTHOR_CLIENT, Example, make_example
from flows.p4.session import P4Session
from flows.spec import FileChoice

from .helpers import (
    PAUSED_OR_FINAL, head_text, logs, opened_and_pending, processes_with, spec_for, until, wait_for_log,
)
from tests.cli import p4integ

pytestmark = pytest.mark.usefixtures("local_worker")

CONFIG = "//depot/rel/src/config.ini"
MARKED = "[product]\n>>>> ORIGINAL\nversion = 2.0\n==== THEIRS\nversion = 2.1\n==== YOURS\nversion = 2.0.1\n<<<<\n"


def suspended(run_id: UUID, timeout: float = 120) -> None:
    run = jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=timeout)
    assert run.state.name == "Suspended", logs(run_id)


def flow_processes(run_ids: list[UUID]) -> list[int]:
    """Live processes running one of these flow runs (what a waiting job must not keep)."""
    wanted = {f"PREFECT__FLOW_RUN_ID={r}".encode() for r in run_ids}
    found = []
    # Whatever their command line (the worker's command, or Prefect's own engine): the worker
    # tells each run's process its run in the environment.
    for pid in processes_with([]):
        try:
            env = set(Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
        except OSError:
            continue
        if env & wanted:
            found.append(pid)
    return found


def no_process_for(run_ids: list[UUID]) -> None:
    # A suspended run's process exits right after it proposes the Suspended state.
    until(lambda: not flow_processes(run_ids), 240, "the waiting jobs' processes to exit")



def test_a_bad_answer_is_refused_whole_and_the_job_keeps_waiting(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", second_conflict=True)
    run_id = jobs.submit(spec_for(ex))
    suspended(run_id)
    files = sorted(c["depot_file"] for c in jobs.conflicts(run_id))
    assert files == ["//depot/rel/README.md", CONFIG]
    # Refused before anything is sent, by p4integ and the front page alike.
    for bad, why in [
        ([FileChoice(path="//depot/rel/nope.txt", choice="theirs")], "is not a file waiting for a resolve"),
        ([FileChoice(path=CONFIG, choice="merged")], "cannot take 'merged'"),
        ([], "nothing was applied"),
    ]:
        with pytest.raises(ValueError, match=why):
            jobs.resume(run_id, "apply", bad)
    with pytest.raises(ValueError, match="conflict markers on line"):
        FileChoice(path=CONFIG, choice="edited", text=MARKED)
    # Sent raw (the Prefect UI or API): the job refuses the whole answer, applies none of it.
    resume_flow_run(run_id, run_input={"action": "apply", "files": [
        {"path": "//depot/rel/README.md", "choice": "theirs"},
        {"path": CONFIG, "choice": "edited", "text": MARKED}]}, _sync=True)
    lines = wait_for_log(run_id, "the answer was refused, nothing was applied", timeout=240)
    assert any("conflict markers" in l for l in lines if "refused" in l)
    suspended(run_id)
    with P4Session(ex.port, ex.user, ex.client) as s:
        assert sorted(p.local_path.rsplit("/", 2)[-1] for p in s.pending_resolves()) == ["README.md", "config.ini"]
    resume_flow_run(run_id, run_input={"action": "apply", "files": [
        {"path": "//depot/rel/README.md", "choice": "theirs"}, {"path": CONFIG, "choice": "merged"}]}, _sync=True)
    wait_for_log(run_id, "cannot take 'merged'", timeout=240)
    suspended(run_id)
    jobs.resume(run_id, "apply", [FileChoice(path=f, choice="theirs") for f in files])
    assert jobs.wait(run_id, timeout=120).state.type == StateType.COMPLETED, logs(run_id)
    assert ">>>>" not in head_text(ex, CONFIG) and "version = 2.1" in head_text(ex, CONFIG)
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])


def test_resume_answers_at_once_when_the_run_cannot_take_it(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    done = jobs.submit(spec_for(ex))
    assert jobs.wait(done, timeout=120).state.type == StateType.COMPLETED
    for run, expected in [(str(done), "is not waiting for a person: it is Completed"),
                          ("00000000-0000-0000-0000-000000000000", "there is no flow run"),
                          ("123", "is not a flow run id")]:
        out = p4integ("resume", run, "--theirs")
        assert out.returncode == 2 and expected in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_a_second_job_waits_for_the_suspended_holder_and_never_says_done_falsely(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex")
    first = jobs.submit(spec_for(ex))
    suspended(first)
    second = jobs.submit(spec_for(ex))
    lines = wait_for_log(second, f"flow run {first} holds it", timeout=240)
    assert any("waiting for a person" in l and "leaving this host's slot free" in l for l in lines)
    # Not DONE (the work is in first's change), and queued again without a process.
    assert jobs.read(second).state.type == StateType.SCHEDULED
    no_process_for([second])
    jobs.resume(first, "apply", [FileChoice(path=CONFIG, choice="theirs")])
    assert jobs.wait(first, timeout=120).state.type == StateType.COMPLETED, logs(first)
    # Only now is there truly nothing left to integrate.
    assert jobs.wait(second, timeout=120).state.type == StateType.COMPLETED, logs(second)
    wait_for_log(second, "DONE: nothing to integrate")
    assert "version = 2.1" in head_text(ex, CONFIG)
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])


def _submit_to_target(ex: Example, path: str, text: str) -> None:
    """Someone else submits to the target branch (from the authoring workspace)."""
    root = Path(ex.depot_dir).parent / "workspaces" / AUTHOR_CLIENT
    with P4Session(ex.port, ex.user, AUTHOR_CLIENT) as s:
        s.run("sync", "-f", f"//{AUTHOR_CLIENT}/...")
        s.run("edit", path)
        local = root / path.removeprefix("//depot/")
        local.write_text(text)
        s.run("submit", "-d", "someone else's change to rel")


def test_target_moved_while_waiting_is_synced_resolved_and_submitted(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex")
    run_id = jobs.submit(spec_for(ex))
    suspended(run_id)
    app = head_text(ex, "//depot/rel/src/app.py")
    _submit_to_target(ex, "//depot/rel/src/app.py", app + "# a late rel fix\n")
    jobs.resume(run_id, "apply", [FileChoice(path=CONFIG, choice="theirs")])
    run = jobs.wait(run_id, timeout=180)
    assert run.state.type == StateType.COMPLETED, logs(run_id)
    wait_for_log(run_id, "syncing and resolving again", timeout=240)
    text = head_text(ex, "//depot/rel/src/app.py")
    assert "# a late rel fix" in text and "# main feature" in text
    assert "version = 2.1" in head_text(ex, CONFIG)
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])


def test_a_failing_build_after_the_persons_choice_keeps_it_shelved(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex")
    run_id = jobs.submit(spec_for(ex, build_command=["sh", "-c", "echo 'build: 2 errors'; exit 4"]))
    suspended(run_id)
    edited = "[product]\nname = widget\nversion = 2.1.7\nchannel = stable\n"
    jobs.resume(run_id, "apply", [FileChoice(path=CONFIG, choice="edited", text=edited)])
    assert jobs.wait(run_id, timeout=120).state.type == StateType.FAILED
    last = next(l for l in wait_for_log(run_id, "ERROR at PRE_SUBMIT") if l.startswith("ERROR at PRE_SUBMIT"))
    assert "build: 2 errors" in last and "is kept in shelved change" in last
    change = int(last.split("kept in shelved change ")[1].split(":")[0])
    with P4Session(ex.port, ex.user, ex.client) as s:
        assert s.opened() == []  # the workspace is clean ...
        shelved = {f.depot_file for f in s.describe(change, shelved=True).files}
        assert CONFIG in shelved  # ... and the person's result waits on the server
        assert s.print_file(f"{CONFIG}@={change}") == edited


def test_restart_of_everything_with_three_jobs_waiting(tmp_path: Path) -> None:
    examples = [make_example(tmp_path / f"ex{i}") for i in range(3)]
    runs = [jobs.submit(spec_for(ex)) for ex in examples]
    for r in runs:
        suspended(r)
    no_process_for(runs)  # waiting holds no process
    processes.stop("worker-local")
    processes.stop("server")
    processes.start_server()
    processes.start_worker("local", 6)
    for r, choice in zip(runs, ["theirs", "yours", "theirs"]):
        jobs.resume(r, "apply", [FileChoice(path=CONFIG, choice=choice)])  # type: ignore[arg-type]
    for r, ex, want in zip(runs, examples, ["version = 2.1", "version = 2.0.1", "version = 2.1"]):
        assert jobs.wait(r, timeout=180).state.type == StateType.COMPLETED, logs(r)
        assert want in head_text(ex, CONFIG).splitlines()
        assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])


def test_more_waiting_jobs_than_the_host_limit(tmp_path: Path) -> None:
    from agent.pools import ensure_deployment

    pools.ensure_pool("lim2", limit=2)
    ensure_deployment("lim2", str(PROJECT_DIR))
    processes.start_worker("lim2", 2)
    try:
        examples = [make_example(tmp_path / f"ex{i}") for i in range(4)]  # twice the limit
        waiting = [jobs.submit(spec_for(ex, host="lim2")) for ex in examples]
        for r in waiting:
            suspended(r, timeout=240)
        no_process_for(waiting)
        clean = make_example(tmp_path / "clean", conflict=False)
        free = jobs.submit(spec_for(clean, host="lim2"))
        assert jobs.wait(free, timeout=120).state.type == StateType.COMPLETED, logs(free)
        for r in waiting:
            jobs.resume(r, "apply", [FileChoice(path=CONFIG, choice="theirs")])
        for r, ex in zip(waiting, examples):
            assert jobs.wait(r, timeout=240).state.type == StateType.COMPLETED, logs(r)
            assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])
    finally:
        processes.stop("worker-lim2")


def test_jobs_waiting_for_a_held_workspace_leave_the_slots_to_the_holder(tmp_path: Path) -> None:
    """As many jobs as the host has slots wait for a workspace whose holder waits for a person:
    once answered, the holder still gets a slot to finish in, and then the others run."""
    from agent.pools import ensure_deployment

    pools.ensure_pool("lim2w", limit=2)
    ensure_deployment("lim2w", str(PROJECT_DIR))
    processes.start_worker("lim2w", 2)
    try:
        ex = make_example(tmp_path / "ex")
        holder = jobs.submit(spec_for(ex, host="lim2w"))
        suspended(holder)
        waiters = [jobs.submit(spec_for(ex, host="lim2w")) for _ in range(2)]
        for w in waiters:
            wait_for_log(w, "leaving this host's slot free", timeout=240)
        jobs.resume(holder, "apply", [FileChoice(path=CONFIG, choice="theirs")])
        assert jobs.wait(holder, timeout=240).state.type == StateType.COMPLETED, logs(holder)
        for w in waiters:
            assert jobs.wait(w, timeout=240).state.type == StateType.COMPLETED, logs(w)
            wait_for_log(w, "DONE: nothing to integrate")
        assert "version = 2.1" in head_text(ex, CONFIG)
        assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])
    finally:
        processes.stop("worker-lim2w")


def test_a_killed_worker_mid_stage_is_crashed_and_cleaned(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    run_id = jobs.submit(spec_for(ex, pre_submit=[["sh", "-c", "exec sleep 604"]]))
    hooks = until(lambda: processes_with(["sleep", "604"]), 240, "the hook")
    flow_pid = int(Path(f"/proc/{hooks[0]}/stat").read_text().rsplit(")", 1)[1].split()[1])
    # The host loses the worker and everything it ran at once: nobody reports the end.
    for kill in (lambda: os.killpg(processes.running()["worker-local"], signal.SIGKILL),
                 lambda: os.kill(flow_pid, signal.SIGKILL), lambda: os.killpg(hooks[0], signal.SIGKILL)):
        try:
            kill()
        except ProcessLookupError:
            pass
    processes.stop("worker-local")  # forgets the dead worker's pid file
    run = jobs.wait(run_id, timeout=240, until={StateType.CRASHED, StateType.COMPLETED, StateType.FAILED})
    assert run.state.type == StateType.CRASHED and "no heartbeat" in (run.state.message or "")
    processes.start_worker("local", 6)  # the host comes back
    lines = wait_for_log(run_id, "CLEANUP after the run ended Crashed", timeout=120)
    assert any("reverted" in l for l in lines)
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])
