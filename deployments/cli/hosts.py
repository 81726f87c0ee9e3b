"""``p4integ hosts ...``: enrol build hosts and manage their workers."""
from __future__ import annotations

import sys
from pathlib import Path

import typer

from .errors import fail

app = typer.Typer(no_args_is_help=True, help="Build hosts: enrol, deploy workers, health.")


def _confirm_server(p4port: str, fingerprint: str | None, option: str) -> str:
    """Fetch an ssl: server's key fingerprint and have it confirmed (as an SSH host key is)."""
    from flows.ports import check_p4port
    from flows.trust import check_fingerprint, fetch_server_key, ssl_port

    try:
        check_p4port(p4port, "p4port")
        if ssl_port(p4port) is None:
            fail(f"p4port: '{p4port}' is not an ssl: port; only ssl: servers need trust")
        expected = check_fingerprint(fingerprint, option) if fingerprint else None
    except ValueError as exc:
        fail(str(exc))
    try:
        key = fetch_server_key(p4port)
    except OSError as exc:
        fail(f"p4port: cannot reach {p4port} for its TLS key ({exc})")
    typer.echo(f"Helix server {p4port} ({key.address}) key fingerprint: {key.fingerprint}")
    _confirm_key(key.fingerprint, expected, option=option, field=option, holder=p4port, whose="the server's key",
                 check="checking it with 'p4d -Gf' on the server")
    return key.fingerprint


def _confirm_key(presented: str, expected: str | None, *, option: str, field: str, holder: str, whose: str,
                 check: str, otherwise: str = "") -> None:
    """A key is trusted only when a person vouches for it: given with ``option`` (and equal
    to what is presented), or confirmed at a terminal; never taken on first sight."""
    if expected:
        if expected != presented:
            fail(f"{field}: {holder} presents {presented}, not {expected}; refusing")
    elif sys.stdin.isatty():
        if not typer.confirm(f"Is this {whose} (after {check})?"):
            fail(f"{whose} not confirmed")
    else:
        fail(f"{field}: confirm {whose} with {option} {presented} (after {check}){otherwise}")


@app.command("add")
def add(
    name: str = typer.Argument(..., help="Host name used in job specs (pool p4-<name>)."),
    address: str = typer.Option(..., help="Address to connect to."),
    user: str = typer.Option(..., help="SSH user that owns the workspaces."),
    key: Path = typer.Option(..., help="Private key to log in with."),
    port: int = typer.Option(22, help="SSH port (1 to 65535)."),
    limit: int = typer.Option(4, help="Parallel jobs on this host (1 to 64)."),
    api_url: str = typer.Option(None, help="Prefect API URL as the host reaches it."),
    known_hosts: Path = typer.Option(None, help="Take the host key from this known_hosts file."),
    fingerprint: str = typer.Option(None, help="Expected host key fingerprint (SHA256:...), to confirm."),
    trust_p4port: str = typer.Option(None, help="A Helix ssl: server whose TLS key the host's jobs trust."),
    p4_fingerprint: str = typer.Option(None, help="That server's expected key fingerprint ('p4d -Gf')."),
) -> None:
    """Enrol a host, pinning its SSH host key (and an ssl: Helix server's key)."""
    import paramiko

    from agent import registry
    from agent.records import HostRecord, check_job_limit
    from agent.ssh import Connection, HostError, fetch_host_key
    from flows.ports import check_tcp_port

    try:  # before any connection: 70000 would be tried as some other port
        check_tcp_port(port, "--port")
        check_job_limit(limit, "--limit")
    except ValueError as exc:
        fail(str(exc))
    host_id = address if port == 22 else f"[{address}]:{port}"
    if known_hosts is not None:
        entry = paramiko.HostKeys(str(known_hosts)).lookup(host_id)
        if not entry:
            fail(f"known_hosts: {known_hosts} has no key for {host_id}")
        pkey = next(iter(entry.values()))
    else:
        try:
            pkey = fetch_host_key(address, port)
        except OSError as exc:
            fail(f"address: cannot reach {address}:{port} ({exc})")
        typer.echo(f"host key of {host_id}: {pkey.get_name()} {pkey.fingerprint}")
        _confirm_key(pkey.fingerprint, fingerprint, option="--fingerprint", field="fingerprint", holder="the host",
                     whose="the host key", check="checking it on the host", otherwise=", or give --known-hosts")
    if p4_fingerprint and not trust_p4port:
        fail("--p4-fingerprint: give the server it belongs to with --trust-p4port ssl:host:port")
    p4_trust = {trust_p4port: _confirm_server(trust_p4port, p4_fingerprint, "--p4-fingerprint")} \
        if trust_p4port else {}
    try:
        record = HostRecord(name=name, address=address, port=port, user=user, key_file=str(key.expanduser()),
                            host_key=f"{pkey.get_name()} {pkey.get_base64()}", limit=limit, api_url=api_url,
                            p4_trust=p4_trust)
    except ValueError as exc:
        fail(str(exc))
    from agent.pools import ensure_deployment
    from agent.layout import Layout
    from agent.p4trust import pin_on_host
    from agent.pools import ensure_pool

    try:
        with Connection(record) as c:
            who = c.run(["hostname"], step="check login").stdout.strip()
            home = c.home()
            pin_on_host(c, record)
    except HostError as exc:
        fail(str(exc))
    registry.save(record)
    # The pool and deployment exist from now on, so jobs can be queued before a worker runs.
    ensure_pool(name, limit)
    ensure_deployment(name, Layout(home=home, version="").app)
    typer.echo(f"enrolled {name}: {user}@{address}:{port} (hostname {who}), key {pkey.fingerprint}")


