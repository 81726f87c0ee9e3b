"""The Lines page: a line blocked by a conflict is shown with its change and author, and a
person can skip that change from there."""
from __future__ import annotations

import uuid

from prefect.client.schemas.objects import StateType

from deployments import lines
from flows.lines import LineSpec
from flows.p4.session import P4Session
from flows.prefect_compat import save_secret
from flows.runs import runs_tagged
from flows.usernames import secret_name
from flows.vocabulary import line_change_tag
from tests.ui.conftest import PASSWORD, page, texts

from ..flows.helpers import spec_for, until


def _last_state(name: str, change: int) -> StateType | None:
    found = runs_tagged(line_change_tag(name, change))
    return found[-1].state.type if found and found[-1].state else None


def test_a_blocked_line_is_shown_and_its_change_skipped_from_the_page(signed_in, ui_depot) -> None:
    save_secret(secret_name(signed_in), PASSWORD)  # what 'p4integ credentials set' stores for a line's jobs
    name = f"ui-line-{uuid.uuid4().hex[:8]}"
    lines.create(signed_in, LineSpec(name=name, job=spec_for(ui_depot, password_secret=secret_name(signed_in))))
    with P4Session(ui_depot.port, ui_depot.user, ui_depot.client, password=PASSWORD) as s:
        change = s.interchanges(branch=ui_depot.branch)[0].change
    lines.run(signed_in, name)
    until(lambda: _last_state(name, change) == StateType.PAUSED, 240, "the line's job to wait for a person")

    at = page(signed_in, "views/lines.py")
    shown = texts(at)
    assert f"blocked at change {change} by {ui_depot.user}: waits for a person" in shown, shown
    assert "1 change(s) behind" in shown

    at.button(key=f"skip_{name}_{change}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    until(lambda: _last_state(name, change) == StateType.CANCELLED, 120, "the waiting job to be cancelled")
    until(lambda: "up to date" in texts(page(signed_in, "views/lines.py")), 120, "the line to show up to date")
    lines.remove(signed_in, name)
