"""Prefect's records of each host, the one agent module that calls Prefect's client: the
host's work pool (its concurrency limit is the host's job limit), its deployments, its
workers, and the runs queued or running on it."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound

from flows import runs
from flows.settings import CLEANUP_ENTRYPOINT, FLOW_ENTRYPOINT, FLOW_NAME, pool_name

from .records import check_job_limit

DEFAULT_HOST_LIMIT = 4


def ensure_pool(host: str, limit: int = DEFAULT_HOST_LIMIT) -> bool:
    """Create the host's process pool, or align its limit. True if anything changed."""
    check_job_limit(limit)
    name = pool_name(host)
    with _client() as client:
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


def _client() -> Any:
    return get_client(sync_client=True)


def workers(host: str) -> list:
    from prefect.exceptions import PrefectHTTPStatusError

    with _client() as client:
        try:
            return client.read_workers_for_work_pool(pool_name(host))
        except ObjectNotFound:
            return []
        except PrefectHTTPStatusError as exc:  # this call reports a missing pool as a bare 404
            if exc.response.status_code == 404:
                return []
            raise


def active_runs(host: str) -> list:
    """Runs on the host's pool that hold a slot or wait for a person (everything not queued or over)."""
    from prefect.client.schemas.filters import (
        FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType, WorkPoolFilter, WorkPoolFilterName,
    )

    with _client() as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                any_=[StateType.RUNNING, StateType.PAUSED, StateType.PENDING, StateType.CANCELLING]))),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool_name(host)])))


def waiting_runs(host: str) -> list[Any]:
    from prefect.client.schemas.filters import (
        FlowRunFilter, FlowRunFilterNextScheduledStartTime, FlowRunFilterState, FlowRunFilterStateType,
        WorkPoolFilter, WorkPoolFilterName,
    )

    soon = datetime.now(timezone.utc) + timedelta(seconds=2)
    with _client() as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])),
                next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(before_=soon)),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool_name(host)])))


def tell_runs(run_ids: list[UUID], message: str, level: int = logging.INFO) -> None:
    runs.log_to(run_ids, "p4integ.dispatcher", message, level)


def fail_runs(run_ids: list[UUID], reason: str, crashed: bool = False) -> None:
    """Fail waiting runs, or mark running ones crashed. Without force: a run that
    finished meanwhile keeps its final state (the server refuses the transition)."""
    from prefect.states import Crashed, Failed

    with _client() as client:
        for rid in run_ids:
            result = client.set_flow_run_state(rid, (Crashed if crashed else Failed)(message=reason), force=False)
            if str(getattr(result.status, "value", result.status)).upper() == "ACCEPT":
                tell_runs([rid], reason, logging.ERROR)


def requeue_runs(run_ids: list[UUID], reason: str) -> None:
    """Give claimed runs that never started back to the pool, to run now. Without force: a run
    that started or ended meanwhile keeps its state."""
    for rid in run_ids:
        state = runs.queue_again(str(rid), datetime.now(timezone.utc), reason)
        if state is not None and state.type == StateType.SCHEDULED:
            tell_runs([rid], reason, logging.WARNING)


def ensure_deployment(host: str, site_dir: str) -> bool:
    """``integrate/<host>`` and ``cleanup/<host>``, run from the host's installed package."""
    from flows.cleanup import cleanup
    from flows.integration import integrate

    made = _ensure_flow_deployment(host, site_dir, FLOW_NAME, FLOW_ENTRYPOINT, integrate,
                                   f"Integration jobs for workspaces on host {host}")
    return _ensure_flow_deployment(host, site_dir, "cleanup", CLEANUP_ENTRYPOINT, cleanup,
                                   f"Cleans up after job runs on host {host} that ended without a process") or made


def _ensure_flow_deployment(host: str, site_dir: str, flow_name: str, entrypoint: str, fn: Any,
                            description: str) -> bool:
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.utilities.callables import parameter_schema

    from flows.engine_start import ENGINE_COMMAND

    pull = [{"prefect.deployments.steps.set_working_directory": {"directory": site_dir}}]
    job_variables = {"command": ENGINE_COMMAND}
    with _client() as client:
        try:
            existing = client.read_deployment_by_name(f"{flow_name}/{host}")
        except ObjectNotFound:
            existing = None
        if existing is not None and existing.pull_steps == pull and existing.work_pool_name == pool_name(host) \
                and existing.job_variables == job_variables and existing.entrypoint == entrypoint:
            return False
        flow_id: UUID = client.create_flow_from_name(flow_name)
        schema = parameter_schema(fn).model_dump_for_openapi()
        if existing is None:
            client.create_deployment(flow_id=flow_id, name=host, work_pool_name=pool_name(host),
                                     entrypoint=entrypoint, pull_steps=pull, job_variables=job_variables,
                                     parameter_openapi_schema=schema, path=site_dir, description=description)
        else:
            client.update_deployment(existing.id, DeploymentUpdate(pull_steps=pull, path=site_dir,
                                                                   entrypoint=entrypoint, job_variables=job_variables,
                                                                   work_pool_name=pool_name(host)))
    return True
