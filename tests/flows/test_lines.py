"""Integration lines: each source change integrated and submitted on its own, in order; a
conflict holds the line at its change until a person resolves; nothing is integrated twice."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from prefect.client.schemas.objects import StateType

from deployments import jobs, lines, processes
from deployments.notifications import set_notifications
from flows.lines import LineSpec
from flows.p4.example import AUTHOR_CLIENT, Example, make_example
from flows.p4.sandbox import P4
from flows.p4.session import P4Session
from flows.runs import runs_tagged
from flows.spec import FileChoice
from flows.vocabulary import line_change_tag, line_tag
from tests import sinks

from .helpers import head_text, spec_for, until, wait_for_log

pytestmark = pytest.mark.usefixtures("local_worker")

README = "//depot/rel/README.md"


def _edit(ex: Example, depot_path: str, old: str, new: str, description: str) -> int:
    """One submitted change by the author: ``old`` replaced by ``new`` in one file."""
    root = Path(ex.depot_dir).parent / "workspaces" / AUTHOR_CLIENT
    p4 = P4(port=ex.port, user="alice", client=AUTHOR_CLIENT, cwd=str(root)).connect()
    p4.exception_level = 1  # "file(s) up-to-date" is no failure here
    try:
        p4.run_sync()
        p4.run_edit(depot_path)
        local = root / depot_path.removeprefix("//depot/")
        local.write_text(local.read_text().replace(old, new))
        out = p4.run_submit("-d", description)
    finally:
        p4.disconnect()
    return int(next(r["submittedChange"] for r in out if isinstance(r, dict) and "submittedChange" in r))


def _line_runs(name: str, change: int) -> list:
    return runs_tagged(line_change_tag(name, change))


def _ended(name: str, change: int, state: StateType) -> bool:
    found = _line_runs(name, change)
    return bool(found) and found[-1].state is not None and found[-1].state.type == state


def _submitted_to_rel(ex: Example, after: int) -> list[tuple[int, str]]:
    with P4Session(ex.port, ex.user, ex.client) as s:
        return sorted((c.change, c.description) for c in s.changes("-l", "-s", "submitted", "//depot/rel/...")
                      if c.change > after)


def test_a_line_moves_change_by_change_and_a_conflict_holds_the_changes_behind_it(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)  # rel lacks one change of main: "main: feature for 2.1"
    rel_edit = _edit(ex, "//depot/rel/README.md", "widget product.", "widget product, LTS.", "rel: README for LTS")
    first = _edit(ex, "//depot/main/src/app.py", "return 3", "return 3  # faster", "app: faster step 3")
    second = _edit(ex, "//depot/main/README.md", "widget product.", "widget product, beta.",
                   "README: beta\n\nFor the plugin preview.")
    third = _edit(ex, "//depot/main/src/app.py", "return 5", "return 5  # tuned", "app: tuned step 5")
    with P4Session(ex.port, ex.user, ex.client) as s:
        feature = s.interchanges(branch=ex.branch)[0].change
    name = f"line-{uuid.uuid4().hex[:8]}"
    lines.create(ex.user, LineSpec(name=name, job=spec_for(ex)), operator=True)

    set_notifications("alice", email="alice@example.com")  # the author of the change that will conflict
    try:
        with sinks.smtp_sink(int(os.environ["P4INTEG_SMTP_PORT"])) as mails:
            for _ in range(2):  # two triggers at once, as a duplicate event or a click beside the automation
                lines.run(ex.user, name)
            until(lambda: _ended(name, second, StateType.PAUSED), 240, "the job for the conflicting change to wait")
            told = until(lambda: [m for m in mails.messages if "To: alice@example.com" in m], 240,
                         "the conflicting change's author to be told")
    finally:
        set_notifications("alice")
    assert len(told) == 1 and "needs you" in told[0] and f"line {name} @{second}:" in told[0]
    assert _ended(name, feature, StateType.COMPLETED) and _ended(name, first, StateType.COMPLETED)
    # The line holds at the conflict, whatever starts it again: one job for that change, none after it.
    for _ in range(2):
        jobs.wait(lines.run(ex.user, name), timeout=120)
    assert len(_line_runs(name, second)) == 1 and _line_runs(name, third) == []

    waiting = _line_runs(name, second)[0]
    jobs.resume(waiting.id, "apply", [FileChoice(path=README, choice="theirs")])
    until(lambda: _ended(name, third, StateType.COMPLETED), 240, "the change behind the conflict to land")

    landed = _submitted_to_rel(ex, rel_edit)
    assert [d.splitlines()[0] for _, d in landed] == [
        f"[{name}] @{feature} by release-bot: main: feature for 2.1",
        f"[{name}] @{first} by alice: app: faster step 3",
        f"[{name}] @{second} by alice: README: beta",
        f"[{name}] @{third} by alice: app: tuned step 5"]
    assert "For the plugin preview." in landed[2][1]
    assert all(len(_line_runs(name, c)) == 1 for c in (feature, first, second, third))
    with P4Session(ex.port, ex.user, ex.client) as s:
        assert s.interchanges(branch=ex.branch) == []
    assert "widget product, beta." in head_text(ex, README)
    lines.remove(ex.user, name)


def _set_key(ex: Example, name: str, value: int) -> None:
    """What a CI system does when a change passed its checks: ``p4 key ci-good-main 12345``."""
    p4 = P4(port=ex.port, user="ci", client=AUTHOR_CLIENT).connect()
    try:
        p4.run_key(name, str(value))
    finally:
        p4.disconnect()


def test_a_gate_holds_the_changes_past_the_last_good_one(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    first = _edit(ex, "//depot/main/src/app.py", "return 3", "return 3  # faster", "app: faster step 3")
    second = _edit(ex, "//depot/main/src/app.py", "return 5", "return 5  # tuned", "app: tuned step 5")
    with P4Session(ex.port, ex.user, ex.client) as s:
        feature = s.interchanges(branch=ex.branch)[0].change
    name = f"gated-{uuid.uuid4().hex[:8]}"
    lines.create(ex.user, LineSpec(name=name, job=spec_for(ex), gate="ci-good-main"), operator=True)

    step = lines.run(ex.user, name)  # nothing marked good yet: the key is 0
    wait_for_log(step, "gated at change 0 (key ci-good-main): 3 change(s) wait for the check")
    assert runs_tagged(line_tag(name)) == []

    _set_key(ex, "ci-good-main", first)
    lines.run(ex.user, name)
    until(lambda: _ended(name, first, StateType.COMPLETED), 240, "the changes up to the good mark to land")
    wait_for_log(lines.run(ex.user, name), f"gated at change {first} (key ci-good-main): 1 change(s) wait")
    assert _ended(name, feature, StateType.COMPLETED) and _line_runs(name, second) == []

    _set_key(ex, "ci-good-main", second)
    lines.run(ex.user, name)
    until(lambda: _ended(name, second, StateType.COMPLETED), 240, "the change marked good later to land")
    lines.remove(ex.user, name)


def test_a_skipped_change_is_recorded_with_who_skipped_it_and_the_line_goes_on(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    _edit(ex, "//depot/rel/README.md", "widget product.", "widget product, LTS.", "rel: README for LTS")
    second = _edit(ex, "//depot/main/README.md", "widget product.", "widget product, beta.", "README: beta")
    third = _edit(ex, "//depot/main/src/app.py", "return 5", "return 5  # tuned", "app: tuned step 5")
    # What authors can ask in a description: out of every line, or only into lines named so.
    kept_out = _edit(ex, "//depot/main/src/app.py", "return 6", "return 6  # main only", "app: step 6\n\n#p4integ skip")
    elsewhere = _edit(ex, "//depot/main/src/app.py", "return 7", "return 7  # dev", "app: step 7 #p4integ only dev-*")
    ours = _edit(ex, "//depot/main/src/app.py", "return 2", "return 2  # ours", "app: step 2\n#p4integ only skips-*")
    name = f"skips-{uuid.uuid4().hex[:8]}"
    lines.create(ex.user, LineSpec(name=name, job=spec_for(ex)), visibility="global", operator=True)
    lines.run(ex.user, name)
    until(lambda: _ended(name, second, StateType.PAUSED), 240, "the job for the conflicting change to wait")

    lines.skip("rita", name, second)  # instead of resolving: the waiting job is cancelled, the line goes on
    until(lambda: _ended(name, ours, StateType.COMPLETED), 240, "the changes after the skipped one to land")
    assert _ended(name, third, StateType.COMPLETED)
    assert _line_runs(name, kept_out) == [] and _line_runs(name, elsewhere) == []
    assert _ended(name, second, StateType.CANCELLED)
    with P4Session(ex.port, ex.user, ex.client) as s:
        assert s.keys(f"p4integ-skip-{name}-*") == {f"p4integ-skip-{name}-{second}": "rita"}
        # Perforce still lists the skipped change as not integrated; the line does not.
        assert [c.change for c in s.interchanges(branch=ex.branch)] == [second, kept_out, elsewhere]
        assert s.opened() == []
    assert "beta" not in head_text(ex, README)
    app = head_text(ex, "//depot/rel/src/app.py")
    assert "return 5  # tuned" in app and "return 2  # ours" in app
    assert "# main only" not in app and "# dev" not in app
    step = lines.run(ex.user, name)
    wait_for_log(step, "up to date")
    with pytest.raises(lines.LineError, match=f"change: {second} is not waiting on line {name}"):
        lines.skip("rita", name, second)
    lines.remove(ex.user, name)


def test_a_server_restart_while_a_line_flows_integrates_nothing_twice(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    with P4Session(ex.port, ex.user, ex.client) as s:
        before = max(c.change for c in s.changes("-s", "submitted", "-m", "1"))
        feature = s.interchanges(branch=ex.branch)[0].change
    changes = [feature] + [_edit(ex, "//depot/main/src/app.py", f"return {k}", f"return {k}  # r", f"app: step {k}")
                           for k in (2, 3)]
    name = f"restart-{uuid.uuid4().hex[:8]}"
    lines.create(ex.user, LineSpec(name=name, job=spec_for(ex)), operator=True)
    processes.start_dispatcher()  # the background process: its sweep steps a line whose job's end was lost
    try:
        lines.run(ex.user, name)
        until(lambda: _line_runs(name, changes[1]), 240, "the line to be under way")
        processes.stop("server")  # events in flight are lost with it
        processes.start_server()
        until(lambda: _ended(name, changes[-1], StateType.COMPLETED), 480, "every change to land after the restart")
    finally:
        processes.stop("dispatcher")
    assert [len(_line_runs(name, c)) for c in changes] == [1] * len(changes)
    landed = _submitted_to_rel(ex, before)
    assert [d.split(":")[0] for _, d in landed] == [f"[{name}] @{c} by {'release-bot' if c == feature else 'alice'}"
                                                   for c in changes]
    lines.remove(ex.user, name)
