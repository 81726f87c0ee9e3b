"""Checks against the Perforce server before a job starts: does the workspace exist, the branch spec?"""
from __future__ import annotations

from flows.p4.errors import P4Error
from flows.p4.session import P4Session
from flows.spec import JobSpec


def missing_names(spec: JobSpec, ticket: str | None) -> dict[str, str]:
    """Errors keyed by field for names the server does not know; none when it cannot be asked."""
    errors: dict[str, str] = {}
    try:
        with P4Session(spec.p4port, spec.p4user, spec.client, password=ticket) as s:
            if not s.run("clients", "-e", spec.client):
                errors["client"] = (f"client: no workspace named '{spec.client}' on {spec.p4port}; "
                                    "check the name (p4 clients -u " + spec.p4user + ")")
            if spec.branch and not s.run("branches", "-e", spec.branch):
                errors["branch"] = f"branch: no branch spec named '{spec.branch}' on {spec.p4port}; check p4 branches"
    except P4Error:
        return {}  # the job itself reports an unreachable server, with retries; don't block the form
    return errors
