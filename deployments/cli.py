"""``p4integ``: the product's command line."""
from __future__ import annotations

import os
from pathlib import Path

import typer

from .cli_errors import fail, run
from flows.settings import P4PORT_VAR

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Perforce integration service.")
sandbox_app = typer.Typer(no_args_is_help=True, help="The bundled sandbox Helix server.")
app.add_typer(sandbox_app, name="sandbox")
from .cli_hosts import hosts_app  # noqa: E402 - registered after the app exists

app.add_typer(hosts_app, name="hosts")
from .cli_commands import commands_app  # noqa: E402

app.add_typer(commands_app, name="commands")
from .cli_templates import credentials_app, notify_app, schedules_app, templates_app  # noqa: E402

app.add_typer(templates_app, name="templates")
app.add_typer(schedules_app, name="schedules")
app.add_typer(credentials_app, name="credentials")
app.add_typer(notify_app, name="notify")


@app.callback()
def _environment() -> None:
    """Every Prefect call made by this command goes to our server, telemetry off."""
    from flows import settings

    for key, value in settings.prefect_env().items():
        if key.startswith(("PREFECT_", "DO_NOT_TRACK", "P4INTEG_")):
            os.environ.setdefault(key, value)


def _make_example(directory: Path):  # noqa: ANN202 - flows.p4.example.Example
    from flows.p4.example import make_example

    try:
        return make_example(directory)
    except FileExistsError as exc:
        fail(str(exc))


@sandbox_app.command("init")
def sandbox_init(
    directory: Path = typer.Argument(..., help="Directory for the depot (created if missing)."),
    example: bool = typer.Option(False, "--example", help="Seed main/rel branches with work to merge."),
    unicode: bool = typer.Option(False, "--unicode", help="Unicode mode, like 'p4d -xi': clients must set P4CHARSET."),
    case_insensitive: bool = typer.Option(False, "--case-insensitive",
                                          help="Case-insensitive file names, like 'p4d -C1'."),
) -> None:
    """Create a sandbox depot; print the P4PORT to use."""
    if directory.exists() and not directory.is_dir():
        fail(f"directory: {directory} is a file; give a directory (it is created if missing)")
    if example and (unicode or case_insensitive):
        fail("--example makes a default server; drop --unicode/--case-insensitive or --example")
    if example:
        ex = _make_example(directory)
        typer.echo(f"P4PORT={ex.port}")
        typer.echo(f"P4USER={ex.user}")
        typer.echo(f"P4CLIENT={ex.client}  (root {ex.workspace})")
        typer.echo(f"integrate {ex.source} -> {ex.target} (branch spec {ex.branch}): "
                   "one clean merge, one conflict, one new file, one binary copy")
        return
    from flows.p4.sandbox import init_depot

    try:
        port = init_depot(directory, unicode=unicode, case_insensitive=case_insensitive)
    except ValueError as exc:
        fail(f"directory: {exc}")
    typer.echo(f"P4PORT={port}")
    # On stderr: stdout stays the P4PORT line scripts read.
    typer.echo("security=4, as a new Helix server: set each user's password (p4integ sandbox passwd), "
               "or lower it for a private server (p4integ sandbox configure DIR security=0)", err=True)
    if unicode:
        typer.echo("P4CHARSET=utf8  (a unicode server refuses clients without a charset)")


@sandbox_app.command("demo")
def sandbox_demo(
    directory: Path = typer.Argument(..., help="An empty directory for the example depot."),
) -> None:
    """Seed the example depot and integrate main into rel through the P4 session:
    one file merges by itself, one conflict is left for a person."""
    from flows.p4.session import P4Session

    ex = _make_example(directory)
    typer.echo(f"depot        {ex.port}")
    typer.echo(f"workspace    {ex.client} at {ex.workspace}")
    with P4Session(ex.port, ex.user, ex.client, cwd=ex.workspace) as s:
        cl = s.latest_change(ex.source)
        synced = s.sync(f"//{ex.client}/...")
        typer.echo(f"latest CL    {cl} in {ex.source}")
        typer.echo(f"sync         {synced.added} added, {synced.updated} updated")
        change = s.create_change(f"Integrate {ex.source}@{cl} into {ex.target}")
        result = s.integrate(change=change, branch=ex.branch, at_change=cl)
        typer.echo(f"integrate    {result.total} files into change {change}: "
                   + ", ".join(f"{n} {a}" for a, n in sorted(result.by_action.items())))
        summary = s.auto_resolve("am", change=change)
        typer.echo("resolve -am  " + ", ".join(f"{n} {how}" for how, n in sorted(summary.by_how.items()))
                   + f"; {len(summary.skipped)} skipped")
        for pending in s.pending_resolves(change=change):
            typer.echo(f"conflict     {pending.local_path} <- {pending.from_file}"
                       f"#{pending.end_from_rev} ({pending.content_resolve_type})")
            typer.echo(f"             resolve on the host: p4 -c {ex.client} resolve -c {change} {pending.local_path}")


