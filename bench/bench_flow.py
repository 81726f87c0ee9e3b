"""What Prefect costs an integration: bare stage functions vs a deployment run.

Runs the same integration (N files, a few conflicts resolved by input) on fresh copies of one
sandbox depot: by calling the stage functions directly, and as a deployment run through a real
process worker on a local Prefect server that this script starts and stops, ``--repeat`` times
each, in turn. The deployment run goes two ways: the service's deployment, whose entrypoint is
a module path (``flows.integration:integrate``, imported once in the worker's engine server),
and a copy whose entrypoint is the script path (``flows/integration.py:integrate``, which
Prefect executes afresh in every run's process). Prints, side by side (medians):

- active seconds of each (the flow's time waiting for a person is taken out),
- overhead ratio and seconds of overhead per run,
- request -> first stage latency (flow run requested -> GET_LATEST_CL starts),
- resume -> continue latency (resume sent -> NEEDS_RESOLVE task starts);
- request -> first stage, and the machine's CPU, of small jobs started through the worker's
  engine server (flows/engine_server.py), through flows/engine_start.py alone, and as
  Prefect's worker starts them by default, in turn.

Figures only: nothing is asserted on time. Exits non-zero only if a result is wrong.

    .venv/bin/python bench/bench_flow.py [--files 1000] [--conflicts 3] [--repeat 3] [--starts 5]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Nothing here imports Prefect before main() sets the environment: Prefect reads its settings
# once, at import.
from flows.engine_server import SOCKET_ENV  # noqa: E402 - after the path is set
from flows.settings import free_port  # noqa: E402


def build_depot(base: Path, files: int, conflicts: int) -> tuple[str, str, str]:
    """main with N files, rel branched from it, 10% edited on main, some also on rel."""
    from flows.p4.sandbox import P4, init_depot

    port = init_depot(base / "depot", security=0)
    author, integ = base / "ws" / "author", base / "ws" / "integ"
    author.mkdir(parents=True)
    integ.mkdir(parents=True)
    p4 = P4(port=port, user="bench", client="author", cwd=str(author)).connect()
    for name, root, view in (("author", author, "//depot/... //author/..."),
                             ("integ", integ, "//depot/rel/... //integ/...")):
        spec = p4.fetch_client(name)
        spec["Root"], spec["View"] = str(root), [view]
        p4.save_client(spec)
    paths = []
    for i in range(files):
        f = author / "main" / f"d{i % 20:02d}" / f"f{i:05d}.txt"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("".join(f"line {j} of file {i}\n" for j in range(8)))
        paths.append(str(f))
    p4.run_add(*paths)
    p4.run_submit("-d", "main")
    p4.run_integrate("//depot/main/...", "//depot/rel/...")
    p4.run_submit("-d", "branch rel")
    edited = [i for i in range(files) if i % 10 == 0]
    clash = edited[:conflicts]

    def edit(branch: str, idxs: list[int], label: str) -> None:
        p4.run_edit(*[f"//depot/{branch}/d{i % 20:02d}/f{i:05d}.txt" for i in idxs])
        for i in idxs:
            f = author / branch / f"d{i % 20:02d}" / f"f{i:05d}.txt"
            lines = f.read_text().splitlines(keepends=True)
            lines[3] = f"line 3 changed on {label}\n"
            f.write_text("".join(lines))
        p4.run_submit("-d", f"edit {branch}")

    edit("main", edited, "main")
    edit("rel", clash, "rel")
    p4.disconnect()
    return port, "integ", str(integ)


def copy_depot(pristine: Path, port: str, to: Path, client: str) -> str:
    """A fresh copy of the depot and workspaces built at ``pristine``; returns the copy's port."""
    from flows.p4.sandbox import P4

    shutil.copytree(pristine, to, symlinks=True)
    port = port.replace(str(pristine), str(to))
    p4 = P4(port=port, user="bench", client=client).connect()
    spec = p4.fetch_client(client)  # the workspace's root moves with the copy
    spec["Root"] = spec["Root"].replace(str(pristine), str(to))
    p4.save_client(spec)
    p4.disconnect()
    return port


# The two entrypoints a deployment run is measured with: the service's deployment (a module
# path) and a copy of it whose entrypoint is the script's path.
SCRIPT_ENTRYPOINT = "flows/integration.py:integrate"
ENTRYPOINT_WAYS = {"module path": "local", "script path": "local-script"}


