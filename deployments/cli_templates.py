"""``p4integ templates|schedules|credentials ...``: saved jobs, cron, stored passwords."""
from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from uuid import UUID

import typer

from .cli_errors import fail

# Said plainly in --help: whoever runs this CLI on the service host can act as anyone.
ADMIN_NOTE = ("An administrator's tool on the service host: --as acts as any user, with no password asked; "
              "people use the front page, which signs them in.")
templates_app = typer.Typer(no_args_is_help=True, help=f"Saved integration jobs (Prefect deployments). {ADMIN_NOTE}")
schedules_app = typer.Typer(no_args_is_help=True, help=f"Cron schedules of templates. {ADMIN_NOTE}")
credentials_app = typer.Typer(no_args_is_help=True, help="Perforce passwords kept in Prefect Secret blocks.")

AS_USER = typer.Option(None, "--as", help="Act as this user (default: $P4USER or the login name); not checked: "
                       "the CLI is an administrator's tool on the service host.")


def _me(user: str | None) -> str:
    return user or os.environ.get("P4USER") or getpass.getuser()


def _spec(path: Path):  # noqa: ANN202 - JobSpec
    from flows.spec import JobSpec

    try:
        return JobSpec.model_validate(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"spec-file: cannot read {path}: {exc}")
    except ValueError as exc:
        fail(f"spec-file: {exc}")


@templates_app.command("list")
def t_list(user: str = AS_USER) -> None:
    from deployments import templates

    found = templates.list_templates(_me(user))
    if not found:
        typer.echo("no templates; create one with p4integ templates create")
    for t in found:
        typer.echo(f"{t.name:24} {t.visibility:8} owner {t.owner or '(project)':12} host {t.host:10} {t.description}")


@templates_app.command("show")
def t_show(name: str, user: str = AS_USER) -> None:
    from deployments import templates

    try:
        t = templates.get(_me(user), name)
    except templates.TemplateError as exc:
        fail(str(exc))
    shown = {**t.model_dump(mode="json"), "spec": templates.spec_for_display(t.spec)}
    typer.echo(json.dumps(shown, indent=2))


@templates_app.command("create")
def t_create(name: str, spec_file: Path = typer.Option(..., help="The job spec as JSON."),
             global_: bool = typer.Option(False, "--global", help="Visible to everyone (default private)."),
             description: str = typer.Option("", help="What the template is for."), user: str = AS_USER) -> None:
    from deployments import templates

    try:
        t = templates.create(_me(user), name, _spec(spec_file), visibility="global" if global_ else "private",
                             description=description, operator=True)  # the CLI is the operator's: an administrator
    except templates.TemplateError as exc:
        fail(str(exc))
    typer.echo(f"created {t.visibility} template {t.name} on host {t.host}: prefect deployment run 'integrate/{t.name}'")


@templates_app.command("edit")
def t_edit(name: str, spec_file: Path = typer.Option(None), description: str = typer.Option(None),
           visibility: str = typer.Option(None, help="global or private"), user: str = AS_USER) -> None:
    from deployments import templates

    if spec_file is None and description is None and visibility is None:
        fail("give what to change: --spec-file, --description or --visibility")
    try:
        if spec_file is not None or description is not None:
            templates.edit(_me(user), name, spec=_spec(spec_file) if spec_file else None, description=description,
                           operator=True)
        if visibility:
            if visibility not in ("global", "private"):
                fail("visibility: use global or private")
            templates.switch(_me(user), name, visibility, operator=True)  # type: ignore[arg-type]
    except templates.TemplateError as exc:
        fail(str(exc))
    typer.echo(f"updated {name}")


@templates_app.command("delete")
def t_delete(name: str, user: str = AS_USER) -> None:
    from deployments import templates

    try:
        templates.delete(_me(user), name)
    except templates.TemplateError as exc:
        fail(str(exc))
    typer.echo(f"deleted {name}")