@sandbox_app.command("passwd")
def sandbox_passwd(
    directory: Path = typer.Argument(..., help="The depot directory."),
    user: str = typer.Argument(..., help="Perforce user whose password to set."),
    clear: bool = typer.Option(False, "--clear", help="Remove the password instead."),
) -> None:
    """Set a user's password (read from the terminal or stdin, never from arguments)."""
    from flows.p4.sandbox import set_password

    if clear:
        set_password(directory, user, None)
        typer.echo(f"password cleared for {user}")
        return
    from flows.settings import read_password

    password = read_password(f"New password for {user}: ")
    if not password:
        fail("empty password; use --clear to remove a password")
    try:
        set_password(directory, user, password)
    except FileNotFoundError as exc:
        fail(str(exc))
    typer.echo(f"password set for {user}")


@sandbox_app.command("configure")
def sandbox_configure(
    directory: Path = typer.Argument(..., help="The depot directory."),
    setting: str = typer.Argument(None, help="name=value to set, or name= to go back to the default; "
                                             "none: list the settings."),
) -> None:
    """Show or change a depot setting, as `p4 configure` does on Helix: security (0-6),
    ticket.timeout (seconds a ticket lasts), auth.tickets.nounlocked (0-2)."""
    from flows.p4.sandbox.admin import configure, settings

    try:
        if setting:
            name, sep, value = setting.partition("=")
            if not sep or (value and not value.strip().lstrip("-").isdigit()):
                raise ValueError(f"'{setting}': give name=value with a whole number, or name= to unset")
            configure(directory, name.strip(), int(value) if value.strip() else None)
        for name, value in settings(directory).items():
            typer.echo(f"{name}={value}")
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))


@sandbox_app.command("restart")
def sandbox_restart(directory: Path = typer.Argument(..., help="The depot directory.")) -> None:
    """Drop every open connection to the depot, as `p4 admin restart` does to clients."""
    from flows.p4.sandbox import restart

    try:
        restart(directory)
    except FileNotFoundError as exc:
        fail(str(exc))
    typer.echo("restarted: open connections are dropped")


@app.command()
def up(host_limit: int = typer.Option(4, help="Parallel jobs on the local host (1 to 64).")) -> None:
    """Start (idempotently) the local Prefect server, the local pool, deployment and worker."""
    from agent import pools
    from agent.records import check_job_limit
    from flows import settings

    from . import processes, register

    try:  # before anything starts: a limit of 0 would leave every job Late with no word why
        check_job_limit(host_limit, "--host-limit")
    except ValueError as exc:
        fail(str(exc))

    try:
        started = processes.start_server()
    except RuntimeError as exc:  # e.g. a server up without a credential: the message says what to do
        fail(str(exc))
    pools.ensure_pool("local", host_limit)
    register.ensure_deployment()
    from . import notifications, recovery

    notifications.ensure_automation()
    recovery.ensure_automations()
    worker = processes.start_worker("local", host_limit)
    processes.start_dispatcher()
    ui = settings.api_url().rsplit("/api", 1)[0]
    typer.echo(f"Prefect server  {ui}  ({'started' if started else 'already running'})")
    typer.echo(f"Prefect API     {settings.api_url()}")
    typer.echo(f"API credential  in {settings.api_auth_file()} (mode 0600; the Prefect UI asks for it)")
    typer.echo(f"worker          pool {settings.pool_name('local')} ({'started' if worker else 'already running'})")
    typer.echo(f"deployment      {settings.FLOW_NAME}/local")
    typer.echo(f"state           {settings.home()}")


@app.command()
def ui(p4port: str = typer.Option(None, "--p4port", envvar=P4PORT_VAR,
                                  help="Perforce server people sign in against, e.g. ssl:perforce:1666.")) -> None:
    """Start the front page (after `up`), bound to localhost unless P4INTEG_UI_HOST says otherwise."""
    from . import processes

    from flows.ports import check_p4port

    if not p4port:
        fail("--p4port: give the Perforce server people sign in against, e.g. "
             "--p4port ssl:perforce:1666 (or set P4INTEG_P4PORT)")
    try:  # before anything starts
        p4port = check_p4port(p4port, "--p4port")
    except ValueError as exc:
        fail(str(exc))
    up(host_limit=4)
    state = processes.start_ui(p4port)
    said = {"started": "started", "running": "already running",
            "restarted": "restarted: it was running with other settings"}[state]
    typer.echo(f"front page      {processes.ui_url()}  ({said})")
    typer.echo(f"sign in         with a Perforce account on {p4port}")


