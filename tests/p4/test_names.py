"""The flow's stages and session on file names with ``@ # % *``, UTF-16 files, unicode
and case-insensitive servers, over the sandbox server."""
from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from flows.p4.sandbox import P4, init_depot
from flows.p4.session import P4Session
from flows.spec import FileChoice, JobSpec
from flows.stages import Conflict, Job, JobError, apply_choices, check_choices, preflight, resolve_check

USER, CLIENT = "bob", "integ"
BASE = "".join(f"line {i}\n" for i in range(1, 8))
THEIRS = BASE.replace("line 4\n", "line 4 on main\n")
YOURS = BASE.replace("line 4\n", "line 4 on rel\n")
SETTLED = BASE.replace("line 4\n", "line 4 settled by hand\n")
UTF16 = "utf16"


@pytest.fixture(autouse=True)
def _no_developer_perforce(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("P4CHARSET", "P4CONFIG", "P4PORT", "P4CLIENT", "P4USER"):
        monkeypatch.delenv(var, raising=False)


def _put(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.chmod(0o644)
    path.write_bytes(data)
    return str(path)


def utf16(text: str) -> bytes:
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


def seed_names_depot(tmp: Path, **modes: bool) -> tuple[str, Path]:
    """main/src has 'a@b.txt' (text) and 'u.txt' (utf16), branched to rel and changed on
    both sides at the same line; workspace 'integ' maps //depot/rel/... ."""
    port = init_depot(tmp / "depot", security=0, **modes)
    author = tmp / "author"
    p4 = P4(port=port, user=USER, client="author", cwd=str(author), exception_level=1)
    if modes.get("unicode"):
        p4.charset = "utf8"
    p4.connect()
    for name, root, view in (("author", author, ["//depot/... //author/..."]),
                             (CLIENT, tmp / CLIENT, ["//depot/rel/... //integ/..."])):
        root.mkdir(parents=True, exist_ok=True)
        spec = p4.fetch_client(name)
        spec["Root"], spec["View"] = str(root), view
        p4.save_client(spec)
    p4.run_add("-f", _put(author / "main/src/a@b.txt", BASE.encode()))
    p4.run_add("-t", UTF16, _put(author / "main/src/u.txt", utf16(BASE)))
    p4.run_submit("-d", "base")
    p4.run_integrate("//depot/main/...", "//depot/rel/...")
    p4.run_submit("-d", "branch")
    for side, text in (("main", THEIRS), ("rel", YOURS)):
        p4.run_edit(f"//depot/{side}/src/...")
        _put(author / side / "src/a@b.txt", text.encode())
        _put(author / side / "src/u.txt", utf16(text))
        p4.run_submit("-d", f"work on {side}")
    p4.disconnect()
    return port, tmp / CLIENT


def _job(port: str, root: Path, logs: list[str], **spec: str) -> Job:
    session = P4Session(port, USER, CLIENT, cwd=str(root)).connect()
    paths = spec or {"source": "//depot/main/...", "target": "//depot/rel/..."}
    return Job(spec=JobSpec(p4port=port, p4user=USER, client=CLIENT, **paths), session=session,
               log=logs.append, root=str(root))


@pytest.fixture()
def conflicts(tmp_path: Path):
    port, root = seed_names_depot(tmp_path)
    logs: list[str] = []
    job = _job(port, root, logs)
    job.session.sync(f"//{CLIENT}/...")
    job.change = job.session.create_change("integrate")
    job.session.integrate(change=job.change, source="//depot/main/...", target="//depot/rel/...")
    job.session.auto_resolve("am")
    found = {c.depot_file: c for c in resolve_check(job)}
    yield job, root, found, logs
    job.session.close()


def test_escaped_name_goes_back_escaped_and_people_read_it_plain(conflicts) -> None:
    job, root, found, logs = conflicts
    c = found["//depot/rel/src/a%40b.txt"]
    assert c.name == "//depot/rel/src/a@b.txt" and c.local_path == str(root / "src/a@b.txt")
    assert c.resolve_command == f"p4 -c {CLIENT} resolve -c {job.change} {root}/src/a%40b.txt"
    assert (c.base, c.theirs, c.yours, c.binary) == (BASE, THEIRS, YOURS, False)
    assert any("//depot/rel/src/a@b.txt" in line for line in logs)

    # The person names the file as they read it; the resolve gets the escaped path.
    choice = FileChoice(path="//depot/rel/src/a@b.txt", choice="edited", text=SETTLED)
    assert check_choices([choice], list(found.values())) == []
    assert apply_choices(job, [choice]) == {"//depot/rel/src/a@b.txt": "edit from"}
    assert (root / "src/a@b.txt").read_text() == SETTLED
    assert [p.local_path for p in job.session.pending_resolves()] == [str(root / "src/u.txt")]


def test_utf16_conflict_is_read_as_text_and_the_edit_written_back_in_utf16(conflicts) -> None:
    job, root, found, _ = conflicts
    c = found["//depot/rel/src/u.txt"]
    assert (c.binary, c.base, c.theirs, c.yours) == (False, BASE, THEIRS, YOURS)
    choice = FileChoice(path=c.local_path, choice="edited", text=SETTLED)
    assert apply_choices(job, [choice]) == {c.local_path: "edit from"}
    assert (root / "src/u.txt").read_bytes() == utf16(SETTLED)


def test_choices_match_a_pending_file_in_any_case_only_on_a_case_insensitive_server() -> None:
    c = Conflict(local_path="/ws/src/App.py", depot_file="//depot/rel/src/App.py", from_file="//depot/main/src/App.py",
                 from_revs="#2", name="//depot/rel/src/App.py")
    choice = [FileChoice(path="//DEPOT/rel/src/app.py", choice="theirs")]
    assert check_choices(choice, [c.model_copy(update={"fold_case": True})]) == []
    assert "is not a file waiting for a resolve" in check_choices(choice, [c])[0]


@pytest.mark.parametrize("case_insensitive", [True, False])
def test_target_in_view_follows_the_servers_case_handling(tmp_path: Path, case_insensitive: bool) -> None:
    port, root = seed_names_depot(tmp_path, case_insensitive=case_insensitive)
    job = _job(port, root, [], source="//depot/main/...", target="//depot/REL/...")
    try:
        if case_insensitive:
            assert preflight(job).source_paths == ["//depot/main/..."]
        else:
            with pytest.raises(JobError, match="target: //depot/REL/... is outside the view"):
                preflight(job)
    finally:
        job.session.close()


def test_session_takes_the_charset_the_server_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uni = init_depot(tmp_path / "uni", unicode=True)
    with P4Session(uni, USER, CLIENT, cwd=str(tmp_path)) as s:
        assert s.p4.charset == "utf8" and s.run("info")[0]["unicode"] == "enabled"
    # A P4CHARSET left in the environment would make a non-unicode server refuse every command.
    monkeypatch.setenv("P4CHARSET", "utf8")
    plain = init_depot(tmp_path / "plain")
    with P4Session(plain, USER, CLIENT, cwd=str(tmp_path)) as s:
        assert s.p4.charset == "none" and "unicode" not in s.run("info")[0]
