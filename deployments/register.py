"""Work pools per host and the integration flow's deployment on each."""
from __future__ import annotations

import contextlib
import io
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectNotFound

from agent.records import check_job_limit

from .settings import FLOW_ENTRYPOINT, PROJECT_DIR, pool_name

DEFAULT_HOST_LIMIT = 4


def ensure_pool(host: str, limit: int = DEFAULT_HOST_LIMIT) -> bool:
    """Create the host's process pool, or align its limit. True if anything changed."""
    check_job_limit(limit)
    name = pool_name(host)
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process", concurrency_limit=limit,
                                                   description=f"Integration jobs on host {host}"))
            return True
        if pool.concurrency_limit != limit:
            client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=limit))
            return True
    return False


def apply_project_file() -> None:
    """Apply prefect.yaml (the project's declared deployments) with Prefect's own CLI."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "P4INTEG_PROJECT_DIR": str(PROJECT_DIR)}
    done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=PROJECT_DIR,
                          env=env, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise RuntimeError(f"'prefect deploy --all' exited with {done.returncode}:\n{tail}")


def ensure_deployment(host: str = "local") -> UUID | None:
    """``integrate/<host>``: the flow, run from this project's directory on the host's pool.

    The local host's deployment is the one declared in prefect.yaml."""
    if host == "local":
        apply_project_file()
        return None
    from flows.integration import integrate

    flow = integrate.from_source(source=str(PROJECT_DIR), entrypoint=FLOW_ENTRYPOINT)
    with contextlib.redirect_stdout(io.StringIO()):  # deploy() prints a table of its own
        return flow.deploy(name=host, work_pool_name=pool_name(host), print_next_steps=False, ignore_warnings=True,
                           description=f"Integration jobs for workspaces on host {host}")
