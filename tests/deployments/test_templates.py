"""Templates as deployments, ownership, runs, cron schedules and stored credentials."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import StateType

from deployments import jobs, templates
from deployments.templates import TemplateError
from flows.p4.example import make_example
from flows.p4.sandbox import set_password
from flows.spec import JobSpec

from ..flows.helpers import logs, until, wait_for_log

pytestmark = pytest.mark.usefixtures("local_worker")


def spec_for(ex, **kw) -> JobSpec:  # noqa: ANN001
    return JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client, branch=ex.branch, **kw)


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
    templates.switch("alice", "alice-nightly", "global")
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


def test_prefect_cli_runs_a_template_to_completion(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    t = templates.create("carol", "carol-cli", spec_for(ex), visibility="global")
    out = subprocess.run([sys.executable, "-m", "prefect", "deployment", "run", "integrate/carol-cli"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    run = until(lambda: runs_of(t), 30, "a run of the template")[0]
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


def test_cron_validation_and_presets() -> None:
    with pytest.raises(TemplateError, match=r"cron: '61 \* \* \* \*' \(UTC\) is not valid.*'0 2 \* \* \*'"):
        templates.cron_schedule("61 * * * *")
    assert templates.cron_schedule("nightly at 02:00", "Europe/Paris").cron == "0 2 * * *"
    dates = templates.next_dates("0 2 * * *", "Europe/Paris", 3)
    assert len(dates) == 3 and all(d.hour == 2 for d in dates)


def test_every_minute_schedule_with_stored_credential_then_disable_and_run_now(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    password = "Cron-Pw-41c9"
    set_password(ex.depot_dir, ex.user, password)
    secret = templates.store_password(ex.user, password)
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


def test_wrong_stored_password_fails_the_run_with_an_auth_error(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    set_password(ex.depot_dir, ex.user, "the-right-one")
    secret = templates.store_password(ex.user, "an-old-one")
    templates.create("fay", "fay-auth", spec_for(ex, password_secret=secret))
    rid = templates.run("fay", "fay-auth")
    assert jobs.wait(rid, timeout=120).state.type == StateType.FAILED
    lines = wait_for_log(rid, "ERROR at GET_LATEST_CL")
    assert any("Password invalid" in l and "Check the Perforce password or ticket stored" in l for l in lines)
    templates.delete("fay", "fay-auth")
