"""Whom a command acts as: ``--as`` on the service host (an administrator's tool)."""
from __future__ import annotations

import getpass
import os

import typer

# Said plainly in --help: whoever runs this CLI on the service host can act as anyone.
ADMIN_NOTE = ("An administrator's tool on the service host: --as acts as any user, with no password asked; "
              "people use the front page, which signs them in.")


AS_USER = typer.Option(None, "--as", help="Act as this user (default: $P4USER or the login name); not checked: "
                       "the CLI is an administrator's tool on the service host.")


def _me(user: str | None) -> str:
    return user or os.environ.get("P4USER") or getpass.getuser()
