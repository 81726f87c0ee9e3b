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
from flows.vocabulary import line_change_tag, line_tag
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


def test_a_line_is_created_from_a_template_paused_resumed_and_removed_on_the_page(signed_in, ui_depot) -> None:
    from deployments import templates
    from flows.spec import JobSpec

    save_secret(secret_name(signed_in), PASSWORD)
    docs = JobSpec(p4port=ui_depot.port, p4user=ui_depot.user, client=ui_depot.client,
                   source="//depot/main/docs/...", target="//depot/rel/docs/...")  # one clean change waits
    tpl = f"docs-{uuid.uuid4().hex[:8]}"
    templates.create(signed_in, tpl, docs)
    name = f"page-line-{uuid.uuid4().hex[:8]}"

    at = page(signed_in, "views/lines.py")
    at.text_input(key="nl_name").set_value("Docs Line")
    at.selectbox(key="nl_template").set_value(tpl)
    at.text_input(key="nl_gate").set_value("ci good")
    at.button(key="nl_create").click().run()
    shown = texts(at)
    assert "name: 'Docs Line' is not a line name; use lowercase letters, digits and '-'" in shown, shown
    assert "gate: 'ci good' is not a Perforce key name" in shown, shown
    assert all(li.spec.name != "docs-line" for li in lines.list_lines(signed_in))  # nothing made
    trial = f"{tpl}-trial"
    templates.create(signed_in, trial, docs.model_copy(update={"trial": True}))
    at = page(signed_in, "views/lines.py")
    at.text_input(key="nl_name").set_value(name)
    at.selectbox(key="nl_template").set_value(trial)
    at.button(key="nl_create").click().run()
    assert "template: job.trial: a line submits what it integrates" in texts(at), texts(at)
    assert all(li.spec.name != name for li in lines.list_lines(signed_in))
    at.selectbox(key="nl_template").set_value(tpl)

    at.text_input(key="nl_name").set_value(name)
    at.text_input(key="nl_gate").set_value("ci-good-docs")  # never set: its first step starts no job
    at.button(key="nl_create").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"created line {name}; it takes its first change now" in texts(at)
    made = lines.get(signed_in, name)
    # The template's job, run as its creator with the stored password: a ticket would expire under it.
    assert (made.spec.job.source, made.spec.job.p4user, made.spec.job.password_secret, made.owner,
            made.spec.gate) == (docs.source, signed_in, secret_name(signed_in), signed_in, "ci-good-docs")
    # The one waiting change is past the gate (a key never set holds 0): shown gated, no job started.
    assert "gated at change 0: later changes wait for the check" in texts(page(signed_in, "views/lines.py"))
    assert not runs_tagged(line_tag(name))

    at = page(signed_in, "views/lines.py")
    at.button(key=f"pause_{name}").click().run()
    assert lines.get(signed_in, name).paused and f"paused line {name}" in texts(at)
    at.button(key=f"pause_{name}").click().run()  # now Resume
    assert not lines.get(signed_in, name).paused
    at.button(key=f"remove_{name}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert all(li.spec.name != name for li in lines.list_lines(signed_in))
    assert f"removed line {name}" in texts(at)