def copy_with_script_entrypoint() -> None:
    from prefect.client.orchestration import get_client

    from deployments.templates import copied_from
    from flows.settings import FLOW_NAME

    with get_client(sync_client=True) as c:
        base = c.read_deployment_by_name(f"{FLOW_NAME}/{ENTRYPOINT_WAYS['module path']}")
        c.create_deployment(**{**copied_from(base), "entrypoint": SCRIPT_ENTRYPOINT},
                            name=ENTRYPOINT_WAYS["script path"])


def bare(port: str, client: str, conflicts: int) -> float:
    from flows import stages as S
    from flows.p4.session import P4Session
    from flows.spec import FileChoice, JobSpec

    spec = JobSpec(p4port=port, p4user="bench", client=client, source="//depot/main/...", target="//depot/rel/...")
    started = time.perf_counter()
    with P4Session(port, "bench", client) as session:
        job = S.Job(spec=spec, session=session, log=lambda m: None)
        S.get_latest_cl(job)
        S.sync(job)
        S.integrate(job)
        S.resolve_pass_1(job)
        found = S.resolve_check(job)
        if len(found) != conflicts:
            raise SystemExit(f"bare: expected {conflicts} conflicts, got {len(found)}")
        S.apply_choices(job, [FileChoice(path=c.depot_file, choice="theirs") for c in found])
        if S.resolve_check(job):
            raise SystemExit("bare: conflicts left after applying choices")
        S.pre_submit(job)
        S.shelve(job)
        push = S.p4push(job)
    if not push.submitted:
        raise SystemExit("bare: nothing submitted")
    return time.perf_counter() - started


def through_worker(port: str, client: str, conflicts: int, deployment: str) -> dict[str, float]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.objects import StateType

    from deployments import jobs
    from flows.spec import FileChoice, JobSpec
    from flows.vocabulary import PAUSED_OR_FINAL

    spec = JobSpec(p4port=port, p4user="bench", client=client, source="//depot/main/...", target="//depot/rel/...")
    requested = time.time()
    run_id = jobs.submit(spec, deployment=deployment)
    run = jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=300, poll=0.1)
    if run.state.type != StateType.PAUSED:
        raise SystemExit(f"flow: expected a pause, got {run.state.name}")
    paused_at = run.state.timestamp.timestamp()
    found = jobs.conflicts(run_id)
    if len(found) != conflicts:
        raise SystemExit(f"flow: expected {conflicts} conflicts, got {len(found)}")
    resumed_at = time.time()
    jobs.resume(run_id, "apply", [FileChoice(path=c["depot_file"], choice="theirs") for c in found])
    run = jobs.wait(run_id, timeout=300, poll=0.1)
    if run.state.type != StateType.COMPLETED:
        raise SystemExit(f"flow: ended {run.state.name}")
    with get_client(sync_client=True) as c:
        tasks = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    first_stage = min(t.start_time.timestamp() for t in tasks if t.start_time)
    continue_at = min(t.start_time.timestamp() for t in tasks
                      if t.start_time and t.name.startswith("NEEDS_RESOLVE"))
    end = run.end_time.timestamp()
    waiting = resumed_at - paused_at
    return {
        "active": (end - first_stage) - waiting,
        "request_to_first_stage": first_stage - requested,
        "resume_to_continue": continue_at - resumed_at,
    }


def _busy_cpu() -> float:
    """Seconds of CPU the whole machine has spent busy (every process: server, worker, runs)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


# How a run's process starts, each way a deployment run can be told (its job variables).
START_WAYS = {
    # The worker's engine server forks the run from a process that imported Prefect already.
    "engine server": None,
    # flows/engine_start.py runs the engine itself (as without a server).
    "engine_start": {"env": {SOCKET_ENV: ""}},
    # Prefect's worker default: a supervisor process, then the engine.
    "Prefect default": {"command": None},
}


def start_latencies(base: Path, n: int) -> dict[str, dict[str, list[float]]]:
    """Request -> first stage, and the machine's busy CPU seconds, of ``n`` small jobs started
    each way of START_WAYS, in turn."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.deployments import run_deployment

    from deployments import jobs
    from flows.p4.example import make_example
    from flows.prefect_compat import sync_call
    from flows.settings import FLOW_NAME

    ex = make_example(base / "starts", conflict=False)
    spec = {"p4port": ex.port, "p4user": ex.user, "client": ex.client, "source": ex.source, "target": ex.target}
    out: dict[str, dict[str, list[float]]] = {way: {"start": [], "cpu": []} for way in START_WAYS}
    for _ in range(n):
        for way, job_variables in START_WAYS.items():
            requested, cpu = time.time(), _busy_cpu()
            run = sync_call(run_deployment, name=f"{FLOW_NAME}/local", parameters={"spec": spec}, timeout=0,
                            as_subflow=False, job_variables=job_variables)
            ended = jobs.wait(run.id, timeout=300, poll=0.1)
            if ended.state is None or ended.state.name != "Completed":
                raise SystemExit(f"start ({way}): the job ended {ended.state.name if ended.state else '?'}")
            with get_client(sync_client=True) as c:
                tasks = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
            out[way]["start"].append(min(t.start_time.timestamp() for t in tasks if t.start_time) - requested)
            out[way]["cpu"].append(_busy_cpu() - cpu)
    return out