@app.command("trust")
def trust(
    name: str = typer.Argument(..., help="The host whose jobs connect ('local': this machine's own jobs)."),
    p4port: str = typer.Argument(..., help="The Helix server, ssl:host:port."),
    fingerprint: str = typer.Option(None, help="The server's expected key fingerprint ('p4d -Gf')."),
) -> None:
    """Trust an ssl: Helix server's TLS key on a host, as 'p4 trust -i' would (P4TRUST)."""
    from agent import registry
    from agent.p4trust import pin_on_host
    from agent.ssh import Connection, HostError
    from flows.trust import pin_locally

    if name != "local":
        try:
            record = registry.get(name)
        except KeyError as exc:
            fail(str(exc).strip("'\""))
    confirmed = _confirm_server(p4port, fingerprint, "--fingerprint")
    if name == "local":
        try:
            typer.echo(f"local: trusted {p4port} in {pin_locally(p4port, confirmed)}")
        except OSError as exc:
            fail(f"p4port: cannot write the trust for {p4port} ({exc})")
        return
    record = record.model_copy(update={"p4_trust": {**record.p4_trust, p4port: confirmed}})
    registry.save(record)
    try:
        with Connection(record) as c:
            changed = pin_on_host(c, record)
    except HostError as exc:
        fail(f"{exc}; the key is kept in the host's record and written at the next 'p4integ hosts deploy {name}'")
    typer.echo(f"{name}: trusted {p4port} in ~/.p4trust" + ("" if changed else " (already there)"))


@app.command("list")
def list_() -> None:
    from agent import registry

    hosts = registry.load_all()
    if not hosts:
        typer.echo("no hosts enrolled; add one with p4integ hosts add")
    for h in hosts.values():
        typer.echo(f"{h.name:16} {h.user}@{h.address}:{h.port}  limit {h.limit}")


@app.command("status")
def status(name: str = typer.Argument(None, help="One host; all when omitted.")) -> None:
    from agent import registry
    from agent.health import health

    for h in ([registry.get(name)] if name else list(registry.load_all().values())):
        s = health(h)
        beat = s.last_heartbeat.strftime("%Y-%m-%d %H:%M:%S") if s.last_heartbeat else "never"
        typer.echo(f"{h.name:16} {'online' if s.online else 'offline':8} heartbeat {beat}  version {s.version or '-'}"
                   f"  running {len(s.running_jobs)}  waiting {len(s.waiting_jobs)}"
                   + (f"  ({s.reason})" if s.reason else ""))


@app.command("deploy")
def deploy(name: str) -> None:
    """Install (or update) and start the host's worker; idempotent."""
    from agent import registry
    from agent.converge import converge
    from agent.ssh import HostError
    from flows.settings import api_url

    try:
        report = converge(registry.get(name), api_url(), log=typer.echo)
    except (HostError, KeyError) as exc:
        fail(str(exc).strip("'\""))
    typer.echo(f"{name}: {'changed: ' + '; '.join(report.changes) if report.changed else 'no change'} "
               f"(version {report.version}, {report.python}, {report.seconds:.1f} s)")


@app.command("stop")
def stop(name: str) -> None:
    """Stop the host's worker; leaves no process behind."""
    from agent import registry
    from agent.converge import stop_worker
    from agent.ssh import Connection, HostError

    try:
        with Connection(registry.get(name)) as c:
            was = stop_worker(c)
    except (HostError, KeyError) as exc:
        fail(str(exc).strip("'\""))
    typer.echo(f"{name}: worker {'stopped' if was else 'was not running'}")


@app.command("remove")
def remove(name: str) -> None:
    """Stop the worker and forget the host."""
    from agent import registry

    try:
        registry.get(name)
    except KeyError as exc:
        fail(str(exc.args[0]))
    try:
        stop(name)
    except typer.Exit:  # an unreachable host is still forgotten; stop said why it was not stopped
        pass
    registry.remove(name)
    typer.echo(f"{name}: removed")
