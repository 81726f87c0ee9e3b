"""Tickets through a real worker: a job whose sign-in ticket ends while it waits for a person."""
from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.schemas.objects import StateType

from deployments import jobs
from flows.p4.example import make_example
from flows.p4.sandbox import P4, set_password
from flows.spec import JobSpec
from ui.auth import check_credentials

from .helpers import PAUSED_OR_FINAL, logs, opened_and_pending, wait_for_log

pytestmark = pytest.mark.usefixtures("local_worker")
PASSWORD = "Sign-in-pw-7"


def test_a_job_whose_sign_in_ticket_ended_while_it_waited_stops_saying_what_to_do(tmp_path: Path,
                                                                                   stored_password) -> None:
    ex = make_example(tmp_path / "ex")
    set_password(ex.depot_dir, ex.user, PASSWORD)
    # What the front page keeps for the user's jobs: an all-hosts ticket, not the password.
    ticket = check_credentials(ex.user, PASSWORD, ex.port).ticket
    secret = stored_password(ex.user, ticket)
    run_id = jobs.submit(JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client, branch=ex.branch,
                                 password_secret=secret))
    assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120).state.type == StateType.PAUSED, logs(run_id)

    # While the job waits, the user's tickets end (here: 'logout -a', as an expiry would).
    p4 = P4(port=ex.port, user=ex.user, client=ex.client, password=ticket).connect()
    held = [c["change"] for c in p4.run_changes("-s", "pending", "-c", ex.client)]
    p4.run_logout("-a")
    p4.disconnect()

    jobs.resume(run_id, "recheck")
    assert jobs.wait(run_id, timeout=120).state.type == StateType.FAILED
    lines = wait_for_log(run_id, "ERROR at")
    error = next(l for l in lines if "ERROR at" in l)
    assert '"Perforce password (P4PASSWD) invalid or unset."' in error  # Perforce's words, quoted
    assert "sign in again on the front page" in error and f"p4integ credentials set {ex.user}" in error
    assert f"pending change and its files stay in workspace {ex.client}" in error
    assert ticket not in "\n".join(logs(run_id))
    set_password(ex.depot_dir, ex.user, None)  # to look: the job's change is still there, untouched
    _, still = opened_and_pending(ex.port, ex.user, ex.client)
    assert [str(c) for c in still] == held and held