def main() -> int:
    import statistics

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--conflicts", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3, help="runs of the integration each way, in turn")
    ap.add_argument("--starts", type=int, default=5, help="small jobs started each way for the start latency")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    os.environ.update(P4INTEG_HOME=str(work / "home"), P4INTEG_PREFECT_PORT=str(free_port()),
                      PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PREFECT_WORKER_QUERY_SECONDS="1")
    from flows import settings

    os.environ.update(PREFECT_API_URL=settings.api_url(), PREFECT_HOME=str(settings.home() / "prefect"),
                      PREFECT_API_AUTH_STRING=settings.api_auth_string())
    from agent import pools
    from deployments import processes, register

    bare_s: list[float] = []
    by_way: dict[str, list[dict[str, float]]] = {way: [] for way in ENTRYPOINT_WAYS}
    try:
        t = time.perf_counter()
        pristine = work / "pristine"
        port, client, _ = build_depot(pristine, args.files, args.conflicts)
        print(f"depot: {args.files} files, {args.conflicts} conflicts, built in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        processes.start_server()
        pools.ensure_pool("local", 4)
        register.ensure_deployment()
        copy_with_script_entrypoint()
        processes.start_worker("local", 4)
        print(f"Prefect server + pool + deployments + worker up in {time.perf_counter() - t:.1f} s")
        for i in range(args.repeat):
            bare_s.append(bare(copy_depot(pristine, port, work / f"bare{i}", client), client, args.conflicts))
            for way, deployment in ENTRYPOINT_WAYS.items():
                copy = copy_depot(pristine, port, work / f"{deployment}{i}", client)
                by_way[way].append(through_worker(copy, client, args.conflicts, f"{settings.FLOW_NAME}/{deployment}"))
        starts = start_latencies(work, args.starts) if args.starts else {}
    finally:
        for name in list(processes.running()):
            processes.stop(name)
        shutil.rmtree(work, ignore_errors=True)

    def med(way: str, key: str) -> float:
        return statistics.median(run[key] for run in by_way[way])

    bare_med = statistics.median(bare_s)
    ways = list(ENTRYPOINT_WAYS)
    print()
    print(f"the integration, median of {args.repeat} runs each, in turn; bare stages {bare_med:.2f} s "
          f"({', '.join(f'{b:.2f}' for b in bare_s)})")
    print(f"{'deployment entrypoint':34}" + "".join(f"{way:>16}" for way in ways))
    rows = (("active seconds (no waiting)", lambda w: med(w, "active")),
            ("overhead ratio (flow / bare)", lambda w: med(w, "active") / bare_med),
            ("overhead seconds per run", lambda w: med(w, "active") - bare_med),
            ("request -> first stage, s", lambda w: med(w, "request_to_first_stage")),
            ("resume -> continue, s", lambda w: med(w, "resume_to_continue")),
            ("overhead without the resume, s", lambda w: med(w, "active") - bare_med - med(w, "resume_to_continue")))
    for label, value in rows:
        print(f"{label:34}" + "".join(f"{value(way):>16.2f}" for way in ways))
    for way in ways:
        print(f"  {way}: resume -> continue " + ", ".join(f"{r['resume_to_continue']:.2f}" for r in by_way[way])
              + "; request -> first stage " + ", ".join(f"{r['request_to_first_stage']:.2f}" for r in by_way[way]))
    if starts:
        base_way = "Prefect default"
        start0, cpu0 = statistics.median(starts[base_way]["start"]), statistics.median(starts[base_way]["cpu"])
        print()
        print(f"a small job started each way, {args.starts} each in turn (median; ratio to {base_way}):")
        print(f"{'':22}{'request -> first stage, s':>28}{'machine CPU per job, s':>28}")
        for way, got in starts.items():
            start, cpu = statistics.median(got["start"]), statistics.median(got["cpu"])
            print(f"{way:22}{start:>14.2f} ({min(got['start']):.2f}..{max(got['start']):.2f}) {start / start0:>5.2f}"
                  f"{cpu:>18.2f} {cpu / cpu0:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
