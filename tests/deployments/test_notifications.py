"""Owners hear once, by e-mail and webhook, when a run pauses and when one fails."""
from __future__ import annotations

import email
import email.policy
import os
from pathlib import Path

import pytest
from prefect.client.schemas.objects import StateType

from deployments import jobs, templates
from deployments.notifications import set_notifications
from flows.p4.example import make_example
from flows.spec import FileChoice, JobSpec
from tests import sinks

from ..flows.helpers import PAUSED_OR_FINAL, spec_for, until, wait_for_log

pytestmark = pytest.mark.usefixtures("local_worker")


@pytest.fixture()
def smtp_sink():
    with sinks.smtp_sink(int(os.environ["P4INTEG_SMTP_PORT"])) as sink:
        yield sink


@pytest.fixture()
def webhook():
    with sinks.webhook_receiver() as hook:
        yield hook


def _mails_about(sink: sinks.SmtpSink, run_id: object) -> list:
    """The mails naming a run, decoded: the body is quoted-printable, which splits long lines."""
    parsed = [email.message_from_string(m, policy=email.policy.default) for m in sink.messages]
    return [m for m in parsed if str(run_id) in m.get_content()]


def test_one_message_each_for_a_paused_and_a_failed_run(tmp_path: Path, smtp_sink, webhook) -> None:
    url, received = webhook
    set_notifications("jill", email="jill@example.com", webhook=url)
    ex = make_example(tmp_path / "ex")
    templates.create("jill", "jill-notify", JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client,
                                                     branch=ex.branch, pre_submit=[["false"]]),
                     operator=True)  # a hook that fails, given as a command line: the operator's template
    run_id = templates.run("jill", "jill-notify")
    assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120).state.type == StateType.PAUSED
    until(lambda: len(smtp_sink.messages) >= 1 and len(received) >= 1, 240, "the pause notification")
    jobs.resume(run_id, "recheck")  # pauses again: no second message for the same pause kind
    wait_for_log(run_id, "answer: 'recheck'")
    assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=240).state.type == StateType.PAUSED
    jobs.resume(run_id, "apply", [FileChoice(path="//depot/rel/src/config.ini", choice="theirs")])
    assert jobs.wait(run_id, timeout=120).state.type == StateType.FAILED  # the hook fails
    until(lambda: len(smtp_sink.messages) >= 2 and len(received) >= 2, 240, "the failure notification")
    mails = smtp_sink.messages
    assert len(mails) == 2 and len(received) == 2
    assert "needs you" in mails[0] and "failed" in mails[1] and "To: jill@example.com" in mails[0]
    assert [r["event"] for r in received] == ["prefect.flow-run.Suspended", "prefect.flow-run.Failed"]
    assert all(str(run_id) in r["links"]["app"] and str(run_id) in r["links"]["prefect"] for r in received)
    templates.delete("jill", "jill-notify")


def test_a_job_naming_nobody_with_settings_starts_no_notify_run(tmp_path: Path, smtp_sink) -> None:
    """Kim has no settings: her job's end starts no notify run at all. Lee's job, started after
    hers ended, does and mails Lee: the automation reacts to events in order, so Kim's would have
    been acted on first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    def notify_runs(run_id: object) -> list:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["notify"])), limit=200)
        return [r for r in runs if r.parameters.get("flow_run_id", "").endswith(str(run_id))]

    quiet_ex, told_ex = make_example(tmp_path / "quiet", conflict=False), make_example(tmp_path / "told", conflict=False)
    templates.create("kim", "kim-quiet", JobSpec(p4port=quiet_ex.port, p4user=quiet_ex.user, client=quiet_ex.client,
                                                 branch=quiet_ex.branch))
    templates.create("lee", "lee-told", JobSpec(p4port=told_ex.port, p4user=told_ex.user, client=told_ex.client,
                                                branch=told_ex.branch))
    try:
        quiet = templates.run("kim", "kim-quiet")
        assert jobs.wait(quiet, timeout=120).state.type == StateType.COMPLETED
        set_notifications("lee", email="lee@example.com")
        told = templates.run("lee", "lee-told")
        assert jobs.wait(told, timeout=120).state.type == StateType.COMPLETED
        until(lambda: _mails_about(smtp_sink, told), 240, "Lee's notification")
        assert notify_runs(quiet) == [] and len(notify_runs(told)) == 1
        assert len(smtp_sink.messages) == 1 and "To: lee@example.com" in smtp_sink.messages[0]
    finally:
        set_notifications("lee")
        templates.delete("kim", "kim-quiet")
        templates.delete("lee", "lee-told")


def test_a_job_started_directly_tells_the_user_who_started_it(tmp_path: Path, smtp_sink) -> None:
    ex = make_example(tmp_path / "ex")
    set_notifications(ex.user, email="bot@example.com")
    try:
        run_id = jobs.submit(JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client, branch=ex.branch))
        assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120).state.type == StateType.PAUSED
        def mine() -> list:
            return _mails_about(smtp_sink, run_id)
        until(mine, 240, "the pause notification of the directly started job")
        assert "needs you" in mine()[0]["Subject"] and mine()[0]["To"] == "bot@example.com"
        jobs.resume(run_id, "abort")
        jobs.wait(run_id, timeout=240)
    finally:
        set_notifications(ex.user)  # off again: other tests' jobs run as this user too


def _notify_runs_about(run_id: object) -> list:
    """The notify runs for one job run, newest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        found = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["notify"])),
                                      sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=200)
    return [r for r in found if str((r.parameters or {}).get("flow_run_id", "")).endswith(str(run_id))]


def test_a_notice_no_channel_took_is_sent_by_the_next_sweep(tmp_path: Path) -> None:
    """The mail server is down when the job ends: the notify run fails and leaves the notice
    not taken, and the recovery sweep's run sends it once the server is back, once."""
    from deployments import recovery

    ex = make_example(tmp_path / "ex", conflict=False)
    others = set(recovery.missed_reactions(settle=0))  # other tests' runs: left alone below
    set_notifications(ex.user, email="bot@example.com")
    try:
        run_id = jobs.submit(spec_for(ex))  # nothing listens on the SMTP port yet
        assert jobs.wait(run_id, timeout=120).state.type == StateType.COMPLETED
        failed = until(lambda: [r for r in _notify_runs_about(run_id) if r.state and r.state.is_final()], 240,
                       "the notify run to end")
        assert [r.state.type for r in failed] == [StateType.FAILED]
        wait_for_log(failed[0].id, "nothing was sent; the recovery sweep tries again")
        with sinks.smtp_sink(int(os.environ["P4INTEG_SMTP_PORT"])) as sink:
            made = [r for r in recovery.sweep(others, settle=0) if r[1] == str(run_id)]
            assert made == [("notify/local", str(run_id), "prefect.flow-run.Completed")]
            until(lambda: _mails_about(sink, run_id), 240, "the notice sent again")
            assert len(_mails_about(sink, run_id)) == 1 and "finished" in _mails_about(sink, run_id)[0]["Subject"]
    finally:
        set_notifications(ex.user)
