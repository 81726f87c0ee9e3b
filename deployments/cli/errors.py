"""How a p4integ command fails: one line on stderr naming what to fix, and exit code 2.

A person's mistake (a bad argument, an unknown name), a refusal the service understands
(``P4IntegError``) or an unreachable Prefect server never ends in a traceback; anything
else is a bug and keeps its traceback.
"""
from __future__ import annotations

import os
from typing import NoReturn

import typer

from flows.errors import P4IntegError

USAGE = 2  # click's own exit code for a usage error: every refusal of ours uses it too


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(USAGE)


def explain(exc: BaseException) -> str | None:
    """The line to print for a failure a person can act on; None for a bug."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    api = os.environ.get("PREFECT_API_URL", "its configured address")
    if isinstance(exc, P4IntegError):
        return str(exc)
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return f"the Prefect server is not reachable at {api}; start it with 'p4integ up' (or set PREFECT_API_URL)"
    if isinstance(exc, PrefectHTTPStatusError) and exc.response.status_code == 401:
        return (f"the Prefect server at {api} refused this command's credential; run p4integ as the service's "
                "own account, whose P4INTEG_HOME holds the API credential")
    if isinstance(exc, OSError):  # a path that is a file, a directory not writable, a disk full
        return str(exc)
    return None


def run(app: typer.Typer, args: list[str] | None = None) -> None:
    """Run the command line; exits with the command's code. Click's own usage errors (an unknown
    option, a missing argument, a value of the wrong type) are one line too, naming the help."""
    # typer (0.29, pinned from there up) ships click inside itself: its exceptions live there.
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    try:
        code = app(args=args, prog_name="p4integ", standalone_mode=False)
    except NoArgsIsHelpError:  # a bare group: typer has shown its help already
        raise SystemExit(USAGE) from None
    except UsageError as exc:
        where = f"; see '{exc.ctx.command_path} --help'" if exc.ctx else ""
        typer.echo(f"error: {exc.format_message()}{where}", err=True)
        raise SystemExit(USAGE) from None
    except ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        raise SystemExit(USAGE) from None
    except typer.Abort:
        typer.echo("aborted", err=True)
        raise SystemExit(1) from None
    except Exception as exc:  # sorted into a person's mistake or a bug just below
        line = explain(exc)
        if line is None:
            raise
        typer.echo(f"error: {line}", err=True)
        raise SystemExit(USAGE) from None
    raise SystemExit(code if isinstance(code, int) else 0)
