"""The ``p4integ`` Typer app and what every command does first."""
from __future__ import annotations

import os

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Perforce integration service.")


@app.callback()
def _environment() -> None:
    """Every Prefect call made by this command goes to our server, telemetry off."""
    from flows import settings

    for key, value in settings.prefect_env().items():
        if key.startswith(("PREFECT_", "DO_NOT_TRACK", "P4INTEG_")):
            os.environ.setdefault(key, value)
