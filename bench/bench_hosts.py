"""Remote hosts: how long from enrolment to a worker online, and job start latency.

Builds a real SSH test host (network namespace with its own sshd, as the tests do),
starts a Prefect server on the hosts' bridge, and prints side by side:

- wheelhouse build (cached after the first run), enrol, converge of a fresh host
  to a worker ONLINE in the API, and converge with the venv already present;
- request -> first stage of a job on the remote host and on the local worker.

Needs root (network namespaces). Figures only; exits non-zero only when a job fails.

    .venv/bin/python bench/bench_hosts.py [--jobs 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.settings import free_port  # noqa: E402 - after the path is set


def first_stage_latency(spec, requested_before: float | None = None) -> float:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.objects import StateType

    from deployments import jobs

    requested = time.time()
    run_id = jobs.submit(spec)
    run = jobs.wait(run_id, timeout=300, poll=0.2)
    if run.state.type != StateType.COMPLETED:
        raise SystemExit(f"job on {spec.host} ended {run.state.name}")
    end = time.monotonic() + 30
    while time.monotonic() < end:
        with get_client(sync_client=True) as c:
            tasks = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
        starts = [t.start_time.timestamp() for t in tasks if t.start_time]
        if starts:
            return min(starts) - requested
        time.sleep(0.2)
    raise SystemExit("no task runs recorded")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=3, help="jobs per worker for the latency figures")
    args = ap.parse_args()
    from tests.testhosts import TestHostNetwork, missing_prerequisites

    if missing_prerequisites():
        print("cannot build test hosts here:", "; ".join(missing_prerequisites()))
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-hosts-", dir="/tmp"))
    os.chmod(work, 0o755)
    net = TestHostNetwork(["h1"]).start()
    os.environ.update(P4INTEG_HOME=str(work / "home"), P4INTEG_PREFECT_PORT=str(free_port()),
                      P4INTEG_PREFECT_HOST=net.bridge_address, PREFECT_SERVER_ANALYTICS_ENABLED="false",
                      DO_NOT_TRACK="1", PREFECT_WORKER_QUERY_SECONDS="1")
    from flows import settings

    os.environ.update(PREFECT_API_URL=settings.api_url(), PREFECT_HOME=str(settings.home() / "prefect"),
                      PREFECT_API_AUTH_STRING=settings.api_auth_string())
    from agent import registry, wheelhouse
    from agent.converge import converge, stop_worker
    from agent.pools import ensure_deployment
    from agent.layout import Layout
    from agent.records import HostRecord
    from agent.ssh import Connection
    from agent import pools
    from deployments import processes, register
    from flows.p4.example import make_example
    from flows.p4.session import P4Session
    from flows.spec import JobSpec

    figures: dict[str, float] = {}
    try:
        processes.start_server()
        pools.ensure_pool("local", 4)
        register.ensure_deployment()
        processes.start_worker("local", 4)
        h = net.hosts["h1"]
        t = time.perf_counter()
        wheelhouse.build()
        figures["wheelhouse build (cached after first run)"] = time.perf_counter() - t
        t = time.perf_counter()
        rec = HostRecord(name="h1", address=h.address, user=h.user, key_file=str(h.private_key_path),
                         host_key=h.host_public_key)
        registry.save(rec)
        pools.ensure_pool("h1", 4)
        with Connection(rec) as c:
            home = c.home()
        ensure_deployment("h1", Layout(home=home, version="").app)
        figures["enrol (connect, pool, deployment)"] = time.perf_counter() - t
        t = time.perf_counter()
        converge(rec, settings.api_url())
        figures["fresh host -> worker online"] = time.perf_counter() - t
        with Connection(rec) as c:
            stop_worker(c)
        t = time.perf_counter()
        converge(rec, settings.api_url())
        figures["venv present -> worker online"] = time.perf_counter() - t
        t = time.perf_counter()
        converge(rec, settings.api_url())
        figures["second converge (no change)"] = time.perf_counter() - t

        ex = make_example(work / "ex", conflict=False)
        for root, _dirs, files in os.walk(work / "ex"):
            os.chmod(root, 0o777)
            for f in files:
                os.chmod(os.path.join(root, f), 0o666)
        remote_root = Path(h.home) / "ws"
        lat: dict[str, list[float]] = {"local": [], "h1": []}
        for i in range(args.jobs):
            for host in ("local", "h1"):
                name = f"ws-{host}-{i}"
                root = (remote_root if host == "h1" else work / "ws") / name
                root.mkdir(parents=True, exist_ok=True)
                if host == "h1":
                    for p in (remote_root, root):
                        os.chown(p, h.uid, h.gid)
                with P4Session(ex.port, ex.user, ex.client) as s:
                    spec = s.p4.fetch_client(name)
                    spec["Root"], spec["View"] = str(root), [f"//depot/b{host}{i}/... //{name}/..."]
                    if host == "h1":  # as if made on the host: Helix fills Host: with the maker's host name
                        spec["Host"] = host
                    s.p4.save_client(spec)
                lat[host].append(first_stage_latency(JobSpec(
                    p4port=ex.port, p4user=ex.user, client=name, host=host,
                    source="//depot/main/...", target=f"//depot/b{host}{i}/...")))
    finally:
        for name in list(processes.running()):
            processes.stop(name)
        net.teardown(raise_errors=False)
        shutil.rmtree(work, ignore_errors=True)
    print()
    for k, v in figures.items():
        print(f"{k:44} {v:7.2f} s")
    print()
    print(f"{'request -> first stage':44} {'local':>9} {'remote h1':>10}")
    print(f"{'  median of ' + str(args.jobs) + ' jobs, s':44} {statistics.median(lat['local']):9.2f} "
          f"{statistics.median(lat['h1']):10.2f}")
    print(f"{'  each, s':44} {' '.join(f'{x:.1f}' for x in lat['local']):>9} "
          f"{' '.join(f'{x:.1f}' for x in lat['h1']):>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
