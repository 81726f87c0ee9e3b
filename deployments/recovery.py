"""The automations that look after job runs no process is watching.

- **Silent runs are crashed.** Every flow run's process emits a heartbeat event every
  ``HEARTBEAT_SECONDS``; a run that is heard from and then falls silent for
  ``HEARTBEAT_GRACE_SECONDS`` without ending, suspending or being cancelled is marked
  Crashed (Prefect's documented way to find runs whose process, worker or host died).
- **Ended runs are cleaned on their host.** When an ``integrate`` run ends Cancelled,
  Crashed or Failed, ``cleanup/local`` runs with the run's id; it hands the work on to
  ``cleanup/<host>`` (flows/cleanup.py). Runs that cleaned up after themselves leave
  nothing, and the cleanup does nothing.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from flows.settings import FLOW_NAME, HEARTBEAT_GRACE_SECONDS

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
