"""Starting runs as Prefect does and reading what they did, through the Prefect API, with deadlines."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
from prefect.deployments import run_deployment

from deployments import jobs
from flows.p4.session import P4Session
from flows.polling import poll_until
from flows.spec import JobSpec
from flows.vocabulary import PAUSED_OR_FINAL  # noqa: F401 - the tests import it from here



def spec_for(ex: Any, **kw: Any) -> JobSpec:
    """The example depot's job (flows.p4.example.Example), with ``kw`` changed."""
    return JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client, branch=ex.branch, **kw)


def start_unchecked(spec: JobSpec, deployment: str = "integrate/local") -> UUID:
    """A run made the way a schedule or `prefect deployment run` makes one: nothing is checked
    before it exists, so what it meets is the job's own first stage."""
    run = run_deployment(name=deployment, parameters={"spec": spec.model_dump(mode="json", exclude_defaults=True)},
                         timeout=0, as_subflow=False, tags=jobs.run_tags(spec), _sync=True)
    return run.id


def logs(run_id: UUID) -> list[str]:
    with get_client(sync_client=True) as client:
        rows = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200)
    return [r.message for r in rows]


def wait_for_log(run_id: UUID, needle: str, timeout: float = 240.0) -> list[str]:
    return until(lambda: (lambda ls: ls if any(needle in l for l in ls) else None)(logs(run_id)),
                 timeout, f"log line containing {needle!r} in run {run_id}")


def task_runs(run_id: UUID) -> list[Any]:
    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))


def until(check: Callable[[], Any], timeout: float, what: str, poll: float = 0.5) -> Any:
    """The first truthy value of ``check()``; TimeoutError naming ``what`` after ``timeout`` s."""
    value = poll_until(check, timeout, poll)
    if not value:
        raise TimeoutError(f"no {what} within {timeout:.0f} s")
    return value


def opened_and_pending(port: str, user: str, client: str) -> tuple[list[str], list[int]]:
    with P4Session(port, user, client) as s:
        opened = [o.depot_file for o in s.opened()]
        pending = [c.change for c in s.changes("-s", "pending", "-c", client)]
    return opened, pending


def processes_with(argv_prefix: list[str]) -> list[int]:
    """Live processes whose argv starts with ``argv_prefix`` (zombies count as dead)."""
    want = [a.encode() for a in argv_prefix]
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if argv[: len(want)] == want and state != "Z":
            found.append(int(entry))
    return found


def all_cmdlines() -> list[str]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                out.append(Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace"))
            except OSError:
                continue
    return out


def add_action_changes(ex: Any, *, rename: bool = True) -> None:
    """On top of ``make_example``: config.ini's filetype changed on both sides (main
    ``+x``, rel ``+w``: a filetype resolve a person decides, next to its content conflict)
    and, with ``rename``, app.py renamed on main only (``src/application.py``: a one-sided
    filename resolve)."""
    from flows.p4.example import AUTHOR_CLIENT
    from flows.p4.sandbox import P4

    root = Path(ex.workspace).parent / AUTHOR_CLIENT
    p4 = P4(port=ex.port, user=ex.user, client=AUTHOR_CLIENT, cwd=str(root))
    p4.connect()
    try:
        p4.run_edit("-t", "+w", "//depot/rel/src/config.ini")
        p4.run_submit("-d", "rel: config.ini writable")
        p4.run_edit("-t", "+x", "//depot/main/src/config.ini")
        if rename:
            p4.run_edit("//depot/main/src/app.py")
            p4.run_move("//depot/main/src/app.py", "//depot/main/src/application.py")
        p4.run_submit("-d", "main: config.ini executable" + (", app.py renamed application.py" if rename else ""))
    finally:
        p4.disconnect()


def second_user(ex: Any, user: str, directory: Path, password: str | None = None) -> str:
    """Another Perforce user on the example depot with a workspace of their own on rel (its name is returned);
    with ``password``, the depot asks them for it."""
    from flows.p4.sandbox import P4, set_password

    client = f"{user}-ws"
    directory.mkdir(parents=True, exist_ok=True)
    p4 = P4(port=ex.port, user=user, client=client, cwd=str(directory))
    p4.connect()
    try:
        spec = p4.fetch_client(client)
        spec["Root"] = str(directory)
        spec["View"] = [f"//depot/rel/... //{client}/..."]
        p4.save_client(spec)
    finally:
        p4.disconnect()
    if password:
        set_password(ex.depot_dir, user, password)
    return client


def head_text(ex: Any, path: str) -> str:
    """The head revision's text of a depot file of the example depot."""
    with P4Session(ex.port, ex.user, ex.client) as s:
        data = s.print_file(path)
    return data if isinstance(data, str) else data.decode()
