"""The front page against a real Prefect server and worker and a sandbox depot with a password."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.p4.example import Example, make_example
from flows.p4.sandbox import set_password

PASSWORD = "Rel-bot-pw-7"
USER_KEY = "_p4integ_user"
APP = str(Path(__file__).resolve().parents[2] / "ui" / "app.py")


@pytest.fixture(scope="session")
def ui_depot(tmp_path_factory: pytest.TempPathFactory, local_worker: str) -> Iterator[Example]:
    """Two conflicting files on main -> rel; release-bot has a password; the app signs in against it."""
    ex = make_example(tmp_path_factory.mktemp("ui-depot"), second_conflict=True)
    set_password(ex.depot_dir, ex.user, PASSWORD)
    before = os.environ.get("P4INTEG_P4PORT")
    os.environ["P4INTEG_P4PORT"] = ex.port
    yield ex
    if before is None:
        os.environ.pop("P4INTEG_P4PORT", None)
    else:
        os.environ["P4INTEG_P4PORT"] = before


@pytest.fixture(scope="session")
def signed_in(ui_depot: Example) -> str:
    """What a sign-in leaves behind for the user's jobs: the ticket in their Secret block."""
    from ui import auth, data

    data.store_ticket(ui_depot.user, auth.check_credentials(ui_depot.user, PASSWORD).ticket)
    return ui_depot.user


def page(user: str | None, path: str | None = None, **query: str) -> Any:
    """An AppTest of the whole app (gate and navigation included), on one page."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60)
    if user:
        at.session_state[USER_KEY] = user
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
