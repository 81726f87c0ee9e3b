"""Telling a job's owner that it needs them, failed, or finished.

Runs as its own small flow, started by a Prefect automation on the integration
flow's Suspended / Failed / Crashed / Completed events, so Prefect decides *when*; this code
only decides *whom* and *how*. Each owner hears once per run and kind of event
(a run that pauses again after a recheck does not mail again).
"""
from __future__ import annotations

import json
import os
import smtplib
import urllib.request
from email.message import EmailMessage
from typing import Any

from prefect import flow, get_run_logger

from .usernames import encode_user
from .vocabulary import author_of, owner_of, user_of

KINDS = {
    # A job waiting for a person is Suspended (no process); Paused is kept for runs
    # paused in-process by older versions.
    "prefect.flow-run.Suspended": "needs you: files wait for a resolve",
    "prefect.flow-run.Paused": "needs you: files wait for a resolve",
    "prefect.flow-run.Failed": "failed",
    # Its process, worker or host died: the cleanup flow cleans the workspace, and only a
    # person can start it again.
    "prefect.flow-run.Crashed": "crashed: its process, worker or host died; start it again",
    "prefect.flow-run.Completed": "finished",
}


# The events that ask a person for something (the others only tell the owner).
_ASKS = {"prefect.flow-run.Suspended", "prefect.flow-run.Paused"}


SETTINGS_PREFIX = "p4_notify_"


def settings_variable(user: str) -> str:
    """The Prefect variable holding a user's settings; distinct for every user name."""
    return SETTINGS_PREFIX + encode_user(user)


@flow(name="notify", persist_result=False, log_prints=False)
def notify(flow_run_id: str, event: str) -> str:
    from . import handled

    logger = get_run_logger()
    run_id, state = flow_run_id.rsplit(".", 1)[-1], event.rsplit(".", 1)[-1]
    # Taken first, whoever is told: the recovery sweep starts this flow again for any run and
    # state not taken yet (an automation's event lost), and must not start it forever.
    if not handled.take("notified", run_id, state):
        return "already told"
    sent: list[str] = []  # the channels that took the notice so far
    try:
        return _tell_people(run_id, event, sent, logger)
    except Exception:
        if not sent:
            # Nobody was told (the mail server or the network down, the API busy): not taken,
            # so the recovery sweep starts this notice again. A notice half sent stays taken:
            # sending it again would tell twice on the channel that worked.
            handled.release("notified", run_id, state)
            logger.error("nothing was sent; the recovery sweep tries again")
        raise


def _tell_people(run_id: str, event: str, sent: list[str], logger: Any) -> str:
    from prefect.variables import Variable

    from . import runs

    run = runs.read_run(run_id)
    # A template's or line's owner, else the Perforce user who started the job (every job run
    # carries the tags that apply; see flows.vocabulary.job_tags). A line's job that waits for a
    # person also tells the author of the source change it stopped at.
    tags = run.tags or []
    owner = owner_of(tags) or user_of(tags)
    author = author_of(tags) if event in _ASKS else None
    people = [p for p in dict.fromkeys([owner, author]) if p]
    if not people:
        return "no owner"
    api = os.environ.get("PREFECT_API_URL", "").removesuffix("/api")
    ui_link = f"{api}/runs/flow-run/{run_id}"
    app_link = f"{os.environ.get('P4INTEG_APP_URL', 'http://127.0.0.1:8501')}/job?run={run_id}"
    what = KINDS.get(event, event)
    subject = f"[p4-integration] {run.name} {what}"
    body = (f"{run.name} {what}.\nState: {run.state.name if run.state else '?'}"
            f"{' - ' + run.state.message if run.state and run.state.message else ''}\n\n"
            f"In the app:       {app_link}\nIn the Prefect UI: {ui_link}\n")
    said = []
    for person in people:
        cfg: dict[str, Any] = Variable.get(settings_variable(person), default={}) or {}
        if not (cfg.get("email") or cfg.get("webhook")):
            said.append(f"{person} has no notifications configured")
            continue
        before = len(sent)
        _tell(cfg, subject, body, {"text": f"{subject}\n{app_link}", "run_id": run_id, "event": event,
                                   "state": run.state.name if run.state else None,
                                   "links": {"app": app_link, "prefect": ui_link}}, sent)
        channels = sent[before:]
        logger.info(f"told {person} ({', '.join(channels)}): {subject}")
        said.append(f"{person}: {', '.join(channels)}")
    return "; ".join(said)


def _tell(cfg: dict[str, Any], subject: str, body: str, payload: dict[str, Any], sent: list[str]) -> None:
    """Send by each channel the settings name; each one that worked is added to ``sent`` at
    once (the caller's record of what a failure part way left done)."""
    if cfg.get("email"):
        msg = EmailMessage()
        msg["Subject"], msg["To"] = subject, cfg["email"]
        msg["From"] = os.environ.get("P4INTEG_SMTP_FROM", "p4-integration@localhost")
        msg.set_content(body)
        host = os.environ.get("P4INTEG_SMTP_HOST", "127.0.0.1")
        port = int(os.environ.get("P4INTEG_SMTP_PORT", "25"))
        with smtplib.SMTP(host, port, timeout=10) as smtp:
            smtp.send_message(msg)
        sent.append("email")
    if cfg.get("webhook"):
        req = urllib.request.Request(cfg["webhook"], data=json.dumps(payload).encode(),  # noqa: S310 - as below
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the person's configured URL
            resp.read()
        sent.append("webhook")
