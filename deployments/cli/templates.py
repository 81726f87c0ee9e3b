"""``p4integ templates ...``: saved integration jobs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from flows.spec import JobSpec

from .acting import ADMIN_NOTE, AS_USER, _me
from .errors import fail

app = typer.Typer(no_args_is_help=True, help=f"Saved integration jobs (Prefect deployments). {ADMIN_NOTE}")


def _spec(path: Path) -> JobSpec:
    from flows.spec import JobSpec

    try:
        return JobSpec.model_validate(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"spec-file: cannot read {path}: {exc}")
    except ValueError as exc:
        fail(f"spec-file: {exc}")


@app.command("list")
def list_(user: str = AS_USER) -> None:
    from deployments import templates

    found = templates.list_templates(_me(user))
    if not found:
        typer.echo("no templates; create one with p4integ templates create")
    for t in found:
        typer.echo(f"{t.name:24} {t.visibility:8} owner {t.owner or '(project)':12} host {t.host:10} {t.description}")


@app.command("show")
def show(name: str, user: str = AS_USER) -> None:
    from deployments import templates

    t = templates.get(_me(user), name)
    shown = {**t.model_dump(mode="json"), "spec": templates.spec_for_display(t.spec)}
    typer.echo(json.dumps(shown, indent=2))


@app.command("create")
def create(name: str, spec_file: Path = typer.Option(..., help="The job spec as JSON."),
           global_: bool = typer.Option(False, "--global", help="Visible to everyone (default private)."),
           description: str = typer.Option("", help="What the template is for."), user: str = AS_USER) -> None:
    from deployments import templates

    t = templates.create(_me(user), name, _spec(spec_file), visibility="global" if global_ else "private",
                         description=description, operator=True)  # the CLI is the operator's: an administrator
    typer.echo(f"created {t.visibility} template {t.name} on host {t.host}: "
               f"prefect deployment run 'integrate/{t.name}'")


@app.command("edit")
def edit(name: str, spec_file: Path = typer.Option(None), description: str = typer.Option(None),
         visibility: str = typer.Option(None, help="global or private"), user: str = AS_USER) -> None:
    from deployments import templates

    if spec_file is None and description is None and visibility is None:
        fail("give what to change: --spec-file, --description or --visibility")
    if spec_file is not None or description is not None:
        templates.edit(_me(user), name, spec=_spec(spec_file) if spec_file else None, description=description,
                       operator=True)
    if visibility:
        if visibility not in ("global", "private"):
            fail("visibility: use global or private")
        templates.switch(_me(user), name, visibility, operator=True)  # type: ignore[arg-type]
    typer.echo(f"updated {name}")


@app.command("delete")
def delete(name: str, user: str = AS_USER) -> None:
    from deployments import templates

    templates.delete(_me(user), name)
    typer.echo(f"deleted {name}")


@app.command("run")
def run(name: str, changelist: int = typer.Option(None), description: str = typer.Option(None),
        trial: bool = typer.Option(None, "--trial/--no-trial"), client: str = typer.Option(None),
        user: str = AS_USER) -> None:
    """Run a template now: as its owner's saved identity if you own it, else as you with your stored credential."""
    from deployments import templates

    try:
        run_id = templates.run(_me(user), name, changelist=changelist, description=description, trial=trial,
                               client=client)
    except (templates.TemplateError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"flow run {run_id}")
