"""Scenario suite: the P4 interface driven the way P4Python users drive it.

Every test runs against the sandbox server and, where ``p4d`` is installed, against a
real Helix server (see ``conftest.py``), with one set of assertions for both. The
assertions are on what Helix documents: the tagged records commands return, the
texts of errors and warnings, the contents and modes of workspace files.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import re
import stat
import subprocess
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from P4 import P4Exception, Resolver

from flows.p4.pathnames import escape
from flows.p4.sandbox import init_depot

from .conftest import Helix, p4_class, p4d_port

MAIN, REL = "//depot/main/...", "//depot/rel/..."
BASE = "".join(f"line {i}\n" for i in range(1, 11))


def with_lines(text: str, **changes: str) -> str:
    """``text`` with line N (``l5="..."``) replaced."""
    lines = text.splitlines(keepends=True)
    for key, new in changes.items():
        lines[int(key[1:]) - 1] = new + "\n"
    return "".join(lines)


THEIRS_CLEAN = with_lines(BASE, l2="line 2 changed on main")
YOURS_CLEAN = with_lines(BASE, l9="line 9 changed on rel")
MERGED_CLEAN = with_lines(BASE, l2="line 2 changed on main", l9="line 9 changed on rel")
THEIRS_CONFLICT = with_lines(BASE, l5="line 5 as main has it")
YOURS_CONFLICT = with_lines(BASE, l5="line 5 as rel has it")


# --- helpers -------------------------------------------------------------------------

def put(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        os.chmod(path, 0o644)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def content(path: Path) -> str:
    return path.read_bytes().decode()


def read_only(path: Path) -> bool:
    # Mode bits, not os.access: the suite may run as root, who may write anything.
    return stat.S_IMODE(path.stat().st_mode) & 0o222 == 0


def dicts(result: list[Any]) -> list[dict[str, Any]]:
    return [r for r in result if isinstance(r, dict)]


def strings(result: list[Any]) -> list[str]:
    return [r for r in result if isinstance(r, str)]


def submitted(result: list[Any]) -> int:
    return next(int(r["submittedChange"]) for r in reversed(dicts(result)) if "submittedChange" in r)


def add_and_submit(h: Helix, files: dict[str, str | bytes], desc: str = "add files",
                   opts: tuple[str, ...] = ()) -> int:
    paths = [str(put(h.root / rel, data)) for rel, data in files.items()]
    h.p4.run_add(*opts, *paths)
    return submitted(h.p4.run_submit("-d", desc))


def edit_and_submit(h: Helix, files: dict[str, str | bytes], desc: str = "edit files") -> int:
    h.p4.run_edit(*[str(h.root / rel) for rel in files])
    for rel, data in files.items():
        put(h.root / rel, data)
    return submitted(h.p4.run_submit("-d", desc))


def branch_main_to_rel(h: Helix, files: dict[str, str | bytes] | None = None) -> None:
    add_and_submit(h, files or {"main/a.txt": BASE}, "base on main")
    h.p4.run_integrate(MAIN, REL)
    h.p4.run_submit("-d", "branch main to rel")


def diverge(h: Helix, theirs: str | bytes, yours: str | bytes, name: str = "a.txt") -> list[Any]:
    """main and rel both changed since the branch; integrate main -> rel (not resolved)."""
    edit_and_submit(h, {f"main/{name}": theirs}, "work on main")
    edit_and_submit(h, {f"rel/{name}": yours}, "work on rel")
    return h.p4.run_integrate(MAIN, REL)


def fstat(p4: Any, path: str) -> dict[str, Any]:
    [rec] = p4.run_fstat(path)
    return rec


def print_text(p4: Any, path: str) -> str | bytes:
    header, body = p4.run_print(path)
    assert header["depotFile"] == path.split("#")[0].split("@")[0]
    return body


def resolved_line(result: list[Any], how: str) -> str:
    """The resolve summary line, '<target> - <how> <source>' (Helix's ResolvedFile)."""
    pattern = re.compile(rf".*rel/a\.txt - {how} //depot/main/a\.txt(#[0-9,#]+)?")
    lines = [s for s in strings(result) if pattern.fullmatch(s)]
    assert lines, f"no '{how}' line in {strings(result)}"
    return lines[0]


# --- add, submit, branch -------------------------------------------------------------

def test_add_and_submit_records(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    a = put(root / "main/a.txt", BASE)
    b = put(root / "main/sub/b.txt", "bee\n")
    added = dicts(p4.run_add(str(a), str(b)))
    assert [(r["depotFile"], r["action"], r["type"], r["workRev"]) for r in added] == [
        ("//depot/main/a.txt", "add", "text", "1"), ("//depot/main/sub/b.txt", "add", "text", "1")]
    assert fstat(p4, "//depot/main/a.txt")["action"] == "add"

    result = dicts(p4.run_submit("-d", "first files"))
    assert result[0] == {"change": "1", "locked": "2"}
    files = sorted((r for r in result if "depotFile" in r), key=lambda r: r["depotFile"])
    assert files == [{"depotFile": "//depot/main/a.txt", "rev": "1", "action": "add"},
                     {"depotFile": "//depot/main/sub/b.txt", "rev": "1", "action": "add"}]
    assert result[-1] == {"submittedChange": "1"}

    # Submitted files stay in the workspace, read-only (noallwrite), unchanged.
    assert content(a) == BASE and read_only(a) and read_only(b)
    rec = fstat(p4, "//depot/main/a.txt")
    assert (rec["headRev"], rec["haveRev"], rec["headAction"]) == ("1", "1", "add")
    assert "action" not in rec
    [change] = p4.run_changes()
    assert (change["change"], change["status"], change["user"], change["client"], change["desc"]) == \
        ("1", "submitted", "alice", "ws", "first files\n")


def test_integrate_into_new_path_branches_from_none(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/a.txt": BASE, "main/b.txt": "bee\n"})
    recs = dicts(p4.run_integrate(MAIN, REL))
    assert [(r["depotFile"], r["action"], r["fromFile"], r["startFromRev"], r["endFromRev"]) for r in recs] == [
        ("//depot/rel/a.txt", "branch", "//depot/main/a.txt", "none", "1"),
        ("//depot/rel/b.txt", "branch", "//depot/main/b.txt", "none", "1")]
    assert recs[0]["clientFile"] == str(root / "rel" / "a.txt")
    # The branched file is put in the workspace at once.
    assert content(root / "rel/a.txt") == BASE
    assert [r["action"] for r in p4.run_opened()] == ["branch", "branch"]

    result = dicts(p4.run_submit("-d", "branch main to rel"))
    assert sorted((r["depotFile"], r["rev"], r["action"]) for r in result if "depotFile" in r) == [
        ("//depot/rel/a.txt", "1", "branch"), ("//depot/rel/b.txt", "1", "branch")]
    assert read_only(root / "rel/a.txt")
    assert print_text(p4, "//depot/rel/b.txt") == "bee\n"


# --- integrate and resolve -------------------------------------------------------------

def test_edits_on_both_sides_schedule_a_content_merge(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix)
    edit_and_submit(helix, {"main/a.txt": with_lines(BASE, l2="two")}, "main 1")
    edit_and_submit(helix, {"main/a.txt": THEIRS_CLEAN}, "main 2")
    edit_and_submit(helix, {"rel/a.txt": YOURS_CLEAN}, "rel")

    [rec] = dicts(p4.run_integrate(MAIN, REL))
    assert {k: rec[k] for k in ("depotFile", "action", "fromFile", "startFromRev", "endFromRev", "workRev")} == {
        "depotFile": "//depot/rel/a.txt", "action": "integrate", "fromFile": "//depot/main/a.txt",
        "startFromRev": "1", "endFromRev": "3", "workRev": "2"}
    st = fstat(p4, "//depot/rel/a.txt")
    assert (st["action"], st["headRev"], st["haveRev"], st["unresolved"]) == ("integrate", "2", "2", "")
    assert "resolved" not in st

    local = root / "rel" / "a.txt"
    [preview] = dicts(p4.run_resolve("-n"))
    assert {k: preview[k] for k in ("clientFile", "fromFile", "startFromRev", "endFromRev", "resolveType",
                                    "resolveFlag", "contentResolveType")} == {
        "clientFile": str(local), "fromFile": "//depot/main/a.txt", "startFromRev": "1", "endFromRev": "3",
        "resolveType": "content", "resolveFlag": "c", "contentResolveType": "3waytext"}
    # -n only lists: nothing resolved, the workspace file is still yours.
    assert "unresolved" in fstat(p4, "//depot/rel/a.txt")
    assert content(local) == YOURS_CLEAN


def test_resolve_am_merges_clean_changes(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix)
    diverge(helix, THEIRS_CLEAN, YOURS_CLEAN)
    result = p4.run_resolve("-am")
    assert "Diff chunks: 1 yours + 1 theirs + 0 both + 0 conflicting" in strings(result)
    resolved_line(result, "merge from")
    assert content(root / "rel/a.txt") == MERGED_CLEAN
    st = fstat(p4, "//depot/rel/a.txt")
    assert st["resolved"] == "" and "unresolved" not in st
    change = submitted(p4.run_submit("-d", "merge main"))
    assert print_text(p4, f"//depot/rel/a.txt@{change}") == MERGED_CLEAN


def test_resolve_am_skips_a_conflict(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix)
    diverge(helix, THEIRS_CONFLICT, YOURS_CONFLICT)
    result = p4.run_resolve("-am")
    assert "Diff chunks: 0 yours + 0 theirs + 0 both + 1 conflicting" in strings(result)
    assert any(s.endswith("rel/a.txt - resolve skipped.") for s in strings(result)), strings(result)
    assert content(root / "rel/a.txt") == YOURS_CONFLICT
    assert "unresolved" in fstat(p4, "//depot/rel/a.txt")


def test_resolve_at_takes_theirs(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix)
    diverge(helix, THEIRS_CONFLICT, YOURS_CONFLICT)
    result = p4.run_resolve("-at")
    resolved_line(result, "copy from")
    assert content(root / "rel/a.txt") == THEIRS_CONFLICT
    submitted(p4.run_submit("-d", "take main"))
    assert print_text(p4, "//depot/rel/a.txt") == THEIRS_CONFLICT


def test_resolve_ay_keeps_yours(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix)
    diverge(helix, THEIRS_CONFLICT, YOURS_CONFLICT)
    result = p4.run_resolve("-ay")
    resolved_line(result, "ignored")
    assert content(root / "rel/a.txt") == YOURS_CONFLICT
    assert "resolved" in fstat(p4, "//depot/rel/a.txt")


def test_resolve_af_writes_conflict_markers(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix)
    diverge(helix, THEIRS_CONFLICT, YOURS_CONFLICT)
    p4.run_resolve("-af")
    lines = content(root / "rel/a.txt").splitlines()
    markers = [l for l in lines if l.startswith((">>>>", "====", "<<<<"))]
    assert len(markers) == 4
    assert markers[0] == ">>>> ORIGINAL //depot/main/a.txt#1"
    assert markers[1] == "==== THEIRS //depot/main/a.txt#2"
    assert markers[2].startswith("==== YOURS ") and markers[2].endswith("rel/a.txt")
    assert markers[3] == "<<<<"
    between = lines[lines.index(markers[0]) + 1: lines.index(markers[3])]
    assert between == ["line 5", markers[1], "line 5 as main has it", markers[2], "line 5 as rel has it"]
    assert lines[:4] == ["line 1", "line 2", "line 3", "line 4"] and lines[-1] == "line 10"
    assert "resolved" in fstat(p4, "//depot/rel/a.txt")


class RecordingResolver(Resolver):
    """Writes its own result for a conflict and accepts it ('ae'); takes P4's
    suggestion (the merge hint) otherwise. Records what P4Python handed it."""

    HAND_MERGED = with_lines(BASE, l5="line 5 settled by hand")

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, str]] = []

    def resolve(self, merge_data: Any) -> str:
        self.seen.append({
            "their_name": merge_data.their_name,
            "yours": Path(merge_data.your_path).read_text(), "theirs": Path(merge_data.their_path).read_text(),
            "base": Path(merge_data.base_path).read_text(), "result": Path(merge_data.result_path).read_text(),
            "hint": merge_data.merge_hint})
        if merge_data.merge_hint != "e":
            return merge_data.merge_hint
        Path(merge_data.result_path).write_text(self.HAND_MERGED)
        return "ae"


class EditingResolver(Resolver):
    """Always answers with its own text: neither theirs nor yours."""

    def resolve(self, merge_data: Any) -> str:
        Path(merge_data.result_path).write_text("edited by the resolver\n")
        return "ae"


def test_resolver_object_gets_merge_data_and_accepts_an_edit(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix, {"main/a.txt": BASE, "main/b.txt": BASE})
    edit_and_submit(helix, {"main/a.txt": THEIRS_CONFLICT, "main/b.txt": THEIRS_CLEAN}, "work on main")
    edit_and_submit(helix, {"rel/a.txt": YOURS_CONFLICT, "rel/b.txt": YOURS_CLEAN}, "work on rel")
    p4.run_integrate(MAIN, REL)
    resolver = RecordingResolver()
    result = p4.run_resolve(resolver=resolver)
    conflict, clean = sorted(resolver.seen, key=lambda s: s["their_name"])
    assert "//depot/main/a.txt" in conflict["their_name"] and "//depot/main/b.txt" in clean["their_name"]
    assert (conflict["yours"], conflict["theirs"], conflict["base"], conflict["hint"]) == (
        YOURS_CONFLICT, THEIRS_CONFLICT, BASE, "e")
    assert ">>>> ORIGINAL" in conflict["result"]  # the result file starts as the merge with markers
    assert (clean["yours"], clean["theirs"], clean["base"], clean["hint"]) == (
        YOURS_CLEAN, THEIRS_CLEAN, BASE, "am")
    assert clean["result"] == MERGED_CLEAN
    resolved_line(result, "edit from")
    assert any(s.endswith("rel/b.txt - merge from //depot/main/b.txt") or
               re.fullmatch(r".*rel/b\.txt - merge from //depot/main/b\.txt#[0-9,#]+", s) for s in strings(result))
    assert content(root / "rel/a.txt") == RecordingResolver.HAND_MERGED
    assert content(root / "rel/b.txt") == MERGED_CLEAN
    submitted(p4.run_submit("-d", "hand merge"))
    assert print_text(p4, "//depot/rel/a.txt") == RecordingResolver.HAND_MERGED
    assert print_text(p4, "//depot/rel/b.txt") == MERGED_CLEAN


def test_pending_resolve_blocks_submit_until_resolved(helix: Helix) -> None:
    p4 = helix.p4
    branch_main_to_rel(helix)
    diverge(helix, THEIRS_CONFLICT, YOURS_CONFLICT)
    with pytest.raises(P4Exception) as exc:
        p4.run_submit("-d", "too soon")
    [pending] = p4.run_changes("-s", "pending")
    n = int(pending["change"])
    # One two-line error, as P4Python's p4test.py testEvilTwin expects of a real server.
    assert exc.value.errors == ["Merges still pending -- use 'resolve' to merge files.\n"
                                f"Submit failed -- fix problems above then use 'p4 submit -c {n}'."]
    # The failed submit left the file in the numbered change it made.
    assert [(r["depotFile"], r["change"]) for r in p4.run_opened()] == [("//depot/rel/a.txt", str(n))]
    assert print_text(p4, "//depot/rel/a.txt") == YOURS_CONFLICT  # nothing was committed

    p4.run_resolve("-at")
    assert submitted(p4.run_submit("-c", n)) == n
    assert p4.run_changes("-s", "pending") == []
    assert print_text(p4, "//depot/rel/a.txt") == THEIRS_CONFLICT


def test_reintegrate_warns_all_revisions_already_integrated(helix: Helix) -> None:
    p4 = helix.p4
    branch_main_to_rel(helix)
    diverge(helix, THEIRS_CLEAN, YOURS_CLEAN)
    p4.run_resolve("-am")
    p4.run_submit("-d", "merged")
    warning = "//depot/rel/... - all revision(s) already integrated."

    with pytest.raises(P4Exception) as exc:  # exception_level 2: warnings raise
        p4.run_integrate(MAIN, REL)
    assert exc.value.warnings == [warning]
    assert str(exc.value) == warning

    p4.exception_level = 1  # errors only: the warning is just reported
    assert p4.run_integrate(MAIN, REL) == []
    assert p4.warnings == [warning] and p4.errors == []
    with p4.at_exception_level(p4.RAISE_NONE):
        assert p4.run_integrate(MAIN, REL) == []
        assert p4.warnings == [warning]


def test_filelog_shows_integration_history_both_ways(helix: Helix) -> None:
    p4 = helix.p4
    branch_main_to_rel(helix)                                    # rel#1 branch from main#1
    diverge(helix, THEIRS_CLEAN, YOURS_CLEAN)                    # main#2, rel#2
    p4.run_resolve("-am")
    p4.run_submit("-d", "merge")                                 # rel#3 merge from main#2
    edit_and_submit(helix, {"main/a.txt": with_lines(THEIRS_CLEAN, l3="three")})  # main#3
    p4.run_integrate(MAIN, REL)
    p4.run_resolve("-at")
    p4.run_submit("-d", "copy")                                  # rel#4 copy from main#3
    edit_and_submit(helix, {"main/a.txt": with_lines(THEIRS_CLEAN, l3="three", l4="four")})  # main#4
    p4.run_integrate(MAIN, REL)
    p4.run_resolve(resolver=EditingResolver())
    p4.run_submit("-d", "edit")                                  # rel#5 edit from main#4

    def history(path: str) -> dict[int, list[tuple[str, str, int, int]]]:
        [df] = p4.run_filelog(path)
        assert df.depotFile == path
        return {r.rev: [(i.how, i.file, i.srev, i.erev) for i in r.integrations] for r in df.revisions}

    main_a, rel_a = "//depot/main/a.txt", "//depot/rel/a.txt"
    assert history(rel_a) == {
        5: [("edit from", main_a, 3, 4)],
        4: [("copy from", main_a, 2, 3)],
        3: [("merge from", main_a, 1, 2)],
        2: [],
        1: [("branch from", main_a, 0, 1)],
    }
    assert history(main_a) == {
        4: [("edit into", rel_a, 4, 5)],
        3: [("copy into", rel_a, 3, 4)],
        2: [("merge into", rel_a, 2, 3)],
        1: [("branch into", rel_a, 0, 1)],
    }
    [df] = p4.run_filelog(rel_a)
    assert [r.action for r in df.revisions] == ["integrate", "integrate", "integrate", "edit", "branch"]


def test_delete_on_main_propagates_to_rel(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix, {"main/a.txt": BASE, "main/b.txt": "bee\n"})
    p4.run_delete(str(root / "main/b.txt"))
    assert not (root / "main/b.txt").exists()
    submitted(p4.run_submit("-d", "drop b on main"))

    [rec] = dicts(p4.run_integrate(MAIN, REL))
    assert (rec["depotFile"], rec["action"], rec["fromFile"]) == ("//depot/rel/b.txt", "delete", "//depot/main/b.txt")
    assert rec["startFromRev"] == "1" and rec["endFromRev"] == "2"
    change = submitted(p4.run_submit("-d", "propagate delete"))
    st = fstat(p4, "//depot/rel/b.txt")
    assert (st["headAction"], st["headRev"], st["headChange"]) == ("delete", "2", str(change))
    assert "haveRev" not in st
    assert not (root / "rel/b.txt").exists()
    assert (root / "rel/a.txt").exists()


def test_binary_files_conflict_instead_of_merging(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    base, theirs, yours = b"\x00\x01IMG base\xff", b"\x00\x01IMG main\xff", b"\x00\x01IMG rel\xff"
    put(root / "main/img.bin", base)
    [added] = dicts(p4.run_add(str(root / "main/img.bin")))
    assert added["type"] == "binary"
    p4.run_submit("-d", "binary base")
    p4.run_integrate(MAIN, REL)
    p4.run_submit("-d", "branch")
    diverge(helix, theirs, yours, name="img.bin")

    [preview] = dicts(p4.run_resolve("-n"))
    assert (preview["resolveType"], preview["contentResolveType"]) == ("content", "3wayraw")
    result = p4.run_resolve("-am")
    assert any(s.endswith("img.bin - resolve skipped.") for s in strings(result)), strings(result)
    assert (root / "rel/img.bin").read_bytes() == yours
    assert "unresolved" in fstat(p4, "//depot/rel/img.bin")

    p4.run_resolve("-at")
    assert (root / "rel/img.bin").read_bytes() == theirs
    submitted(p4.run_submit("-d", "take main's image"))
    assert print_text(p4, "//depot/rel/img.bin") == theirs


def test_exclusive_file_cannot_be_opened_twice(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/lock.txt": "only one at a time\n"}, "locked file", ("-t", "text+l"))
    add_and_submit(helix, {"main/other.txt": "anyone\n"}, "plain file")
    assert fstat(p4, "//depot/main/lock.txt")["headType"] == "text+l"
    bob = helix.connect_as("bob", "bob_ws")
    bob.run_sync()

    [opened] = dicts(p4.run_edit(str(root / "main/lock.txt")))
    assert opened["action"] == "edit"
    with pytest.raises(P4Exception) as exc:
        bob.run_edit("//depot/main/lock.txt")
    assert "//depot/main/lock.txt - can't edit exclusive file already opened" in str(exc.value)
    assert [(r["client"], r["action"]) for r in p4.run_opened("-a")] == [("ws", "edit")]

    p4.run_revert(str(root / "main/lock.txt"))
    [bobs] = dicts(bob.run_edit("//depot/main/lock.txt"))
    assert bobs["action"] == "edit"
    assert [(r["client"], r["user"], r["clientFile"]) for r in p4.run_opened("-a")] == [
        ("bob_ws", "bob", "//bob_ws/main/lock.txt")]
    # A refusal is per file: the other files of the same command are still opened.
    with pytest.raises(P4Exception) as exc:
        p4.run_edit(str(root / "main/..."))
    assert "//depot/main/lock.txt - can't edit exclusive file already opened" in str(exc.value)
    assert [(r["depotFile"], r["action"]) for r in p4.run_opened()] == [("//depot/main/other.txt", "edit")]
    assert not read_only(root / "main/other.txt") and read_only(root / "main/lock.txt")


def test_shelve_revert_unshelve_round_trip(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/a.txt": BASE})
    local = root / "main/a.txt"
    p4.run_edit(str(local))
    put(local, THEIRS_CLEAN)
    spec = p4.fetch_change()
    spec["Description"] = "work in progress\n"
    [created] = p4.save_change(spec)
    m = re.fullmatch(r"Change (\d+) created with 1 open file\(s\)\.", created)
    assert m, created
    n = m.group(1)

    shelved = p4.run_shelve("-c", n)
    assert dicts(shelved)[0] == {"change": n}
    assert [(r["depotFile"], r["action"]) for r in dicts(shelved)[1:]] == [("//depot/main/a.txt", "edit")]
    assert [c["change"] for c in p4.run_changes("-s", "shelved")] == [n]
    assert print_text(p4, f"//depot/main/a.txt@={n}") == THEIRS_CLEAN

    p4.run_revert(str(local))
    assert content(local) == BASE and read_only(local)
    assert "action" not in fstat(p4, "//depot/main/a.txt")

    [un] = dicts(p4.run_unshelve("-s", n))
    assert (un["depotFile"], un["action"]) == ("//depot/main/a.txt", "edit")
    assert content(local) == THEIRS_CLEAN and not read_only(local)
    assert [(r["action"], r["change"]) for r in p4.run_opened()] == [("edit", "default")]

    assert f"Shelved change {n} deleted." in strings(p4.run_shelve("-d", "-c", n))
    assert p4.run_changes("-s", "shelved") == []
    assert p4.run_change("-d", n) == [f"Change {n} deleted."]
    assert p4.run_changes("-s", "pending") == []


def test_interchanges_lists_unintegrated_changes_newest_first(helix: Helix) -> None:
    p4 = helix.p4
    branch_main_to_rel(helix)
    c3 = edit_and_submit(helix, {"main/a.txt": THEIRS_CLEAN}, "first fix on main")
    c4 = edit_and_submit(helix, {"main/a.txt": with_lines(THEIRS_CLEAN, l3="three")}, "second fix on main")
    todo = p4.run_interchanges(MAIN, REL)
    assert [(c["change"], c["status"], c["user"]) for c in todo] == [(str(c4), "submitted", "alice"),
                                                                     (str(c3), "submitted", "alice")]
    assert todo[0]["desc"] == "second fix on main\n"

    p4.run_integrate(MAIN, REL)
    p4.run_resolve("-am")
    p4.run_submit("-d", "catch up")
    with pytest.raises(P4Exception) as exc:
        p4.run_interchanges(MAIN, REL)
    assert [w.lower().endswith("all revision(s) already integrated.") for w in exc.value.warnings] == [True]
    with p4.at_exception_level(p4.RAISE_ERRORS):
        assert p4.run_interchanges(MAIN, REL) == []


# --- changes ---------------------------------------------------------------------------

def test_changes_filters_limits_and_ranges(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    long_desc = "A description that is longer than thirty-one characters\nand has a second line\n"
    c1 = add_and_submit(helix, {"main/a.txt": BASE}, long_desc)
    c2 = edit_and_submit(helix, {"main/a.txt": THEIRS_CLEAN}, "a#2")
    c3 = add_and_submit(helix, {"main/b.txt": "bee\n"}, "b#1")
    c4 = edit_and_submit(helix, {"main/a.txt": MERGED_CLEAN}, "a#3")
    assert [c1, c2, c3, c4] == [1, 2, 3, 4]
    # A pending change, and a pending change with a shelf.
    p4.run_edit(str(root / "main/b.txt"))
    spec = p4.fetch_change()
    spec["Description"] = "pending work\n"
    c5 = int(p4.save_change(spec)[0].split()[1])
    p4.run_shelve("-c", c5)

    def numbers(*args: str) -> list[int]:
        return [int(c["change"]) for c in p4.run_changes(*args)]

    assert numbers() == [5, 4, 3, 2, 1]
    assert numbers("-m", "2") == [5, 4]
    assert numbers("-s", "submitted") == [4, 3, 2, 1]
    assert numbers("-s", "submitted", "-m", "2") == [4, 3]
    assert numbers("-s", "pending") == [5]
    assert numbers("-s", "shelved") == [5]
    assert numbers("-s", "submitted", "//depot/main/a.txt") == [4, 2, 1]
    assert numbers("-s", "submitted", "//depot/main/...@2,@3") == [3, 2]
    assert numbers("-s", "submitted", "//depot/main/a.txt#2") == [2, 1]
    assert numbers("-s", "submitted", "//depot/main/b.txt") == [3]

    [short] = p4.run_changes("-s", "submitted", "//depot/main/a.txt#1")
    [full] = p4.run_changes("-l", "-s", "submitted", "//depot/main/a.txt#1")
    assert full["desc"] == long_desc
    assert short["desc"] == long_desc[:31]
    assert [c["status"] for c in p4.run_changes("-m", "1")] == ["pending"]


# --- specs -------------------------------------------------------------------------------

def test_client_spec_round_trip(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    spec = p4.fetch_client()
    assert (spec["Client"], spec["Owner"], spec["Root"], spec["View"]) == ("ws", "alice", str(root),
                                                                       ["//depot/... //ws/..."])
    spec["Description"] = "Round trip\nover two lines\n"
    spec["View"] = ["//depot/main/... //ws/main/...", "-//depot/main/tmp/... //ws/main/tmp/..."]
    assert p4.save_client(spec) == ["Client ws saved."]
    again = p4.fetch_client()
    assert again["Description"] == "Round trip\nover two lines\n"
    assert again["View"] == spec["View"]
    assert again["Root"] == str(root)
    assert p4.save_client(again) == ["Client ws not changed."]
    # The new view is in force: rel is outside it now.
    put(root / "rel/x.txt", "x\n")
    put(root / "main/tmp/t.txt", "t\n")
    with p4.at_exception_level(p4.RAISE_ERRORS):
        assert p4.run_add("//ws/main/tmp/t.txt") == []
        assert p4.warnings == ["//ws/main/tmp/t.txt - file(s) not in client view."]


def test_change_spec_creates_numbered_change_from_default(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/a.txt": BASE, "main/b.txt": "bee\n"})
    p4.run_edit(str(root / "main/a.txt"), str(root / "main/b.txt"))
    spec = p4.fetch_change()
    assert spec["Change"] == "new" and spec["Status"] == "new"
    assert [f.split()[0] for f in spec["Files"]] == ["//depot/main/a.txt", "//depot/main/b.txt"]
    spec["Description"] = "two edits in a numbered change\n"
    spec["Files"] = ["//depot/main/a.txt"]
    [out] = p4.save_change(spec)
    n = int(re.fullmatch(r"Change (\d+) created with 1 open file\(s\)\.", out).group(1))
    assert {r["depotFile"]: r["change"] for r in p4.run_opened()} == {
        "//depot/main/a.txt": str(n), "//depot/main/b.txt": "default"}
    fetched = p4.fetch_change(n)
    assert (fetched["Change"], fetched["Status"], fetched["Description"]) == (
        str(n), "pending", "two edits in a numbered change\n")
    assert [f.split()[0] for f in fetched["Files"]] == ["//depot/main/a.txt"]
    put(root / "main/a.txt", THEIRS_CLEAN)
    result = p4.run_submit("-c", n)
    assert submitted(result) == n
    assert [r["depotFile"] for r in dicts(result) if "depotFile" in r] == ["//depot/main/a.txt"]
    assert [r["change"] for r in p4.run_opened()] == ["default"]


def test_branch_spec_drives_integrate_both_ways(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/a.txt": BASE})
    spec = p4.fetch_branch("main2rel")
    assert spec["Branch"] == "main2rel" and spec["View"] == ["//depot/... //depot/..."]
    with pytest.raises(P4Exception) as exc:
        p4.save_branch(spec)
    assert "You cannot use the default branch view; it is just a sample." in "\n".join(exc.value.errors)
    spec["View"] = ["//depot/main/... //depot/rel/..."]
    assert p4.save_branch(spec) == ["Branch main2rel saved."]
    assert p4.fetch_branch("main2rel")["View"] == ["//depot/main/... //depot/rel/..."]

    [rec] = dicts(p4.run_integrate("-b", "main2rel"))
    assert (rec["depotFile"], rec["action"], rec["startFromRev"]) == ("//depot/rel/a.txt", "branch", "none")
    p4.run_submit("-d", "branch by spec")
    edit_and_submit(helix, {"rel/a.txt": YOURS_CLEAN}, "fix on rel")

    [back] = dicts(p4.run_integrate("-b", "main2rel", "-r"))
    assert (back["depotFile"], back["fromFile"], back["action"]) == (
        "//depot/main/a.txt", "//depot/rel/a.txt", "integrate")
    assert (back["startFromRev"], back["endFromRev"]) == ("1", "2")
    p4.run_resolve("-am")
    p4.run_submit("-d", "bring the fix back")
    assert content(root / "main/a.txt") == YOURS_CLEAN
    with pytest.raises(P4Exception) as exc:
        p4.run_integrate("-b", "main2rel")
    assert exc.value.warnings[0].endswith("all revision(s) already integrated.")


# --- workspace: sync, have, opened, fstat, print ----------------------------------------------

def test_sync_to_change_none_and_back(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    a, b = root / "main/a.txt", root / "main/b.txt"
    c1 = add_and_submit(helix, {"main/a.txt": BASE})
    edit_and_submit(helix, {"main/a.txt": THEIRS_CLEAN})
    add_and_submit(helix, {"main/b.txt": "bee\n"})

    synced = dicts(p4.run_sync(f"//depot/main/...@{c1}"))
    assert sorted((r["depotFile"], r["action"], r["rev"]) for r in synced) == [
        ("//depot/main/a.txt", "updated", "1"), ("//depot/main/b.txt", "deleted", "1")]
    assert content(a) == BASE and read_only(a) and not b.exists()
    assert [(h["depotFile"], h["haveRev"]) for h in p4.run_have()] == [("//depot/main/a.txt", "1")]

    p4.run_sync("//depot/main/...#none")
    assert not a.exists() and not b.exists()
    with p4.at_exception_level(p4.RAISE_ERRORS):
        assert p4.run_have() == []
        assert [w.lower().endswith("file(s) not on client.") for w in p4.warnings] == [True]

    added = dicts(p4.run_sync())
    assert sorted((r["depotFile"], r["action"]) for r in added) == [
        ("//depot/main/a.txt", "added"), ("//depot/main/b.txt", "added")]
    assert content(a) == THEIRS_CLEAN and content(b) == "bee\n" and read_only(b)

    with pytest.raises(P4Exception) as exc:
        p4.run_sync()
    assert [w.lower().endswith("file(s) up-to-date.") for w in exc.value.warnings] == [True]
    with p4.at_exception_level(p4.RAISE_ERRORS):
        assert p4.run_sync("//depot/main/...") == []
        assert p4.warnings == ["//depot/main/... - file(s) up-to-date."]

    # Damage the workspace copy behind Helix's back; sync -f puts the have revision back.
    put(a, "scribbled\n")
    [refreshed] = dicts(p4.run_sync("-f", str(a)))
    assert (refreshed["depotFile"], refreshed["rev"], refreshed["action"]) == ("//depot/main/a.txt", "2", "refreshed")
    assert content(a) == THEIRS_CLEAN and read_only(a)


def test_have_opened_and_fstat_describe_the_workspace(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/a.txt": BASE, "main/b.txt": "bee\n"})
    edit_and_submit(helix, {"main/a.txt": THEIRS_CLEAN})

    have = {h["depotFile"]: h for h in p4.run_have()}
    assert {d: (h["haveRev"], h["clientFile"], h["path"]) for d, h in have.items()} == {
        "//depot/main/a.txt": ("2", "//ws/main/a.txt", str(root / "main/a.txt")),
        "//depot/main/b.txt": ("1", "//ws/main/b.txt", str(root / "main/b.txt"))}

    p4.run_edit(str(root / "main/a.txt"))
    put(root / "main/c.txt", "new\n")
    p4.run_add(str(root / "main/c.txt"))
    opened = {r["depotFile"]: r for r in p4.run_opened()}
    assert {d: (r["action"], r["change"], r["type"], r["user"], r["client"], r["clientFile"])
            for d, r in opened.items()} == {
        "//depot/main/a.txt": ("edit", "default", "text", "alice", "ws", "//ws/main/a.txt"),
        "//depot/main/c.txt": ("add", "default", "text", "alice", "ws", "//ws/main/c.txt")}
    assert (opened["//depot/main/a.txt"]["rev"], opened["//depot/main/a.txt"]["haveRev"]) == ("2", "2")
    assert opened["//depot/main/c.txt"]["haveRev"] == "none"
    assert not read_only(root / "main/a.txt")

    a = fstat(p4, "//depot/main/a.txt")
    assert (a["headRev"], a["haveRev"], a["action"], a["headAction"], a["change"]) == ("2", "2", "edit", "edit", "default")
    assert a["clientFile"] == str(root / "main/a.txt") and a["isMapped"] == ""
    c = fstat(p4, "//depot/main/c.txt")
    assert c["action"] == "add" and "headRev" not in c and "haveRev" not in c
    b = fstat(p4, str(root / "main/b.txt"))  # local syntax names the same file
    assert (b["depotFile"], b["headRev"], b["haveRev"]) == ("//depot/main/b.txt", "1", "1")
    assert "action" not in b and "unresolved" not in b and "resolved" not in b

    with p4.at_exception_level(p4.RAISE_ERRORS):
        assert p4.run_fstat("//depot/nowhere/...") == []
        assert p4.warnings == ["//depot/nowhere/... - no such file(s)."]


def test_print_returns_text_as_str_and_binary_as_bytes(helix: Helix) -> None:
    p4 = helix.p4
    add_and_submit(helix, {"main/a.txt": BASE, "main/img.bin": b"\x00\x01\x02bin\xff"})
    edit_and_submit(helix, {"main/a.txt": THEIRS_CLEAN})
    header, body = p4.run_print("//depot/main/a.txt")
    assert (header["depotFile"], header["rev"], header["type"]) == ("//depot/main/a.txt", "2", "text")
    assert isinstance(body, str) and body == THEIRS_CLEAN
    assert print_text(p4, "//depot/main/a.txt#1") == BASE
    header, body = p4.run_print("//depot/main/img.bin")
    assert header["type"] == "binary"
    assert isinstance(body, bytes) and body == b"\x00\x01\x02bin\xff"


# --- login ---------------------------------------------------------------------------------

def test_login_with_password_ticket_and_status(helix: Helix) -> None:
    carol = helix.connect_as("carol", "carol_ws")
    helix.set_password("carol", "Corr3ct-horse")

    with pytest.raises(P4Exception) as exc:
        carol.run_changes("-m", "1")
    assert exc.value.errors == ["Perforce password (P4PASSWD) invalid or unset."]

    with pytest.raises(P4Exception) as exc:
        carol.run_login(password="Wr0ng-horse")
    assert exc.value.errors == ["Password invalid."]

    carol.password = "Corr3ct-horse"
    carol.run_login()
    [status] = carol.run_login("-s")
    assert set(status) == {"User", "TicketExpiration"}
    assert status["User"] == "carol" and int(status["TicketExpiration"]) > 0
    carol.password = ""  # the ticket file now authenticates carol
    assert carol.run_changes("-m", "1") == []

    result = carol.run_login("-p", password="Corr3ct-horse")
    ticket = strings(result)[-1].strip()
    assert ticket and ticket != "Corr3ct-horse"
    elsewhere = helix.new_p4("carol", "carol_ws", ticket_file=str(helix.tmp / "no-tickets-here"))
    with pytest.raises(P4Exception):
        elsewhere.run_changes("-m", "1")
    elsewhere.password = ticket
    assert elsewhere.run_changes("-m", "1") == []


# --- two processes at once --------------------------------------------------------------------

def _submit_worker(kind: str, port: str, client: str, root: str, count: int, barrier: Any, out: str) -> None:
    """Run in a separate OS process: add and submit ``count`` files, one change each."""
    try:
        p4 = p4_class(kind)()
        p4.port, p4.user, p4.client = port, client, client
        p4.exception_level = 2
        p4.connect()
        barrier.wait(timeout=60)
        changes = []
        for i in range(count):
            path = put(Path(root) / "par" / client / f"f{i:03d}.txt", f"{client} {i}\n")
            p4.run_add(str(path))
            changes.append(submitted(p4.run_submit("-d", f"{client} file {i}")))
        p4.disconnect()
        Path(out).write_text(json.dumps({"changes": changes}))
    except BaseException:
        Path(out).write_text(json.dumps({"error": traceback.format_exc()}))
        raise


def test_two_processes_submit_to_one_depot_at_once(helix: Helix) -> None:
    count = 50
    clients = ["w1", "w2"]
    for name in clients:
        helix.connect_as(name, name)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(clients))
    outs = {name: helix.tmp / f"{name}.json" for name in clients}
    procs = [ctx.Process(target=_submit_worker, args=(helix.kind, helix.port, name, str(helix.tmp / name),
                                                      count, barrier, str(outs[name])))
             for name in clients]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    reports = {name: json.loads(outs[name].read_text()) if outs[name].exists() else {"error": "no report"}
               for name in clients}
    assert [p.exitcode for p in procs] == [0, 0], reports
    assert all("error" not in r for r in reports.values()), reports

    mine = [c for r in reports.values() for c in r["changes"]]
    assert len(mine) == len(set(mine)) == 2 * count
    p4 = helix.p4
    listed = [int(c["change"]) for c in p4.run_changes("-s", "submitted")]
    assert sorted(listed) == sorted(mine) == list(range(1, 2 * count + 1))  # unique and dense
    files = p4.run_files("//depot/par/...")
    assert len(files) == 2 * count
    assert {f["depotFile"] for f in files} == {f"//depot/par/{c}/f{i:03d}.txt" for c in clients for i in range(count)}
    # Each process's changes hold its own file only.
    for name in clients:
        for c in reports[name]["changes"][:3]:
            [d] = p4.run_describe("-s", c)
            assert d["client"] == name and d["depotFile"][0].startswith(f"//depot/par/{name}/")


# --- bad input --------------------------------------------------------------------------------

def test_connect_to_bad_port_raises(helix: Helix) -> None:
    p4 = helix.P4()
    p4.port = helix.bad_port()
    p4.user = "alice"
    with pytest.raises(P4Exception) as exc:
        p4.connect()
    assert str(exc.value).startswith("Connect to server failed; check $P4PORT.")
    assert not p4.connected()


def test_local_path_outside_client_root_is_refused(helix: Helix) -> None:
    p4 = helix.p4
    outside = put(helix.tmp / "elsewhere" / "x.txt", "x\n")
    with pytest.raises(P4Exception) as exc:
        p4.run_add(str(outside))
    assert f"Path '{outside}' is not under client's root '{helix.root}'." in exc.value.errors
    with p4.at_exception_level(p4.RAISE_NONE):
        assert p4.run_opened() == []


def test_depot_path_outside_client_view_is_a_warning(helix: Helix) -> None:
    add_and_submit(helix, {"main/a.txt": BASE, "rel/r.txt": "r\n"})
    bob = helix.connect_as("bob", "bob_ws", view=["//depot/main/... //bob_ws/main/..."])
    [got] = dicts(bob.run_sync())
    assert got["depotFile"] == "//depot/main/a.txt"
    with pytest.raises(P4Exception) as exc:
        bob.run_sync("//depot/rel/...")
    assert exc.value.warnings == ["//depot/rel/... - file(s) not in client view."]
    with bob.at_exception_level(bob.RAISE_ERRORS):
        assert bob.run_edit("//depot/rel/r.txt") == []
        assert bob.warnings == ["//depot/rel/r.txt - file(s) not in client view."]
        assert bob.run_opened() == []


def test_unknown_client_is_an_error(helix: Helix) -> None:
    x = helix.new_p4("alice", "x")
    for run in (x.run_sync, x.run_have):
        with pytest.raises(P4Exception) as exc:
            run()
        assert exc.value.errors == ["Client 'x' unknown - use 'client' command to create it."]


@pytest.mark.parametrize("flaw", ["unknown field", "view outside the client", "relative root"])
def test_malformed_client_spec_is_refused_and_not_saved(helix: Helix, flaw: str) -> None:
    p4 = helix.p4
    spec = p4.fetch_client("bad")
    spec["Root"] = str(helix.tmp / "bad")
    spec["View"] = ["//depot/... //bad/..."]
    if flaw == "unknown field":
        form = p4.format_client(spec) + "\nBogus:\tyes\n"
        expected = "Unknown field name 'Bogus'."
        with pytest.raises(P4Exception) as exc:
            p4.save_client(form)
    else:
        if flaw == "view outside the client":
            spec["View"] = ["//depot/... //elsewhere/..."]
            expected = "Mapping '//elsewhere/...' is not under '//bad/...'."
        else:
            if helix.kind == "p4d":
                pytest.skip("p4d stores Root as given; a relative root fails only when the client uses it")
            spec["Root"] = "relative/dir"
            expected = "Root 'relative/dir' must be an absolute path."
        with pytest.raises(P4Exception) as exc:
            p4.save_client(spec)
    assert any(expected in e for e in exc.value.errors), exc.value.errors
    assert "bad" not in [c["client"] for c in p4.run_clients()]
    assert "Update" not in p4.fetch_client("bad")


def test_unknown_command_is_an_error(helix: Helix) -> None:
    with pytest.raises(P4Exception) as exc:
        helix.p4.run("frobnicate", "//depot/...")
    assert exc.value.errors == ["Unknown command.  Try 'p4 help' for info."]


def test_name_filters_match_whole_names_and_users_are_known_once_they_write(helix: Helix) -> None:
    p4 = helix.p4  # alice saved her client: a command that writes makes the user known
    for name in ("main2rel", "main2rel-hotfix", "Main2Rel"):
        spec = p4.fetch_branch(name)
        spec["View"] = [f"//depot/main/... //depot/{name.lower()}/..."]
        p4.save_branch(spec)
    names = lambda rows: sorted(r["branch"] for r in rows)  # noqa: E731
    assert names(p4.run_branches("-e", "main2rel")) == ["main2rel"]
    assert names(p4.run_branches("-e", "main")) == []
    assert names(p4.run_branches("-e", "main2rel*")) == ["main2rel", "main2rel-hotfix"]
    assert names(p4.run_branches("-e", "main2rel...")) == ["main2rel", "main2rel-hotfix"]
    assert names(p4.run_branches("-E", "MAIN2REL")) == ["Main2Rel", "main2rel"]
    assert [c["client"] for c in p4.run_clients("-e", "ws")] == ["ws"]
    assert [u["User"] for u in p4.run("users", "alice")] == ["alice"]
    ghost = helix.new_p4("ghost")  # has run nothing that writes
    assert ghost.run("users", "ghost", exception_level=1) == []
    assert ghost.warnings == ["ghost - no such user(s)."]


# --- integrate: refused files and options -----------------------------------------------
# Helix refuses a file by an info line (P4Python: output text, and a P4Message in
# p4.messages when no handler is set) or a warning; the other files are still opened.

def said(p4: Any) -> list[tuple[str, int]]:
    """(Helix message name, severity) of each message of the last command, by msgid."""
    from flows.p4.integ_messages import BY_MSGID
    return [(BY_MSGID[m.msgid].name if m.msgid in BY_MSGID else str(m), m.severity) for m in p4.messages]


def opened_files(p4: Any) -> list[tuple[str, str]]:
    return [(r["depotFile"], r["action"]) for r in p4.run_opened(exception_level=1)]


def test_baseless_merge_is_refused_as_an_info_line_until_i(helix: Helix) -> None:
    p4 = helix.p4
    add_and_submit(helix, {"main/a.txt": BASE}, "a on main")
    add_and_submit(helix, {"rel/a.txt": YOURS_CLEAN, "main/new.txt": "new\n"}, "unrelated a on rel")

    result = p4.run_integrate(MAIN, REL)  # exception_level 2: an info does not raise
    assert strings(result) == ["//depot/rel/a.txt - can't integrate from //depot/main/a.txt#1 without -i flag"]
    assert ("MsgDm::IntegBadBase", 1) in said(p4) and p4.warnings == []
    assert [r["depotFile"] for r in dicts(result)] == ["//depot/rel/new.txt"]  # the refusal is per file
    assert opened_files(p4) == [("//depot/rel/new.txt", "branch")]

    [rec] = dicts(p4.run_integrate("-i", MAIN, REL))
    assert (rec["depotFile"], rec["action"], rec["fromFile"]) == (
        "//depot/rel/a.txt", "integrate", "//depot/main/a.txt")
    assert sorted(opened_files(p4)) == [("//depot/rel/a.txt", "integrate"), ("//depot/rel/new.txt", "branch")]


def test_deleting_an_edited_target_needs_ds_or_d(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix, {"main/b.txt": BASE})
    edit_and_submit(helix, {"rel/b.txt": YOURS_CLEAN}, "work on rel")
    p4.run_delete(str(root / "main/b.txt"))
    p4.run_submit("-d", "drop b on main")

    result = p4.run_integrate(MAIN, REL)
    assert strings(result) == ["//depot/rel/b.txt - can't delete from //depot/main/b.txt#2 without -d or -Ds flag"]
    assert said(p4) == [("MsgDm::IntegBadAncestor", 1)] and opened_files(p4) == []
    for flag in ("-Ds", "-d"):
        [rec] = dicts(p4.run_integrate(flag, MAIN, REL))
        assert (rec["depotFile"], rec["action"]) == ("//depot/rel/b.txt", "delete")
        p4.run_revert("//depot/rel/...")


def test_rebranching_onto_a_deleted_target_needs_dt_or_d(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix, {"main/b.txt": BASE})
    p4.run_delete(str(root / "rel/b.txt"))
    p4.run_submit("-d", "drop b on rel")
    edit_and_submit(helix, {"main/b.txt": THEIRS_CLEAN}, "work on main")

    result = p4.run_integrate(MAIN, REL)
    assert strings(result) == ["//depot/rel/b.txt - can't branch from //depot/main/b.txt#2 without -d or -Dt flag"]
    assert said(p4) == [("MsgDm::IntegBadAncestor", 1)] and opened_files(p4) == []
    for flag in ("-Dt", "-d"):
        [rec] = dicts(p4.run_integrate(flag, MAIN, REL))
        assert (rec["depotFile"], rec["action"], rec["endFromRev"]) == ("//depot/rel/b.txt", "branch", "2")
        p4.run_revert("//depot/rel/...")


def test_a_readded_source_counts_from_its_last_add_unless_di(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix, {"main/c.txt": BASE})
    p4.run_delete(str(root / "main/c.txt"))
    p4.run_submit("-d", "drop c on main")
    add_and_submit(helix, {"main/c.txt": THEIRS_CLEAN}, "c again on main")  # main/c.txt#3

    [since_add] = dicts(p4.run_integrate("-n", MAIN, REL))
    assert (since_add["startFromRev"], since_add["endFromRev"]) == ("2", "3")
    [whole] = dicts(p4.run_integrate("-n", "-Di", MAIN, REL))
    assert (whole["startFromRev"], whole["endFromRev"]) == ("1", "3")


def test_exclusive_file_opened_elsewhere_is_refused_with_a_warning(helix: Helix) -> None:
    p4 = helix.p4
    add_and_submit(helix, {"main/lock.txt": "one\n"}, "locked file", ("-t", "text+l"))
    p4.run_integrate(MAIN, REL)
    p4.run_submit("-d", "branch")
    edit_and_submit(helix, {"main/lock.txt": "two\n"}, "work on main")
    bob = helix.connect_as("bob", "bob_ws")
    bob.run_sync()
    bob.run_edit("//depot/rel/lock.txt")

    with pytest.raises(P4Exception) as exc:  # a warning: raises at exception_level 2
        p4.run_integrate(MAIN, REL)
    assert exc.value.warnings == ["//depot/rel/lock.txt - can't integrate exclusive file already opened"]
    assert said(p4) == [("MsgDm::IntegXOpenedWarn", 2)] and opened_files(p4) == []


def test_target_opened_for_another_action_is_refused(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix)
    edit_and_submit(helix, {"main/a.txt": THEIRS_CLEAN}, "work on main")
    p4.run_delete(str(root / "rel/a.txt"))

    result = p4.run_integrate(MAIN, REL)
    assert strings(result) == ["//depot/rel/a.txt - can't integrate (already opened for delete)"]
    assert said(p4) == [("MsgDm::IntegBadAction", 1)]
    assert opened_files(p4) == [("//depot/rel/a.txt", "delete")]


def test_target_outside_the_client_view_and_missing_source_are_warnings(helix: Helix) -> None:
    add_and_submit(helix, {"main/a.txt": BASE}, "a on main")
    carol = helix.connect_as("carol", "carol_ws", view=["//depot/main/... //carol_ws/main/..."])
    carol.exception_level = 1
    assert carol.run_integrate(MAIN, REL) == []
    assert carol.warnings == ["//depot/rel/... - file(s) not in client view."]
    assert said(carol) == [("MsgDm::ExVIEW", 2)]
    assert carol.run_integrate("//depot/nothing/...", REL) == []
    assert carol.warnings == ["//depot/nothing/... - no such file(s)."]
    assert said(carol) == [("MsgDm::ExFILE", 2)]


def test_resolve_scheduling_options_are_accepted(helix: Helix) -> None:
    p4 = helix.p4
    branch_main_to_rel(helix)
    edit_and_submit(helix, {"main/a.txt": THEIRS_CLEAN}, "work on main")
    [rec] = dicts(p4.run_integrate("-Rs", "-Rb", "-Rd", MAIN, REL))
    assert (rec["depotFile"], rec["action"]) == ("//depot/rel/a.txt", "integrate")


# --- action resolves: move, delete, branch, filetype ------------------------------------

class ActionRecorder(Resolver):
    """Records what ``actionResolve`` and ``resolve`` are handed; answers as told per kind."""

    def __init__(self, answers: dict[str, str], content: str = "at") -> None:
        self.answers, self.content = answers, content
        self.actions: list[dict[str, Any]] = []
        self.merges: list[str] = []

    def resolve(self, merge_data: Any) -> str:
        self.merges.append(merge_data.their_name)
        return self.content

    def actionResolve(self, merge_data: Any) -> str:
        self.actions.append({
            "type": merge_data.type, "merge_action": merge_data.merge_action,
            "yours_action": merge_data.yours_action, "their_action": merge_data.their_action,
            "hint": merge_data.merge_hint, "info": dict(merge_data.info)})
        return self.answers[merge_data.info["resolveType"]]


def retype_both_sides(h: Helix) -> None:
    """rel/a.txt becomes text+w, main/a.txt text+x (P4Python p4test.py testResolve's setup)."""
    branch_main_to_rel(h)
    h.p4.run_edit("-t", "+w", str(h.root / "rel/a.txt"))
    h.p4.run_submit("-d", "rel: writable")
    h.p4.run_edit("-t", "+x", str(h.root / "main/a.txt"))
    h.p4.run_submit("-d", "main: executable")


def test_filetype_change_on_both_sides_goes_to_action_resolve(helix: Helix) -> None:
    p4 = helix.p4
    retype_both_sides(helix)
    assert fstat(p4, "//depot/main/a.txt")["headType"] == "text+x"
    p4.run_integrate(MAIN, REL)
    listed = p4.run_resolve("-n")
    assert sorted(r["resolveType"] for r in dicts(listed)) == ["content", "filetype"]
    resolver = ActionRecorder({"filetype": "am"})
    p4.run_resolve(resolver=resolver)
    [seen] = resolver.actions
    assert (seen["type"], seen["merge_action"], seen["yours_action"], seen["their_action"]) == (
        "Filetype resolve", "(text+wx)", "(text+w)", "(text+x)")
    assert seen["info"]["resolveType"] == "filetype"
    assert seen["info"]["fromFile"] == "//depot/main/a.txt"
    assert seen["info"]["clientFile"].endswith(os.path.join("ws", "rel", "a.txt"))
    assert fstat(p4, "//depot/rel/a.txt")["type"] == "text+wx"
    submitted(p4.run_submit("-d", "merge types"))
    assert fstat(p4, "//depot/rel/a.txt")["headType"] == "text+wx"


def test_resolve_am_takes_a_filetype_changed_on_one_side_only(helix: Helix) -> None:
    p4 = helix.p4
    branch_main_to_rel(helix)
    p4.run_edit("-t", "+x", str(helix.root / "main/a.txt"))
    p4.run_submit("-d", "main: executable")
    p4.run_integrate(MAIN, REL)
    assert "filetype" in [r["resolveType"] for r in dicts(p4.run_resolve("-n"))]
    result = p4.run_resolve("-am")
    assert any(re.fullmatch(r".*rel/a\.txt - resolved filetype from //depot/main/a\.txt#?[0-9,#]*", s)
               for s in strings(result)), strings(result)
    assert p4.run("resolve", "-n", exception_level=1) == []
    submitted(p4.run_submit("-d", "take the type"))
    assert fstat(p4, "//depot/rel/a.txt")["headType"] == "text+x"


def test_resolve_am_leaves_a_filetype_changed_on_both_sides(helix: Helix) -> None:
    p4 = helix.p4
    retype_both_sides(helix)
    p4.run_integrate(MAIN, REL)
    p4.run_resolve("-am")
    assert [r["resolveType"] for r in dicts(p4.run_resolve("-n"))] == ["filetype"]
    p4.run("resolve", "-Ac", "-n", exception_level=1)
    assert p4.warnings == ["No file(s) to resolve."]
    p4.run_resolve("-At", "-ay")
    submitted(p4.run_submit("-d", "keep ours"))
    assert fstat(p4, "//depot/rel/a.txt")["headType"] == "text+w"


def move_on_main(h: Helix, new: str = "main/b.txt", text: str = THEIRS_CLEAN) -> list[Any]:
    h.p4.run_edit(str(h.root / "main/a.txt"))
    moved = h.p4.run_move(str(h.root / "main/a.txt"), str(h.root / new))
    put(h.root / new, text)
    submitted(h.p4.run_submit("-d", "rename on main"))
    return moved


def test_move_opens_a_pair_that_submits_and_links_its_history(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/a.txt": BASE})
    p4.run_edit(str(root / "main/a.txt"))
    [moved] = dicts(p4.run_move(str(root / "main/a.txt"), "//depot/main/b.txt"))
    assert (moved["depotFile"], moved["action"], moved["fromFile"]) == (
        "//depot/main/b.txt", "move/add", "//depot/main/a.txt")
    assert not (root / "main/a.txt").exists() and content(root / "main/b.txt") == BASE
    opened = {r["depotFile"]: r for r in p4.run_opened()}
    assert (opened["//depot/main/a.txt"]["action"], opened["//depot/main/a.txt"]["movedFile"]) == (
        "move/delete", "//depot/main/b.txt")
    assert (opened["//depot/main/b.txt"]["action"], opened["//depot/main/b.txt"]["movedFile"]) == (
        "move/add", "//depot/main/a.txt")
    assert fstat(p4, "//depot/main/b.txt")["movedFile"] == "//depot/main/a.txt"
    n = submitted(p4.run_submit("-d", "rename"))
    [a_rev, b_rev] = p4.run_files("//depot/main/...")
    assert (a_rev["action"], b_rev["action"]) == ("move/delete", "move/add")
    assert a_rev["change"] == b_rev["change"] == str(n)
    [b_log] = p4.run_filelog("//depot/main/b.txt")
    assert [(i.how, i.file) for i in b_log.revisions[0].integrations] == [("moved from", "//depot/main/a.txt")]
    [a_log] = p4.run_filelog("//depot/main/a.txt")
    assert ("moved into", "//depot/main/b.txt") in [(i.how, i.file) for r in a_log.revisions for i in r.integrations]


def test_revert_of_one_half_of_a_move_reverts_both(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/a.txt": BASE})
    p4.run_edit(str(root / "main/a.txt"))
    p4.run_move(str(root / "main/a.txt"), str(root / "main/b.txt"))
    reverted = p4.run_revert(str(root / "main/b.txt"))
    assert sorted(r["depotFile"] for r in dicts(reverted)) == ["//depot/main/a.txt", "//depot/main/b.txt"]
    assert p4.run_opened(exception_level=1) == []
    assert content(root / "main/a.txt") == BASE and not (root / "main/b.txt").exists()


def test_a_shelved_move_unshelves_as_a_pair_and_submits_from_the_shelf(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/a.txt": BASE})
    n = int(p4.save_change({"Change": "new", "Description": "rename, shelved"})[0].split()[1])
    p4.run_edit("-c", str(n), str(root / "main/a.txt"))
    p4.run_move(str(root / "main/a.txt"), str(root / "main/b.txt"))
    p4.run_shelve("-c", str(n))
    p4.run_revert("//depot/main/...")
    p4.run_unshelve("-s", str(n))
    moved = {r["depotFile"]: (r["action"], r.get("movedFile")) for r in p4.run_opened()}
    assert moved == {"//depot/main/a.txt": ("move/delete", "//depot/main/b.txt"),
                     "//depot/main/b.txt": ("move/add", "//depot/main/a.txt")}
    p4.run_revert("//depot/main/...")
    submitted(p4.run_submit("-e", str(n)))
    assert [(f["depotFile"], f["action"]) for f in p4.run_files("//depot/main/...")] == [
        ("//depot/main/a.txt", "move/delete"), ("//depot/main/b.txt", "move/add")]
    [b_log] = p4.run_filelog("//depot/main/b.txt")
    assert [(i.how, i.file) for i in b_log.revisions[0].integrations] == [("moved from", "//depot/main/a.txt")]


def test_move_onto_an_existing_file_needs_f(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/a.txt": BASE, "main/b.txt": "old b\n"})
    p4.run_edit(str(root / "main/a.txt"))
    result = p4.run_move(str(root / "main/a.txt"), str(root / "main/b.txt"))
    assert any(re.fullmatch(r".*b\.txt - is synced; use -f to force move", s) for s in strings(result)), result
    assert [(r["depotFile"], r["action"]) for r in p4.run_opened()] == [("//depot/main/a.txt", "edit")]
    p4.run_move("-f", str(root / "main/a.txt"), str(root / "main/b.txt"))
    submitted(p4.run_submit("-d", "replace b with a"))
    assert fstat(p4, "//depot/main/b.txt")["headAction"] == "move/add"
    assert print_text(p4, "//depot/main/b.txt") == BASE


def test_move_needs_the_file_opened_for_edit(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/a.txt": BASE})
    with pytest.raises(P4Exception):
        p4.run_move(str(root / "main/a.txt"), str(root / "main/b.txt"))
    assert p4.run_opened(exception_level=1) == []


def test_integrating_a_moved_source_schedules_a_move_resolve(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix)
    move_on_main(helix)
    p4.run_integrate(MAIN, REL)
    assert [r["depotFile"] for r in p4.run_opened()] == ["//depot/rel/a.txt"]
    listed = {r["resolveType"]: r for r in dicts(p4.run_resolve("-n"))}
    assert set(listed) == {"move", "content"}
    assert listed["move"]["fromFile"] == "//depot/main/b.txt"
    assert "unresolved" in fstat(p4, "//depot/rel/a.txt")
    resolver = ActionRecorder({"move": "at"}, content="at")
    p4.run_resolve(resolver=resolver)
    assert "unresolved" not in fstat(p4, "//depot/rel/b.txt")
    [seen] = resolver.actions
    assert seen["type"] == "Filename resolve"
    assert (seen["their_action"], seen["yours_action"]) == ("//depot/rel/b.txt", "//depot/rel/a.txt")
    opened = {r["depotFile"]: r["action"] for r in p4.run_opened()}
    assert opened == {"//depot/rel/a.txt": "move/delete", "//depot/rel/b.txt": "move/add"}
    assert content(root / "rel/b.txt") == THEIRS_CLEAN and not (root / "rel/a.txt").exists()
    submitted(p4.run_submit("-d", "follow the rename"))
    assert print_text(p4, "//depot/rel/b.txt") == THEIRS_CLEAN
    assert fstat(p4, "//depot/rel/a.txt")["headAction"] == "move/delete"
    p4.run_integrate(MAIN, REL, exception_level=1)
    assert p4.warnings == [f"{REL} - all revision(s) already integrated."]


def test_move_resolve_answered_yours_keeps_the_target_name(helix: Helix) -> None:
    p4 = helix.p4
    branch_main_to_rel(helix)
    move_on_main(helix)
    p4.run_integrate(MAIN, REL)
    p4.run_resolve("-Am", "-ay")
    p4.run_resolve("-at")
    assert [(r["depotFile"], r["action"]) for r in p4.run_opened()] == [("//depot/rel/a.txt", "integrate")]
    submitted(p4.run_submit("-d", "content only"))
    assert print_text(p4, "//depot/rel/a.txt") == THEIRS_CLEAN


def test_integrating_a_move_whose_old_name_is_outside_the_client_view_is_refused(helix: Helix) -> None:
    branch_main_to_rel(helix)
    move_on_main(helix)
    other = helix.connect_as("alice", "narrow", view=["//depot/main/... //narrow/main/...",
                                                      "//depot/rel/b.txt //narrow/rel/b.txt"])
    result = other.run_integrate(MAIN, REL)
    assert "//depot/rel/a.txt - not in client view (remapped from //depot/rel/b.txt)" in strings(result)
    assert other.run_opened(exception_level=1) == []


def save_branch(p4: Any, name: str, view: list[str]) -> None:
    spec = p4.fetch_branch(name)
    spec["View"] = view
    p4.save_branch(spec)


def test_integrating_a_move_whose_old_name_the_branch_view_does_not_map_is_refused(helix: Helix) -> None:
    p4 = helix.p4
    branch_main_to_rel(helix)
    move_on_main(helix)
    save_branch(p4, "newname", ["//depot/main/b.txt //depot/rel/b.txt"])
    result = p4.run_integrate("-b", "newname")
    assert any(re.fullmatch(
        r"//depot/rel/b\.txt - can't integrate from //depot/main/b\.txt#[0-9,#]+ \(moved from //depot/main/a\.txt; "
        r"provide a branch view that maps this file, or use -Di to disregard move/deletes\)", s)
        for s in strings(result)), strings(result)
    assert p4.run_opened(exception_level=1) == []


def test_integrating_a_move_limited_to_its_new_name_is_refused(helix: Helix) -> None:
    p4 = helix.p4
    branch_main_to_rel(helix)
    move_on_main(helix)
    save_branch(p4, "main2rel", ["//depot/main/... //depot/rel/..."])
    result = p4.run_integrate("-b", "main2rel", "//depot/rel/b.txt")
    assert "//depot/rel/a.txt - not in branch view (remapped from //depot/rel/b.txt)" in strings(result)
    assert p4.run_opened(exception_level=1) == []


def test_add_edit_and_reopen_take_full_and_partial_filetypes(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    [added] = dicts(p4.run_add("-t", "binary", str(put(root / "main/b.bin", "x"))))
    assert added["type"] == "binary"
    p4.run_add(str(put(root / "main/a.txt", BASE)))
    p4.run_reopen("-t", "+x", str(root / "main/a.txt"))
    assert fstat(p4, "//depot/main/a.txt")["type"] == "text+x"
    submitted(p4.run_submit("-d", "typed adds"))
    assert fstat(p4, "//depot/main/b.bin")["headType"] == "binary"
    p4.run_edit("-t", "+w", str(root / "main/a.txt"))
    submitted(p4.run_submit("-d", "type change only"))
    assert fstat(p4, "//depot/main/a.txt")["headType"] == "text+wx"
    assert print_text(p4, "//depot/main/a.txt") == BASE


def test_move_options_preview_keep_type_and_added_files(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/a.txt": BASE})
    p4.run_edit(str(root / "main/a.txt"))
    p4.run_move("-n", str(root / "main/a.txt"), str(root / "main/n.txt"))
    assert [(r["depotFile"], r["action"]) for r in p4.run_opened()] == [("//depot/main/a.txt", "edit")]
    p4.run_rename("-k", "-t", "+x", str(root / "main/a.txt"), str(root / "main/k.txt"))
    assert (root / "main/a.txt").exists() and not (root / "main/k.txt").exists()  # -k: workspace untouched
    assert fstat(p4, "//depot/main/k.txt")["type"] == "text+x"
    p4.run_revert("//depot/main/...")
    p4.run_add(str(put(root / "main/new.txt", "new\n")))
    [moved] = dicts(p4.run_move(str(root / "main/new.txt"), str(root / "main/newer.txt")))
    assert (moved["depotFile"], moved["action"]) == ("//depot/main/newer.txt", "add")
    assert [(r["depotFile"], r["action"]) for r in p4.run_opened()] == [("//depot/main/newer.txt", "add")]


def test_integrate_Rd_schedules_a_delete_resolve(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix, {"main/a.txt": BASE, "main/b.txt": BASE})
    p4.run_delete(str(root / "main/a.txt"), str(root / "main/b.txt"))
    p4.run_submit("-d", "delete on main")
    p4.run_integrate("-Rd", MAIN, REL)
    listed = dicts(p4.run_resolve("-n"))
    assert sorted((r["clientFile"][-5:], r["resolveType"]) for r in listed) == [
        ("a.txt", "delete"), ("b.txt", "delete")]
    result = p4.run_resolve("-at", str(root / "rel/a.txt"))
    assert any(re.fullmatch(r".*rel/a\.txt - resolved delete from //depot/main/a\.txt#?[0-9,#]*", s)
               for s in strings(result)), strings(result)
    p4.run_resolve("-ay", str(root / "rel/b.txt"))
    submitted(p4.run_submit("-d", "delete one, keep one"))
    assert fstat(p4, "//depot/rel/a.txt")["headAction"] == "delete"
    assert fstat(p4, "//depot/rel/b.txt")["headAction"] != "delete"
    assert print_text(p4, "//depot/rel/b.txt") == BASE
    p4.run_integrate("-Rd", MAIN, REL, exception_level=1)
    assert p4.warnings == [f"{REL} - all revision(s) already integrated."]


def test_integrate_Rb_schedules_a_branch_resolve(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix)
    add_and_submit(helix, {"main/c.txt": "new on main\n"})
    p4.run_integrate("-Rb", MAIN, REL)
    assert [r["resolveType"] for r in dicts(p4.run_resolve("-n"))] == ["branch"]
    p4.run_resolve("-at")
    assert content(root / "rel/c.txt") == "new on main\n"
    submitted(p4.run_submit("-d", "branch c"))
    assert print_text(p4, "//depot/rel/c.txt") == "new on main\n"


def test_integrate_Rs_skips_a_cherry_picked_revision(helix: Helix) -> None:
    p4 = helix.p4
    branch_main_to_rel(helix)
    c1 = with_lines(BASE, l2="line 2 from c1")
    c2 = with_lines(c1, l5="line 5 from c2")
    c3 = with_lines(c2, l8="line 8 from c3")
    for text in (c1, c2, c3):
        edit_and_submit(helix, {"main/a.txt": text}, "work on main")
    p4.run_integrate("//depot/main/a.txt#3,#3", "//depot/rel/a.txt")  # cherry-pick c2
    p4.run_resolve("-am")
    submitted(p4.run_submit("-d", "cherry-pick c2"))
    edit_and_submit(helix, {"rel/a.txt": with_lines(with_lines(BASE, l5="line 5 from c2"), l5="line 5 reworked on rel")},
                    "rework c2 on rel")
    # Merging c1..c3 again would merge c2 into its rework (a conflict); -Rs leaves it out.
    for _ in range(3):
        p4.run_integrate("-Rs", MAIN, REL, exception_level=1)
        if p4.warnings:
            break
        p4.run_resolve("-am")
        assert p4.run("resolve", "-n", exception_level=1) == []  # every merge was clean
        submitted(p4.run_submit("-d", "merge the rest"))
    assert print_text(p4, "//depot/rel/a.txt") == with_lines(c3, l5="line 5 reworked on rel")


def test_resolve_c_resolves_only_that_changelists_files(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    branch_main_to_rel(helix, {"main/a.txt": BASE, "main/b.txt": BASE})
    p4.run_edit("-t", "+x", str(root / "main/a.txt"), str(root / "main/b.txt"))
    put(root / "main/a.txt", THEIRS_CLEAN)
    put(root / "main/b.txt", THEIRS_CLEAN)
    p4.run_submit("-d", "main: change both")
    first, second = (int(p4.save_change({"Change": "new", "Description": d})[0].split()[1]) for d in ("a", "b"))
    p4.run_integrate("-c", str(first), "//depot/main/a.txt", "//depot/rel/a.txt")
    p4.run_integrate("-c", str(second), "//depot/main/b.txt", "//depot/rel/b.txt")
    listed = dicts(p4.run_resolve("-c", str(first), "-n"))
    assert sorted(r["resolveType"] for r in listed) == ["content", "filetype"]
    assert {r["fromFile"] for r in listed} == {"//depot/main/a.txt"}
    p4.run_resolve("-c", str(first), "-at")
    left = dicts(p4.run_resolve("-n"))
    assert {r["fromFile"] for r in left} == {"//depot/main/b.txt"}
    assert fstat(p4, "//depot/rel/a.txt")["type"] == "text+x"
    assert content(root / "rel/a.txt") == THEIRS_CLEAN


# --- tickets and connections --------------------------------------------------------------

PASSWORD_INVALID = "Perforce password (P4PASSWD) invalid or unset."
SESSION_EXPIRED = "Your session has expired, please login again."


def _ticket(p4: Any, *flags: str, password: str) -> str:
    """The ticket ``login -p`` prints (with ``flags``), leaving the ticket file alone."""
    ticket = strings(p4.run_login("-p", *flags, password=password))[-1].strip()
    assert re.fullmatch(r"[0-9A-F]{32}", ticket), ticket
    return ticket


def _refusal(p4: Any, timeout: float = 120.0) -> P4Exception:
    """Run a command until the server refuses it (a ticket running out); the refusal."""
    end = time.monotonic() + timeout
    while True:
        try:
            p4.run_changes("-m", "1")
        except P4Exception as exc:
            return exc
        assert time.monotonic() < end, f"the server still accepted the ticket after {timeout:.0f} s"
        time.sleep(0.2)


def test_ticket_for_another_host_is_refused_and_an_all_hosts_ticket_works(helix: Helix) -> None:
    helix.connect_as("carol", "carol_ws")
    helix.set_password("carol", "Corr3ct-horse")
    carol = helix.new_p4("carol", "carol_ws", ticket_file=str(helix.tmp / "no-tickets-here"))
    # A ticket asked for another host's address (TEST-NET-1: no machine here has it).
    carol.password = _ticket(carol, "-h", "192.0.2.7", password="Corr3ct-horse")
    with pytest.raises(P4Exception) as exc:
        carol.run_changes("-m", "1")
    assert exc.value.errors == [PASSWORD_INVALID]

    carol.password = _ticket(carol, "-a", password="Corr3ct-horse")
    assert carol.run_changes("-m", "1") == []
    [status] = carol.run_login("-s")
    assert status["User"] == "carol" and int(status["TicketExpiration"]) > 0


def test_ticket_expires_after_its_timeout_and_login_s_tells(helix: Helix) -> None:
    helix.connect_as("carol", "carol_ws")
    helix.set_password("carol", "Corr3ct-horse")
    carol = helix.new_p4("carol", "carol_ws", ticket_file=str(helix.tmp / "no-tickets-here"))
    with pytest.raises(P4Exception) as exc:
        carol.run_login("-s")
    assert exc.value.errors == [PASSWORD_INVALID]  # no ticket yet

    helix.set_ticket_timeout("carol", 1)
    carol.password = _ticket(carol, password="Corr3ct-horse")
    refused = _refusal(carol)
    assert refused.errors == [SESSION_EXPIRED]
    with pytest.raises(P4Exception) as exc:
        carol.run_login("-s")
    assert exc.value.errors == [SESSION_EXPIRED]

    helix.set_ticket_timeout("carol", 3600)
    carol.password = _ticket(carol, password="Corr3ct-horse")
    assert carol.run_changes("-m", "1") == []
    [status] = carol.run_login("-s")
    assert status["User"] == "carol" and 0 < int(status["TicketExpiration"]) <= 3600


def test_security_level_3_wants_a_password_for_everyone_and_takes_only_tickets(helix: Helix) -> None:
    helix.connect_as("carol", "carol_ws")
    helix.connect_as("dave", "dave_ws")
    helix.set_password("carol", "Corr3ct-horse")
    helix.set_security(3)
    dave = helix.new_p4("dave", "dave_ws")
    with pytest.raises(P4Exception) as exc:
        dave.run_changes("-m", "1")
    assert exc.value.errors == ["Password must be set before access can be granted."]
    carol = helix.new_p4("carol", "carol_ws", ticket_file=str(helix.tmp / "no-tickets-here"))
    carol.password = "Corr3ct-horse"
    with pytest.raises(P4Exception) as exc:
        carol.run_changes("-m", "1")
    assert exc.value.errors == ["Password not allowed at this server security level, use 'p4 login'."]
    carol.password = _ticket(carol, password="Corr3ct-horse")
    assert carol.run_changes("-m", "1") == []


def test_a_new_server_wants_a_password_from_the_first_connection(helix: Helix) -> None:
    """Helix 2026.1 starts a new server at security level 4 ("Secure by default"): a user
    without a password is refused from the first command."""
    fresh = helix.tmp / "fresh-server"
    fresh.mkdir()
    p4 = helix.P4()
    p4.port = init_depot(fresh) if helix.kind == "sandbox" else p4d_port(fresh)
    p4.user, p4.client, p4.password = "newcomer", "newcomer_ws", ""
    p4.ticket_file = str(helix.tmp / ".p4tickets-newcomer")
    p4.exception_level = 2
    p4.connect()
    try:
        with pytest.raises(P4Exception) as exc:
            p4.run_changes("-m", "1")
        assert exc.value.errors == ["Password must be set before access can be granted."]
    finally:
        p4.disconnect()



# --- client spec rules and streams --------------------------------------------------------

def test_client_host_field_restricts_use_to_that_host(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    spec = p4.fetch_client()
    spec["Host"] = "build-7"
    p4.save_client(spec)
    # This connection's host (P4HOST, else the machine's name) is not build-7.
    with pytest.raises(P4Exception) as exc:
        p4.run_sync()
    assert exc.value.errors == ["Client 'ws' can only be used from host 'build-7'."]
    with pytest.raises(P4Exception):
        p4.run_add(str(put(root / "main/a.txt", BASE)))
    assert p4.errors == ["Client 'ws' can only be used from host 'build-7'."]

    there = helix.new_p4("alice", "ws", cwd=str(root), host="build-7")
    there.run_add(str(root / "main/a.txt"))
    assert submitted(there.run_submit("-d", "from the workspace's own host")) == 1
    assert fstat(there, "//depot/main/a.txt")["haveRev"] == "1"


def test_locked_client_is_used_and_changed_by_its_owner_only(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    spec = p4.fetch_client()
    spec["Options"] = spec["Options"].replace("unlocked", "locked")
    assert p4.save_client(spec) == ["Client ws saved."]
    add_and_submit(helix, {"main/a.txt": BASE})  # the owner works as before

    bob = helix.new_p4("bob", "ws", cwd=str(root))
    with pytest.raises(P4Exception) as exc:
        bob.run_sync()
    assert exc.value.errors == ["Locked client 'ws' can only be used by owner 'alice'."]
    theirs = bob.fetch_client("ws")  # reading the spec is allowed
    assert theirs["Owner"] == "alice" and "locked" in theirs["Options"].split()
    theirs["Description"] = "taken over\n"
    with pytest.raises(P4Exception) as exc:
        bob.save_client(theirs)
    [err] = exc.value.errors
    assert err.endswith("'ws' owned by 'alice'; use -f to force update.")
    with pytest.raises(P4Exception) as exc:
        bob.run_client("-d", "ws")
    [err] = exc.value.errors
    assert err.endswith("'ws' is locked and can't be deleted.")
    assert p4.fetch_client()["Description"] != "taken over\n"


def test_altroots_root_is_the_one_holding_the_current_directory(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    alt = helix.tmp / "elsewhere" / "ws"
    alt.mkdir(parents=True)
    spec = p4.fetch_client()
    spec["AltRoots"] = [str(alt)]
    p4.save_client(spec)
    assert p4.fetch_client()["AltRoots"] == [str(alt)]
    add_and_submit(helix, {"main/a.txt": BASE})
    assert p4.run_info()[0]["clientRoot"] == str(root)
    assert fstat(p4, "//depot/main/a.txt")["clientFile"] == str(root / "main/a.txt")

    moved = helix.new_p4("alice", "ws", cwd=str(alt))
    assert moved.run_info()[0]["clientRoot"] == str(alt)
    assert fstat(moved, "//depot/main/a.txt")["clientFile"] == str(alt / "main/a.txt")
    moved.run_sync("-f")
    assert content(alt / "main/a.txt") == BASE

    outside = helix.new_p4("alice", "ws", cwd=str(helix.tmp))  # under neither: Root
    assert outside.run_info()[0]["clientRoot"] == str(root)


def test_stream_field_parses_and_formats_in_a_client_spec(helix: Helix) -> None:
    p4 = helix.p4
    text = p4.format_client(p4.fetch_client()).replace("\nView:", "\nStream:\t//streams/main\n\nView:")
    spec = p4.parse_client(text)
    assert spec["Stream"] == "//streams/main"
    assert "Stream:\t//streams/main" in p4.format_client(spec)


def test_stream_field_round_trips_through_the_server(helix: Helix) -> None:
    if helix.kind == "p4d":
        pytest.skip("a real server takes Stream: only for a stream that exists (p4 depot -t stream, "
                    "p4 stream); the sandbox keeps the field without building streams")
    p4 = helix.p4
    spec = p4.fetch_client()
    spec["Stream"] = "//streams/main"
    assert p4.save_client(spec) == ["Client ws saved."]
    assert p4.fetch_client()["Stream"] == "//streams/main"
    assert [c.get("Stream") for c in p4.run_clients("-e", "ws")] == ["//streams/main"]



# --- file names, unicode and case ---------------------------------------------------------

ODD = {"a@b.txt": "a%40b.txt", "c#d.txt": "c%23d.txt", "50%.txt": "50%25.txt", "s*r.txt": "s%2Ar.txt"}


def _escaped_local(path: Path) -> str:
    """A local path as Helix reads it in an argument (the form 'add -f' is the exception to)."""
    return escape(str(path))


def _server_with_modes(helix: Helix, name: str, *, unicode: bool = False, case_insensitive: bool = False) -> str:
    """A second server of the test's kind: 'p4d -xi' (as p4test.py's enableUnicode) / 'p4d -C1'."""
    directory = helix.tmp / name
    directory.mkdir()
    if helix.kind == "sandbox":
        return init_depot(directory, unicode=unicode, case_insensitive=case_insensitive, security=0)
    if unicode:
        subprocess.run(["p4d", "-r", str(directory), "-L", "log", "-xi"], check=True, capture_output=True)
    return f"rsh:p4d {'-C1 ' if case_insensitive else ''}-r {directory} -L log -i -J off"


def _connect(helix: Helix, port: str, client: str, *, charset: str = "", view: list[str] | None = None) -> Any:
    root = helix.tmp / client
    root.mkdir(exist_ok=True)
    p4 = helix.P4()
    p4.port, p4.user, p4.client, p4.cwd, p4.prog = port, "alice", client, str(root), "scenario-suite"
    p4.ticket_file = str(helix.tmp / ".p4tickets-modes")
    p4.exception_level = 2
    if charset:
        p4.charset = charset  # before connect, as P4Python asks
    p4.connect()
    helix._open.append(p4)
    if view is not None:
        spec = p4.fetch_client(client)
        spec["Root"], spec["View"] = str(root), view
        p4.save_client(spec)
    return p4


def test_add_needs_f_for_reserved_characters_and_stores_them_escaped(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    plain = [put(root / "main" / name, f"{name}\n") for name in ODD]
    with pytest.raises(P4Exception):
        p4.run_add(str(plain[0]))
    assert "Can't add filenames with wildcards [@#%*] in them." in "\n".join(p4.errors)
    assert p4.run_opened(exception_level=1) == []

    added = dicts(p4.run_add("-f", *map(str, plain)))
    assert sorted((r["depotFile"], r["clientFile"]) for r in added) == sorted(
        (f"//depot/main/{esc}", str(root / "main" / name)) for name, esc in ODD.items())
    submitted(p4.run_submit("-d", "odd names"))
    for name, esc in ODD.items():
        rec = fstat(p4, f"//depot/main/{esc}")
        assert rec["clientFile"] == str(root / "main" / name) and rec["headRev"] == "1"
        assert print_text(p4, f"//depot/main/{esc}") == f"{name}\n"
        # The name on disk goes back escaped as a local argument too.
        assert fstat(p4, _escaped_local(root / "main" / name))["depotFile"] == f"//depot/main/{esc}"
    assert {r["clientFile"] for r in dicts(p4.run_have("//ws/main/..."))} == {
        f"//ws/main/{esc}" for esc in ODD.values()}


def test_a_stored_star_is_a_name_not_a_wildcard(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    p4.run_add("-f", str(put(root / "main/s*r.txt", "star\n")), str(put(root / "main/sxr.txt", "x\n")))
    submitted(p4.run_submit("-d", "star"))
    assert [r["depotFile"] for r in dicts(p4.run_files("//depot/main/s%2Ar.txt"))] == ["//depot/main/s%2Ar.txt"]
    # A '*' in an argument is still a wildcard, and matches the escaped name as any text.
    assert sorted(r["depotFile"] for r in dicts(p4.run_files("//depot/main/s*r.txt"))) == [
        "//depot/main/s%2Ar.txt", "//depot/main/sxr.txt"]


def test_escaped_names_round_trip_through_integrate_and_resolve(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    p4.run_add("-f", str(put(root / "main/a@b.txt", BASE)))
    submitted(p4.run_submit("-d", "base"))
    p4.run_integrate(MAIN, REL)
    submitted(p4.run_submit("-d", "branch"))
    for side, text in (("main", THEIRS_CONFLICT), ("rel", YOURS_CONFLICT)):
        p4.run_edit(f"//depot/{side}/a%40b.txt")
        put(root / side / "a@b.txt", text)
        submitted(p4.run_submit("-d", f"work on {side}"))
    p4.run_integrate(MAIN, REL)
    [pending] = dicts(p4.run_resolve("-n"))
    local = str(root / "rel/a@b.txt")
    assert (pending["clientFile"], pending["fromFile"]) == (local, "//depot/main/a%40b.txt")
    result = p4.run_resolve("-at", _escaped_local(Path(local)))
    assert any(re.fullmatch(r"//ws/rel/a%40b\.txt - copy from //depot/main/a%40b\.txt(#[0-9,#]+)?", s)
               for s in strings(result)), strings(result)
    assert content(root / "rel/a@b.txt") == THEIRS_CONFLICT


def test_unicode_server_needs_a_charset_and_says_so_in_info(helix: Helix) -> None:
    port = _server_with_modes(helix, "unicode-server", unicode=True)
    bare = _connect(helix, port, "bare")
    with pytest.raises(P4Exception):
        bare.run_files("//depot/...")
    assert bare.errors == ["Unicode server permits only unicode enabled clients."]
    assert bare.server_unicode

    p4 = _connect(helix, port, "uni", charset="utf8")
    [info] = p4.run_info()
    assert info["unicode"] == "enabled" and p4.server_unicode
    # A server not in unicode mode refuses a client that names a charset.
    plain = _connect(helix, helix.port, "plain", charset="utf8")
    with pytest.raises(P4Exception):
        plain.run_files("//depot/...")
    assert plain.errors == ["Unicode clients require a unicode enabled server."]
    assert not plain.server_unicode and "unicode" not in helix.p4.run_info()[0]


def test_case_insensitive_server_matches_names_and_views_in_any_case(helix: Helix) -> None:
    port = _server_with_modes(helix, "nocase-server", case_insensitive=True)
    p4 = _connect(helix, port, "ci", view=["//depot/... //ci/..."])
    assert p4.run_info()[0]["caseHandling"] == "insensitive" and p4.server_case_insensitive
    p4.run_add(str(put(helix.tmp / "ci/Main/A.txt", "upper\n")))
    submitted(p4.run_submit("-d", "mixed case"))
    assert [r["depotFile"] for r in dicts(p4.run_files("//depot/main/a.txt"))] == ["//depot/Main/A.txt"]
    assert fstat(p4, "//DEPOT/MAIN/A.TXT")["depotFile"] == "//depot/Main/A.txt"
    again = p4.run_add(str(put(helix.tmp / "ci/main/a.txt", "lower\n")))
    assert strings(again) == ["//depot/Main/A.txt - can't add existing file"] and not dicts(again)
    # A view spelled in another case maps the file all the same.
    other = _connect(helix, port, "ci2", view=["//depot/main/... //ci2/..."])
    [synced] = dicts(other.run_sync())
    assert synced["depotFile"] == "//depot/Main/A.txt"
    assert (helix.tmp / "ci2/A.txt").read_text() == "upper\n"

    # The default server is case-sensitive: the other spelling names no file.
    assert helix.p4.run_info()[0]["caseHandling"] == "sensitive"
    add_and_submit(helix, {"Main/A.txt": "upper\n"})
    assert helix.p4.run_files("//depot/main/a.txt", exception_level=1) == []
    assert helix.p4.warnings == ["//depot/main/a.txt - no such file(s)."]



# --- smaller behaviours -------------------------------------------------------------------

def test_opened_without_files_on_an_empty_client_is_empty(helix: Helix) -> None:
    # P4Python's p4test.py testFiles: run_opened() == [] at exception level 2.
    p4 = helix.p4
    assert p4.run_opened() == []
    assert (p4.warnings, p4.errors, p4.messages) == ([], [], [])
    # With a file argument it stays a warning naming the argument.
    with pytest.raises(P4Exception) as exc:
        p4.run_opened("//depot/main/...")
    assert exc.value.warnings == ["//depot/main/... - file(s) not opened on this client."]


def test_messages_are_p4messages(helix: Helix) -> None:
    # P4Python's p4test.py testOutput, word for word in what it checks.
    import P4API
    p4 = helix.p4
    add_and_submit(helix, {"main/a.txt": BASE})
    with p4.at_exception_level(p4.RAISE_NONE):
        p4.run_sync()
        p4.run_sync()
        assert p4.errors == [] and len(p4.warnings) == 1
        [m] = p4.messages
    assert isinstance(m, P4API.P4Message)
    assert (m.severity, m.generic, m.msgid) == (p4.E_WARN, p4.EV_EMPTY, 6532)
    assert str(m) == p4.warnings[0] and str(m).lower().endswith("file(s) up-to-date.")
    assert repr(m) == f"[Gen:{p4.EV_EMPTY}/Sev:{p4.E_WARN}]: {m}"
    # The exception carries the same message, with its shortcut attributes.
    with pytest.raises(P4Exception) as exc:
        p4.run_sync()
    assert (exc.value.severity, exc.value.generic, exc.value.msgid) == (p4.E_WARN, p4.EV_EMPTY, 6532)


def test_out_of_date_submit_fails_with_one_two_line_error(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/a.txt": BASE})
    bob = helix.connect_as("bob", "bob-ws")
    bob.run_sync()
    bob.run_edit("//depot/main/a.txt")
    put(helix.tmp / "bob-ws/main/a.txt", THEIRS_CLEAN)
    bob.run_submit("-d", "bob first")
    p4.run_edit(str(root / "main/a.txt"))
    put(root / "main/a.txt", YOURS_CLEAN)
    with pytest.raises(P4Exception) as exc:
        p4.run_submit("-d", "alice second")
    [pending] = p4.run_changes("-s", "pending")
    n = pending["change"]
    # The flow's out-of-date test (flows/stages.py _OUT_OF_DATE) reads this text.
    assert exc.value.errors == ["Out of date files must be resolved or reverted.\n"
                                f"Submit failed -- fix problems above then use 'p4 submit -c {n}'."]
    assert str(exc.value) == exc.value.errors[0]
    assert [(r["depotFile"], r["change"]) for r in p4.run_opened()] == [("//depot/main/a.txt", n)]
    assert print_text(p4, "//depot/main/a.txt") == THEIRS_CLEAN  # nothing of alice's was committed


def test_shelve_replace_takes_no_file_arguments(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    add_and_submit(helix, {"main/a.txt": BASE, "main/b.txt": "bee\n"})
    p4.run_edit(str(root / "main/a.txt"), str(root / "main/b.txt"))
    change = p4.fetch_change()
    change["Description"] = "shelf\n"
    n = p4.save_shelve(change)[0]["change"]
    with pytest.raises(P4Exception) as exc:
        p4.run_shelve("-r", "-c", n, "//depot/main/a.txt")
    assert any("Usage: shelve" in e for e in exc.value.errors), exc.value.errors
    shelved = p4.run_describe("-S", "-s", n)[0]["depotFile"]
    assert shelved == ["//depot/main/a.txt", "//depot/main/b.txt"]  # the shelf is as it was


def test_relative_path_components_are_refused(helix: Helix) -> None:
    p4, root = helix.p4, helix.root
    outside = put(helix.tmp / "outside.txt", "not for the depot\n")
    for arg in ("//ws/../outside.txt", "//ws/main/./a.txt", "//depot/main/../outside.txt"):
        with pytest.raises(P4Exception) as exc:
            p4.run_add(arg)
        assert exc.value.errors[0].startswith("Relative paths (., ..) not allowed in '"), exc.value.errors
    with pytest.raises(P4Exception):
        p4.run_add(f"{root}/main/../../outside.txt")  # a local path: '..' after fixed components
    assert p4.run_opened() == []
    with pytest.raises(P4Exception):
        p4.run_files("//depot/../...")
    # Nothing reached the depot, so no other workspace can get it; nothing was written outside roots.
    add_and_submit(helix, {"main/a.txt": BASE})
    carol = helix.connect_as("carol", "carol-ws")
    with pytest.raises(P4Exception):
        carol.run_sync("//carol-ws/../../escaped.txt")
    assert [r["depotFile"] for r in carol.run_sync()] == ["//depot/main/a.txt"]
    assert sorted(p.name for p in helix.tmp.iterdir() if p.is_file() and p.suffix == ".txt") == ["outside.txt"]
    assert content(outside) == "not for the depot\n"


def test_quoted_view_paths_with_spaces(helix: Helix) -> None:
    p4 = helix.p4
    view = ['"//depot/my dir/..." "//spaced/other dir/..."']
    bob = helix.connect_as("bob", "spaced", view=view)
    assert bob.fetch_client("spaced")["View"] == view
    bob_root = helix.tmp / "spaced"
    put(bob_root / "other dir/a b.txt", BASE)
    bob.run_add(str(bob_root / "other dir/a b.txt"))
    bob.run_submit("-d", "spaces")
    assert [f["depotFile"] for f in p4.run_files("//depot/...")] == ["//depot/my dir/a b.txt"]

    [synced] = dicts(p4.run_sync())
    assert synced["depotFile"] == "//depot/my dir/a b.txt"
    assert content(helix.root / "my dir/a b.txt") == BASE

    spec = p4.fetch_branch("spaces")
    spec["View"] = ['"//depot/my dir/..." "//depot/your dir/..."']
    p4.save_branch(spec)
    assert p4.fetch_branch("spaces")["View"] == spec["View"]
    [branched] = dicts(p4.run_integrate("-b", "spaces"))
    assert branched["depotFile"] == "//depot/your dir/a b.txt"
    [plain] = dicts(p4.run_integrate("//depot/my dir/...", "//depot/third dir/..."))
    assert plain["depotFile"] == "//depot/third dir/a b.txt"
    p4.run_submit("-d", "branch the spaced dir twice")
    assert print_text(p4, "//depot/your dir/a b.txt") == print_text(p4, "//depot/third dir/a b.txt") == BASE
    assert content(helix.root / "third dir/a b.txt") == BASE


def set_max_results(h: Helix, limit: int | None) -> None:
    """What an administrator does: a group holding alice with ``MaxResults: limit``
    (the sandbox's switch is per depot); ``None`` deletes the group."""
    if h.kind == "sandbox":
        from flows.p4.sandbox import set_max_results as sandbox_set
        sandbox_set(h.server_dir, limit)
        return
    admin = h.new_p4("alice", "ws")
    if limit is None:
        admin.delete_group("limited")
        return
    group = admin.fetch_group("limited")
    group["MaxResults"] = str(limit)
    group["Users"] = ["alice"]
    admin.save_group(group)


def test_max_results_refuses_commands_that_would_return_more_rows(helix: Helix) -> None:
    p4 = helix.p4
    add_and_submit(helix, {f"main/f{i}.txt": f"{i}\n" for i in range(4)})
    set_max_results(helix, 3)
    too_large = ["Request too large (over 3); see 'p4 help maxresults'."]
    with pytest.raises(P4Exception) as exc:
        p4.run_files("//depot/...")
    assert exc.value.errors == too_large
    assert len(p4.run_files("//depot/main/f1.txt", "//depot/main/f2.txt")) == 2  # within the limit

    # A sync over the limit fails before it writes anything.
    dave = helix.connect_as("alice", "alice-2")
    with pytest.raises(P4Exception) as exc:
        dave.run_sync()
    assert exc.value.errors == too_large
    assert not (helix.tmp / "alice-2/main").exists()
    assert dave.run_have(exception_level=0) == []

    set_max_results(helix, None)
    assert len(dicts(dave.run_sync())) == 4


def test_groups_lists_a_users_groups_directly_and_through_subgroups(helix: Helix) -> None:
    """What the service asks to learn whether someone is an administrator: ``groups -i USER``,
    which an ordinary user may run about themselves."""
    helix.set_group("release-leads", users=["bob"])
    helix.set_group("p4integ-admins", users=["carol"], subgroups=["release-leads"])
    helix.set_group("qa", users=["dave"])
    bob = helix.new_p4("bob")  # no special rights: list access is enough

    [direct] = bob.run_groups("bob")
    assert direct["group"] == "release-leads" and direct["user"] == "bob"
    assert (direct["isUser"], direct["isSubGroup"], direct["isOwner"]) == ("1", "0", "0")
    assert sorted(r["group"] for r in bob.run_groups("-i", "bob")) == ["p4integ-admins", "release-leads"]
    assert [r["group"] for r in bob.run_groups("-i", "carol")] == ["p4integ-admins"]
    assert bob.run_groups("-i", "erin") == []  # a user in no group: no records, no error
    assert [r["group"] for r in bob.run_groups("-u", "dave")] == ["qa"]
    assert [r["group"] for r in bob.run_groups("-g", "release-leads")] == ["p4integ-admins"]
    everyone = bob.run_groups()
    assert {(r["group"], r["user"]) for r in everyone} == {
        ("release-leads", "bob"), ("p4integ-admins", "carol"), ("p4integ-admins", "release-leads"), ("qa", "dave")}

    helix.set_group("release-leads", users=[])  # emptied: the group is gone, and bob with it
    assert bob.run_groups("-i", "bob") == []
