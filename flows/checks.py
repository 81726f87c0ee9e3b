"""Is a job spec right for its Perforce server and its host? Asked before anything is opened.

``server_problems`` is the one set of questions put to the server (user, workspace,
branch spec, changelist). It is asked where a job or template is made (the New job
form, ``templates create/edit/run``, ``deployments.jobs.submit``) and again by the
job's first stage, since a schedule or ``prefect deployment run`` starts a job with
no one to ask beforehand. ``site_commands_exist`` can only be asked on the host that
runs the job, so only the first stage asks it.
"""
from __future__ import annotations

import os
import shutil
import socket
import ssl
from collections.abc import Mapping
from typing import Any

from .p4.errors import P4AuthError, P4Error
from .p4.session import P4Session
from .runner import expand
from .site_commands import JobCommands
from .spec import JobSpec
from . import trust


def server_problems(session: P4Session, spec: JobSpec) -> dict[str, str]:
    """What the server does not know, keyed by the field to change; empty when all is well."""
    where = spec.p4port
    problems: dict[str, str] = {}
    if not session.run("users", spec.p4user):
        problems["p4user"] = (f"p4user: '{spec.p4user}' is not a user on {where}; check the name (p4 users) "
                              "or have an administrator create the user")
    if not session.run("clients", "-e", spec.client):
        problems["client"] = (f"client: workspace '{spec.client}' does not exist on {where}; create it or fix "
                              f"the name (p4 clients -u {spec.p4user})")
    if spec.branch and not session.run("branches", "-e", spec.branch):
        problems["branch"] = (f"branch: branch spec '{spec.branch}' does not exist on {where}; fix the name "
                              "(p4 branches) or give source and target")
    if spec.changelist:
        try:
            status = session.change(spec.changelist).status
        except P4Error:
            status = None
        if status != "submitted":
            what = "does not exist" if status is None else f"is {status}, not submitted"
            problems["changelist"] = (f"changelist: {spec.changelist} {what} on {where}; give a submitted "
                                      "changelist, or leave it empty for the latest")
    return problems


def check_spec(spec: JobSpec, password: str | None) -> dict[str, str]:
    """``server_problems`` over a session of the spec's user.

    Empty when the server cannot be asked from here: unreachable just now (the job
    reports that, after its retries), refusing a spec with no stored password (the
    job's host may hold a ticket for the user that this host does not), or failing
    a question for another reason (the job's first stage asks again and says why)."""
    try:
        with P4Session(spec.p4port, spec.p4user, spec.client, password=password) as session:
            return server_problems(session, spec)
    except P4AuthError as exc:
        return {"password_secret": f"password_secret: {exc}"} if password else {}
    except P4Error:
        return {}


def site_commands_exist(spec: JobSpec, commands: JobCommands, root: str, env: Mapping[str, str]) -> dict[str, str]:
    """Each site command's program on this host, resolved as the runner will start it: a
    name through the job's PATH, a path (absolute, or relative to the workspace root) to
    an executable file. A program named by a placeholder known only later is not judged."""
    values = {"client": spec.client, "port": spec.p4port, "user": spec.p4user, "root": root}
    problems: dict[str, str] = {}
    for command in commands.all():
        field, path_var = command.field, {**env, **command.env}.get("PATH", os.defpath)
        label = f"{field} (site command '{command.name}')" if command.name else field
        program = expand(command.argv[:1], values)[0]
        if "{" in program:
            continue
        if "/" in program:
            path = os.path.join(root, program)  # an absolute program replaces the root
            if not os.path.isfile(path):
                problems[field] = (f"{label}: '{program}' does not exist on host {spec.host}"
                                   f"{'' if os.path.isabs(program) else f' (under the workspace root {root})'}; "
                                   "fix the path or install the tool")
            elif not os.access(path, os.X_OK):
                problems[field] = f"{label}: '{path}' on host {spec.host} is not executable; chmod +x it"
        elif shutil.which(program, path=path_var) is None:
            problems[field] = (f"{label}: '{program}' is not on the PATH of host {spec.host}; install it, "
                               "or give its full path")
    return problems


