"""``p4integ up|ui|down``: the service's processes on this machine."""
from __future__ import annotations

import typer

from flows.settings import P4PORT_VAR

from .app import app
from .errors import fail


@app.command()
def up(host_limit: int = typer.Option(4, help="Parallel jobs on the local host (1 to 64)."),
       replicas: int = typer.Option(1, help="Prefect API replicas behind one address (2 or more: PostgreSQL, "
                                            "Redis and HAProxy, see docs/architecture.md).")) -> None:
    """Start (idempotently) the local Prefect server, the local pool, deployment and worker."""
    from agent import pools
    from agent.records import check_job_limit
    from deployments import processes, register
    from deployments import replicas as scaled
    from flows import settings

    try:  # before anything starts: a limit of 0 would leave every job Late with no word why
        check_job_limit(host_limit, "--host-limit")
        scaled.check(replicas)
    except ValueError as exc:
        fail(str(exc))

    try:
        started = processes.start_server(replicas)
    except RuntimeError as exc:  # e.g. a server up without a credential: the message says what to do
        fail(str(exc))
    pools.ensure_pool("local", host_limit)
    register.ensure_deployment()
    from deployments import notifications, recovery

    notifications.ensure_automation()
    recovery.ensure_automations()
    worker = processes.start_worker("local", host_limit)
    processes.start_dispatcher()
    ui = settings.api_url().rsplit("/api", 1)[0]
    typer.echo(f"Prefect server  {ui}  ({'started' if started else 'already running'})")
    typer.echo(f"Prefect API     {settings.api_url()}")
    replica_count = len(scaled.replica_names())
    if replica_count:
        typer.echo(f"                {replica_count} API replicas behind HAProxy, one services process, Redis")
    typer.echo(f"API credential  in {settings.api_auth_file()} (mode 0600; the Prefect UI asks for it)")
    typer.echo(f"worker          pool {settings.pool_name('local')} ({'started' if worker else 'already running'})")
    typer.echo(f"deployment      {settings.FLOW_NAME}/local")
    typer.echo(f"state           {settings.home()}")


@app.command()
def ui(p4port: str = typer.Option(None, "--p4port", envvar=P4PORT_VAR,
                                  help="Perforce server people sign in against, e.g. ssl:perforce:1666.")) -> None:
    """Start the front page (after `up`), bound to localhost unless P4INTEG_UI_HOST says otherwise."""
    from deployments import processes
    from flows.ports import check_p4port

    if not p4port:
        fail("--p4port: give the Perforce server people sign in against, e.g. "
             "--p4port ssl:perforce:1666 (or set P4INTEG_P4PORT)")
    try:  # before anything starts
        p4port = check_p4port(p4port, "--p4port")
    except ValueError as exc:
        fail(str(exc))
    up(host_limit=4, replicas=1)
    state = processes.start_ui(p4port)
    said = {"started": "started", "running": "already running",
            "restarted": "restarted: it was running with other settings"}[state]
    typer.echo(f"front page      {processes.ui_url()}  ({said})")
    typer.echo(f"sign in         with a Perforce account on {p4port}")


@app.command()
def down() -> None:
    """Stop what 'up' started."""
    from deployments import processes
    from deployments.replicas import server_side

    names = sorted(processes.running(), key=server_side)  # the server last
    for name in names:
        processes.stop(name)
        typer.echo(f"stopped {name}")
    if not names:
        typer.echo("nothing running")
