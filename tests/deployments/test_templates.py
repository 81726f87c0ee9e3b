"""Templates as deployments, ownership, runs, cron schedules and stored credentials."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import StateType

from deployments import jobs, templates
from deployments.templates import TemplateError
from flows.engine_start import ENGINE_COMMAND
from flows.p4.example import make_example
from flows.p4.sandbox import set_password
from flows.spec import JobSpec
from flows.vocabulary import PAUSED_OR_FINAL

from ..flows.helpers import logs, second_user, spec_for, start_unchecked, until, wait_for_log

pytestmark = pytest.mark.usefixtures("local_worker")


def runs_of(template: templates.Template) -> list:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(
            any_=[template.deployment_id])))


def test_ownership_and_visibility(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    t = templates.create("alice", "alice-nightly", spec_for(ex))
    assert t.visibility == "private" and t.owner == "alice"
    assert "alice-nightly" in [x.name for x in templates.list_templates("alice")]
    assert "alice-nightly" not in [x.name for x in templates.list_templates("bob")]
    for attempt in (lambda: templates.get("bob", "alice-nightly"), lambda: templates.run("bob", "alice-nightly"),
                    lambda: templates.delete("bob", "alice-nightly"),
                    lambda: templates.switch("bob", "alice-nightly", "global")):
        with pytest.raises(TemplateError, match="no template named 'alice-nightly'"):
            attempt()
    templates.switch("alice", "alice-nightly", "global", operator=True)
    assert "alice-nightly" in [x.name for x in templates.list_templates("bob")]
    with pytest.raises(TemplateError, match="belongs to alice; only its owner can change it"):
        templates.edit("bob", "alice-nightly", description="mine now")
    edited = templates.edit("alice", "alice-nightly", spec=spec_for(ex, trial=True), description="trial runs")
    assert edited.spec["trial"] is True and edited.description == "trial runs"
    with pytest.raises(TemplateError, match="a template or deployment named 'alice-nightly' exists"):
        templates.create("bob", "alice-nightly", spec_for(ex))
    with pytest.raises(TemplateError, match="host: unknown host 'build-9'"):
        templates.create("bob", "bobs", spec_for(ex, host="build-9"))
    templates.delete("alice", "alice-nightly")
    assert "alice-nightly" not in [x.name for x in templates.list_templates("alice")]


def test_only_an_administrator_makes_a_template_global(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments import roles
    from flows import settings
    from flows.p4.sandbox import set_group

    ex = make_example(tmp_path / "ex", conflict=False)
    set_group(ex.depot_dir, "p4integ-admins", users=["gina"])
    monkeypatch.setenv(settings.ADMIN_GROUP_VAR, "p4integ-admins")
    monkeypatch.setenv(settings.P4PORT_VAR, ex.port)
    roles.forget()
    refused = r"^visibility: only administrators make a template global, and 'hal' is not one; keep it private"
    with pytest.raises(TemplateError, match=refused):
        templates.create("hal", "hal-shared", spec_for(ex), visibility="global")
    assert "hal-shared" not in [t.name for t in templates.list_templates("gina")]  # nothing was made
    templates.create("hal", "hal-own", spec_for(ex))
    with pytest.raises(TemplateError, match=refused):
        templates.switch("hal", "hal-own", "global")
    assert templates.get("hal", "hal-own").visibility == "private"
    try:
        assert templates.create("gina", "gina-shared", spec_for(ex), visibility="global").visibility == "global"
        assert "gina-shared" in [t.name for t in templates.list_templates("hal")]
        assert templates.switch("gina", "gina-shared", "private").visibility == "private"
        assert templates.switch("gina", "gina-shared", "global").visibility == "global"
        # The operator's p4integ command is an administrator's tool: it makes hal's template global.
        assert templates.switch("hal", "hal-own", "global", operator=True).visibility == "global"
    finally:
        templates.delete("gina", "gina-shared")
        templates.delete("hal", "hal-own")


def test_prefect_cli_runs_a_template_to_completion(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    t = templates.create("carol", "carol-cli", spec_for(ex), visibility="global", operator=True)
    with get_client(sync_client=True) as c:  # its runs start as every job's do: waiting out a server restart
        assert c.read_deployment(t.deployment_id).job_variables == {"command": ENGINE_COMMAND}
    out = subprocess.run([sys.executable, "-m", "prefect", "deployment", "run", "integrate/carol-cli"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    run = until(lambda: runs_of(t), 240, "a run of the template")[0]
    assert jobs.wait(run.id, timeout=120).state.type == StateType.COMPLETED, logs(run.id)
    templates.delete("carol", "carol-cli")


def test_run_with_overrides(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    templates.create("dave", "dave-run", spec_for(ex))
    with pytest.raises(TemplateError, match="p4port: not an override"):
        templates.run("dave", "dave-run", p4port="sandbox:/elsewhere")
    rid = templates.run("dave", "dave-run", trial=True, description="trial of the template")
    assert jobs.wait(rid, timeout=120).state.type == StateType.COMPLETED
    lines = wait_for_log(rid, "DONE:")
    assert any("trial run: change" in l for l in lines)
    from flows.p4.session import P4Session

    shelf = int(next(l for l in lines if "trial run: change" in l).split("trial run: change ")[1].split()[0])
    with P4Session(ex.port, ex.user, ex.client) as s:
        assert s.opened() == [] and s.describe(shelf, shelved=True).shelved
    assert jobs.read(rid).parameters["spec"]["description"] == "trial of the template"
    templates.delete("dave", "dave-run")


def _finish(run_id) -> None:
    """Let a run the test started end (a paused one is aborted) so it leaves nothing open."""
    run = jobs.wait(run_id, timeout=120, until=PAUSED_OR_FINAL)
    if run.state.type == StateType.PAUSED:
        jobs.resume(run_id, "abort")
        jobs.wait(run_id, timeout=240)


def test_a_global_template_runs_as_the_caller_with_the_callers_credential(tmp_path: Path, stored_password) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    owners = stored_password(ex.user, "owner-secret-pw")
    templates.create("erin", "erin-shared", spec_for(ex, password_secret=owners), visibility="global",
                     operator=True)
    mine = stored_password("frank", "frank-secret-pw")
    franks = second_user(ex, "frank", tmp_path / "frank", password="frank-secret-pw")
    ginas = second_user(ex, "gina-no-secret", tmp_path / "gina")
    rid = templates.run("frank", "erin-shared", client=franks, description="frank's run", trial=False)
    spec = jobs.read(rid).parameters["spec"]
    assert spec["p4user"] == "frank" and spec["password_secret"] == mine == templates.secret_name("frank")
    assert owners not in str(jobs.read(rid).parameters) and f"p4user:{ex.user}" not in jobs.read(rid).tags
    assert "p4user:frank" in jobs.read(rid).tags
    # a caller with no stored credential runs without one, never with the owner's
    rid2 = templates.run("gina-no-secret", "erin-shared", client=ginas)
    spec2 = jobs.read(rid2).parameters["spec"]
    assert spec2["p4user"] == "gina-no-secret" and "password_secret" not in spec2
    # the owner (and so the owner's schedules, which run the saved spec) keep the saved identity
    rid3 = templates.run("erin", "erin-shared", trial=True)
    assert jobs.read(rid3).parameters["spec"]["p4user"] == ex.user
    assert jobs.read(rid3).parameters["spec"]["password_secret"] == owners
    assert templates.get("frank", "erin-shared").spec["p4user"] == ex.user
    shown = templates.spec_for_display(templates.get("frank", "erin-shared").spec)
    assert shown["password_secret"] == "(a stored credential)" and owners not in str(shown)
    for r in (rid, rid2, rid3):
        _finish(r)
    templates.delete("erin", "erin-shared")


def test_a_template_names_the_stored_password_never_a_sign_in_ticket(tmp_path: Path, stored_password) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    ticket = templates.store_ticket(ex.user, "a-ticket-that-expires")
    # Its schedules would run long after the ticket expired.
    with pytest.raises(TemplateError, match=re.escape(f"password_secret: '{ticket}' is the ticket kept when "
                                                      f"{ex.user} signed in, which expires")):
        templates.create(ex.user, "ticket-tpl", spec_for(ex, password_secret=ticket))
    assert "ticket-tpl" not in [t.name for t in templates.list_templates(ex.user)]
    stored = stored_password(ex.user, "the-stored-one")
    templates.create(ex.user, "ticket-tpl", spec_for(ex, password_secret=stored))
    with pytest.raises(TemplateError, match="is the ticket kept when"):
        templates.edit(ex.user, "ticket-tpl", spec=spec_for(ex, password_secret=ticket))
    assert templates.get(ex.user, "ticket-tpl").spec["password_secret"] == stored
    templates.delete(ex.user, "ticket-tpl")


def test_cron_validation_and_presets() -> None:
    with pytest.raises(TemplateError, match=r"cron: '61 \* \* \* \*' \(UTC\) is not valid.*'0 2 \* \* \*'"):
        templates.cron_schedule("61 * * * *")
    assert templates.cron_schedule("nightly at 02:00", "Europe/Paris").cron == "0 2 * * *"
    dates = templates.next_dates("0 2 * * *", "Europe/Paris", 3)
    assert len(dates) == 3 and all(d.hour == 2 for d in dates)


@pytest.mark.parametrize("cron,message", [
    ("0 0 30 2 *", "cron: '0 0 30 2 *' never fires: no date matches its day and month fields"),
    ("0 0 31 4 *", "cron: '0 0 31 4 *' never fires"),
    ("0 0 2 * * *", "cron: '0 0 2 * * *' has 6 fields; give five (minute hour day month weekday)"),
    ("0 2 * *", "cron: '0 2 * *' has 4 fields; give five"),
])
def test_a_cron_line_that_cannot_fire_as_meant_is_refused_and_nothing_stored(tmp_path: Path, cron: str,
                                                                            message: str) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    templates.create("gus", "gus-cron", spec_for(ex))
    try:
        with pytest.raises(TemplateError, match="^" + re.escape(message)):
            templates.add_schedule("gus", "gus-cron", cron)
        assert templates.schedules("gus", "gus-cron") == []
        good = templates.add_schedule("gus", "gus-cron", "0 2 * * *")
        with pytest.raises(TemplateError, match="^" + re.escape(message)):
            templates.edit_schedule("gus", "gus-cron", good.id, cron)
        [kept] = templates.schedules("gus", "gus-cron")
        assert kept.cron == "0 2 * * *" and kept.problem is None
    finally:
        templates.delete("gus", "gus-cron")


def test_a_stored_schedule_that_cannot_fire_lists_as_broken(tmp_path: Path) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    ex = make_example(tmp_path / "ex", conflict=False)
    t = templates.create("hal", "hal-broken", spec_for(ex))
    try:
        templates.add_schedule("hal", "hal-broken", "0 2 * * *")
        with get_client(sync_client=True) as client:  # as stored before lines were checked
            client.create_deployment_schedules(t.deployment_id, [(CronSchedule(cron="0 0 30 2 *"), False)])
        listed = {s.cron: s for s in templates.schedules("hal", "hal-broken")}
        assert listed["0 2 * * *"].problem is None and len(listed["0 2 * * *"].next_runs) == 3
        assert listed["0 0 30 2 *"].problem.startswith("cron: '0 0 30 2 *' never fires")
        assert listed["0 0 30 2 *"].next_runs == []
        from tests.cli import p4integ

        out = p4integ("schedules", "list", "hal-broken", "--as", "hal")
        assert out.returncode == 0, out.stderr
        assert "BROKEN" in out.stdout and "never fires" in out.stdout and "p4integ schedules delete" in out.stdout
        assert "enabled" in out.stdout  # the good one is still listed as it is
    finally:
        templates.delete("hal", "hal-broken")


@pytest.mark.parametrize("field,change,message", [
    ("client", {"client": "no-such-ws"}, "client: workspace 'no-such-ws' does not exist on"),
    ("branch", {"branch": "main"}, "branch: branch spec 'main' does not exist on"),
    ("changelist", {"changelist": 999}, "changelist: 999 does not exist on"),
    ("p4user", {"p4user": "ghost"}, "p4user: 'ghost' is not a user on"),
])
def test_a_template_the_server_would_refuse_is_not_saved(tmp_path: Path, field: str, change: dict,
                                                         message: str) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    bad = JobSpec.model_validate({**spec_for(ex).model_dump(exclude_defaults=True), **change})
    with pytest.raises(TemplateError, match=re.escape(message)):
        templates.create("ivy", "ivy-bad", bad)
    assert "ivy-bad" not in [x.name for x in templates.list_templates("ivy")]
    if field == "changelist":  # and a run's override is checked the same way
        templates.create("ivy", "ivy-bad", spec_for(ex))
        try:
            with pytest.raises(TemplateError, match=re.escape(message)):
                templates.run("ivy", "ivy-bad", changelist=999)
            with pytest.raises(TemplateError, match=re.escape(message)):
                templates.edit("ivy", "ivy-bad", spec=spec_for(ex, changelist=999))
        finally:
            templates.delete("ivy", "ivy-bad")


def test_every_minute_schedule_with_stored_credential_then_disable_and_run_now(tmp_path: Path, stored_password) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    password = "Cron-Pw-41c9"
    set_password(ex.depot_dir, ex.user, password)
    secret = stored_password(ex.user, password)
    t = templates.create("erin", "erin-cron", spec_for(ex, password_secret=secret))
    sched = templates.add_schedule("erin", "erin-cron", "* * * * *", "UTC")
    assert sched.active and len(sched.next_runs) == 3
    first = until(lambda: [r for r in runs_of(t) if r.state and r.state.type == StateType.COMPLETED], 150,
                  "a scheduled run to complete")[0]
    assert first.auto_scheduled and "Completed" == templates.schedules("erin", "erin-cron")[0].last_run_state
    templates.set_active("erin", "erin-cron", sched.id, False)
    assert templates.schedules("erin", "erin-cron")[0].next_runs == []
    until(lambda: not [r for r in runs_of(t) if r.state and r.state.type == StateType.SCHEDULED], 30,
          "scheduled runs to be withdrawn")
    rid = templates.run("erin", "erin-cron")
    assert jobs.wait(rid, timeout=120).state.type == StateType.COMPLETED
    with get_client(sync_client=True) as client:
        dep = client.read_deployment(t.deployment_id)
    everything = repr(dep.model_dump()) + repr(jobs.read(rid).parameters) + "\n".join(logs(rid))
    assert password not in everything and secret in everything
    assert not [f for f in Path(str(tmp_path)).rglob("*") if f.is_file() and password.encode() in f.read_bytes()]
    templates.delete("erin", "erin-cron")


def test_wrong_stored_password_fails_the_run_with_an_auth_error(tmp_path: Path, stored_password) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    set_password(ex.depot_dir, ex.user, "the-right-one")
    secret = stored_password(ex.user, "an-old-one")
    with pytest.raises(TemplateError, match="password_secret: .*Password invalid"):
        templates.create("fay", "fay-auth", spec_for(ex, password_secret=secret))
    stored_password(ex.user, "the-right-one")
    templates.create("fay", "fay-auth", spec_for(ex, password_secret=secret))
    stored_password(ex.user, "an-old-one")  # the password changes after the template was made
    with pytest.raises(TemplateError, match="password_secret: .*Password invalid"):
        templates.run("fay", "fay-auth")
    rid = start_unchecked(spec_for(ex, password_secret=secret), "integrate/fay-auth")  # as its schedule would
    assert jobs.wait(rid, timeout=120).state.type == StateType.FAILED
    lines = wait_for_log(rid, "ERROR at GET_LATEST_CL")
    assert any("Password invalid" in l and "Check the Perforce password or ticket stored" in l for l in lines)
    templates.delete("fay", "fay-auth")
