"""Templates, schedules and hosts pages through AppTest, against the real Prefect server."""
from __future__ import annotations

import pytest

from agent import registry
from agent.records import HostRecord
from deployments import jobs
from flows.settings import free_port
from tests.flows.helpers import PAUSED_OR_FINAL, second_user
from tests.ui.conftest import PASSWORD, page, texts
from tests.ui.test_pages import _button, _fill
from ui import backend


def _by_key(at, key: str):
    found = [b for b in at.button if b.key == key]
    assert found, f"no button with key {key}"
    return found[0]


def _save_template(user: str, ex, name: str, visibility: str = "private"):
    at = page(user, "views/new_job.py")
    _fill(at, client=ex.client, branch=ex.branch, tpl_name=name)
    at.selectbox(key="nj_tpl_visibility").set_value(visibility)
    _button(at, "Save as template").click().run()
    return at


def test_templates_save_run_with_overrides_and_stay_private(signed_in, ui_depot) -> None:
    at = page(signed_in, "views/templates.py")
    assert "No templates yet" in texts(at) or "Templates" in texts(at)
    at = _save_template(signed_in, ui_depot, "ui-nightly")
    assert any("Saved template" in s.value for s in at.success)
    at = _save_template(signed_in, ui_depot, "ui-nightly")
    assert any(e.value.startswith("name: a template or deployment named 'ui-nightly' exists") for e in at.error)

    at = page(signed_in, "views/templates.py")
    assert "ui-nightly" in "\n".join(e.label for e in at.expander)
    at.text_input(key="tpl_ui-nightly_cl").set_value("x1")
    _by_key(at, "tpl_ui-nightly_run").click().run()
    assert any(e.value.startswith("changelist: 'x1' is not a number") for e in at.error)
    at.text_input(key="tpl_ui-nightly_cl").set_value("")
    at.toggle(key="tpl_ui-nightly_trial").set_value(True)
    _by_key(at, "tpl_ui-nightly_run").click().run()
    run_id = at.query_params["run"]
    assert backend.run_detail(run_id).spec["trial"] is True
    run = jobs.wait(run_id, timeout=120, until=PAUSED_OR_FINAL)
    if run.state.type.value == "PAUSED":
        backend.resume(run_id, "abort")
        jobs.wait(run_id, timeout=240)

    other = page("someone-else", "views/templates.py")
    assert "ui-nightly" not in "\n".join(e.label for e in other.expander)  # private: the owner's alone

    at = page(signed_in, "views/templates.py")
    _by_key(at, "tpl_ui-nightly_switch").click().run()
    assert any("now global" in s.value for s in at.success)
    other = page("someone-else", "views/templates.py")
    assert "ui-nightly" in "\n".join(e.label for e in other.expander)
    assert not [b for b in other.button if b.key in ("tpl_ui-nightly_switch", "tpl_ui-nightly_delete")]


def test_schedules_preview_add_disable_and_delete(signed_in, ui_depot) -> None:
    at = page("nobody-yet", "views/schedules.py")
    assert "Save a template from" in texts(at)
    _save_template(signed_in, ui_depot, "ui-sched")
    at = page(signed_in, "views/schedules.py")
    at.selectbox(key="sch_template").set_value("ui-sched")
    at.selectbox(key="sch_preset").set_value("weekdays at 02:00").run()
    assert "At 02:00 AM, Monday through Friday" in texts(at)
    at.selectbox(key="sch_preset").set_value("custom cron line").run()
    at.text_input(key="sch_cron").set_value("61 * * * *").run()
    assert any(e.value.startswith("cron: '61 * * * *' (UTC) is not valid") for e in at.error)
    assert _button(at, "Add schedule").disabled
    at.text_input(key="sch_tz").set_value("Mars/Base").run()
    assert any(e.value.startswith("timezone: 'Mars/Base' is not a time zone") for e in at.error)
    at.text_input(key="sch_tz").set_value("UTC").run()
    at.text_input(key="sch_cron").set_value("30 3 * * 0").run()
    _button(at, "Add schedule").click().run()
    assert any("Scheduled ui-sched" in s.value for s in at.success)
    [sched] = backend.schedules(signed_in, "ui-sched")
    assert sched.cron == "30 3 * * 0" and sched.active and len(sched.next_runs) == 3
    assert f"{sched.next_runs[0]:%a %d %b %H:%M}" in texts(at)
    at.toggle(key=f"sch_on_{sched.id}").set_value(False).run()
    assert not backend.schedules(signed_in, "ui-sched")[0].active
    assert "paused" in texts(at)
    _by_key(at, f"sch_del_{sched.id}").click().run()
    assert backend.schedules(signed_in, "ui-sched") == []
    assert not [t for t in at.toggle if t.key == f"sch_on_{sched.id}"]  # its row is gone
    assert "ui-sched: schedule deleted." in texts(at)


