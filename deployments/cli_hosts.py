"""``p4integ hosts ...``: enrol build hosts and manage their workers."""
from __future__ import annotations

import sys
from pathlib import Path

import typer

hosts_app = typer.Typer(no_args_is_help=True, help="Build hosts: enrol, deploy workers, health.")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@hosts_app.command("add")
def add(
    name: str = typer.Argument(..., help="Host name used in job specs (pool p4-<name>)."),
    address: str = typer.Option(..., help="Address to connect to."),
    user: str = typer.Option(..., help="SSH user that owns the workspaces."),
    key: Path = typer.Option(..., help="Private key to log in with."),
    port: int = typer.Option(22, help="SSH port."),
    limit: int = typer.Option(4, help="Parallel jobs on this host."),
    api_url: str = typer.Option(None, help="Prefect API URL as the host reaches it."),
    known_hosts: Path = typer.Option(None, help="Take the host key from this known_hosts file."),
    fingerprint: str = typer.Option(None, help="Expected host key fingerprint (SHA256:...), to confirm."),
) -> None:
    """Enrol a host, pinning its SSH host key."""
    import paramiko

    from agent import registry
    from agent.records import HostRecord
    from agent.ssh import Connection, HostError, fetch_host_key

    host_id = address if port == 22 else f"[{address}]:{port}"
    if known_hosts is not None:
        entry = paramiko.HostKeys(str(known_hosts)).lookup(host_id)
        if not entry:
            _fail(f"known_hosts: {known_hosts} has no key for {host_id}")
        pkey = next(iter(entry.values()))
    else:
        try:
            pkey = fetch_host_key(address, port)
        except OSError as exc:
            _fail(f"address: cannot reach {address}:{port} ({exc})")
        typer.echo(f"host key of {host_id}: {pkey.get_name()} {pkey.fingerprint}")
        if fingerprint:
            if fingerprint != pkey.fingerprint:
                _fail(f"fingerprint: the host presents {pkey.fingerprint}, not {fingerprint}; refusing")
        elif sys.stdin.isatty():
            if not typer.confirm("Is this the host's key (compare with ssh-keygen -lf on the host)?"):
                _fail("host key not confirmed")
        else:
            _fail(f"fingerprint: confirm the host key with --fingerprint {pkey.fingerprint} "
                  "(after checking it on the host), or give --known-hosts")
    try:
        record = HostRecord(name=name, address=address, port=port, user=user, key_file=str(key.expanduser()),
                            host_key=f"{pkey.get_name()} {pkey.get_base64()}", limit=limit, api_url=api_url)
    except ValueError as exc:
        _fail(str(exc))
    from agent.converge import Layout, ensure_deployment
    from deployments.register import ensure_pool

    try:
        with Connection(record) as c:
            who = c.run(["hostname"], step="check login").stdout.strip()
            home = c.run(["printenv", "HOME"], step="find home").stdout.strip()
    except HostError as exc:
        _fail(str(exc))
    registry.save(record)
    # The pool and deployment exist from now on, so jobs can be queued before a worker runs.
    ensure_pool(name, limit)
    ensure_deployment(name, Layout(home=home, version="").app)
    typer.echo(f"enrolled {name}: {user}@{address}:{port} (hostname {who}), key {pkey.fingerprint}")


@hosts_app.command("list")
def list_hosts() -> None:
    from agent import registry

    hosts = registry.load_all()
    if not hosts:
        typer.echo("no hosts enrolled; add one with p4integ hosts add")
    for h in hosts.values():
        typer.echo(f"{h.name:16} {h.user}@{h.address}:{h.port}  limit {h.limit}")


@hosts_app.command("status")
def status(name: str = typer.Argument(None, help="One host; all when omitted.")) -> None:
    from agent import registry
    from agent.health import health

    for h in ([registry.get(name)] if name else list(registry.load_all().values())):
        s = health(h)
        beat = s.last_heartbeat.strftime("%Y-%m-%d %H:%M:%S") if s.last_heartbeat else "never"
        typer.echo(f"{h.name:16} {'online' if s.online else 'offline':8} heartbeat {beat}  version {s.version or '-'}"
                   f"  jobs {len(s.running_jobs)}" + (f"  ({s.reason})" if s.reason else ""))


@hosts_app.command("deploy")
def deploy(name: str) -> None:
    """Install (or update) and start the host's worker; idempotent."""
    from agent import registry
    from agent.converge import converge
    from agent.ssh import HostError
    from deployments.settings import api_url

    try:
        report = converge(registry.get(name), api_url(), log=typer.echo)
    except (HostError, KeyError) as exc:
        _fail(str(exc).strip("'\""))
    typer.echo(f"{name}: {'changed: ' + '; '.join(report.changes) if report.changed else 'no change'} "
               f"(version {report.version}, {report.python}, {report.seconds:.1f} s)")


@hosts_app.command("stop")
def stop(name: str) -> None:
    """Stop the host's worker; leaves no process behind."""
    from agent import registry
    from agent.converge import stop_worker
    from agent.ssh import Connection, HostError

    try:
        with Connection(registry.get(name)) as c:
            was = stop_worker(c)
    except (HostError, KeyError) as exc:
        _fail(str(exc).strip("'\""))
    typer.echo(f"{name}: worker {'stopped' if was else 'was not running'}")


@hosts_app.command("remove")
def remove(name: str) -> None:
    """Stop the worker and forget the host."""
    from agent import registry

    try:
        stop(name)
    except typer.Exit:
        pass
    typer.echo(f"{name}: {'removed' if registry.remove(name) else 'was not enrolled'}")
