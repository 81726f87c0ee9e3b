"""Record shapes checked against examples printed by real Helix servers.

``data/documented_records.json`` keeps tagged records from Perforce documentation
and from public tools that print real server output (sources named per entry).
The sandbox must produce the same keys for the same situation.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.p4.example import Example, make_example
from flows.p4.sandbox import P4, set_password

DATA = json.loads((Path(__file__).parent / "data" / "documented_records.json").read_text())


def documented(command: str, n: int = 0) -> list[dict]:
    entries = [e for e in DATA["commands"] if e["command"] == command and e.get("records")]
    return [r for r in entries[n]["records"] if isinstance(r, dict)]


def keys(rec: dict) -> set[str]:
    return set(rec)


@pytest.fixture()
def ex(tmp_path: Path) -> Example:
    return make_example(tmp_path / "ex")


@pytest.fixture()
def p4(ex: Example):
    p = P4(port=ex.port, user=ex.user, client=ex.client, cwd=ex.workspace)
    p.connect()
    p.run_sync()
    yield p
    p.disconnect()


def test_integrate_records(p4: P4) -> None:
    normal, = documented("integrate", 0)[:1]
    branch, = documented("integrate", 1)
    out = p4.run_integrate("-b", "main-to-rel")
    by_action = {r["action"]: r for r in out}
    assert keys(by_action["integrate"]) == keys(normal)
    assert keys(by_action["branch"]) == keys(branch)
    assert by_action["branch"]["startFromRev"] == "none" and by_action["branch"]["otherAction"] == "sync"
    assert by_action["integrate"]["startFromRev"].isdigit()


def test_resolve_n_keys(p4: P4) -> None:
    entry = next(e for e in DATA["commands"] if e["command"] == "resolve" and e["args"] == ["-n"])
    documented_keys = [k for k in entry["keys_documented"] if "(" not in k]
    p4.run_integrate("-b", "main-to-rel")
    out = p4.run_resolve("-n")
    assert out and all(list(r) == documented_keys for r in out)


def test_submit_records(p4: P4, ex: Example) -> None:
    doc = documented("submit")
    p4.run_edit("//depot/rel/README.md")
    out = p4.run_submit("-d", "shape")
    assert keys(out[0]) == keys(doc[0])
    assert keys(out[1]) == keys(doc[1])
    assert keys(out[-1]) == keys(doc[-1])


def test_changes_records(p4: P4) -> None:
    submitted, = documented("changes", 0)
    pending, = documented("changes", 1)
    got = p4.run_changes("-l", "-m", "1", "-s", "submitted", "//depot/main/...")[0]
    assert keys(got) == keys(submitted)
    assert got["desc"].endswith("\n")
    p4.run_change("-i", input={"Change": "new", "Description": "pending work\n"})
    assert keys(p4.run_changes("-s", "pending")[0]) == keys(pending)


def test_describe_folds_indexed_fields_into_lists(p4: P4) -> None:
    doc, = documented("describe")
    got = p4.run_describe("-s", "3")[0]
    assert keys(got) == keys(doc)
    assert all(isinstance(got[k], list) for k in ("depotFile", "action", "type", "rev", "fileSize", "digest"))


def test_fstat_states(p4: P4, ex: Example) -> None:
    doc = documented("fstat")
    synced = p4.run_fstat("//depot/rel/README.md")[0]
    assert keys(synced) == keys(doc[0])
    p4.run_edit("//depot/rel/README.md")
    assert keys(p4.run_fstat("//depot/rel/README.md")[0]) == keys(doc[1])
    new = Path(ex.workspace, "new.txt")
    new.write_text("x\n")
    p4.run_add(str(new))
    assert keys(p4.run_fstat(str(new))[0]) == keys(doc[2])
    p4.run_integrate("-b", "main-to-rel")
    assert keys(p4.run_fstat("//depot/rel/docs/notes.txt")[0]) == keys(doc[4])  # branch, resolved
    assert keys(p4.run_fstat("//depot/rel/src/app.py")[0]) == keys(doc[5])  # integrate, unresolved


def test_files_and_login_status(p4: P4, ex: Example) -> None:
    files, = documented("files")
    assert keys(p4.run_files("//depot/main/README.md")[0]) == keys(files)
    status, = documented("login")
    set_password(ex.depot_dir, ex.user, "pw")
    p4.password = "pw"
    p4.run_login()
    assert keys(p4.run_login("-s")[0]) == keys(status)


def test_filelog_fields(p4: P4) -> None:
    raw, = documented("filelog")
    folded = {k.rstrip("0123456789,") for k in raw}
    got = p4.run("filelog", "//depot/main/README.md")[0]
    assert keys(got) == folded
    assert got["how"][-1] == ["branch into"] and got["srev"][-1] == ["#none"]
