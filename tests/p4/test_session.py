"""The typed P4 session over the sandbox server, on the example depot."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from flows.p4.errors import P4AuthError, P4ConnectionError, P4Error
from flows.p4.example import Example, make_example
from flows.p4.sandbox import set_password
from flows.p4.session import SAMPLE_LIMIT, P4Session, make_p4


@pytest.fixture()
def example(tmp_path: Path) -> Example:
    return make_example(tmp_path / "ex")


@pytest.fixture()
def session(example: Example):
    with P4Session(example.port, example.user, example.client, cwd=example.workspace) as s:
        yield s


def _integrate(s: P4Session, ex: Example) -> int:
    s.sync(f"//{ex.client}/...")
    change = s.create_change("integrate main into rel")
    s.integrate(change=change, branch=ex.branch, at_change=s.latest_change(ex.source))
    return change


def test_latest_change_and_sync(session: P4Session, example: Example) -> None:
    assert session.latest_change(example.source) == 5
    assert session.latest_change("//depot/nothing/...") is None
    first = session.sync(f"//{example.client}/...")
    assert (first.added, first.updated, first.deleted) == (4, 0, 0)
    assert first.total_bytes > 0
    again = session.sync(f"//{example.client}/...")
    assert again.up_to_date and again.changed == 0
    assert any("up-to-date" in m for m in again.messages)


def test_integrate_counts_by_action_and_auto_resolve(session: P4Session, example: Example) -> None:
    session.sync(f"//{example.client}/...")
    change = session.create_change("integ")
    result = session.integrate(change=change, branch=example.branch, at_change=5)
    assert result.by_action == {"integrate": 3, "branch": 1}
    assert {f.depot_file for f in result.files} == {
        "//depot/rel/src/app.py", "//depot/rel/src/config.ini", "//depot/rel/assets/logo.bin",
        "//depot/rel/docs/notes.txt"}
    assert all(o.change == str(change) for o in session.opened())
    summary = session.auto_resolve("am")
    assert summary.by_how == {"merge from": 1, "copy from": 1}
    assert summary.skipped == [f"//{example.client}/src/config.ini"]
    pending = session.pending_resolves()
    assert [p.local_path for p in pending] == [os.path.join(example.workspace, "src", "config.ini")]
    assert pending[0].from_file == "//depot/main/src/config.ini" and not pending[0].binary
    merged = Path(example.workspace, "src", "app.py").read_text()
    assert "# main feature" in merged and "# rel hotfix" in merged


def test_already_integrated_is_a_result_not_an_error(session: P4Session, example: Example) -> None:
    change = _integrate(session, example)
    session.auto_resolve("am")
    session.resolve_file(os.path.join(example.workspace, "src", "config.ini"), "theirs")
    assert session.submit(change).files == 4
    again = session.integrate(change=session.create_change("again"), branch=example.branch)
    assert again.already_integrated and again.total == 0
    assert any("already integrated" in m for m in again.messages)


@pytest.mark.parametrize("choice,text,expected_how,expected_version", [
    ("theirs", None, "copy from", "version = 2.1"),
    ("yours", None, "ignored", "version = 2.0.1"),
    ("edited", "[product]\nname = widget\nversion = 2.1.1\nchannel = stable\n", "edit from", "version = 2.1.1"),
])
def test_resolve_file_choices_submit_that_content(session: P4Session, example: Example, choice: str,
                                                  text: str | None, expected_how: str,
                                                  expected_version: str) -> None:
    change = _integrate(session, example)
    session.auto_resolve("am")
    local = os.path.join(example.workspace, "src", "config.ini")
    assert session.resolve_file(local, choice, text) == expected_how  # type: ignore[arg-type]
    assert session.pending_resolves() == []
    submitted = session.submit(change)
    content = session.print_file(f"//depot/rel/src/config.ini@{submitted.change}")
    assert isinstance(content, str) and expected_version in content.splitlines()


def test_merged_choice_keeps_markers_for_a_conflict(session: P4Session, example: Example) -> None:
    _integrate(session, example)
    local = os.path.join(example.workspace, "src", "config.ini")
    assert session.resolve_file(local, "merged") == "edit from"
    text = Path(local).read_text()
    assert ">>>> ORIGINAL" in text and "==== THEIRS" in text and "==== YOURS" in text and "<<<<" in text


def test_edited_without_text_is_refused(session: P4Session, example: Example) -> None:
    _integrate(session, example)
    with pytest.raises(ValueError, match="needs the text"):
        session.resolve_file(os.path.join(example.workspace, "src", "config.ini"), "edited")


def test_shelve_revert_and_submit_the_shelf(session: P4Session, example: Example) -> None:
    change = _integrate(session, example)
    session.auto_resolve("am")
    session.resolve_file(os.path.join(example.workspace, "src", "config.ini"), "theirs")
    shelf = session.shelve(change)
    assert shelf.files == 4
    assert session.describe(change, shelved=True).shelved
    reverted = session.revert(change=change)
    assert len(reverted.files) == 4 and session.opened() == []
    app = Path(example.workspace, "src", "app.py")
    assert "# main feature" not in app.read_text()
    assert not app.stat().st_mode & stat.S_IWUSR  # back to the read-only have revision
    assert not Path(example.workspace, "docs", "notes.txt").exists()
    done = session.submit_shelf(change)
    assert done.files == 4
    history = session.p4.run_filelog("//depot/rel/src/config.ini")[0].revisions[0].integrations
    assert [(i.how, i.file) for i in history] == [("copy from", "//depot/main/src/config.ini")]


def test_revert_touches_only_the_jobs_files(session: P4Session, example: Example) -> None:
    session.sync(f"//{example.client}/...")
    session.run("edit", f"//{example.client}/README.md")
    change = session.create_change("job")
    session.integrate(change=change, branch=example.branch)
    session.revert(change=change)
    assert [o.depot_file for o in session.opened()] == ["//depot/rel/README.md"]


def test_delete_change_and_empty_shelf(session: P4Session, example: Example) -> None:
    change = session.create_change("empty")
    assert session.delete_shelf(change) is False
    session.delete_change(change)
    with pytest.raises(P4Error, match="Change .* unknown"):
        session.describe(change)


def test_errors_carry_command_and_messages(session: P4Session, example: Example) -> None:
    with pytest.raises(P4Error) as info:
        session.run("integrate", "-b", "no-such-branch")
    assert info.value.command == ["integrate", "-b", "no-such-branch"]
    assert "Branch 'no-such-branch' doesn't exist." in info.value.errors
    assert "'p4 integrate -b no-such-branch' failed" in str(info.value)
    assert not info.value.transient


def test_password_login_and_auth_errors(example: Example) -> None:
    set_password(example.depot_dir, example.user, "correct horse")
    with P4Session(example.port, example.user, example.client, password="correct horse") as ok:
        assert ok.latest_change(example.source) == 5
        assert ok.p4.password != "correct horse"  # a ticket, not the password, is held
    with pytest.raises(P4AuthError, match="Password invalid"):
        P4Session(example.port, example.user, example.client, password="wrong").connect()
    with pytest.raises(P4AuthError, match=r"P4PASSWD\) invalid or unset"):
        with P4Session(example.port, example.user, example.client) as anonymous:
            anonymous.latest_change(example.source)


def test_bad_ports(tmp_path: Path) -> None:
    with pytest.raises(P4ConnectionError) as info:
        P4Session(f"sandbox:{tmp_path}/missing", "u", "c").connect()
    assert info.value.transient and "sandbox init" in str(info.value)
    with pytest.raises(ValueError, match="not a Perforce port"):
        make_p4("not a port")


def test_large_integrate_streams_counts_not_lists(tmp_path: Path) -> None:
    from flows.p4.sandbox import P4, init_depot

    port = init_depot(tmp_path / "depot", security=0)
    root = tmp_path / "ws"
    (root / "main").mkdir(parents=True)
    p4 = P4(port=port, user="u", client="ws", cwd=str(root)).connect()
    spec = p4.fetch_client("ws")
    spec["Root"], spec["View"] = str(root), ["//depot/... //ws/..."]
    p4.save_client(spec)
    n = SAMPLE_LIMIT * 3
    paths = []
    for i in range(n):
        f = root / "main" / f"f{i:04d}.txt"
        f.write_text(f"{i}\n")
        paths.append(str(f))
    p4.run_add(*paths)
    p4.run_submit("-d", "many")
    with P4Session(port, "u", "ws", cwd=str(root)) as s:
        result = s.integrate(change=s.create_change("branch"), source="//depot/main/...", target="//depot/rel/...")
    assert result.by_action == {"branch": n}
    assert len(result.files) == SAMPLE_LIMIT


# --- resolving only the job's own change -------------------------------------------------

def _person_and_job_changes(s: P4Session, ex: Example) -> tuple[int, int]:
    """A person's own pending change holding app.py with a clean merge waiting, and a job's
    change holding config.ini (a conflict) and logo.bin, in the same workspace."""
    s.sync(f"//{ex.client}/...")
    person = s.create_change("my own work, not the job's")
    s.integrate(change=person, source="//depot/main/src/app.py", target="//depot/rel/src/app.py")
    job = s.create_change("the job's change")
    s.integrate(change=job, source="//depot/main/src/config.ini", target="//depot/rel/src/config.ini")
    s.integrate(change=job, source="//depot/main/assets/logo.bin", target="//depot/rel/assets/logo.bin")
    return person, job


def test_resolves_of_a_change_leave_the_other_pending_change_alone(session: P4Session, example: Example) -> None:
    person, job = _person_and_job_changes(session, example)
    app = os.path.join(example.workspace, "src", "app.py")
    config = os.path.join(example.workspace, "src", "config.ini")
    before = Path(app).read_bytes()
    assert [p.local_path for p in session.pending_resolves(change=job)] == [
        os.path.join(example.workspace, "assets", "logo.bin"), config]

    summary = session.auto_resolve("am", change=job)
    # app.py merges cleanly, so a resolve across the workspace would have taken it.
    assert summary.by_how == {"copy from": 1} and summary.skipped == [f"//{example.client}/src/config.ini"]
    assert session.resolve_file(config, "theirs", change=job) == "copy from"
    assert session.pending_resolves(change=job) == []
    assert [p.local_path for p in session.pending_resolves(change=person)] == [app]
    assert Path(app).read_bytes() == before
    # Unscoped, the same question sees the person's file: that is what -c keeps out.
    assert [p.local_path for p in session.pending_resolves()] == [app]


def test_a_reply_resolve_does_not_explain_stops_quoted() -> None:
    from flows.p4.resolvers import read_resolve

    understood = read_resolve(["resolve"], [
        "//ws/a.c - merging //depot/main/a.c#2", "Diff chunks: 1 yours + 0 theirs + 0 both + 0 conflicting",
        "//ws/a.c - copy from //depot/main/a.c", "/w/b.c - resolving filetype from //depot/main/b.c#3",
        "/w/b.c - resolved filetype from //depot/main/b.c#3 using base //depot/main/b.c#2",
        "/w/c.c - resolving move to //depot/main/c2.c using base //depot/main/c.c",
        "/w/c.c - resolved move (copy from //depot/main/c2.c) using base //depot/main/c.c",
        "//ws/d.c - resolve skipped."])
    assert understood.content == [("//ws/a.c", "copy from")]
    assert [(f, k) for f, k, _ in understood.actions] == [("/w/b.c", "filetype"), ("/w/c.c", "move")]
    assert understood.skipped == ["//ws/d.c"]
    with pytest.raises(P4Error, match="does not understand.*'//ws/a.c - something new'"):
        read_resolve(["resolve"], ["//ws/a.c - something new"])


# --- tickets and dropped connections ------------------------------------------------------

def _expired(port: str, user: str, ticket: str) -> bool:
    """Whether the server now refuses ``ticket`` as expired (asked on a connection of its own)."""
    from flows.p4.sandbox import P4, P4Exception

    p4 = P4(port=port, user=user, client="none", password=ticket).connect()
    try:
        p4.run_changes("-m", "1")
    except P4Exception as exc:
        return exc.errors == ["Your session has expired, please login again."]
    finally:
        p4.disconnect()
    return False


def test_an_expired_ticket_is_renewed_with_the_stored_password(example: Example) -> None:
    from flows.p4.sandbox import configure
    from tests.flows.helpers import until

    set_password(example.depot_dir, example.user, "correct horse")
    configure(example.depot_dir, "ticket.timeout", 1)
    tickets: list[str] = []
    with P4Session(example.port, example.user, example.client, password="correct horse",
                   on_ticket=tickets.append) as s:
        first = s.p4.password
        configure(example.depot_dir, "ticket.timeout", None)  # the next ticket lasts 12 hours
        until(lambda: _expired(example.port, example.user, first), 240, "expiry of the first ticket")
        assert s.latest_change(example.source) == 5  # refused as expired, logged in again, repeated
        assert s.p4.password != first and tickets == [first, s.p4.password]
        assert int(s.run("login", "-s")[0]["TicketExpiration"]) > 3600


def test_an_expired_ticket_without_a_password_stops_saying_what_to_do(example: Example) -> None:
    from flows.p4.sandbox import P4, configure
    from tests.flows.helpers import until

    set_password(example.depot_dir, example.user, "correct horse")
    configure(example.depot_dir, "ticket.timeout", 1)
    p4 = P4(port=example.port, user=example.user, client=example.client).connect()
    ticket = p4.run_login("-a", "-p", password="correct horse")[-1]
    p4.disconnect()
    until(lambda: _expired(example.port, example.user, ticket), 240, "expiry of the ticket")
    with P4Session(example.port, example.user, example.client, password=ticket) as s:
        with pytest.raises(P4AuthError) as info:
            s.latest_change(example.source)
    text = str(info.value)
    assert '"Your session has expired, please login again."' in text  # Perforce's own words
    assert "sign in again on the front page" in text and f"p4integ credentials set {example.user}" in text
    assert ticket not in text


def test_a_ticket_from_sign_in_works_on_another_host_and_a_host_ticket_does_not(example: Example) -> None:
    from flows.p4.sandbox import P4
    from ui.auth import check_credentials

    set_password(example.depot_dir, example.user, "correct horse")
    signed_in = check_credentials(example.user, "correct horse", example.port).ticket
    with P4Session(example.port, example.user, example.client, password=signed_in, host="worker-2") as s:
        assert s.latest_change(example.source) == 5
    # A plain 'login -p' ticket is bound to the host that asked for it (P4.host in the sandbox).
    p4 = P4(port=example.port, user=example.user, client=example.client, host="front-page-host").connect()
    host_ticket = p4.run_login("-p", password="correct horse")[-1]
    p4.disconnect()
    with P4Session(example.port, example.user, example.client, password=host_ticket, host="worker-2") as s:
        with pytest.raises(P4AuthError, match=r"P4PASSWD\) invalid or unset.*sign in again on the front page"):
            s.latest_change(example.source)
    # A stored password logs in on the job's own host, wherever that is.
    with P4Session(example.port, example.user, example.client, password="correct horse", host="worker-2") as s:
        assert s.latest_change(example.source) == 5


def test_a_dropped_connection_is_reopened_and_only_read_only_commands_repeat(example: Example) -> None:
    from flows.p4.sandbox import P4, P4Exception, restart

    raw = P4(port=example.port, user=example.user, client=example.client).connect()
    restart(example.depot_dir)  # the server drops every open connection
    with pytest.raises(P4Exception) as exc:
        raw.run_changes("-m", "1")
    assert exc.value.errors == ["Partner exited unexpectedly."] and not raw.connected()
    with pytest.raises(P4Exception) as exc:
        raw.run_changes("-m", "1")
    assert exc.value.errors == ["not connected."]  # P4Python's words on a dropped connection

    with P4Session(example.port, example.user, example.client, cwd=example.workspace) as s:
        restart(example.depot_dir)
        assert s.latest_change(example.source) == 5  # 'changes' dropped, reconnected, repeated
        spec = s.run("change", "-o")[0]
        spec["Description"] = "not repeated: it may have been made before the drop"
        pending = s.changes("-s", "pending")
        restart(example.depot_dir)
        with pytest.raises(P4ConnectionError, match="Partner exited unexpectedly"):
            s.run("change", "-i", input=spec)
        assert s.changes("-s", "pending") == pending  # a fresh connection; nothing made twice
        restart(example.depot_dir)
        change = s.create_change("made once")  # 'change -o' repeated after the drop, then 'change -i'
        assert [c.change for c in s.changes("-s", "pending")] == [change] + [c.change for c in pending]
