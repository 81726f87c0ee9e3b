"""A job whose integration brings a filetype change made on both sides and a rename made
in the source only, through the real worker: the rename is taken by pass 1 and said so;
the filetype waits, listed apart from the file's content conflict, takes a choice for
each, and a person's own pending change in the workspace is left alone."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from prefect.client.schemas.objects import StateType

from deployments import jobs
from flows.p4.example import make_example
from flows.p4.session import P4Session
from flows.spec import FileChoice, JobSpec

from .helpers import PAUSED_OR_FINAL, add_action_changes, logs, wait_for_log

pytestmark = pytest.mark.usefixtures("local_worker")

CONFIG = "//depot/rel/src/config.ini"


def test_action_resolves_wait_for_theirs_or_yours_and_the_persons_change_is_untouched(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex")
    add_action_changes(ex)
    logo = os.path.join(ex.workspace, "assets", "logo.bin")
    with P4Session(ex.port, ex.user, ex.client, cwd=ex.workspace) as s:
        s.sync(f"//{ex.client}/...")
        person = s.create_change("my own integration of the logo")
        s.integrate(change=person, source="//depot/main/assets/logo.bin", target="//depot/rel/assets/logo.bin")
    before = Path(logo).read_bytes()

    run_id = jobs.submit(JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client,
                                 source="//depot/main/src/...", target="//depot/rel/src/..."))
    run = jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120)
    assert run.state.type == StateType.PAUSED, logs(run_id)
    conflicts = {c["kind"]: c for c in jobs.conflicts(run_id)}
    assert sorted(conflicts) == ["content", "filetype"]  # the rename is not among them
    filetype = conflicts["filetype"]
    assert filetype["depot_file"] == conflicts["content"]["depot_file"] == CONFIG
    assert (filetype["theirs_action"], filetype["yours_action"]) == ("(text+x)", "(text+w)")
    assert filetype["theirs"] == filetype["yours"] == filetype["base"] == ""
    with pytest.raises(ValueError, match="filetype resolve of //depot/rel/src/config.ini takes 'theirs' or 'yours'"):
        FileChoice(path=CONFIG, choice="merged", kind="filetype")

    jobs.resume(run_id, "apply", [FileChoice(path=CONFIG, choice="theirs", kind="filetype"),
                                  FileChoice(path=CONFIG, choice="yours")])
    run = jobs.wait(run_id, timeout=120)
    assert run.state.type == StateType.COMPLETED, logs(run_id)
    lines = wait_for_log(run_id, "DONE:")
    assert any("took action resolve(s) where only one side changed:" in l and
               "(move: copy from //depot/main/src/application.py)" in l for l in lines), lines
    with P4Session(ex.port, ex.user, ex.client, cwd=ex.workspace) as s:
        head = s.run("fstat", CONFIG)[0]
        assert head["headType"] == "text+x" and head["headAction"] == "integrate"
        text = s.print_file(CONFIG)
        assert "version = 2.0.1" in (text if isinstance(text, str) else (text or b"").decode()).splitlines()
        moved = {r["depotFile"]: r["headAction"] for r in s.run("fstat", "//depot/rel/src/...")}
        assert moved["//depot/rel/src/application.py"] == "move/add"
        assert moved["//depot/rel/src/app.py"] == "move/delete"
        # The person's change: still there, still holding logo.bin with its resolve waiting.
        assert [o.depot_file for o in s.opened()] == ["//depot/rel/assets/logo.bin"]
        assert [o.depot_file for o in s.opened(person)] == ["//depot/rel/assets/logo.bin"]
        assert [p.local_path for p in s.pending_resolves(change=person)] == [logo]
    assert Path(logo).read_bytes() == before
