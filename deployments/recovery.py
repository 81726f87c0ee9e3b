"""The automations that look after job runs no process is watching.

- **Silent runs are crashed.** Every flow run's process emits a heartbeat event every
  ``HEARTBEAT_SECONDS``; a run that is heard from and then falls silent for
  ``HEARTBEAT_GRACE_SECONDS`` without ending, suspending or being cancelled is marked
  Crashed (Prefect's documented way to find runs whose process, worker or host died).
- **Ended runs are cleaned on their host.** When an ``integrate`` run ends Cancelled,
  Crashed or Failed, ``cleanup/local`` runs with the run's id; it hands the work on to
  ``cleanup/<host>`` (flows/cleanup.py). Runs that cleaned up after themselves leave
  nothing, and the cleanup does nothing.
- **Reactions that never came are made up.** An automation reacts to an event; an event
  can be lost (a single server restarting with events in its in-memory queue, an action
  a busy database refused) and then nobody is told and nothing is cleaned. ``sweep``
  reads the runs themselves, which Prefect's database keeps whatever happened to their
  events, and starts ``notify``/``cleanup`` for each run and state whose reaction was
  not taken (flows/handled.py) a settling time after the run reached it; and it steps each
  active integration line whose job completed or was cancelled with no step of the line
  after it (the line's automation lost that event).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from flows import handled, runs
from flows.notify import KINDS
from flows.settings import FLOW_NAME, HEARTBEAT_GRACE_SECONDS
from flows.lines import LINE_FLOW
from flows.vocabulary import INTERNAL_TAG, SUSPENDED, line_of

from .notifications import names_someone_to_tell, people_with_settings

CRASH_AUTOMATION = "p4-integration: crash runs that fell silent"
CLEANUP_AUTOMATION = "p4-integration: clean up after ended runs"
# Events after which a run is not expected to beat any more.
_AT_REST = {"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
            "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed", "prefect.flow-run.Suspended",
            "prefect.flow-run.Paused", "prefect.flow-run.Cancelling",
            # A job waiting for a workspace held by a run that is not running leaves its slot
            # and is queued again (flows/integration.py).
            "prefect.flow-run.Scheduled"}
_ENDED = {"prefect.flow-run.Cancelled", "prefect.flow-run.Crashed", "prefect.flow-run.Failed"}
# The automations act within seconds; a reaction not taken this long after the run reached its
# state was lost. Long enough for a queued notify/cleanup run to start on a busy service.
SETTLE_SECONDS = 60.0
# How far back the sweep looks for ended runs: a day when the service starts (a service down
# longer misses older ones), an hour on every later sweep (the runs of the last 15 s are in it).
LOOKBACK = timedelta(hours=24)
RECENT = timedelta(hours=1)
_PAGE = 200  # Prefect's API returns at most this many runs a call


def _replace(automation: Any) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for old in client.read_automations_by_name(automation.name):
            client.delete_automation(old.id)
    return automation.create()


def ensure_automations(grace_seconds: int = HEARTBEAT_GRACE_SECONDS) -> None:
    from prefect.automations import Automation
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState, RunDeployment
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    silent = EventTrigger(after={"prefect.flow-run.heartbeat"}, expect=_AT_REST, posture=Posture.Proactive,
                          match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
                          for_each={"prefect.resource.id"}, threshold=1,
                          within=timedelta(seconds=grace_seconds))
    # Not forced: the server then refuses to crash a run that already ended. An event that says
    # so can be lost (a server restarting, a database too busy to record it), and a forced
    # change would turn a run that submitted its change into a "Crashed" one.
    _replace(Automation(name=CRASH_AUTOMATION, trigger=silent, actions=[ChangeFlowRunState(
        state=StateType.CRASHED, name="Crashed", force=False,
        message=f"no heartbeat for {grace_seconds} s: the run's process, worker or host died")]))

    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("cleanup/local")
    ended = EventTrigger(expect=_ENDED, posture=Posture.Reactive, threshold=1,
                         match_related={"prefect.resource.role": "flow", "prefect.resource.name": FLOW_NAME})
    _replace(Automation(name=CLEANUP_AUTOMATION, trigger=ended, actions=[RunDeployment(
        source="selected", deployment_id=dep.id,
        parameters={"flow_run_id": "{{ event.resource.id }}", "event": "{{ event.event }}"})]))


def _read_all(client: Any, **filters: Any) -> list[Any]:
    out: list[Any] = []
    while True:
        page = client.read_flow_runs(limit=_PAGE, offset=len(out), **filters)
        out += page
        if len(page) < _PAGE:
            return out


def missed_reactions(now: datetime | None = None, settle: float = SETTLE_SECONDS,
                     lookback: timedelta = LOOKBACK) -> list[tuple[str, str, str]]:
    """(deployment, run id, event) for each job run whose automation's reaction was not taken:
    the run is in its state for ``settle`` seconds (ended within ``lookback``), no reaction was
    taken, and no notify/cleanup run for it waits or runs now; and for each line whose job ended
    with no step of the line after it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterEndTime,
                                                FlowRunFilterExpectedStartTime, FlowRunFilterState,
                                                FlowRunFilterStateType)
    from prefect.client.schemas.objects import StateType

    now = now or datetime.now(timezone.utc)
    ended_types = [StateType(e.rsplit(".", 1)[-1].upper()) for e in _ENDED]
    with get_client(sync_client=True) as client:
        ended = _read_all(client, flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
                          flow_run_filter=FlowRunFilter(
                              state=FlowRunFilterState(type=FlowRunFilterStateType(
                                  any_=[*ended_types, StateType.COMPLETED])),
                              end_time=FlowRunFilterEndTime(after_=now - lookback)))
        waiting = _read_all(client, flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
                            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                                type=FlowRunFilterStateType(any_=[StateType.PAUSED]))))
        reacting = _read_all(client, flow_filter=FlowFilter(name=FlowFilterName(any_=["notify", "cleanup"])),
                             flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                                 any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING]))))
        stepped = _read_all(client, flow_filter=FlowFilter(name=FlowFilterName(any_=[LINE_FLOW])),
                            flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(
                                after_=now - lookback)))
    # As the automation does: a run that names nobody with settings has nobody to tell.
    people = people_with_settings() if ended or waiting else {}
    under_way = {(str((r.parameters or {}).get("flow_run_id", "")).rsplit(".", 1)[-1],
                  str((r.parameters or {}).get("event", ""))) for r in reacting}
    due = _lines_not_moved(ended, stepped, now, settle) if any(line_of(r.tags or []) for r in ended) else []
    for run in ended + waiting:
        state = run.state
        if state is None or not state.name or (now - state.timestamp).total_seconds() < settle:
            continue
        run_id = str(run.id)
        # The state it is in now; and a run that waited for a person and has ended since (a
        # cancel seconds after it paused) was still due the one "needs you" of its wait.
        states = [state.name] + ([SUSPENDED] if state.name != SUSPENDED and runs.pauses_of(run) else [])
        for name in states:
            event = f"prefect.flow-run.{name}"
            for deployment, reaction, events in (("notify/local", "notified", KINDS),
                                                 ("cleanup/local", "cleaned", _ENDED)):
                if deployment == "notify/local" and not names_someone_to_tell(run.tags or [], people, state.timestamp):
                    continue
                if event in events and (run_id, event) not in under_way and not handled.taken(reaction, run_id, name):
                    due.append((deployment, run_id, event))
    return due


