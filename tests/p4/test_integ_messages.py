"""integrate's reply identified message by message: outcomes, refusals, and what is not understood."""
from __future__ import annotations

from pathlib import Path

import pytest
from P4 import P4MessageProxy

from flows.p4.example import AUTHOR_CLIENT, USER, Example, make_example
from flows.p4.integ_messages import MESSAGES, accepting_option, identify_info, identify_message
from flows.p4.records import IntegrateResult, RefusedFile
from flows.p4.sandbox.messages import render
from flows.p4.session import P4Session, _integrate_result, make_p4
from flows.spec import JobSpec
from flows.stages import integrate_problems

ARGS = {"depotFile": "//depot/rel/a b.txt", "clientFile": "//ws/rel/a b.txt", "toFile": "//depot/rel/a b.txt",
        "argc": "//depot/rel/...", "action": "integrate", "fromFile": "//depot/main/a b.txt", "fromRev": "#2,#3",
        "flag": "-Dt", "badAction": "delete", "movedFrom": "//depot/main/old.txt", "moveFile": "//depot/rel/m.txt",
        "user": "bob", "client": "bob_ws"}


def add_baseless_pair(example: Example, name: str = "docs/notes.txt") -> None:
    """The same file added on main and on rel independently: no integration history
    (the same text on both, so a baseless merge of it merges by itself)."""
    root = Path(example.workspace).parent / AUTHOR_CLIENT
    p4 = make_p4(example.port)
    p4.port, p4.user, p4.client, p4.cwd = example.port, USER, AUTHOR_CLIENT, str(root)
    p4.connect()
    try:
        for side in ("main", "rel"):
            path = root / side / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("release notes, kept by hand on each line\n")
            p4.run_add(str(path))
        p4.run_submit("-d", "notes on both lines, unrelated")
    finally:
        p4.disconnect()


@pytest.mark.parametrize("m", MESSAGES, ids=lambda m: m.name)
def test_every_known_message_is_recognised_from_its_rendered_text(m) -> None:
    text = render(m.fmt, ARGS)
    said = identify_info(text)
    assert said.message is not None and said.message.fmt == m.fmt, text
    assert said.file == next(ARGS[k] for k in ("depotFile", "clientFile", "toFile", "argc") if f"%{k}%" in m.fmt)


def test_a_warning_is_recognised_by_its_message_id_and_severity() -> None:
    xopen = next(m for m in MESSAGES if m.name == "MsgDm::IntegXOpenedWarn")
    text = render(xopen.fmt, ARGS)
    warning = P4MessageProxy(severity=2, generic=0, msgid=xopen.msgid, msg_dict={"depotFile": ARGS["depotFile"]},
                             msg_str=text)
    said = identify_message(warning)
    assert said.message is xopen and said.file == ARGS["depotFile"]
    other = P4MessageProxy(severity=3, generic=0, msgid=xopen.msgid, msg_dict={}, msg_str=text)
    assert identify_message(other).message is None  # same id, other severity: not this message


def test_the_option_that_accepts_each_refusal() -> None:
    def option(text: str) -> str | None:
        return accepting_option(identify_info(text))
    assert option("//depot/rel/a - can't integrate from //depot/main/a#1 without -i flag") == "-i"
    assert option("//depot/rel/a - can't delete from //depot/main/a#2 without -d or -Ds flag") == "-Ds"
    assert option("//depot/rel/a - can't branch from //depot/main/a#2 without -d or -Dt flag") == "-Dt"
    assert option("//depot/rel/a - can't integrate (already opened for delete)") is None


def test_nothing_to_integrate_only_when_perforce_says_so() -> None:
    already = identify_info("//depot/rel/... - all revision(s) already integrated.")
    assert _integrate_result({}, [], [already], []).already_integrated
    assert not _integrate_result({}, [], [], []).already_integrated  # silence is not "nothing to do"
    baseless = identify_info("//depot/rel/a - can't integrate from //depot/main/a#1 without -i flag")
    mixed = _integrate_result({}, [], [already, baseless], [])
    assert not mixed.already_integrated and [r.option for r in mixed.refused] == ["-i"]
    odd = _integrate_result({"integrate": 1}, [], [identify_info("//depot/rel/a - something new")], [])
    assert odd.unknown == ["//depot/rel/a - something new"] and odd.refused == []


def test_problems_name_file_reason_and_option() -> None:
    refused = RefusedFile(depot_file="//depot/rel/a.txt", message="MsgDm::IntegBadBase", option="-i",
                          reason="//depot/rel/a.txt - can't integrate from //depot/main/a.txt#1 without -i flag")
    text = integrate_problems(IntegrateResult(by_action={"branch": 2}, refused=[refused]), [])
    assert "//depot/rel/a.txt: '//depot/rel/a.txt - can't integrate from //depot/main/a.txt#1 without -i flag'" in text
    assert "add '-i' to integrate_options" in text and "nothing was submitted" in text
    assert "although integrate_options has '-i'" in integrate_problems(IntegrateResult(refused=[refused]), ["-i"])
    ds = refused.model_copy(update={"option": "-Ds", "message": "MsgDm::IntegBadAncestor"})
    assert "although integrate_options has '-Ds'" in integrate_problems(IntegrateResult(refused=[ds]), ["-d"])
    assert "said what the job does not understand" in integrate_problems(IntegrateResult(unknown=["huh"]), [])
    assert "opened no files" in integrate_problems(IntegrateResult(), [])
    assert integrate_problems(IntegrateResult(already_integrated=True), []) == ""


def test_session_integrate_returns_refused_files_and_passes_options(tmp_path: Path) -> None:
    example = make_example(tmp_path / "ex")
    add_baseless_pair(example)
    with P4Session(example.port, example.user, example.client, cwd=example.workspace) as s:
        s.sync(f"//{example.client}/...")
        refused = s.integrate(change=s.create_change("no -i"), branch=example.branch)
        assert [(r.depot_file, r.message, r.option) for r in refused.refused] == [
            ("//depot/rel/docs/notes.txt", "MsgDm::IntegBadBase", "-i")]
        assert refused.total == 3 and not refused.unknown  # the other files were opened
        s.revert()
        accepted = s.integrate(change=s.create_change("with -i"), branch=example.branch, extra=["-i"])
        assert accepted.refused == [] and "//depot/rel/docs/notes.txt" in {f.depot_file for f in accepted.files}


@pytest.mark.parametrize("options,message", [
    (["-x"], "integrate_options: '-x' is not one of Perforce's integrate options a job may choose "
             "(-i, -d, -Ds, -Dt, -Di, -Rb, -Rd, -Rs); remove it"),
    (["-i", "-Ds", "-i"], "integrate_options: -i given twice; give each option once"),
    ("-i", "integrate_options: give a list of options, e.g. [\"-i\"], not '-i'"),
])
def test_spec_refuses_options_perforce_integrate_does_not_take_here(options: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        JobSpec(p4port="sandbox:/tmp/x", p4user="u", client="c", branch="b", integrate_options=options)
    assert message in str(info.value)
    assert JobSpec(p4port="sandbox:/tmp/x", p4user="u", client="c", branch="b",
                   integrate_options=["-i", "-d", "-Rs"]).integrate_options == ["-i", "-d", "-Rs"]
