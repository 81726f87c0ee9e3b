"""A work pool per host: Prefect's concurrency limit is the host's job limit."""
from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.exceptions import ObjectNotFound

from flows.settings import pool_name

from .records import check_job_limit

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
