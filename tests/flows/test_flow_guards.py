"""One job per workspace, bad specs, secrets, crashes and retries, through a real worker."""
from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from prefect import flow
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType

from deployments import jobs
from flows.integration import _stage
from flows.p4.errors import P4ConnectionError, P4Error
from flows.p4.example import Example, make_example
from flows.p4.sandbox import set_password
from flows.spec import FileChoice, JobSpec, Stage
from flows.usernames import secret_name, ticket_secret_name

from .helpers import (
    PAUSED_OR_FINAL, all_cmdlines, logs, opened_and_pending, processes_with, start_unchecked, task_runs, until,
    spec_for, wait_for_log,
)

pytestmark = pytest.mark.usefixtures("local_worker")


def _wait_file_hook(tmp_path: Path, name: str, wait_for: str | None = None) -> list[str]:
    """A hook that says it started, then waits (bounded) for a go file."""
    started, go = tmp_path / f"{name}.started", tmp_path / (wait_for or f"{name}.go")
    return ["sh", "-c", f"touch {started}; i=0; while [ ! -e {go} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; "
            f"[ -e {go} ] || {{ echo 'never released'; exit 9; }}"]


def _first_task_start(run_id) -> float:
    runs = [t for t in task_runs(run_id) if t.start_time]
    return min(t.start_time.timestamp() for t in runs)


def test_two_jobs_on_one_workspace_run_one_after_the_other(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    first = jobs.submit(spec_for(ex, pre_submit=[_wait_file_hook(tmp_path, "a")]))
    until(lambda: (tmp_path / "a.started").exists(), 240, "first job's hook")
    second = jobs.submit(spec_for(ex))
    wait_for_log(second, "waiting for workspace rel-integ: in use by flow run", timeout=240)
    assert jobs.read(second).state.type == StateType.RUNNING
    assert not task_runs(second)  # nothing of the second job ran yet
    (tmp_path / "a.go").touch()
    a = jobs.wait(first, timeout=120)
    b = jobs.wait(second, timeout=120)
    assert a.state.type == StateType.COMPLETED and b.state.type == StateType.COMPLETED, logs(second)
    assert _first_task_start(second) >= a.end_time.timestamp() - 1.0
    wait_for_log(second, "DONE: nothing to integrate")


def test_jobs_on_two_workspaces_run_together(tmp_path: Path) -> None:
    a, b = make_example(tmp_path / "a", conflict=False), make_example(tmp_path / "b", conflict=False)
    # Each hook releases the other and waits for it: both finish only if they overlap.
    hook_a = ["sh", "-c", f"touch {tmp_path}/b.go; " + _wait_file_hook(tmp_path, "a")[2]]
    hook_b = ["sh", "-c", f"touch {tmp_path}/a.go; " + _wait_file_hook(tmp_path, "b")[2]]
    ra = jobs.submit(spec_for(a, pre_submit=[hook_a]))
    rb = jobs.submit(spec_for(b, pre_submit=[hook_b]))
    assert jobs.wait(ra, timeout=280).state.type == StateType.COMPLETED, logs(ra)
    assert jobs.wait(rb, timeout=280).state.type == StateType.COMPLETED, logs(rb)


@pytest.mark.parametrize("kwargs,field", [
    ({"source": "", "target": "//depot/rel/..."}, "source"),
    ({"source": "//depot/main/...", "target": "//depot/main/..."}, "target"),
    ({"source": "//depot/main", "target": "//depot/rel/..."}, "source"),
    ({"source": "//depot/main/...", "target": "//depot/rel/...", "changelist": -4}, "changelist"),
    ({"branch": "b", "source": "//depot/main/...", "target": "//depot/rel/..."}, "branch"),
    ({"source": "//depot/main/...", "target": "//depot/rel/...", "password_secret": "Hunter2!"}, "password_secret"),
    ({"source": "//depot/main/...", "target": "//depot/rel/...", "env": {"P4PASSWD": "x"}}, "env"),
])
def test_bad_specs_are_refused_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError) as info:
        JobSpec(p4port="sandbox:/tmp/x", p4user="u", client="c", **kwargs)
    assert field in str(info.value)


