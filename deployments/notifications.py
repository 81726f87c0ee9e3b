"""Per-user notification settings and the automation that starts ``notify``.

The automation reacts only to runs that name someone who has settings (as the job's
user, owner or the author of a line's source change): a run nobody would hear about starts
no ``notify`` run at all, which on a busy service is most of them. The automation is
re-made whenever someone's settings change, so a change applies to runs already under way.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flows.notify import KINDS, SETTINGS_PREFIX, settings_variable
from flows.usernames import decode_user
from flows.vocabulary import author_of, author_tag, owner_of, owner_tag, user_of, user_tag

AUTOMATION_NAME = "p4-integration: tell the owner"
_PAGE = 200  # Prefect's API returns at most this many variables a call


def set_notifications(user: str, *, email: str | None = None, webhook: str | None = None) -> None:
    """Email and/or webhook (Slack or any URL) for a user; both None turns them off."""
    from prefect.variables import Variable

    if email is not None and "@" not in email:
        raise ValueError(f"email: '{email}' is not an e-mail address")
    if webhook is not None and not webhook.startswith(("http://", "https://")):
        raise ValueError(f"webhook: '{webhook}' must be an http(s) URL")
    before: dict[str, Any] = Variable.get(settings_variable(user), default={}) or {}
    # Since when the user hears: the recovery sweep makes up only the notices of states reached
    # since then (else turning notifications on would bring a day of old news).
    since = (before.get("since") if _is_on(before) else None) or datetime.now(timezone.utc).isoformat()
    Variable.set(settings_variable(user), {"email": email, "webhook": webhook,
                                           "since": since if (email or webhook) else None}, overwrite=True)
    ensure_automation()


def _is_on(settings: Any) -> bool:
    return isinstance(settings, dict) and bool(settings.get("email") or settings.get("webhook"))


def people_with_settings() -> dict[str, datetime]:
    """The users whose settings name an e-mail address or a webhook (read from Prefect's
    variables, where ``set_notifications`` keeps them), each with the time since when."""
    from prefect.client.orchestration import get_client

    found: list[Any] = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.request("POST", "/variables/filter", json={
                "variables": {"name": {"like_": SETTINGS_PREFIX}}, "offset": len(found), "limit": _PAGE}).json()
            found += page
            if len(page) < _PAGE:
                break
    people = {}
    for v in found:
        if not (v["name"].startswith(SETTINGS_PREFIX) and _is_on(v.get("value"))):
            continue
        try:
            people[decode_user(v["name"][len(SETTINGS_PREFIX):])] = _since(v["value"])
        except ValueError:  # a variable someone else named so: no user's settings
            continue
    return people


def _since(settings: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(settings["since"])
    except (KeyError, TypeError, ValueError):  # settings made before the time was kept
        return datetime.min.replace(tzinfo=timezone.utc)


def names_someone_to_tell(tags: list[str], people: dict[str, datetime], at: datetime) -> bool:
    """Whether a run's tags name one of ``people``, in a role ``notify`` tells, who had
    settings at ``at`` (when the run reached the state to tell of)."""
    named = (user_of(tags), owner_of(tags), author_of(tags))
    return any(person in people and people[person] <= at for person in named if person)


def _tags_of(person: str) -> list[str]:
    return [user_tag(person), owner_tag(person), author_tag(person)]


def ensure_automation() -> Any:
    """One automation: the Suspended/Failed/Crashed/Completed events of integrate runs that
    name someone with settings run notify/local; with nobody to tell it is off."""
    from prefect.automations import Automation
    from prefect.client.orchestration import get_client
    from prefect.events.actions import RunDeployment
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.exceptions import ObjectNotFound

    people = sorted(people_with_settings())
    with get_client(sync_client=True) as client:
        try:
            dep = client.read_deployment_by_name("notify/local")
        except ObjectNotFound:  # settings made before the service was set up: `p4integ up` makes it
            return None
        for old in client.read_automations_by_name(AUTOMATION_NAME):
            client.delete_automation(old.id)
    tags = [f"prefect.tag.{tag}" for person in people for tag in _tags_of(person)]
    trigger = EventTrigger(expect=set(KINDS), posture=Posture.Reactive, threshold=1, match_related=[
        {"prefect.resource.role": "flow", "prefect.resource.name": "integrate"},
        # A run's tags are related resources of its events; a value ending in '*' would be a
        # wildcard, and Perforce user names cannot hold '*'.
        {"prefect.resource.role": "tag", "prefect.resource.id": tags or ["prefect.tag.nobody"]}])
    action = RunDeployment(source="selected", deployment_id=dep.id,
                           parameters={"flow_run_id": "{{ event.resource.id }}", "event": "{{ event.event }}"})
    return Automation(name=AUTOMATION_NAME, trigger=trigger, actions=[action], enabled=bool(people)).create()
