"""Jobs waiting for a person: what they cost, and how fast they go on when answered.

Starts a Prefect server and a local process worker of its own (free port, temporary
P4INTEG_HOME) and prints, measured side by side in one run:

- request -> first stage of a conflict-free job (median of --jobs);
- resume -> continue: from a person's answer to the first stage of the resumed run
  (a new process on the worker; median of --jobs), and the same for a flow that waits
  in-process (``pause_flow_run``: what a warm window before suspending would give),
  with the memory that waiting process holds;
- with --waiting jobs (default 20) suspended on the host: their processes and memory,
  next to what as many in-process waits would hold, and a conflict-free job's
  request -> first stage meanwhile.

Figures only; exits non-zero only when a job does not end as expected.

    .venv/bin/python bench/bench_waiting.py [--jobs 3] [--waiting 20]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.settings import free_port  # noqa: E402 - after the path is set
from flows.vocabulary import PAUSED_OR_FINAL  # noqa: E402

WARM_CHILD = "--warm-child"


def _warm_child(id_file: str) -> None:
    """A flow that waits for its answer in its own process, then runs one task."""
    from prefect import flow, task
    from prefect.flow_runs import pause_flow_run
    from prefect.runtime import flow_run

    @task(name="after-the-answer")
    def after() -> None:
        return None

    @flow(name="bench-warm-window", persist_result=False)
    def warm() -> None:
        Path(id_file).write_text(str(flow_run.id))
        pause_flow_run(timeout=300, poll_interval=1, key="answer")  # the shortest poll Prefect allows
        after()

    warm()


def _task_starts(run_id: UUID, after: float = 0.0) -> list[float]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as c:
        tasks = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    return sorted(t.start_time.timestamp() for t in tasks if t.start_time and t.start_time.timestamp() > after)


def _first_start_after(run_id: UUID, after: float, timeout: float = 120) -> float:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        starts = _task_starts(run_id, after)
        if starts:
            return starts[0] - after
        time.sleep(0.1)
    raise SystemExit(f"run {run_id}: no stage started within {timeout:.0f} s")


def _wait_for_file(path: Path, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > end:
            raise SystemExit(f"{path} did not appear within {timeout:.0f} s")
        time.sleep(0.05)


def _engine_processes() -> dict[int, int]:
    """pid -> RSS (KiB) of every flow-run process on this machine."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        if b"prefect.engine" in argv or b"flows.engine_start" in argv:
            rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
            out[int(entry)] = rss
    return out


