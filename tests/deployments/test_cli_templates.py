"""``p4integ templates/schedules/credentials`` from the command line."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prefect.client.schemas.objects import StateType

from deployments import jobs
from flows.p4.example import make_example
from tests.cli import p4integ

pytestmark = pytest.mark.usefixtures("local_worker")



def test_template_lifecycle_from_the_command_line(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"p4port": ex.port, "p4user": ex.user, "client": ex.client, "branch": ex.branch}))
    made = p4integ("templates", "create", "gina-rel", "--spec-file", str(spec), "--as", "gina")
    assert made.returncode == 0 and "created private template gina-rel" in made.stdout, made.stderr
    assert "gina-rel" in p4integ("templates", "list", "--as", "gina").stdout
    assert "gina-rel" not in p4integ("templates", "list", "--as", "hank").stdout
    refused = p4integ("templates", "delete", "gina-rel", "--as", "hank")
    assert refused.returncode == 2 and "no template named 'gina-rel'" in refused.stderr
    bad = p4integ("schedules", "add", "gina-rel", "--cron", "0 25 * * *", "--as", "gina")
    assert bad.returncode == 2 and "cron: '0 25 * * *' (UTC) is not valid" in bad.stderr
    ok = p4integ("schedules", "add", "gina-rel", "--cron", "nightly at 02:00", "--timezone", "Europe/Paris",
                 "--as", "gina")
    assert ok.returncode == 0 and "0 2 * * * (Europe/Paris)" in ok.stdout
    listed = p4integ("schedules", "list", "gina-rel", "--as", "gina").stdout
    assert "enabled" in listed and "02:00" in listed
    sid = listed.split()[0]
    assert p4integ("schedules", "disable", "gina-rel", sid, "--as", "gina").returncode == 0
    assert "disabled" in p4integ("schedules", "list", "gina-rel", "--as", "gina").stdout
    ran = p4integ("templates", "run", "gina-rel", "--trial", "--as", "gina")
    run_id = re.search(r"flow run (\S+)", ran.stdout).group(1)  # type: ignore[union-attr]
    assert jobs.wait(run_id, timeout=120).state.type == StateType.COMPLETED
    assert p4integ("templates", "delete", "gina-rel", "--as", "gina").returncode == 0


def test_credentials_set_reads_stdin_and_never_echoes() -> None:
    out = p4integ("credentials", "set", "ivan", stdin="Ivan-Pw-9\n")
    assert out.returncode == 0 and '"password_secret": "p4-password-ivan"' in out.stdout
    assert "Ivan-Pw-9" not in out.stdout + out.stderr
    from prefect.blocks.system import Secret

    assert Secret.load("p4-password-ivan").get() == "Ivan-Pw-9"


def test_templates_create_and_run_ask_the_server_first(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"p4port": ex.port, "p4user": ex.user, "client": "no-such-ws", "branch": "main"}))
    made = p4integ("templates", "create", "jon-rel", "--spec-file", str(spec), "--as", "jon")
    assert made.returncode == 2
    assert "client: workspace 'no-such-ws' does not exist" in made.stderr, made.stderr
    assert "branch: branch spec 'main' does not exist" in made.stderr
    assert "jon-rel" not in p4integ("templates", "list", "--as", "jon").stdout
    spec.write_text(json.dumps({"p4port": ex.port, "p4user": ex.user, "client": ex.client, "branch": ex.branch}))
    assert p4integ("templates", "create", "jon-rel", "--spec-file", str(spec), "--as", "jon").returncode == 0
    ran = p4integ("templates", "run", "jon-rel", "--changelist", "999", "--as", "jon")
    assert ran.returncode == 2 and "changelist: 999 does not exist" in ran.stderr, ran.stderr
    assert "flow run" not in ran.stdout
    assert p4integ("templates", "delete", "jon-rel", "--as", "jon").returncode == 0


def test_schedules_add_refuses_an_impossible_date_from_the_command_line(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"p4port": ex.port, "p4user": ex.user, "client": ex.client, "branch": ex.branch}))
    assert p4integ("templates", "create", "kim-rel", "--spec-file", str(spec), "--as", "kim").returncode == 0
    bad = p4integ("schedules", "add", "kim-rel", "--cron", "0 0 30 2 *", "--as", "kim")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, bad.stderr  # one line, no traceback
    assert "cron: '0 0 30 2 *' never fires" in bad.stderr
    listed = p4integ("schedules", "list", "kim-rel", "--as", "kim")
    assert listed.returncode == 0 and listed.stdout.strip() == ""
    assert p4integ("templates", "delete", "kim-rel", "--as", "kim").returncode == 0
