"""Every p4integ command, given a person's mistake or an unreachable Prefect server, ends in one
line naming what to fix and exit code 2: never a traceback."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import typer.main

from deployments.cli import app
from deployments.cli.errors import USAGE
from flows.settings import free_port
from tests.cli import p4integ

# They start the Prefect server themselves, so "the server is down" does not apply to them.
STARTS_SERVICES = {("up",), ("ui",), ("demo",), ("sandbox", "demo")}
VALUE = "ghost-1"  # a name, a template, a host, a relative path: nothing of that name exists


def _leaves(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if hasattr(cmd, "commands"):  # a group (typer ships its own click)
        for name, sub in sorted(cmd.commands.items()):
            yield from _leaves(sub, (*path, name))
    else:
        yield path, cmd


def _argv(path: tuple[str, ...], cmd: Any) -> list[str]:
    """The command with every required argument and option given a value."""
    argv = list(path)
    for p in cmd.params:
        if p.param_type_name == "argument" and p.required:
            argv.append(VALUE)
        elif p.param_type_name == "option" and p.required:
            argv += [p.opts[0], VALUE]
    return argv


def _p4integ(argv: list[str], cwd: Path, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return p4integ(*argv, cwd=cwd, env=env, stdin=stdin, timeout=180)


def _server_down_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(P4INTEG_HOME=str(tmp_path / "home"), PREFECT_API_URL=f"http://127.0.0.1:{free_port()}/api")
    return env


COMMANDS = [(path, cmd) for path, cmd in _leaves(typer.main.get_command(app)) if path not in STARTS_SERVICES]


def test_every_command_with_the_server_down_says_so_in_one_line(tmp_path: Path) -> None:
    env = _server_down_env(tmp_path)
    argvs = [_argv(path, cmd) for path, cmd in COMMANDS]
    assert len(argvs) > 25  # every command of every group, not a few
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda a: (a, _p4integ(a, tmp_path, env, stdin="pw\n")), argvs))
    wrong, unreachable = [], 0
    for argv, r in results:
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        if r.returncode == 0 and "Traceback" not in r.stdout + r.stderr:
            continue
        if r.returncode != USAGE or len(lines) != 1 or not lines[0].startswith("error: "):
            wrong.append(f"p4integ {' '.join(argv)} (exit code {r.returncode}):\n{r.stdout}{r.stderr}")
            continue
        unreachable += "Prefect server is not reachable at " + env["PREFECT_API_URL"] in lines[0]
    assert not wrong, "\n".join(wrong)
    assert unreachable >= 10  # the commands that need the server say where they looked for it


ALL_COMMANDS = list(_leaves(typer.main.get_command(app)))


@pytest.mark.parametrize("how", ["an unknown option", "no arguments"])
def test_every_command_given_bad_arguments_says_so_in_one_line(how: str, capsys: pytest.CaptureFixture[str]) -> None:
    from unittest import mock

    from deployments.cli.errors import run

    tried = 0
    for path, cmd in ALL_COMMANDS:
        required = [p for p in cmd.params if p.required]
        if how == "no arguments" and not required:
            continue  # it would run: nothing is missing
        argv = [*path, "--no-such-option"] if how == "an unknown option" else list(path)
        with mock.patch.dict(os.environ), pytest.raises(SystemExit) as ended:  # the callback's defaults stay here
            run(app, argv)
        lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
        assert ended.value.code == USAGE and len(lines) == 1, (argv, lines)
        expected = "No such option: --no-such-option" if how == "an unknown option" else "Missing "
        assert lines[0].startswith("error: ") and expected in lines[0], lines
        assert f"see 'p4integ {' '.join(path)} --help'" in lines[0]
        tried += 1
    assert tried >= (30 if how == "an unknown option" else 20)


@pytest.mark.parametrize(("argv", "says"), [
    (["resume", "123", "--theirs"], "run: '123' is not a flow run id"),
    (["resume", "8c0e3f9a-0000-4000-8000-000000000000"], "give exactly one of --theirs"),
    (["sandbox", "init", "/etc/passwd"], "directory: /etc/passwd is a file"),
    (["sandbox", "configure", "no-such-depot"], "no-such-depot"),
    (["templates", "edit", "nightly"], "give what to change"),
    (["hosts", "remove", "ghost-1"], "host: unknown host 'ghost-1'"),
    (["schedules", "delete", "nightly", "42"], "schedule: '42' is not a schedule id"),
    (["sandbox", "init", "d", "--example", "--unicode"], "--example makes a default server"),
    (["ui", "--p4port", "ftp://x"], "'ftp://x' is a URL"),
    (["up", "--host-limit", "0"], "--host-limit"),
])
def test_a_mistake_is_named_in_one_line_before_anything_starts(tmp_path: Path, argv: list[str], says: str) -> None:
    r = _p4integ(argv, tmp_path, _server_down_env(tmp_path))
    assert r.returncode == USAGE, r.stdout + r.stderr
    [line] = [x for x in r.stderr.splitlines() if x.strip()]
    assert line.startswith("error: ") and says in line, line
    assert not (tmp_path / "home" / "prefect").exists()  # nothing was started