def test_unknown_host_is_refused_before_a_run_exists(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex")
    with pytest.raises(ValueError, match="host: unknown host 'build-99'"):
        jobs.submit(spec_for(ex, host="build-99"))
    assert not _runs_on(ex.port)


WRONG_FOR_THE_SERVER = [  # (case, what the job says, refused already where the job is made)
    ("changelist", "changelist: 999 does not exist", True),
    ("pending changelist", "is pending, not submitted on", True),
    ("outside view", "target: //depot/other/... is outside the view of workspace 'rel-integ'", False),
    ("missing secret", "password_secret: no Prefect Secret block named 'p4-password-nobodyhasthis'", True),
    ("someone else's secret", "password_secret: 'p4-password-boss' is not a credential of p4user", True),
    ("someone else's ticket", "password_secret: 'p4-ticket-boss' is not a credential of p4user", True),
    ("missing client", "client: workspace 'no-such-ws' does not exist", True),
    ("missing branch", "branch: branch spec 'main-to-nowhere' does not exist", True),
    ("unknown user", "p4user: 'ghost' is not a user on", True),
    ("unknown site command", "pre_submit[0]: no site command named 'lint-all' for host local", True),
]


def _wrong_spec(ex: Example, case: str) -> JobSpec:
    return {
        "changelist": lambda: spec_for(ex, changelist=999),
        "pending changelist": lambda: spec_for(ex, changelist=_pending_change(ex)),
        "outside view": lambda: JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client,
                                        source="//depot/main/...", target="//depot/other/..."),
        "missing secret": lambda: JobSpec(p4port=ex.port, p4user="nobodyhasthis", client=ex.client,
                                          branch=ex.branch, password_secret=secret_name("nobodyhasthis")),
        "someone else's secret": lambda: spec_for(ex, password_secret=_boss_secret()),
        "someone else's ticket": lambda: spec_for(ex, password_secret=_boss_secret(ticket_secret_name)),
        "missing client": lambda: JobSpec(p4port=ex.port, p4user=ex.user, client="no-such-ws", branch=ex.branch),
        "missing branch": lambda: JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client,
                                          branch="main-to-nowhere"),
        "unknown user": lambda: JobSpec(p4port=ex.port, p4user="ghost", client=ex.client, branch=ex.branch,
                                        trial=True),
        "unknown site command": lambda: spec_for(ex, pre_submit=["lint-all"]),
    }[case]()


def test_specs_wrong_for_the_server_fail_early_and_touch_nothing(tmp_path: Path) -> None:
    """Each case on a depot of its own, all cases' runs under way at once (the checks are per run)."""
    started = {}
    for i, (case, expected, at_submit) in enumerate(WRONG_FOR_THE_SERVER):
        ex = make_example(tmp_path / f"ex{i}")
        spec = _wrong_spec(ex, case)
        if at_submit:  # refused where the job is made: no run exists
            with pytest.raises(jobs.SpecRefused, match=re.escape(expected)):
                jobs.submit(spec)
            assert not _runs_on(ex.port), case
        # Made as a schedule or `prefect deployment run` makes it: the first stage refuses it.
        started[case] = (ex, expected, start_unchecked(spec))
    for case, (ex, expected, run_id) in started.items():
        assert jobs.wait(run_id, timeout=240).state.type == StateType.FAILED, case
        until(lambda: any(expected in line for line in logs(run_id)), 240, f"{case}: a log naming {expected!r}")
        assert opened_and_pending(ex.port, ex.user, ex.client) == ([], []), case
        assert not list(Path(ex.workspace).rglob("*")), case  # not even synced


def _runs_on(port: str) -> list:
    """Runs made for this test's server; other tests' schedules may be making runs meanwhile."""
    with get_client(sync_client=True) as client:
        return [r for r in client.read_flow_runs(limit=200)
                if (r.parameters.get("spec") or {}).get("p4port") == port]


def _pending_change(ex: Example) -> int:
    from flows.p4.session import P4Session

    with P4Session(ex.port, ex.user, "authoring") as s:
        return s.create_change("work in progress")


