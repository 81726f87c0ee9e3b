"""``p4integ schedules ...``: cron schedules of templates."""
from __future__ import annotations

from uuid import UUID

import typer

from .acting import ADMIN_NOTE, AS_USER, _me
from .errors import fail

app = typer.Typer(no_args_is_help=True, help=f"Cron schedules of templates. {ADMIN_NOTE}")


def _schedule_id(template: str, value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        fail(f"schedule: '{value}' is not a schedule id; copy it from 'p4integ schedules list {template}'")


def _set(template: str, schedule_id: str, active: bool, user: str | None) -> None:
    from deployments import templates

    templates.set_active(_me(user), template, _schedule_id(template, schedule_id), active)
    typer.echo(f"{'enabled' if active else 'disabled'} {schedule_id}")


@app.command("list")
def list_(template: str, user: str = AS_USER) -> None:
    from deployments import templates

    found = templates.schedules(_me(user), template)
    for s in found:
        nxt = ", ".join(d.strftime("%Y-%m-%d %H:%M %Z") for d in s.next_runs) or "-"
        state = "BROKEN" if s.problem else "enabled" if s.active else "disabled"
        typer.echo(f"{s.id}  {s.cron:16} {s.timezone:16} {state:9} next {nxt}  last run {s.last_run_state or '-'}")
        if s.problem:
            typer.echo(f"    {s.problem}; delete it: p4integ schedules delete {template} {s.id}")


@app.command("add")
def add(template: str, cron: str = typer.Option(..., help="Five-field cron or a preset name."),
        tz: str = typer.Option("UTC", "--timezone"), user: str = AS_USER) -> None:
    from deployments import templates

    s = templates.add_schedule(_me(user), template, cron, tz)
    typer.echo(f"schedule {s.id}: {s.cron} ({s.timezone}); next {s.next_runs[0] if s.next_runs else '-'}")


@app.command("presets")
def presets() -> None:
    from deployments import templates

    for k, v in templates.PRESETS.items():
        typer.echo(f"{k:24} {v}")


@app.command("enable")
def enable(template: str, schedule_id: str, user: str = AS_USER) -> None:
    _set(template, schedule_id, True, user)


@app.command("disable")
def disable(template: str, schedule_id: str, user: str = AS_USER) -> None:
    _set(template, schedule_id, False, user)


@app.command("delete")
def delete(template: str, schedule_id: str, user: str = AS_USER) -> None:
    from deployments import templates

    templates.delete_schedule(_me(user), template, _schedule_id(template, schedule_id))
    typer.echo(f"deleted {schedule_id}")
