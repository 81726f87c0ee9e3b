"""The automation that crashes silent runs never rewrites how a run ended."""
from __future__ import annotations

import asyncio
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events import Event
from prefect.events.clients import get_events_client
from prefect.states import Completed, Running

from deployments import recovery

from ..flows.helpers import until

GRACE = 10  # the shortest Prefect allows for a proactive trigger


@flow(name="recovery-probe")
def probe() -> None:
    return None


def _beat(run_ids: list[UUID]) -> None:
    """One heartbeat event for each run, as a run's process sends them."""
    async def send() -> None:
        async with get_events_client() as events:
            for rid in run_ids:
                await events.emit(Event(event="prefect.flow-run.heartbeat",
                                        resource={"prefect.resource.id": f"prefect.flow-run.{rid}"}))

    asyncio.run(send())


@pytest.fixture()
def short_grace(local_worker: str):
    recovery.ensure_automations(grace_seconds=GRACE)
    yield
    recovery.ensure_automations()


def test_a_run_whose_end_was_not_heard_keeps_its_final_state(short_grace) -> None:
    with get_client(sync_client=True) as client:
        # Ended, but the server never heard its end event after its last beat (a restart, a busy database).
        ended = client.create_flow_run(probe, state=Completed(message="submitted change 25"))
        silent = client.create_flow_run(probe, state=Running())
    _beat([ended.id, silent.id])

    def state(rid: UUID):
        with get_client(sync_client=True) as client:
            return client.read_flow_run(rid).state

    crashed = until(lambda: (lambda s: s if s.type == StateType.CRASHED else None)(state(silent.id)), 120,
                    "the silent run to be marked crashed")
    assert f"no heartbeat for {GRACE} s" in (crashed.message or "")
    kept = state(ended.id)
    assert kept.type == StateType.COMPLETED and kept.message == "submitted change 25"


def test_automations_act_on_runs_that_began_before_a_server_restart(local_worker: str) -> None:
    """A run's state events after a restart follow events the previous server processed: the
    automations see them at once, not 15 minutes later."""
    from prefect.automations import Automation
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
    from prefect.states import Pending, Scheduled

    from deployments import processes

    with get_client(sync_client=True) as client:
        run = client.create_flow_run(probe, state=Scheduled())

    def stored() -> bool:
        with get_client(sync_client=True) as client:
            page = client.request("POST", "/events/filter", json={"filter": EventFilter(
                event=EventNameFilter(name=["prefect.flow-run.Scheduled"]),
                resource=EventResourceFilter(id=[f"prefect.flow-run.{run.id}"])).model_dump(mode="json")})
        return bool(page.json()["events"])

    until(stored, 60, "the Scheduled event stored by the server")
    reacts = Automation(name=f"probe-{run.id}", trigger=EventTrigger(
        expect={"prefect.flow-run.Running"}, posture=Posture.Reactive, threshold=1,
        match=ResourceSpecification({"prefect.resource.id": f"prefect.flow-run.{run.id}"})),
        actions=[ChangeFlowRunState(state=StateType.FAILED, message="the automation saw it run")]).create()
    try:
        processes.stop("server")
        processes.start_server()
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, Pending(), force=True)  # follows Scheduled, from before the restart
            client.set_flow_run_state(run.id, Running(), force=True)

        def acted():
            with get_client(sync_client=True) as client:
                found = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
            return found[0] if found and found[0].state.type == StateType.FAILED else None

        assert until(acted, 90, "the automation to act on the run").state.message == "the automation saw it run"
    finally:
        reacts.delete()


def test_automations_act_on_runs_a_schedule_made(local_worker: str) -> None:
    """Prefect's scheduler writes a run's Scheduled state without an event, yet the run's next
    state event names it as the one it follows: the automations see those runs at once, not
    15 minutes later."""
    from prefect.automations import Automation
    from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification
    from prefect.states import Pending

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="probe-no-worker", type="process"), overwrite=True)
        deployment = client.create_deployment(
            flow_id=client.create_flow_from_name("recovery-probe"), name="every-minute",
            work_pool_name="probe-no-worker", entrypoint="tests/deployments/test_recovery.py:probe",
            schedules=[DeploymentScheduleCreate(schedule=CronSchedule(cron="* * * * *"), active=True)])

        def made() -> list:
            return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment])),
                                         limit=5)
        run = until(made, 90, "a run the schedule made")[0]
        assert run.auto_scheduled
    reacts = Automation(name=f"probe-{run.id}", trigger=EventTrigger(
        expect={"prefect.flow-run.Running"}, posture=Posture.Reactive, threshold=1,
        match=ResourceSpecification({"prefect.resource.id": f"prefect.flow-run.{run.id}"})),
        actions=[ChangeFlowRunState(state=StateType.FAILED, message="the automation saw it run")]).create()
    try:
        with get_client(sync_client=True) as client:  # as a worker takes it: Pending follows Scheduled
            client.set_flow_run_state(run.id, Pending(), force=True)
            client.set_flow_run_state(run.id, Running(), force=True)

            def acted():
                found = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
                return found[0] if found and found[0].state.type == StateType.FAILED else None

            assert until(acted, 90, "the automation to act on the run").state.message == "the automation saw it run"
    finally:
        reacts.delete()
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment)


@pytest.fixture()
def deaf_automations(local_worker: str):
    """The notify and cleanup automations disabled: every event of a job's run is as good as lost
    (what a restarting single server or a refused action does to some of them). Yields the call
    that disables them again: changing someone's notification settings re-makes notify's."""
    from prefect.automations import Automation

    from deployments import notifications

    def deafen() -> None:
        for name in (notifications.AUTOMATION_NAME, recovery.CLEANUP_AUTOMATION):
            Automation.read(name=name).disable()

    deafen()
    try:
        yield deafen
    finally:
        notifications.ensure_automation()  # as the settings now say
        Automation.read(name=recovery.CLEANUP_AUTOMATION).enable()


