"""``p4integ``: the product's command line. Each command group is a module of this package."""
from __future__ import annotations

import os

from . import commands, credentials, hosts, lines, notify, sandbox, schedules, templates
from . import jobs, service  # noqa: F401 - importing them registers their commands on the app
from .app import app
from .errors import run

app.add_typer(sandbox.app, name="sandbox")
app.add_typer(hosts.app, name="hosts")
app.add_typer(commands.app, name="commands")
app.add_typer(templates.app, name="templates")
app.add_typer(lines.app, name="lines")
app.add_typer(schedules.app, name="schedules")
app.add_typer(credentials.app, name="credentials")
app.add_typer(notify.app, name="notify")


def main() -> None:
    from flows.settings import PRIVATE_UMASK

    # Before anything is written: what the command makes (keys, records, the processes it
    # starts and what they write) is the service account's alone, whatever the login's umask.
    os.umask(PRIVATE_UMASK)
    run(app)
