"""``p4integ``: the product's command line."""
from __future__ import annotations

import getpass
import sys
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Perforce integration service.")
sandbox_app = typer.Typer(no_args_is_help=True, help="The bundled sandbox Helix server.")
app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.command("init")
def sandbox_init(
    directory: Path = typer.Argument(..., help="Directory for the depot (created if missing)."),
    example: bool = typer.Option(False, "--example", help="Seed main/rel branches with work to merge."),
) -> None:
    """Create a sandbox depot; print the P4PORT to use."""
    if example:
        from flows.p4.example import make_example

        try:
            ex = make_example(directory)
        except FileExistsError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"P4PORT={ex.port}")
        typer.echo(f"P4USER={ex.user}")
        typer.echo(f"P4CLIENT={ex.client}  (root {ex.workspace})")
        typer.echo(f"integrate {ex.source} -> {ex.target} (branch spec {ex.branch}): "
                   "one clean merge, one conflict, one new file, one binary copy")
        return
    from flows.p4.sandbox import init_depot

    typer.echo(f"P4PORT={init_depot(directory)}")


@sandbox_app.command("demo")
def sandbox_demo(
    directory: Path = typer.Argument(..., help="An empty directory for the example depot."),
) -> None:
    """Seed the example depot and integrate main into rel through the P4 session:
    one file merges by itself, one conflict is left for a person."""
    from flows.p4.example import make_example
    from flows.p4.session import P4Session

    try:
        ex = make_example(directory)
    except FileExistsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
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
        summary = s.auto_resolve("am")
        typer.echo("resolve -am  " + ", ".join(f"{n} {how}" for how, n in sorted(summary.by_how.items()))
                   + f"; {len(summary.skipped)} skipped")
        for pending in s.pending_resolves():
            typer.echo(f"conflict     {pending.local_path} <- {pending.from_file}"
                       f"#{pending.end_from_rev} ({pending.content_resolve_type})")
            typer.echo(f"             resolve on the host: p4 -c {ex.client} resolve {pending.local_path}")


@sandbox_app.command("passwd")
def sandbox_passwd(
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
    password = getpass.getpass(f"New password for {user}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if not password:
        typer.echo("error: empty password; use --clear to remove a password", err=True)
        raise typer.Exit(2)
    try:
        set_password(directory, user, password)
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"password set for {user}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