def test_schedules_page_shows_a_stored_schedule_that_cannot_fire_as_broken(signed_in, ui_depot) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.schedules import CronSchedule

    _save_template(signed_in, ui_depot, "ui-broken")
    [t] = [x for x in backend.list_templates(signed_in) if x.name == "ui-broken"]
    with get_client(sync_client=True) as client:  # as stored before cron lines were checked
        client.create_deployment_schedules(t.deployment_id, [(CronSchedule(cron="0 0 30 2 *"), True)])
    at = page(signed_in, "views/schedules.py")  # page() asserts the page raised nothing
    assert any(e.value.startswith("Broken: cron: '0 0 30 2 *' never fires") for e in at.error), \
        [e.value for e in at.error]
    at.selectbox(key="sch_preset").set_value("custom cron line").run()
    at.text_input(key="sch_cron").set_value("0 0 31 4 *").run()
    assert any(e.value.startswith("cron: '0 0 31 4 *' never fires") for e in at.error)
    assert _button(at, "Add schedule").disabled
    backend.delete_template(signed_in, "ui-broken")


def test_hosts_page_shows_state_and_the_error_next_to_the_host(signed_in, tmp_path) -> None:
    before = registry.load_all()
    for name in before:
        registry.remove(name)
    try:
        at = page(signed_in, "views/hosts.py")
        assert "No hosts enrolled" in texts(at)
        key = tmp_path / "id"
        key.write_text("not a key")
        registry.save(HostRecord(name="ui-nowhere", address="127.0.0.1", port=free_port(), user="ci",
                                 key_file=str(key), host_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== x"))
        at = page(signed_in, "views/hosts.py")
        assert "ui-nowhere" in texts(at) and "offline" in texts(at)
        _button(at, "Deploy").click().run()
        errors = [e.value for e in at.error]
        assert errors and ("ui-nowhere" in errors[0] or "127.0.0.1" in errors[0]), errors
    finally:
        registry.remove("ui-nowhere")
        for rec in before.values():
            registry.save(rec)


def test_a_non_administrator_sees_hosts_health_but_cannot_deploy_or_stop(signed_in, ui_depot,
                                                                          tmp_path) -> None:
    from deployments import roles
    from flows.p4.sandbox import set_password
    from ui import auth

    viewer = "ui-viewer"  # signed in like anyone, in no administrators' group
    set_password(ui_depot.depot_dir, viewer, "viewer-pw-3")
    backend.store_ticket(viewer, auth.check_credentials(viewer, "viewer-pw-3").ticket)
    before = registry.load_all()
    for name in before:
        registry.remove(name)
    key = tmp_path / "id"
    key.write_text("not a key")
    registry.save(HostRecord(name="ui-nowhere", address="127.0.0.1", port=free_port(), user="ci",
                             key_file=str(key), host_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA== x"))
    try:
        assert roles.is_admin(signed_in) and not roles.is_admin(viewer)
        at = page(viewer, "views/hosts.py")
        shown = texts(at)
        assert "ui-nowhere" in shown and "offline" in shown and "heartbeat" in shown  # health, for everyone
        assert "Administrators enrol, deploy and stop hosts." in shown and "p4integ hosts add" not in shown
        assert not [b for b in at.button if b.key in ("host_ui-nowhere_deploy", "host_ui-nowhere_stop")]
        with pytest.raises(backend.NotAllowed, match=r"^deploy ui-nowhere: only administrators may do this, and "
                                                  r"'ui-viewer' is not one"):
            backend.deploy_host(viewer, "ui-nowhere")
        with pytest.raises(backend.NotAllowed, match=r"^stop ui-nowhere: only administrators"):
            backend.stop_host(viewer, "ui-nowhere")
        admin = page(signed_in, "views/hosts.py")  # the group's member gets the controls
        assert {"host_ui-nowhere_deploy", "host_ui-nowhere_stop"} <= {b.key for b in admin.button}
    finally:
        registry.remove("ui-nowhere")
        for rec in before.values():
            registry.save(rec)


def test_only_an_administrator_is_offered_to_make_a_template_global(signed_in, ui_depot) -> None:
    from deployments.templates import TemplateError
    from flows.p4.sandbox import set_password
    from flows.spec import JobSpec
    from ui import auth

    viewer = "ui-tpl-viewer"
    set_password(ui_depot.depot_dir, viewer, "viewer-pw-4")
    backend.store_ticket(viewer, auth.check_credentials(viewer, "viewer-pw-4").ticket)
    spec = JobSpec(p4port=ui_depot.port, p4user=viewer, client=ui_depot.client, branch=ui_depot.branch)
    backend.create_template(viewer, "ui-viewers-own", spec)
    try:
        at = page(viewer, "views/templates.py")
        assert "ui-viewers-own" in "\n".join(e.label for e in at.expander)
        assert not [b for b in at.button if b.key == "tpl_ui-viewers-own_switch"]  # no "Make global"
        assert [b for b in at.button if b.key == "tpl_ui-viewers-own_delete"]  # still the owner
        with pytest.raises(TemplateError, match=r"^visibility: only administrators make a template global"):
            backend.switch_template(viewer, "ui-viewers-own", "global")
        with pytest.raises(TemplateError, match=r"^visibility: only administrators make a template global"):
            backend.create_template(viewer, "ui-viewers-shared", spec, "global")
    finally:
        backend.delete_template(viewer, "ui-viewers-own")


def test_hosts_page_deploys_and_stops_a_real_worker(signed_in, host_network) -> None:
    from agent import health

    from tests.agent.test_remote_hosts import record

    b = host_network.hosts["b"]
    if "b" not in registry.load_all():
        registry.save(record(b))
    backend.stop_host(signed_in, "b")  # start from a host without a worker
    with pytest.raises(backend.NotAllowed, match=r"^deploy b: only administrators may do this"):
        backend.deploy_host("not-an-admin", "b")  # signed in or not: refused before SSH is opened
    assert health.health(registry.get("b")).process_alive is False
    at = page(signed_in, "views/hosts.py")
    at.toggle(key="hosts_ssh").set_value(True).run()
    assert "no process" in texts(at)
    _by_key(at, "host_b_deploy").click().run(timeout=300)
    assert any(s.value.startswith("b: ") for s in at.success), [e.value for e in at.error]
    state = health.health(registry.get("b"))
    assert state.online and state.process_alive
    at = page(signed_in, "views/hosts.py")
    at.toggle(key="hosts_ssh").set_value(True).run()
    assert "process running" in texts(at) and ":green-badge[online]" in texts(at)
    _by_key(at, "host_b_stop").click().run(timeout=120)
    assert any(s.value == "b: worker stopped." for s in at.success)
    assert health.health(registry.get("b")).process_alive is False


def test_a_schedule_runs_its_template_now(signed_in, ui_depot) -> None:
    _save_template(signed_in, ui_depot, "ui-sched-now")
    backend.add_schedule(signed_in, "ui-sched-now", "hourly", "UTC")
    [sched] = backend.schedules(signed_in, "ui-sched-now")
    at = page(signed_in, "views/schedules.py")
    _by_key(at, f"sch_run_{sched.id}").click().run()
    run_id = at.query_params["run"]
    detail = backend.run_detail(run_id)
    assert detail.spec["client"] == ui_depot.client
    run = jobs.wait(run_id, timeout=120, until=PAUSED_OR_FINAL)
    if run.state.type.value == "PAUSED":
        backend.resume(run_id, "abort")
        jobs.wait(run_id, timeout=240)


def test_a_template_carries_and_shows_the_integrate_options(signed_in, ui_depot) -> None:
    at = page(signed_in, "views/new_job.py")
    _fill(at, client=ui_depot.client, branch=ui_depot.branch, tpl_name="ui-baseless")
    at.multiselect(key="nj_integrate_options").set_value(["-i", "-Ds"])
    _button(at, "Save as template").click().run()
    assert any("Saved template" in s.value for s in at.success)
    [saved] = [t for t in backend.list_templates(signed_in) if t.name == "ui-baseless"]
    assert saved.spec["integrate_options"] == ["-i", "-Ds"]
    at = page(signed_in, "views/templates.py")
    shown = texts(at)
    assert "`-i` integrate files that share no integration history (baseless merge)" in shown, shown
    assert "`-Ds` source deleted, target edited: delete the target anyway" in shown
    backend.delete_template(signed_in, "ui-baseless")


def test_a_global_template_says_whose_identity_a_run_uses_and_runs_as_the_caller(signed_in, ui_depot, tmp_path,
                                                                                   stored_password) -> None:
    from deployments.templates import secret_name
    from flows.usernames import ticket_secret_name

    stored_password(signed_in, PASSWORD)  # an administrator's, so the owner's schedules outlive tickets
    _save_template(signed_in, ui_depot, "ui-shared", "global")
    [saved] = [t for t in backend.list_templates(signed_in) if t.name == "ui-shared"]
    assert saved.spec["password_secret"] == secret_name(signed_in)  # not the sign-in's ticket, which expires
    own = page(signed_in, "views/templates.py")
    assert "Run now runs as you · its schedules run as you (scheduled)" in texts(own)
    caller = "ui-caller"
    client = second_user(ui_depot, caller, tmp_path / "caller", password="caller-pw")
    backend.store_ticket(caller, "caller-pw")
    at = page(caller, "views/templates.py")
    assert f"Run now runs as you · its schedules run as {signed_in} (scheduled)" in texts(at)
    specs = [j.value for j in at.json]
    assert specs and all(secret_name(signed_in) not in v for v in specs)
    assert any("(a stored credential)" in v for v in specs)  # says one is stored, not whose
    at.text_input(key="tpl_ui-shared_client").set_value(client)
    at.toggle(key="tpl_ui-shared_trial").set_value(True)
    _by_key(at, "tpl_ui-shared_run").click().run()
    run = backend.run_detail(at.query_params["run"])
    assert run.user == caller and run.spec["p4user"] == caller and run.spec["client"] == client
    assert run.spec["password_secret"] == ticket_secret_name(caller)  # started on the front page: the sign-in's
    done = jobs.wait(run.id, timeout=120, until=PAUSED_OR_FINAL)
    if done.state.type.value == "PAUSED":
        backend.resume(run.id, "abort")
        jobs.wait(run.id, timeout=240)