@app.command()
def down() -> None:
    """Stop what 'up' started."""
    from . import processes

    names = sorted(processes.running(), key=lambda n: n == "server")  # the server last
    for name in names:
        processes.stop(name)
        typer.echo(f"stopped {name}")
    if not names:
        typer.echo("nothing running")


@app.command()
def demo(directory: Path = typer.Option(None, "--dir", help="Where to create the example depot."),
         browser: bool = typer.Option(False, "--browser", help="Also start the front page: asks for a password "
                                      "for the demo user, to sign in with.")) -> None:
    """Seed an example depot and run an integration that merges and pauses on a conflict."""
    import time as _time

    from prefect.client.schemas.objects import StateType

    from flows.p4.example import make_example
    from flows.spec import JobSpec
    from flows.vocabulary import PAUSED_OR_FINAL

    from . import jobs

    from flows import settings

    up(host_limit=4)
    target = directory or settings.home() / "demo" / _time.strftime("%Y%m%d-%H%M%S")
    ex = make_example(target)
    secret = None
    if browser:  # the password must exist before the job starts: the job signs in with it
        from flows.p4.sandbox import set_password

        from flows.settings import read_password
        from .templates import store_password

        password = read_password(f"Password for {ex.user}, to sign in to the front page with: ")
        if not password:
            fail("--browser: an empty password; type one to sign in with")
        set_password(ex.depot_dir, ex.user, password)
        secret = store_password(ex.user, password)
    spec = JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client, branch=ex.branch, password_secret=secret)
    run_id = jobs.submit(spec)
    typer.echo(f"flow run        {run_id}")
    run = jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=300)
    ui = settings.api_url().rsplit("/api", 1)[0]
    typer.echo(f"state           {jobs.state_label(run)}   {ui}/runs/flow-run/{run_id}")
    for c in jobs.conflicts(run_id) if run.state and run.state.type == StateType.PAUSED else []:
        typer.echo(f"conflict        {c['depot_file']} <- {c['from_file']}{c['from_revs']}")
        typer.echo(f"                on the host: {c['resolve_command']}")
    if run.state and run.state.type == StateType.PAUSED:
        typer.echo(f"finish it with  p4integ resume {run_id} --theirs   (or --yours, --recheck, --abort)")
        if browser:
            from . import processes

            processes.start_ui(ex.port)
            typer.echo(f"or in a browser {processes.ui_url()}/job?run={run_id}   (sign in as {ex.user})")
        else:
            typer.echo("or in a browser p4integ demo --browser   (a new demo, with the front page)")


@app.command()
def resume(
    run_id: str = typer.Argument(..., help="The paused flow run."),
    theirs: bool = typer.Option(False, "--theirs", help="Take the source's version of every conflict."),
    yours: bool = typer.Option(False, "--yours", help="Keep the target's version of every conflict."),
    recheck: bool = typer.Option(False, "--recheck", help="I resolved on the host: check again."),
    abort: bool = typer.Option(False, "--abort", help="Stop the job and clean up."),
    wait: bool = typer.Option(True, help="Wait for the run to finish or pause again."),
) -> None:
    """Resume a job paused at NEEDS_RESOLVE."""
    from prefect.client.schemas.objects import StateType

    from flows.spec import FileChoice
    from flows.vocabulary import PAUSED_OR_FINAL

    from . import jobs

    chosen = [n for n, v in (("theirs", theirs), ("yours", yours), ("recheck", recheck), ("abort", abort)) if v]
    if len(chosen) != 1:
        fail("give exactly one of --theirs, --yours, --recheck, --abort")
    what = chosen[0]
    try:
        if what in ("theirs", "yours"):
            files = [FileChoice(path=c["depot_file"], choice=what, kind=c.get("kind", "content"))  # type: ignore[arg-type]
                     for c in jobs.conflicts(jobs.run_uuid(run_id))]
            jobs.resume(run_id, "apply", files)
        else:
            jobs.resume(run_id, what)
    except ValueError as exc:
        fail(str(exc))
    if not wait:
        return
    # Resuming moves the run out of Paused at once; it then finishes or waits again.
    run = jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=300)
    typer.echo(f"state           {jobs.state_label(run)}")
    if run.state and run.state.type in (StateType.FAILED, StateType.CRASHED):
        raise typer.Exit(1)


def main() -> None:
    from flows.settings import PRIVATE_UMASK

    # Before anything is written: what the command makes (keys, records, the processes it
    # starts and what they write) is the service account's alone, whatever the login's umask.
    os.umask(PRIVATE_UMASK)
    run(app)


if __name__ == "__main__":
    main()
