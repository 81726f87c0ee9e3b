"""``p4integ lines ...``: standing integrations that move change by change by themselves."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from .acting import ADMIN_NOTE, AS_USER, _me
from .errors import fail

app = typer.Typer(no_args_is_help=True, help=f"Integration lines: each source change integrated on its own, in "
                  f"order, a person asked only on a conflict. {ADMIN_NOTE}")


@app.command("list")
def list_(user: str = AS_USER) -> None:
    from deployments import lines

    found = lines.list_lines(_me(user))
    if not found:
        typer.echo("no lines; create one with p4integ lines create")
    for li in found:
        state = "paused" if li.paused else "active"
        typer.echo(f"{li.spec.name:24} {li.visibility:8} owner {li.owner or '-':12} {li.spec.mode:10} {state:7} "
                   f"{li.spec.job.mode} in {li.spec.job.client} on {li.spec.job.host}")


@app.command("create")
def create(name: str, spec_file: Path = typer.Option(..., help="The line's job spec as JSON (no changelist)."),
           mode: str = typer.Option("per-change", help="per-change or batched."),
           gate: str = typer.Option("", help="A Perforce key: integrate no change past its value."),
           cron: str = typer.Option("", help="Batched lines: move on this cron schedule (UTC) instead of on "
                                    "each submit, e.g. '0 2 * * *'."),
           global_: bool = typer.Option(False, "--global", help="Visible to everyone (default private)."),
           user: str = AS_USER) -> None:
    from deployments import lines
    from flows.lines import LineSpec

    try:
        spec = LineSpec.model_validate({"name": name, "mode": mode, "gate": gate or None, "cron": cron or None,
                                        "job": json.loads(spec_file.read_text())})
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"spec-file: cannot read {spec_file}: {exc}")
    except ValueError as exc:
        fail(str(exc))
    li = lines.create(_me(user), spec, visibility="global" if global_ else "private", operator=True)
    when = f"on '{li.spec.cron}' (UTC)" if li.spec.cron else "on each submit"
    typer.echo(f"created {li.visibility} line {li.spec.name} ({li.spec.mode}, moves {when}); move it now: "
               f"p4integ lines run {name}")


@app.command("apply")
def apply(path: Path, user: str = AS_USER) -> None:
    """Create or update the lines a YAML file lists (e.g. lines.yaml beside prefect.yaml):
    'lines:' then, per line, name, mode, gate, cron (batched lines), visibility and job (a job spec
    without changelist).
    Every entry is checked before any line is touched."""
    import yaml
    from pydantic import ValidationError

    from deployments import lines
    from flows.lines import LineSpec, spec_problem

    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        fail(f"{path}: cannot read it: {exc}")
    entries = doc.get("lines") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        fail(f"{path}: no 'lines:' list; see 'p4integ lines apply --help' for the format")
    wanted = []
    for i, entry in enumerate(entries):
        where = f"{path}: lines[{i}]" + (f" ({entry.get('name')})" if isinstance(entry, dict) else "")
        if not isinstance(entry, dict):
            fail(f"{where}: each line is a mapping with name, mode, job")
        visibility = entry.get("visibility", "private")
        if visibility not in ("private", "global"):
            fail(f"{where}: visibility: '{visibility}' is not private or global")
        try:
            wanted.append((LineSpec.model_validate({k: v for k, v in entry.items() if k != "visibility"}),
                           visibility))
        except ValidationError as exc:
            fail(f"{where}: " + "; ".join(map(spec_problem, exc.errors())))
    for name, what in lines.apply(_me(user), wanted, operator=True).items():
        typer.echo(f"{name}: {what}")


@app.command("run")
def run(name: str, user: str = AS_USER) -> None:
    """One step now: start the job for the line's next source change (its jobs' ends take the next steps)."""
    from deployments import lines

    typer.echo(f"flow run {lines.run(_me(user), name)}")


@app.command("skip")
def skip(name: str, change: int, user: str = AS_USER) -> None:
    """Never integrate this source change on the line (recorded in Perforce with who skipped it)."""
    from deployments import lines

    lines.skip(_me(user), name, change)
    typer.echo(f"skipped change {change} on line {name}; the line goes on with the next")


@app.command("pause")
def pause(name: str, user: str = AS_USER) -> None:
    from deployments import lines

    lines.set_paused(_me(user), name, True)
    typer.echo(f"paused line {name}: it starts no job until resumed")


@app.command("resume")
def resume(name: str, user: str = AS_USER) -> None:
    from deployments import lines

    lines.set_paused(_me(user), name, False)
    typer.echo(f"resumed line {name}")


@app.command("remove")
def remove(name: str, user: str = AS_USER) -> None:
    from deployments import lines

    lines.remove(_me(user), name)
    typer.echo(f"removed line {name}; its jobs and what they submitted stay")
