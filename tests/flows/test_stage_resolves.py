"""Resolve stages called directly (no Prefect) on the sandbox server: they act on the job's
own pending change only, and treat action resolves as decisions for a person."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from flows import stages as S
from flows.p4.example import Example, make_example
from flows.p4.session import P4Session
from flows.spec import FileChoice, JobSpec


@pytest.fixture()
def example(tmp_path: Path) -> Example:
    return make_example(tmp_path / "ex")


def _job(ex: Example, session: P4Session, lines: list[str], **spec: str) -> S.Job:
    fields = {"source": "//depot/main/src/...", "target": "//depot/rel/src/...", **spec}
    return S.Job(spec=JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client, **fields),
                 session=session, log=lines.append)


@contextmanager
def _after_pass_1(ex: Example, *, rename: bool = True) -> Iterator[tuple[P4Session, S.Job, list[str], S.ResolveSummary]]:
    """The example with action resolves waiting (tests.flows.helpers.add_action_changes), taken
    by a job through RESOLVE_PASS_1: (session, job, log lines, pass 1's summary)."""
    from .helpers import add_action_changes

    add_action_changes(ex, rename=rename)
    lines: list[str] = []
    with P4Session(ex.port, ex.user, ex.client, cwd=ex.workspace) as s:
        job = _job(ex, s, lines)
        S.get_latest_cl(job)
        S.sync(job)
        S.integrate(job)
        yield s, job, lines, S.resolve_pass_1(job)


def test_a_job_resolves_and_submits_its_change_only(example: Example) -> None:
    lines: list[str] = []
    logo = os.path.join(example.workspace, "assets", "logo.bin")
    with P4Session(example.port, example.user, example.client, cwd=example.workspace) as s:
        job = _job(example, s, lines)
        S.get_latest_cl(job)
        S.sync(job)
        # A person's own work in the same workspace: logo.bin integrated, its resolve waiting
        # (changed on main only: a resolve of the whole workspace would copy it).
        person = s.create_change("my own integration of the logo")
        s.integrate(change=person, source="//depot/main/assets/logo.bin", target="//depot/rel/assets/logo.bin")
        before = Path(logo).read_bytes()
        S.integrate(job)
        S.resolve_pass_1(job)
        conflicts = S.resolve_check(job)
        assert [(c.depot_file, c.kind) for c in conflicts] == [("//depot/rel/src/config.ini", "content")]
        assert conflicts[0].resolve_command.endswith(f"resolve -c {job.change} {conflicts[0].local_path}")
        choices = [FileChoice(path="//depot/rel/src/config.ini", choice="theirs")]
        assert S.check_choices(choices, conflicts) == []
        assert S.check_choices([FileChoice(path="//depot/rel/assets/logo.bin", choice="theirs")], conflicts) == [
            "files: '//depot/rel/assets/logo.bin' is not a file waiting for a resolve "
            "(waiting: //depot/rel/src/config.ini)"]
        S.apply_choices(job, choices)
        assert S.resolve_check(job) == []
        S.shelve(job)
        push = S.p4push(job)
        assert sorted(f.depot_file for f in s.describe(push.submitted or 0).files) == [
            "//depot/rel/src/app.py", "//depot/rel/src/config.ini"]
        # The person's change is as they left it: opened, still waiting for its resolve.
        assert [o.depot_file for o in s.opened(person)] == ["//depot/rel/assets/logo.bin"]
        assert [p.local_path for p in s.pending_resolves(change=person)] == [logo]
        assert Path(logo).read_bytes() == before
    assert any(l.startswith(f"resolve -am -c {job.change}:") for l in lines)


def test_action_resolves_wait_for_a_person_with_both_sides(example: Example) -> None:
    config = os.path.join(example.workspace, "src", "config.ini")
    with _after_pass_1(example) as (s, job, lines, summary):
        # The rename was made on main only: taken, and said so. Both sides retyped config.ini: left.
        assert [a.split(" (")[1] for a in summary.actions_accepted] == ["move: copy from //depot/main/src/application.py)"]
        assert summary.actions_left == [f"{config} (filetype)"]
        assert any(l.startswith("took action resolve(s) where only one side changed:") for l in lines)
        conflicts = S.resolve_check(job)
        assert sorted((c.depot_file, c.kind) for c in conflicts) == [
            ("//depot/rel/src/config.ini", "content"), ("//depot/rel/src/config.ini", "filetype")]
        filetype = next(c for c in conflicts if c.kind == "filetype")
        assert (filetype.theirs_action, filetype.yours_action) == ("(text+x)", "(text+w)")
        assert filetype.theirs == filetype.yours == filetype.merged == ""
        # Merged/edited do not apply to an action resolve; a choice without its kind names the one waiting.
        refused = S.check_choices([FileChoice.model_construct(path=filetype.depot_file, choice="merged",
                                                              kind="filetype", text=None)], conflicts)
        assert refused == ["files: the filetype resolve of //depot/rel/src/config.ini takes theirs or yours, "
                           "not 'merged'"]
        assert S.check_choices([FileChoice(path=filetype.depot_file, choice="theirs", kind="move")], conflicts) == [
            "files: //depot/rel/src/config.ini has no move resolve waiting, only content, filetype; give that kind "
            "with the choice (an action resolve takes theirs or yours)"]
        # Nothing was decided by reading them: both are still waiting.
        assert {p.resolve_type for p in s.pending_resolves(change=job.change)} == {"content", "filetype"}
        choices = [FileChoice(path=filetype.depot_file, choice="theirs", kind="filetype"),
                   FileChoice(path=filetype.depot_file, choice="yours")]
        assert S.check_choices(choices, conflicts) == []
        done = S.apply_choices(job, choices)
        assert done == {"//depot/rel/src/config.ini": "ignored",
                        "//depot/rel/src/config.ini (filetype)": "resolved filetype from //depot/main/src/config.ini#2,#3"}
        assert S.resolve_check(job) == []
        S.shelve(job)
        push = S.p4push(job)
        files = {f.depot_file: (f.action, f.type) for f in s.describe(push.submitted or 0).files}
    assert files["//depot/rel/src/config.ini"] == ("integrate", "text+x")
    assert files["//depot/rel/src/application.py"][0] == "move/add"
    assert files["//depot/rel/src/app.py"][0] == "move/delete"
    assert "version = 2.0.1" in Path(config).read_text()


def test_a_file_a_person_partly_resolved_stays_opened_when_the_job_ends_unsubmitted(example: Example) -> None:
    config = os.path.join(example.workspace, "src", "config.ini")
    with _after_pass_1(example, rename=False) as (s, job, _, _):
        # The person decides config.ini's content; its filetype resolve is still waiting when the job
        # ends (a timeout, a cancel, a failed build). Helix will not shelve it, and it must not be reverted.
        S.apply_choices(job, [FileChoice(path="//depot/rel/src/config.ini", choice="theirs")])
        decided = Path(config).read_text()
        report = S.cleanup(job, keep_work=True)
        assert report.left_opened == ["//depot/rel/src/config.ini"] and not report.change_deleted
        assert f"stay opened in change {job.change}" in report.sentence()
        assert f"'p4 -c {example.client} resolve -c {job.change}'" in report.sentence()
        assert [o.depot_file for o in s.opened(job.change)] == ["//depot/rel/src/config.ini"]
        assert Path(config).read_text() == decided == s.print_file("//depot/main/src/config.ini")
        assert [p.resolve_type for p in s.pending_resolves(change=job.change)] == ["filetype"]
        shelf = {f.depot_file for f in s.describe(job.change, shelved=True).files}
        assert "//depot/rel/src/config.ini" not in shelf and report.kept_files == len(shelf) > 0