def _rss_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=3, help="jobs for each latency figure")
    ap.add_argument("--waiting", type=int, default=20, help="jobs left waiting on the host at once")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-waiting-", dir="/tmp"))
    os.environ.update(P4INTEG_HOME=str(work / "home"), P4INTEG_PREFECT_PORT=str(free_port()),
                      PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PREFECT_WORKER_QUERY_SECONDS="1")
    from flows import settings

    os.environ.update(PREFECT_API_URL=settings.api_url(), PREFECT_HOME=str(settings.home() / "prefect"),
                      PREFECT_API_AUTH_STRING=settings.api_auth_string())
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    from agent import pools

    from deployments import jobs, processes, recovery, register
    from flows.p4.example import make_example
    from flows.spec import FileChoice, JobSpec

    def spec(ex: Any) -> JobSpec:
        return JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client, branch=ex.branch)

    def suspended(run_id: UUID) -> None:
        run = jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=300, poll=0.2)
        if run.state.name != "Suspended":
            raise SystemExit(f"run {run_id} ended {run.state.name}, not waiting")

    def first_stage(ex: Any) -> float:
        requested = time.time()
        run_id = jobs.submit(spec(ex))
        took = _first_start_after(run_id, requested)
        if jobs.wait(run_id, timeout=300).state.type != StateType.COMPLETED:
            raise SystemExit(f"conflict-free job {run_id} did not complete")
        return took

    figures: list[tuple[str, str]] = []
    n = 0

    def example(conflict: bool) -> Any:
        nonlocal n
        n += 1
        return make_example(work / f"ex{n}", conflict=conflict)

    try:
        processes.start_server()
        pools.ensure_pool("local", 4)
        register.ensure_deployment()
        recovery.ensure_automations()
        processes.start_worker("local", 4)
        first_stage(example(False))  # warm the worker's imports and the server's caches

        quiet = [first_stage(example(False)) for _ in range(args.jobs)]
        figures.append(("request -> first stage, quiet host (median)", f"{statistics.median(quiet):.2f} s"))

        # One job process while it runs: what a job waiting in-process would keep.
        hook = work / "running"
        ex = example(False)
        holder = jobs.submit(spec(ex).model_copy(update={"pre_submit": [["sh", "-c", f"touch {hook}; sleep 3"]]}))
        _wait_for_file(hook)
        running_rss = max(_engine_processes().values() or [0])
        jobs.wait(holder, timeout=120)
        figures.append(("memory of one job process while it runs", f"{running_rss / 1024:.0f} MB"))

        resumes = []
        for _ in range(args.jobs):
            run_id = jobs.submit(spec(example(True)))
            suspended(run_id)
            asked = time.time()
            jobs.resume(run_id, "apply", [FileChoice(path="//depot/rel/src/config.ini", choice="theirs")])
            resumes.append(_first_start_after(run_id, asked))
            if jobs.wait(run_id, timeout=300).state.type != StateType.COMPLETED:
                raise SystemExit(f"resumed job {run_id} did not complete")
        figures.append(("resume -> continue, suspended (median)", f"{statistics.median(resumes):.2f} s"))

        warm, warm_rss = [], []
        for i in range(args.jobs):
            id_file = work / f"warm{i}.id"
            child = subprocess.Popen([sys.executable, __file__, WARM_CHILD, str(id_file)], env=dict(os.environ))
            _wait_for_file(id_file)
            run_id = UUID(id_file.read_text())
            run = jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120, poll=0.1)
            if run.state.type != StateType.PAUSED:
                raise SystemExit(f"in-process wait {run_id} ended {run.state.name}")
            warm_rss.append(_rss_of(child.pid))
            asked = time.time()
            resume_flow_run(run_id)
            warm.append(_first_start_after(run_id, asked))
            if child.wait(timeout=120) != 0:
                raise SystemExit(f"in-process wait {run_id} failed")
        figures.append(("resume -> continue, waiting in-process (median)", f"{statistics.median(warm):.2f} s"))
        figures.append(("memory of one job waiting in-process", f"{statistics.median(warm_rss) / 1024:.0f} MB"))

        waiting = [jobs.submit(spec(example(True))) for _ in range(args.waiting)]
        for run_id in waiting:
            suspended(run_id)
        end = time.monotonic() + 30
        while _engine_processes() and time.monotonic() < end:
            time.sleep(0.2)
        left = _engine_processes()
        figures.append((f"flow processes with {args.waiting} jobs waiting", str(len(left))))
        figures.append((f"their memory with {args.waiting} jobs waiting", f"{sum(left.values()) / 1024:.0f} MB"))
        figures.append((f"what {args.waiting} in-process waits would hold",
                        f"{args.waiting * statistics.median(warm_rss) / 1024:.0f} MB, {args.waiting} processes"))
        worker_pid = processes.running()["worker-local"]
        server_pid = processes.running()["server"]
        meanwhile = (_rss_of(worker_pid) + _rss_of(server_pid)) / 1024
        figures.append(("worker + server memory meanwhile", f"{meanwhile:.0f} MB"))
        busy = [first_stage(example(False)) for _ in range(args.jobs)]
        figures.append((f"request -> first stage with {args.waiting} waiting (median)",
                        f"{statistics.median(busy):.2f} s"))
        figures.append(("ratio busy / quiet first stage", f"{statistics.median(busy) / statistics.median(quiet):.2f}"))
        for run_id in waiting:
            jobs.resume(run_id, "abort")
    finally:
        for name in list(processes.running()):
            processes.stop(name)
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(k) for k, _ in figures)
    print(f"{'figure':<{width}}  value")
    for k, v in figures:
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == WARM_CHILD:
        _warm_child(sys.argv[2])
        raise SystemExit(0)
    raise SystemExit(main())
