"""``p4integ lines apply``: lines kept in a YAML file beside prefect.yaml, checked whole first."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from deployments import lines
from flows.p4.example import make_example
from tests.cli import p4integ

pytestmark = pytest.mark.usefixtures("local_worker")


def _file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "lines.yaml"
    path.write_text(body)
    return path


def test_a_lines_file_creates_updates_and_is_refused_whole_with_the_field_named(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    name, other = f"file-{uuid.uuid4().hex[:6]}", f"file-{uuid.uuid4().hex[:6]}"
    job = f"    job:\n      p4port: {ex.port}\n      p4user: {ex.user}\n      client: {ex.client}\n      branch: {ex.branch}\n"
    first = _file(tmp_path, f"lines:\n  - name: {name}\n    mode: per-change\n{job}")
    made = p4integ("lines", "apply", str(first), "--as", "gina")
    assert made.returncode == 0 and f"{name}: created" in made.stdout, made.stderr
    again = p4integ("lines", "apply", str(first), "--as", "gina")
    assert again.returncode == 0 and f"{name}: unchanged" in again.stdout, again.stderr
    gated = _file(tmp_path, f"lines:\n  - name: {name}\n    gate: ci-good-rel\n{job}")
    assert f"{name}: updated" in p4integ("lines", "apply", str(gated), "--as", "gina").stdout
    assert lines.get("gina", name).spec.gate == "ci-good-rel"

    # A second entry with a bad workspace name: refused before anything is made or changed.
    bad = _file(tmp_path, f"lines:\n  - name: {other}\n{job}  - name: {name}\n    gate: 'not a key'\n{job}")
    refused = p4integ("lines", "apply", str(bad), "--as", "gina")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert f"lines[1] ({name}): gate: 'not a key' is not a Perforce key name" in refused.stderr
    assert other not in p4integ("lines", "list", "--as", "gina").stdout
    assert lines.get("gina", name).spec.gate == "ci-good-rel"
    # Valid in form, refused by the service (no such host): still nothing made.
    ghost = _file(tmp_path, f"lines:\n  - name: {other}\n{job}  - name: {other}-2\n{job}      host: ghost-host\n")
    refused = p4integ("lines", "apply", str(ghost), "--as", "gina")
    assert refused.returncode == 2 and "ghost-host" in refused.stderr, refused.stderr
    assert other not in p4integ("lines", "list", "--as", "gina").stdout
    assert p4integ("lines", "remove", name, "--as", "gina").returncode == 0


def _moved_by(line: lines.Line) -> tuple[list[str], list[str]]:
    """The line's deployment's schedules (cron lines) and its automations (what else moves it)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        crons = [s.schedule.cron for s in client.read_deployment_schedules(line.deployment_id) if s.active]
        automations = [a.name for a in lines._automations(client, line.spec.name) if a.enabled]
    return crons, automations


def test_a_batched_line_can_move_on_a_schedule_instead_of_each_submit(tmp_path: Path) -> None:
    from deployments.watcher import Watcher
    from tests.flows.test_lines import _edit

    ex = make_example(tmp_path / "ex", conflict=False)
    name = f"nightly-{uuid.uuid4().hex[:6]}"
    spec = tmp_path / "job.json"
    spec.write_text(f'{{"p4port": "{ex.port}", "p4user": "{ex.user}", "client": "{ex.client}", '
                    f'"branch": "{ex.branch}"}}')

    per_change = p4integ("lines", "create", name, "--spec-file", str(spec), "--cron", "0 2 * * *", "--as", "gina")
    assert per_change.returncode == 2 and "cron: a per-change line moves on each submit" in per_change.stderr
    never = p4integ("lines", "create", name, "--spec-file", str(spec), "--mode", "batched", "--cron", "0 2 30 2 *",
                    "--as", "gina")
    assert never.returncode == 2 and "cron: '0 2 30 2 *'" in never.stderr, never.stderr
    assert name not in p4integ("lines", "list", "--as", "gina").stdout  # nothing made by either

    made = p4integ("lines", "create", name, "--spec-file", str(spec), "--mode", "batched", "--cron", "0 2 * * *",
                   "--as", "gina")
    assert made.returncode == 0 and "moves on '0 2 * * *' (UTC)" in made.stdout, made.stderr
    line = lines.get("gina", name)
    assert _moved_by(line) == (["0 2 * * *"], [])  # its schedule alone moves it
    watcher = Watcher()
    watcher.poll([line])
    _edit(ex, "//depot/main/src/app.py", "return 2", "return 2  # nightly", "app: for the nightly batch")
    assert watcher.poll([line]) == []  # no submit event for a scheduled line

    # The same line from a file without the cron: on each submit again, its schedule gone.
    body = (f"lines:\n  - name: {name}\n    mode: batched\n    job:\n      p4port: {ex.port}\n      p4user: {ex.user}\n"
            f"      client: {ex.client}\n      branch: {ex.branch}\n")
    assert f"{name}: updated" in p4integ("lines", "apply", str(_file(tmp_path, body)), "--as", "gina").stdout
    crons, automations = _moved_by(lines.get("gina", name))
    assert crons == [] and len(automations) == 2, (crons, automations)
    assert p4integ("lines", "remove", name, "--as", "gina").returncode == 0
