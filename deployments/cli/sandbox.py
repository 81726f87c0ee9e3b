"""``p4integ sandbox ...``: the bundled sandbox Helix server."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from flows.p4.example import Example

from .errors import fail

app = typer.Typer(no_args_is_help=True, help="The bundled sandbox Helix server.")


def _make_example(directory: Path) -> Example:
    from flows.p4.example import make_example

    try:
        return make_example(directory)
    except FileExistsError as exc:
        fail(str(exc))


@app.command("init")
def init(
    directory: Path = typer.Argument(..., help="Directory for the depot (created if missing)."),
    example: bool = typer.Option(False, "--example", help="Seed main/rel branches with work to merge."),
    unicode: bool = typer.Option(False, "--unicode", help="Unicode mode, like 'p4d -xi': clients must set P4CHARSET."),
    case_insensitive: bool = typer.Option(False, "--case-insensitive",
                                          help="Case-insensitive file names, like 'p4d -C1'."),
) -> None:
    """Create a sandbox depot; print the P4PORT to use."""
    if directory.exists() and not directory.is_dir():
        fail(f"directory: {directory} is a file; give a directory (it is created if missing)")
    if example and (unicode or case_insensitive):
        fail("--example makes a default server; drop --unicode/--case-insensitive or --example")
    if example:
        ex = _make_example(directory)
        typer.echo(f"P4PORT={ex.port}")
        typer.echo(f"P4USER={ex.user}")
        typer.echo(f"P4CLIENT={ex.client}  (root {ex.workspace})")
        typer.echo(f"integrate {ex.source} -> {ex.target} (branch spec {ex.branch}): "
                   "one clean merge, one conflict, one new file, one binary copy")
        return
    from flows.p4.sandbox import init_depot

    try:
        port = init_depot(directory, unicode=unicode, case_insensitive=case_insensitive)
    except ValueError as exc:
        fail(f"directory: {exc}")
    typer.echo(f"P4PORT={port}")
    # On stderr: stdout stays the P4PORT line scripts read.
    typer.echo("security=4, as a new Helix server: set each user's password (p4integ sandbox passwd), "
               "or lower it for a private server (p4integ sandbox configure DIR security=0)", err=True)
    if unicode:
        typer.echo("P4CHARSET=utf8  (a unicode server refuses clients without a charset)")


@app.command("demo")
def demo(
    directory: Path = typer.Argument(..., help="An empty directory for the example depot."),
) -> None:
    """Seed the example depot and integrate main into rel through the P4 session:
    one file merges by itself, one conflict is left for a person."""
    from flows.p4.session import P4Session

    ex = _make_example(directory)
    typer.echo(f"depot        {ex.port}")
    typer.echo(f"workspace    {ex.client} at {ex.workspace}")
    with P4Session(ex.port, ex.user, ex.client, cwd=ex.workspace) as s:
        cl = s.latest_change(ex.source)
        synced = s.sync(f"//{ex.client}/...")
        typer.echo(f"latest CL    {cl} in {ex.source}")
        typer.echo(f"sync         {synced.added} added, {synced.updated} updated")
        change = s.create_change(f"Integrate {ex.source}@{cl} into {ex.target}")
        result = s.integrate(change=change, branch=ex.branch, at_change=cl)
        typer.echo(f"integrate    {result.total} files into change {change}: "
                   + ", ".join(f"{n} {a}" for a, n in sorted(result.by_action.items())))
        summary = s.auto_resolve("am", change=change)
        typer.echo("resolve -am  " + ", ".join(f"{n} {how}" for how, n in sorted(summary.by_how.items()))
                   + f"; {len(summary.skipped)} skipped")
        for pending in s.pending_resolves(change=change):
            typer.echo(f"conflict     {pending.local_path} <- {pending.from_file}"
                       f"#{pending.end_from_rev} ({pending.content_resolve_type})")
            typer.echo(f"             resolve on the host: p4 -c {ex.client} resolve -c {change} {pending.local_path}")


@app.command("passwd")
def passwd(
    directory: Path = typer.Argument(..., help="The depot directory."),
    user: str = typer.Argument(..., help="Perforce user whose password to set."),
    clear: bool = typer.Option(False, "--clear", help="Remove the password instead."),
) -> None:
    """Set a user's password (read from the terminal or stdin, never from arguments)."""
    from flows.p4.sandbox import set_password

    if clear:
        set_password(directory, user, None)
        typer.echo(f"password cleared for {user}")
        return
    from flows.settings import read_password

    password = read_password(f"New password for {user}: ")
    if not password:
        fail("empty password; use --clear to remove a password")
    try:
        set_password(directory, user, password)
    except FileNotFoundError as exc:
        fail(str(exc))
    typer.echo(f"password set for {user}")


@app.command("configure")
def configure(
    directory: Path = typer.Argument(..., help="The depot directory."),
    setting: str = typer.Argument(None, help="name=value to set, or name= to go back to the default; "
                                             "none: list the settings."),
) -> None:
    """Show or change a depot setting, as `p4 configure` does on Helix: security (0-6),
    ticket.timeout (seconds a ticket lasts), auth.tickets.nounlocked (0-2)."""
    from flows.p4.sandbox.admin import configure, settings

    try:
        if setting:
            name, sep, value = setting.partition("=")
            if not sep or (value and not value.strip().lstrip("-").isdigit()):
                raise ValueError(f"'{setting}': give name=value with a whole number, or name= to unset")
            configure(directory, name.strip(), int(value) if value.strip() else None)
        for name, value in settings(directory).items():
            typer.echo(f"{name}={value}")
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))


@app.command("restart")
def restart(directory: Path = typer.Argument(..., help="The depot directory.")) -> None:
    """Drop every open connection to the depot, as `p4 admin restart` does to clients."""
    from flows.p4.sandbox import restart

    try:
        restart(directory)
    except FileNotFoundError as exc:
        fail(str(exc))
    typer.echo("restarted: open connections are dropped")
