"""``p4integ sandbox ...``: a depot for people, from the command line."""
from __future__ import annotations

from pathlib import Path

import pytest

from flows.p4.sandbox import P4, P4Exception
from tests.cli import p4integ



def test_demo_merges_one_file_and_leaves_one_conflict(tmp_path: Path) -> None:
    out = p4integ("sandbox", "demo", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(l.startswith("integrate    4 files") and "1 branch, 3 integrate" in l for l in lines)
    assert any(l.startswith("resolve -am") and "1 merge from" in l and "1 skipped" in l for l in lines)
    conflicts = [l for l in lines if l.startswith("conflict")]
    assert len(conflicts) == 1 and "src/config.ini" in conflicts[0]


def test_init_refuses_an_existing_depot(tmp_path: Path) -> None:
    assert p4integ("sandbox", "init", str(tmp_path / "ex"), "--example").returncode == 0
    again = p4integ("sandbox", "init", str(tmp_path / "ex"), "--example")
    assert again.returncode == 2 and "already holds a depot" in again.stderr


def test_passwd_reads_stdin_and_never_echoes(tmp_path: Path) -> None:
    init = p4integ("sandbox", "init", str(tmp_path / "d"))
    port = init.stdout.strip().split("=", 1)[1]
    out = p4integ("sandbox", "passwd", str(tmp_path / "d"), "bob", stdin="hunter2\n")
    assert out.returncode == 0 and "hunter2" not in out.stdout + out.stderr
    p4 = P4(port=port, user="bob", client="c", cwd=str(tmp_path), ticket_file=str(tmp_path / ".p4tickets")).connect()
    try:
        p4.run_info()
        with pytest.raises(P4Exception, match="P4PASSWD"):
            p4.run_changes()
        # A new server is at security level 4: the password buys a ticket, it is not one.
        p4.password = "hunter2"
        with pytest.raises(P4Exception, match="use 'p4 login'"):
            p4.run_changes()
        p4.run_login(password="hunter2")  # the ticket goes to the ticket file
        p4.password = ""  # a password set is sent before the ticket file's entry, and refused
        assert p4.run_changes() == []
    finally:
        p4.disconnect()


def test_init_switches_make_a_unicode_case_insensitive_server_for_good(tmp_path: Path) -> None:
    out = p4integ("sandbox", "init", str(tmp_path / "d"), "--unicode", "--case-insensitive")
    assert out.returncode == 0, out.stderr
    port = out.stdout.splitlines()[0].split("=", 1)[1]
    # A private server: its administrator lowers the new server's security level 4.
    conf = p4integ("sandbox", "configure", str(tmp_path / "d"), "security=0")
    assert conf.returncode == 0 and "security=0" in conf.stdout.splitlines(), conf.stderr
    p4 = P4(port=port, user="bob", client="c", cwd=str(tmp_path))
    p4.charset = "utf8"
    p4.connect()
    try:
        [info] = p4.run_info()
        assert (info["unicode"], info["caseHandling"]) == ("enabled", "insensitive")
        p4.save_client(p4.fetch_client("c"))
    finally:
        p4.disconnect()
    # Like 'p4d -xi', the mode stays once the server holds something.
    again = p4integ("sandbox", "init", str(tmp_path / "d"))
    assert again.returncode == 2 and "modes cannot change" in again.stderr