def test_the_sweep_makes_up_for_reactions_whose_events_were_lost(tmp_path, deaf_automations) -> None:
    """Two jobs at once on depots of their own: one left waiting, then cancelled; one cancelled
    seconds after it paused, before any sweep, whose "needs you" is still due once."""
    import email
    import email.policy
    import os

    from deployments import jobs
    from deployments.notifications import set_notifications
    from flows.p4.example import make_example
    from tests import sinks

    from ..flows.helpers import PAUSED_OR_FINAL, opened_and_pending, spec_for, wait_for_log

    def swept(*run_ids: object) -> list[tuple[str, str, str]]:
        """One sweep: what it started for these runs. What was due for other tests' runs before
        this one began is left alone (as a sweep that started those already would)."""
        return sorted(r for r in recovery.sweep(set(others), settle=0) if r[1] in {str(i) for i in run_ids})

    def told(run_id: object) -> list[str]:  # decoded: the body is quoted-printable, which splits long lines
        parsed = [email.message_from_string(m, policy=email.policy.default) for m in mails.messages]
        return [m["Subject"] for m in parsed if str(run_id) in m.get_content()]

    def cleaned(ex: object, run_id: object) -> None:
        lines = wait_for_log(run_id, "CLEANUP after the run ended Cancelled", timeout=240)
        assert any("reverted 4 file(s)" in line for line in lines), lines
        assert opened_and_pending(ex.port, ex.user, ex.client) == ([], [])

    waiting, brief = make_example(tmp_path / "waiting"), make_example(tmp_path / "brief")
    # A job of the same user that ended before the user had settings: nobody was due a notice then.
    earlier = jobs.submit(spec_for(make_example(tmp_path / "earlier", conflict=False)))
    assert jobs.wait(earlier, timeout=120).state.type == StateType.COMPLETED
    others = set(recovery.missed_reactions(settle=0))
    with sinks.smtp_sink(int(os.environ["P4INTEG_SMTP_PORT"])) as mails:
        set_notifications(waiting.user, email="owner@example.com")
        deaf_automations()
        try:
            # Turning notifications on does not bring old news.
            assert [r for r in recovery.missed_reactions(settle=0) if r[1] == str(earlier)] == []
            first, second = jobs.submit(spec_for(waiting)), jobs.submit(spec_for(brief))
            assert jobs.wait(first, until=PAUSED_OR_FINAL, timeout=120).state.name == "Suspended"
            assert jobs.wait(second, until=PAUSED_OR_FINAL, timeout=120).state.name == "Suspended"
            jobs.cancel(second)
            assert jobs.wait(second, timeout=240).state.type == StateType.CANCELLED

            assert swept(first, second) == sorted([("notify/local", str(first), "prefect.flow-run.Suspended"),
                                                   ("cleanup/local", str(second), "prefect.flow-run.Cancelled"),
                                                   ("notify/local", str(second), "prefect.flow-run.Suspended")])
            assert "needs you" in until(lambda: told(first), 120, "the made-up notification")[0]
            assert "needs you" in until(lambda: told(second), 120, "the one for the wait that ended")[0]
            cleaned(brief, second)
            jobs.cancel(first)
            assert jobs.wait(first, timeout=240).state.type == StateType.CANCELLED
            assert swept(first) == [("cleanup/local", str(first), "prefect.flow-run.Cancelled")]
            cleaned(waiting, first)
            # Each reaction was taken once: a later sweep (a new process's, with no memory) starts none.
            assert swept(first, second) == []
            assert len(told(first)) == len(told(second)) == 1
        finally:
            set_notifications(waiting.user)


def test_the_sweep_steps_a_line_whose_job_end_was_lost(tmp_path, local_worker: str) -> None:
    """A line moves when one of its jobs ends (its automation); with that automation deaf, the
    sweep takes the step, once."""
    import uuid

    from prefect.automations import Automation

    from deployments import jobs, lines
    from flows.lines import LineSpec
    from flows.p4.example import make_example
    from flows.runs import runs_tagged
    from flows.vocabulary import line_change_tag

    from ..flows.helpers import spec_for
    from ..flows.test_lines import _edit

    ex = make_example(tmp_path / "ex", conflict=False)
    name = f"swept-{uuid.uuid4().hex[:8]}"
    lines.create(ex.user, LineSpec(name=name, job=spec_for(ex)), operator=True)
    deaf = Automation.read(name=f"{lines.AUTOMATION_PREFIX}{name}: job ended")
    deaf.disable()
    try:
        second = _edit(ex, "//depot/main/src/app.py", "return 3", "return 3  # swept", "app: step 3")
        lines.run(ex.user, name)
        first = until(lambda: [r for r in runs_tagged(f"line:{name}") if r.state and r.state.is_final()], 240,
                      "the line's first job to end")[0]
        assert first.state.type == StateType.COMPLETED
        assert runs_tagged(line_change_tag(name, second)) == []  # nothing moved the line on

        made = [r for r in recovery.sweep(set(), settle=0) if r[0] == f"line/{name}"]
        assert made == [(f"line/{name}", str(first.id), "prefect.flow-run.Completed")]
        job = until(lambda: runs_tagged(line_change_tag(name, second)), 120, "the step to start the next job")[0]
        assert jobs.wait(job.id, timeout=240).state.type == StateType.COMPLETED
        # The step is on record (the line's run after the job's end): a sweep with no memory takes none.
        assert [r for r in recovery.sweep(set(), settle=0) if r[0] == f"line/{name}" and r[1] == str(first.id)] == []
    finally:
        deaf.enable()
        lines.remove(ex.user, name)
