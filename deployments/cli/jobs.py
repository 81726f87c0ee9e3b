"""``p4integ demo|resume``: a first job, and answering a job that waits."""
from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .errors import fail
from .service import up


@app.command()
def demo(directory: Path = typer.Option(None, "--dir", help="Where to create the example depot."),
         browser: bool = typer.Option(False, "--browser", help="Also start the front page: asks for a password "
                                      "for the demo user, to sign in with.")) -> None:
    """Seed an example depot and run an integration that merges and pauses on a conflict."""
    import time as _time

    from prefect.client.schemas.objects import StateType

    from deployments import jobs
    from flows import settings
    from flows.p4.example import make_example
    from flows.spec import JobSpec
    from flows.vocabulary import PAUSED_OR_FINAL

    up(host_limit=4, replicas=1)
    target = directory or settings.home() / "demo" / _time.strftime("%Y%m%d-%H%M%S")
    ex = make_example(target)
    secret = None
    if browser:  # the password must exist before the job starts: the job signs in with it
        from deployments.templates import store_password
        from flows.p4.sandbox import set_password
        from flows.settings import read_password

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
            from deployments import processes

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

    from deployments import jobs
    from flows.spec import FileChoice
    from flows.vocabulary import PAUSED_OR_FINAL

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
