"""``p4integ commands ...``: the site commands jobs may name, defined by an administrator."""
from __future__ import annotations

import json

import typer
from pydantic import ValidationError

from .errors import fail

app = typer.Typer(no_args_is_help=True, help="Site commands (sync wrapper, hooks, build, name check, "
                           "push tool) that jobs pick by name.")


@app.command("add")
def add(
    name: str = typer.Argument(..., help="What jobs call it by, e.g. fast-sync."),
    argv: list[str] = typer.Argument(..., help="After --: the program and its arguments; {change}, {client}, "
                                     "{cl}, {port}, {user} and {root} are filled in when it runs."),
    host: str = typer.Option(None, help="Only for this host (it replaces an every-host command of that name)."),
    env: list[str] = typer.Option([], help="NAME=VALUE the command gets in its environment; repeatable."),
    description: str = typer.Option("", help="What it does, shown where jobs pick it."),
) -> None:
    """Define (or replace) a site command: p4integ commands add NAME [--host H] -- PROGRAM ARGS..."""
    from flows import site_commands

    pairs: dict[str, str] = {}
    for item in env:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"env: '{item}' is not NAME=VALUE")
        pairs[key] = value
    try:
        command = site_commands.SiteCommand(name=name, argv=argv, host=host, env=pairs, description=description)
    except ValidationError as exc:
        fail("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()))
    replaced = site_commands.define(command)
    typer.echo(f"{'replaced' if replaced else 'defined'} site command {name} for {command.where}: "
               f"{json.dumps(command.argv)}")


@app.command("list")
def list_(host: str = typer.Option(None, help="Only what a job on this host may name.")) -> None:
    """The site commands, with the host each is for."""
    from flows import site_commands

    defined = list(site_commands.for_host(host).values()) if host else site_commands.load()
    if not defined:
        typer.echo("no site commands defined; add one with: p4integ commands add NAME -- PROGRAM ARGS...")
        return
    for c in defined:
        env = " ".join(f"{k}=..." for k in sorted(c.env))
        typer.echo(f"{c.name:<20} {c.where:<18} {json.dumps(c.argv)}{'  env: ' + env if env else ''}"
                   f"{'  - ' + c.description if c.description else ''}")


@app.command("remove")
def remove(name: str = typer.Argument(...),
           host: str = typer.Option(None, help="The host it was defined for.")) -> None:
    """Remove a definition; jobs that name it then stop at their first stage, saying so."""
    from flows import site_commands

    if not site_commands.remove(name, host):
        fail(f"name: no site command '{name}' defined for {f'host {host}' if host else 'every host'}; "
              "see p4integ commands list")
    typer.echo(f"removed site command {name}")