# --- the workspace on this host -----------------------------------------------------

def p4_host(spec: JobSpec) -> str:
    """The host name Helix sees from this machine: the job's P4HOST, else the machine's
    name (what P4Python sends when ``P4.host`` is not set)."""
    return spec.env.get("P4HOST") or os.environ.get("P4HOST") or socket.gethostname()


def workspace_roots(client: Mapping[str, Any]) -> list[str]:
    """Root, then AltRoots: Helix uses the first that holds the current directory."""
    return [str(client["Root"])] + [str(r) for r in client.get("AltRoots") or []]


def workspace_root(client: Mapping[str, Any]) -> str | None:
    """The first of Root and AltRoots that is a directory on this host."""
    return next((os.path.normpath(r) for r in workspace_roots(client) if os.path.isdir(r)), None)


def client_problems(client: Mapping[str, Any], spec: JobSpec, host_name: str) -> dict[str, str]:
    """What keeps this host from integrating in the workspace, keyed by the workspace
    rule it breaks (all of them, so one run names every fix); empty when all is well."""
    name, problems = spec.client, {}
    if client.get("Stream"):
        problems["stream"] = (
            f"client: workspace '{name}' is a stream workspace (Stream: {client['Stream']}); its view comes "
            "from the stream, and changes move between streams with p4 merge/p4 copy along the stream's "
            "parent, which this service does not do; give a classic workspace (no Stream: field) whose view "
            "maps the target, and a branch spec (branch) or source and target")
    wanted = str(client.get("Host") or "")
    if wanted and wanted != host_name:
        problems["host"] = (
            f"host: workspace '{name}' can only be used from host '{wanted}' (its Host: field), and this job "
            f"runs on host {spec.host}, which Perforce knows as '{host_name}'; run the job on the host that "
            f"is '{wanted}', or clear or change Host: in the workspace spec (p4 client {name})")
    if workspace_root(client) is None:
        problems["root"] = (
            f"client: no root of workspace '{name}' ({'; '.join(workspace_roots(client))}) is a directory "
            f"on host {spec.host}; create it, add this host's path to AltRoots: (p4 client {name}), or run "
            "the job on the host that owns the workspace")
    return problems


# --- trust in an ssl: server --------------------------------------------------------

def trust_problem(spec: JobSpec, env: Mapping[str, str] | None = None) -> str | None:
    """Why Helix would refuse the ``ssl:`` server from this host (its fingerprint is
    not, or not the one, in P4TRUST), with the command that fixes it; None when it is
    trusted, not ``ssl:``, or not reachable (connecting reports that)."""
    if trust.ssl_port(spec.p4port) is None:
        return None
    try:
        key = trust.fetch_server_key(spec.p4port)
    except (OSError, ssl.SSLError, ValueError):
        return None
    path = trust.trust_file(env)  # the worker's own P4TRUST: the file the job's P4Python reads
    have = trust.trusted(path.read_text() if path.exists() else "", key.address)
    fix = f"p4integ hosts trust {spec.host} {spec.p4port} --fingerprint {key.fingerprint}"
    if have is None:
        return (f"p4port: {spec.p4port} ({key.address}) is not trusted on host {spec.host}: {path} has no "
                f"fingerprint for it; check that {key.fingerprint} is the server's ('p4d -Gf' on the "
                f"server), then run '{fix}'")
    if have.upper() != key.fingerprint:
        return (f"p4port: {spec.p4port} ({key.address}) presents key {key.fingerprint}, not the {have} "
                f"trusted in {path} on host {spec.host}; the connection may be intercepted, or the server's "
                f"key was replaced: if its administrator confirms the new key ('p4d -Gf'), run '{fix}'")
    return None
