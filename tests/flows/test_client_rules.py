"""The first stage against the workspace's own rules: Stream:, Host:, Root/AltRoots.

Stage-level tests call the flow's own ``_connect`` and ``stages.preflight`` against the
sandbox server (no Prefect); one flow test shows a real worker refusing such jobs
with nothing opened.
"""
from __future__ import annotations

import socket
from pathlib import Path

import pytest
from prefect.client.schemas.objects import StateType

from deployments import jobs
from flows import stages as S
from flows.integration import _connect
from flows.p4.example import Example, make_example
from flows.p4.sandbox import P4
from flows.spec import JobSpec, Stage

from .helpers import logs, opened_and_pending, spec_for, task_runs, until

ELSEWHERE = "build-7"  # a host name no test machine has


def edit_client(ex: Example, **fields: object) -> None:
    """What a person does with 'p4 client': change fields of the example's workspace."""
    p4 = P4(port=ex.port, user=ex.user, client=ex.client)
    p4.connect()
    try:
        spec = p4.fetch_client(ex.client)
        for k, v in fields.items():
            spec[k] = v
        p4.save_client(spec)
    finally:
        p4.disconnect()


def first_stage(spec: JobSpec) -> S.Job:
    """Connect as the flow does, then run the first stage's checks."""
    lines: list[str] = []
    job = S.Job(spec=spec, session=_connect(spec, None, lines.append), log=lines.append)
    try:
        S.preflight(job)
    except BaseException:
        job.session.close()
        raise
    return job


def refusal(spec: JobSpec) -> str:
    with pytest.raises(S.JobError) as exc:
        first_stage(spec).session.close()
    assert exc.value.stage == Stage.GET_LATEST_CL
    return exc.value.message


@pytest.fixture
def ex(tmp_path: Path) -> Example:
    return make_example(tmp_path / "ex")


def test_a_stream_workspace_is_refused_naming_what_to_use_instead(ex: Example) -> None:
    edit_client(ex, Stream="//streams/rel")
    message = refusal(spec_for(ex))
    assert message == (
        f"client: workspace '{ex.client}' is a stream workspace (Stream: //streams/rel); its view comes from the "
        "stream, and changes move between streams with p4 merge/p4 copy along the stream's parent, which this "
        "service does not do; give a classic workspace (no Stream: field) whose view maps the target, and a "
        "branch spec (branch) or source and target")
    assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])


def test_a_workspace_of_another_host_is_refused_naming_the_host_field(ex: Example) -> None:
    edit_client(ex, Host=ELSEWHERE)
    message = refusal(spec_for(ex))
    assert message == (
        f"host: workspace '{ex.client}' can only be used from host '{ELSEWHERE}' (its Host: field), and this job "
        f"runs on host local, which Perforce knows as '{socket.gethostname()}'; run the job on the host that is "
        f"'{ELSEWHERE}', or clear or change Host: in the workspace spec (p4 client {ex.client})")


def test_the_jobs_p4host_is_the_host_perforce_sees(ex: Example) -> None:
    """P4HOST in the job's env is what the session sends, so the sandbox accepts the workspace."""
    edit_client(ex, Host=ELSEWHERE)
    job = first_stage(spec_for(ex, env={"P4HOST": ELSEWHERE}))
    try:
        assert job.session.p4.host == ELSEWHERE
        assert S.sync(job).added > 0  # a command that uses the workspace, accepted from its host
    finally:
        job.session.close()


def test_the_root_is_the_first_of_root_and_altroots_on_this_host(ex: Example, tmp_path: Path) -> None:
    here = tmp_path / "on-this-host" / "rel-integ"
    here.mkdir(parents=True)
    edit_client(ex, Root="/nonexistent/builds/rel-integ", AltRoots=[str(here)])
    job = first_stage(spec_for(ex))
    try:
        assert job.root == str(here) and job.session.p4.cwd == str(here)
        assert job.session.p4.run_info()[0]["clientRoot"] == str(here)
        S.sync(job)
        assert (here / "src/app.py").is_file()  # the files land under the root used here
        assert not list(Path(ex.workspace).rglob("*"))
    finally:
        job.session.close()


def test_every_workspace_problem_is_named_at_once(ex: Example) -> None:
    edit_client(ex, Root="/nonexistent/a", AltRoots=["/nonexistent/b"], Host=ELSEWHERE, Stream="//streams/rel")
    message = refusal(spec_for(ex))
    parts = message.split("; client: ")
    assert message.startswith(f"client: workspace '{ex.client}' is a stream workspace")
    assert f"host: workspace '{ex.client}' can only be used from host '{ELSEWHERE}'" in message
    assert parts[-1] == (
        f"no root of workspace '{ex.client}' (/nonexistent/a; /nonexistent/b) is a directory on host local; "
        f"create it, add this host's path to AltRoots: (p4 client {ex.client}), or run the job on the host "
        "that owns the workspace")


@pytest.mark.usefixtures("local_worker")
def test_the_worker_refuses_stream_and_wrong_host_workspaces_with_nothing_opened(tmp_path: Path) -> None:
    streams, foreign = make_example(tmp_path / "streams"), make_example(tmp_path / "foreign")
    edit_client(streams, Stream="//streams/rel")
    edit_client(foreign, Host=ELSEWHERE)
    runs = {jobs.submit(spec_for(streams)): (streams, "is a stream workspace (Stream: //streams/rel)"),
            jobs.submit(spec_for(foreign)): (foreign, f"can only be used from host '{ELSEWHERE}' (its Host: field)")}
    for run_id, (ex, expected) in runs.items():
        assert jobs.wait(run_id, timeout=120).state.type == StateType.FAILED
        lines = until(lambda: (lambda ls: ls if any("ERROR at GET_LATEST_CL" in l for l in ls) else None)(
            logs(run_id)), 30, "the first stage's error")
        assert any(expected in l for l in lines), lines
        assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])
        assert not [t for t in task_runs(run_id) if t.name.startswith("SYNC")]
        assert not list(Path(ex.workspace).rglob("*"))
