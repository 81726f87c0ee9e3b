"""Per-user notification settings and the automation that starts ``notify``."""
from __future__ import annotations

from typing import Any

from flows.notify import KINDS, settings_variable

AUTOMATION_NAME = "p4-integration: tell the owner"


def set_notifications(user: str, *, email: str | None = None, webhook: str | None = None) -> None:
    """Email and/or webhook (Slack or any URL) for a user; both None turns them off."""
    from prefect.variables import Variable

    if email is not None and "@" not in email:
        raise ValueError(f"email: '{email}' is not an e-mail address")
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        raise ValueError(f"webhook: '{webhook}' must be an http(s) URL")
    Variable.set(settings_variable(user), {"email": email, "webhook": webhook}, overwrite=True)


def ensure_automation() -> Any:
    """One automation: integrate runs' Paused/Failed/Completed events run notify/local."""
    from prefect.automations import Automation
    from prefect.client.orchestration import get_client
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import EventTrigger, Posture

    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("notify/local")
        for old in client.read_automations_by_name(AUTOMATION_NAME):
            client.delete_automation(old.id)
    trigger = EventTrigger(expect=set(KINDS), posture=Posture.Reactive, threshold=1,
                           match_related={"prefect.resource.role": "flow", "prefect.resource.name": "integrate"})
    action = RunDeployment(source="selected", deployment_id=dep.id,
                           parameters={"flow_run_id": "{{ event.resource.id }}", "event": "{{ event.event }}"})
    return Automation(name=AUTOMATION_NAME, trigger=trigger, actions=[action]).create()
