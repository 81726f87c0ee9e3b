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
from .vocabulary import owner_of, user_of

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


def settings_variable(user: str) -> str:
    """The Prefect variable holding a user's settings; distinct for every user name."""
    return "p4_notify_" + encode_user(user)


@flow(name="notify", persist_result=False, log_prints=False)
def notify(flow_run_id: str, event: str) -> str:
    from prefect.variables import Variable

    from . import handled, runs

    logger = get_run_logger()
    run_id = flow_run_id.rsplit(".", 1)[-1]
    # Taken first, whoever is told: the recovery sweep starts this flow again for any run and
    # state not taken yet (an automation's event lost), and must not start it forever.
    if not handled.take("notified", run_id, event.rsplit(".", 1)[-1]):
        return "already told"
    run = runs.read_run(run_id)
    # A template's owner, else the Perforce user who started the job (every job run carries both
    # kinds of tag where they apply; see deployments.jobs.run_tags).
    tags = run.tags or []
    owner = owner_of(tags) or user_of(tags)
    if not owner:
        return "no owner"
    cfg: dict[str, Any] = Variable.get(settings_variable(owner), default={}) or {}
    if not (cfg.get("email") or cfg.get("webhook")):
        return f"{owner} has no notifications configured"
    api = os.environ.get("PREFECT_API_URL", "").removesuffix("/api")
    ui_link = f"{api}/runs/flow-run/{run_id}"
    app_link = f"{os.environ.get('P4INTEG_APP_URL', 'http://127.0.0.1:8501')}/job?run={run_id}"
    what = KINDS.get(event, event)
    subject = f"[p4-integration] {run.name} {what}"
    body = (f"{run.name} {what}.\nState: {run.state.name if run.state else '?'}"
            f"{' - ' + run.state.message if run.state and run.state.message else ''}\n\n"
            f"In the app:       {app_link}\nIn the Prefect UI: {ui_link}\n")
    sent = []
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
        payload = json.dumps({"text": f"{subject}\n{app_link}", "run_id": run_id, "event": event,
                              "state": run.state.name if run.state else None, "links": {"app": app_link,
                                                                                        "prefect": ui_link}})
        req = urllib.request.Request(cfg["webhook"], data=payload.encode(), method="POST",  # noqa: S310 - as below
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - the owner's configured URL
            resp.read()
        sent.append("webhook")
    logger.info(f"told {owner} ({', '.join(sent)}): {subject}")
    return ", ".join(sent)