def _lines_not_moved(ended: list[Any], stepped: list[Any], now: datetime, settle: float) -> list[tuple[str, str, str]]:
    """A line whose job completed or was cancelled takes a step after it (its automation); one
    that has not, ``settle`` seconds on, lost that event: ("line/<name>", job run id, event)."""
    from .lines import all_lines

    last_step: dict[str, datetime] = {}
    for r in stepped:
        name = str(((r.parameters or {}).get("line") or {}).get("name", ""))
        if r.expected_start_time and (name not in last_step or r.expected_start_time > last_step[name]):
            last_step[name] = r.expected_start_time
    active = {li.spec.name for li in all_lines() if not li.paused}
    due = []
    for run in ended:
        line, state = line_of(run.tags or []), run.state
        if (line not in active or state is None or state.name not in ("Completed", "Cancelled")
                or (now - state.timestamp).total_seconds() < settle):
            continue
        if line not in last_step or last_step[line] < state.timestamp:
            due.append((f"{LINE_FLOW}/{line}", str(run.id), f"prefect.flow-run.{state.name}"))
    # One step a line is enough: it integrates whatever waits.
    return list({d[0]: d for d in due}.values())


def sweep(started: set[tuple[str, str, str]], **kwargs: Any) -> list[tuple[str, str, str]]:
    """Start each reaction ``missed_reactions`` finds that is not in ``started`` (the caller's
    memory: one that fails every time, say for a host removed since, is not started again and
    again); returns those started."""
    from prefect.deployments import run_deployment

    due = [r for r in missed_reactions(**kwargs) if r not in started]
    for deployment, run_id, event in due:
        started.add((deployment, run_id, event))
        about = None if deployment.startswith(f"{LINE_FLOW}/") else {"flow_run_id": run_id, "event": event}
        run_deployment(name=deployment, parameters=about, timeout=0, as_subflow=False, tags=[INTERNAL_TAG])
    return due