@templates_app.command("run")
def t_run(name: str, changelist: int = typer.Option(None), description: str = typer.Option(None),
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


@schedules_app.command("list")
def s_list(template: str, user: str = AS_USER) -> None:
    from deployments import templates

    try:
        found = templates.schedules(_me(user), template)
    except templates.TemplateError as exc:
        fail(str(exc))
    for s in found:
        nxt = ", ".join(d.strftime("%Y-%m-%d %H:%M %Z") for d in s.next_runs) or "-"
        state = "BROKEN" if s.problem else "enabled" if s.active else "disabled"
        typer.echo(f"{s.id}  {s.cron:16} {s.timezone:16} {state:9} next {nxt}  last run {s.last_run_state or '-'}")
        if s.problem:
            typer.echo(f"    {s.problem}; delete it: p4integ schedules delete {template} {s.id}")


@schedules_app.command("add")
def s_add(template: str, cron: str = typer.Option(..., help="Five-field cron or a preset name."),
          tz: str = typer.Option("UTC", "--timezone"), user: str = AS_USER) -> None:
    from deployments import templates

    try:
        s = templates.add_schedule(_me(user), template, cron, tz)
    except templates.TemplateError as exc:
        fail(str(exc))
    typer.echo(f"schedule {s.id}: {s.cron} ({s.timezone}); next {s.next_runs[0] if s.next_runs else '-'}")


@schedules_app.command("presets")
def s_presets() -> None:
    from deployments import templates

    for k, v in templates.PRESETS.items():
        typer.echo(f"{k:24} {v}")


def _schedule_id(template: str, value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        fail(f"schedule: '{value}' is not a schedule id; copy it from 'p4integ schedules list {template}'")


def _set(template: str, schedule_id: str, active: bool, user: str | None) -> None:
    from deployments import templates

    try:
        templates.set_active(_me(user), template, _schedule_id(template, schedule_id), active)
    except templates.TemplateError as exc:
        fail(str(exc))
    typer.echo(f"{'enabled' if active else 'disabled'} {schedule_id}")


@schedules_app.command("enable")
def s_enable(template: str, schedule_id: str, user: str = AS_USER) -> None:
    _set(template, schedule_id, True, user)


@schedules_app.command("disable")
def s_disable(template: str, schedule_id: str, user: str = AS_USER) -> None:
    _set(template, schedule_id, False, user)


@schedules_app.command("delete")
def s_delete(template: str, schedule_id: str, user: str = AS_USER) -> None:
    from deployments import templates

    try:
        templates.delete_schedule(_me(user), template, _schedule_id(template, schedule_id))
    except templates.TemplateError as exc:
        fail(str(exc))
    typer.echo(f"deleted {schedule_id}")


@credentials_app.command("set")
def c_set(user: str = typer.Argument(..., help="Perforce user.")) -> None:
    """Store the user's password (read from the terminal or stdin, never from arguments); schedules use it."""
    from deployments import templates

    from flows.settings import read_password

    password = read_password(f"Perforce password for {user}: ")
    try:
        name = templates.store_password(user, password)
    except templates.TemplateError as exc:
        fail(str(exc))
    typer.echo(f"stored; use \"password_secret\": \"{name}\" in job specs")


@credentials_app.command("remove")
def c_remove(user: str = typer.Argument(..., help="Perforce user.")) -> None:
    """Forget the user's stored password (the block is deleted, not emptied)."""
    from deployments import templates

    if not templates.forget_password(user):
        fail(f"user: no stored password for '{user}'; nothing to remove (p4integ credentials set {user} stores one)")
    typer.echo(f"removed the stored password of {user}")


notify_app = typer.Typer(no_args_is_help=True, help="Who hears when a job needs them, fails or finishes.")


@notify_app.command("set")
def n_set(user: str = typer.Argument(..., help="Perforce user (job owner)."),
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