@pytest.mark.parametrize("field,command,expected", [
    ("pre_submit", ["no-such-hook-7f3"], "pre_submit[0]: 'no-such-hook-7f3' is not on the PATH of host local"),
    ("push_command", ["/nonexistent/push-tool"], "push_command: '/nonexistent/push-tool' does not exist on host"),
    ("build_command", ["./tools/build.sh"], "build_command: './tools/build.sh' does not exist on host local "
                                            "(under the workspace root"),
    ("name_check", ["{root}/not-executable"], "/not-executable' on host local is not executable; chmod +x it"),
])
def test_a_site_command_missing_on_the_host_fails_the_first_stage(tmp_path: Path, field: str, command: list[str],
                                                                  expected: str) -> None:
    ex = make_example(tmp_path / "ex")
    if field == "name_check":  # a file that is there, but cannot be run
        (Path(ex.workspace) / "not-executable").write_text("#!/bin/sh\n")
    value = [command] if field == "pre_submit" else command
    run_id = jobs.submit(spec_for(ex, **{field: value}))
    assert jobs.wait(run_id, timeout=120).state.type == StateType.FAILED
    lines = until(lambda: (lambda ls: ls if any("ERROR at GET_LATEST_CL" in l for l in ls) else None)(logs(run_id)),
                  30, "the first stage's error")
    assert any(expected in l for l in lines), lines
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])
    assert not [t for t in task_runs(run_id) if t.name.startswith("SYNC")]  # nothing after the first stage


def _boss_secret(name: Callable[[str], str] = secret_name) -> str:
    """A Secret that exists and holds a password (or the ticket of a sign-in) the job's own
    user must not borrow."""
    Secret(value="boss-password").save(name("boss"), overwrite=True)
    return name("boss")


def test_password_never_in_parameters_logs_artifacts_or_command_lines(tmp_path: Path,
                                                                      stored_password) -> None:
    ex = make_example(tmp_path / "ex")
    password = "Sup3r-Secret-Pw-7c1"
    set_password(ex.depot_dir, ex.user, password)
    stored_password(ex.user, password)
    leaked = tmp_path / "tool-output.txt"  # stands for a tool that prints what it was given
    leaked.write_text(f"and the password {password}\n")
    hook = ["sh", "-c", f"echo \"hook sees P4PASSWD=$P4PASSWD\"; cat {leaked}; " + _wait_file_hook(tmp_path, "pw")[2]]
    run_id = jobs.submit(spec_for(ex, password_secret=secret_name(ex.user), pre_submit=[hook]))
    assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120).state.type == StateType.PAUSED
    jobs.resume(run_id, "apply", [FileChoice(path="//depot/rel/src/config.ini", choice="theirs")])
    until(lambda: (tmp_path / "pw.started").exists(), 240, "hook start")
    assert not [c for c in all_cmdlines() if password in c]  # while the job runs
    (tmp_path / "pw.go").touch()
    run = jobs.wait(run_id, timeout=120)
    assert run.state.type == StateType.COMPLETED, logs(run_id)
    lines = wait_for_log(run_id, "DONE:")
    assert any("hook sees P4PASSWD=****" in l for l in lines) and any("and the password ****" in l for l in lines)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(limit=100)
        params = client.read_flow_run(run_id).parameters
    blob = "\n".join(lines) + repr(params) + "".join(str(a.data) + str(a.description) for a in artifacts)
    assert password not in blob
    assert secret_name(ex.user) in repr(params)


def test_a_killed_flow_process_is_cleaned_on_its_host(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    run_id = jobs.submit(spec_for(ex, pre_submit=[["sh", "-c", "exec sleep 602"]]))
    pids = until(lambda: processes_with(["sleep", "602"]), 240, "the hook")
    flow_pid = int(Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()[1])  # parent
    os.kill(flow_pid, signal.SIGKILL)
    os.killpg(pids[0], signal.SIGKILL)  # its hook went into a session of its own
    run = jobs.wait(run_id, timeout=120)
    assert run.state.type == StateType.CRASHED
    until(lambda: opened_and_pending(ex.port, ex.user, ex.client) == ([], []), 240, "the cleanup flow")
    wait_for_log(run_id, "CLEANUP after the run ended Crashed")


def test_only_transient_perforce_errors_are_retried(prefect_server: str) -> None:
    calls = {"transient": 0, "deterministic": 0}

    def flaky() -> str:
        calls["transient"] += 1
        if calls["transient"] == 1:
            raise P4ConnectionError(["sync"], ["TCP receive failed: connection reset"])
        return "ok"

    def broken() -> str:
        calls["deterministic"] += 1
        raise P4Error(["integrate"], ["Branch 'x' doesn't exist."])

    @flow(name="retry-policy")
    def check() -> str:
        assert _stage(Stage.SYNC, flaky)() == "ok"
        with pytest.raises(P4Error):
            _stage(Stage.INTEGRATE, broken)()
        return "done"

    assert check() == "done"
    assert calls == {"transient": 2, "deterministic": 1}  # a Perforce refusal is not retried
