"""``p4integ notify ...``: who hears about a job."""
from __future__ import annotations

import typer

from .errors import fail

app = typer.Typer(no_args_is_help=True, help="Who hears when a job needs them, fails or finishes.")


@app.command("set")
def set_(user: str = typer.Argument(..., help="Perforce user (job owner)."),
         email: str = typer.Option(None, help="E-mail address."),
         webhook: str = typer.Option(None, help="Webhook URL (Slack or any URL taking JSON)."),
         off: bool = typer.Option(False, "--off", help="Turn notifications off.")) -> None:
    from deployments.notifications import set_notifications

    try:
        set_notifications(user, email=None if off else email, webhook=None if off else webhook)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(f"{user}: " + ("notifications off" if off or not (email or webhook) else
                             ", ".join(x for x in (email, webhook) if x)))
