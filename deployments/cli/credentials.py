"""``p4integ credentials ...``: stored Perforce passwords."""
from __future__ import annotations

import typer

from .errors import fail

app = typer.Typer(no_args_is_help=True, help="Perforce passwords kept in Prefect Secret blocks.")


@app.command("set")
def set_(user: str = typer.Argument(..., help="Perforce user.")) -> None:
    """Store the user's password (read from the terminal or stdin, never from arguments); schedules use it."""
    from deployments import templates
    from flows.settings import read_password

    password = read_password(f"Perforce password for {user}: ")
    name = templates.store_password(user, password)
    typer.echo(f"stored; use \"password_secret\": \"{name}\" in job specs")


@app.command("remove")
def remove(user: str = typer.Argument(..., help="Perforce user.")) -> None:
    """Forget the user's stored password (the block is deleted, not emptied)."""
    from deployments import templates

    if not templates.forget_password(user):
        fail(f"user: no stored password for '{user}'; nothing to remove (p4integ credentials set {user} stores one)")
    typer.echo(f"removed the stored password of {user}")
