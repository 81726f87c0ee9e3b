"""The front page against a real Prefect server and worker and a sandbox depot with a password."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows.p4.example import Example, make_example
from flows.p4.sandbox import set_group, set_password

PASSWORD = "Rel-bot-pw-7"
ADMIN_GROUP = "p4integ-admins"
SESSION_KEY = "_p4integ_session"
APP = str(Path(__file__).resolve().parents[2] / "ui" / "app.py")


def make_depot(directory: Path) -> Example:
    """Two conflicting files on main -> rel, and a password for release-bot so it can sign in."""
    ex = make_example(directory, second_conflict=True)
    set_password(ex.depot_dir, ex.user, PASSWORD)
    return ex


@pytest.fixture
def ui_depot(tmp_path: Path, local_worker: str, monkeypatch: pytest.MonkeyPatch) -> Example:
    """A depot of the test's own (a job that submits changes no other test's depot); the app signs in to it."""
    ex = make_depot(tmp_path)
    monkeypatch.setenv("P4INTEG_P4PORT", ex.port)
    return ex


@pytest.fixture
def signed_in(ui_depot: Example, monkeypatch: pytest.MonkeyPatch) -> str:
    """What a sign-in leaves behind for the user's jobs: the ticket in their Secret block. The user
    is an administrator: a member of the administrators' Perforce group, which the front page
    reads with that ticket."""
    from deployments import roles
    from flows import settings
    from ui import auth, backend

    backend.store_ticket(ui_depot.user, auth.check_credentials(ui_depot.user, PASSWORD).ticket)
    set_group(ui_depot.depot_dir, ADMIN_GROUP, users=[ui_depot.user])
    monkeypatch.setenv(settings.ADMIN_GROUP_VAR, ADMIN_GROUP)
    roles.forget()
    return ui_depot.user


def page(user: str | None, path: str | None = None, **query: str) -> Any:
    """An AppTest of the whole app (gate and navigation included), on one page."""
    from streamlit.testing.v1 import AppTest

    from ui import auth

    at = AppTest.from_file(APP, default_timeout=60)
    if user:  # what a sign-in leaves in the tab: the signed cookie, checked again on every run
        at.session_state[SESSION_KEY] = auth.make_cookie(user)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    if path:
        at.switch_page(path)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: Any) -> str:
    """Every bit of text the page drew, to search in."""
    parts = [e.value for kind in ("title", "subheader", "markdown", "caption", "error", "success", "info", "code")
             for e in getattr(at, kind)]
    parts += [f"{m.label}={m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)
