"""Integration lines: how long from a submit to its integration, and what watching costs.

Starts a Prefect server of its own (free port, temporary P4INTEG_HOME), the local worker and
the service's background process (the watcher polls every ``--poll`` seconds), creates a line
on a sandbox depot, then prints side by side:

- submit -> integrated: for each of ``--changes`` changes submitted to the line's source one
  after another, the seconds until the line's job has submitted it to the target (no manual
  step: the watcher's event starts the line);
- watching: one poll of a server with 1, 10 and 100 lines on it, the Perforce queries it sent
  and its seconds (median of 5 polls).

Figures only: nothing is asserted on time. Exits non-zero only if a change does not land.

    .venv/bin/python bench/bench_lines.py [--changes 5] [--poll 5]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.settings import free_port  # noqa: E402 - after the path is set


def _submit(ex: Any, n: int) -> int:
    from flows.p4.example import AUTHOR_CLIENT
    from flows.p4.sandbox import P4

    root = Path(ex.depot_dir).parent / "workspaces" / AUTHOR_CLIENT
    p4 = P4(port=ex.port, user="alice", client=AUTHOR_CLIENT, cwd=str(root)).connect()
    p4.exception_level = 1
    try:
        p4.run_sync()
        p4.run_edit("//depot/main/src/app.py")
        path = root / "main" / "src" / "app.py"
        path.write_text(path.read_text() + f"\n# bench change {n}\n")
        out = p4.run_submit("-d", f"bench change {n}")
    finally:
        p4.disconnect()
    return int(next(r["submittedChange"] for r in out if isinstance(r, dict) and "submittedChange" in r))


def _landed(ex: Any, change: int) -> bool:
    from flows.p4.session import P4Session

    with P4Session(ex.port, ex.user, ex.client) as s:
        return all(c.change != change for c in s.interchanges(branch=ex.branch))


def latencies(ex: Any, name: str, n: int) -> list[float]:
    from flows.polling import poll_until

    out = []
    for i in range(n):
        change, t = _submit(ex, i), time.monotonic()
        if not poll_until(lambda change=change: _landed(ex, change), 300, 0.2):
            raise SystemExit(f"change {change} did not land on line {name} within 300 s")
        out.append(time.monotonic() - t)
    return out


class _Counting:
    """Counts the commands a real session sends (wraps P4Session.run)."""

    def __init__(self, session: Any) -> None:
        self.sent = 0
        real = session.run

        def run(*args: Any, **kw: Any) -> Any:
            self.sent += 1
            return real(*args, **kw)
        session.run = run


def watch_cost(ex: Any, sizes: tuple[int, ...]) -> dict[int, tuple[int, float]]:
    from deployments.lines import Line
    from deployments.watcher import Watcher
    from flows.lines import LineSpec
    from flows.p4.session import P4Session
    from flows.spec import JobSpec

    out = {}
    for n in sizes:
        rows = [Line(spec=LineSpec(name=f"cost-{i}", job=JobSpec(
                    p4port=ex.port, p4user=ex.user, client=ex.client, source=f"//depot/main/part{i}/...",
                    target=f"//depot/rel/part{i}/..."))
                     if i % 2 else LineSpec(name=f"cost-{i}", job=JobSpec(p4port=ex.port, p4user=ex.user,
                                                                            client=ex.client, branch=ex.branch)),
                     owner=ex.user, visibility="private", paused=False, deployment_id=uuid.uuid4()) for i in range(n)]
        watcher = Watcher()
        session = P4Session(ex.port, ex.user, ex.client).__enter__()
        counter = _Counting(session)
        watcher._sessions[ex.port] = session
        watcher.poll(rows)  # reads the branch specs once
        counter.sent, times = 0, []
        for _ in range(5):
            t = time.perf_counter()
            watcher.poll(rows)
            times.append(time.perf_counter() - t)
        out[n] = (counter.sent // 5, statistics.median(times))
        session.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=5)
    ap.add_argument("--poll", type=float, default=5.0, help="the watcher's interval, seconds")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-lines-"))
    os.environ.update(P4INTEG_HOME=str(work / "home"), P4INTEG_PREFECT_PORT=str(free_port()),
                      PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PREFECT_WORKER_QUERY_SECONDS="1",
                      P4INTEG_WATCH_SECONDS=str(args.poll))
    from flows import settings

    os.environ.update(PREFECT_API_URL=settings.api_url(), PREFECT_HOME=str(settings.home() / "prefect"),
                      PREFECT_API_AUTH_STRING=settings.api_auth_string())
    from agent import pools
    from deployments import lines, notifications, processes, recovery, register
    from flows.lines import LineSpec
    from flows.p4.example import make_example
    from flows.polling import poll_until
    from flows.spec import JobSpec

    try:
        processes.start_server()
        pools.ensure_pool("local", 4)
        register.ensure_deployment()
        notifications.ensure_automation()
        recovery.ensure_automations()
        processes.start_worker("local", 4)
        ex = make_example(work / "ex", conflict=False)
        name = "bench-line"
        job = JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client, branch=ex.branch)
        lines.create(ex.user, LineSpec(name=name, job=job), operator=True)
        processes.start_dispatcher()  # the background process: the watcher among it
        poll_until(lambda: _landed_all(ex), 300, 0.5)  # the example's own pending change, woken at start
        lat = latencies(ex, name, args.changes)
        cost = watch_cost(ex, (1, 10, 100))
    finally:
        for proc in list(processes.running()):
            processes.stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"submit -> integrated on a line, watcher every {args.poll:.0f} s, {args.changes} changes one after another:")
    each = " ".join(f"{x:.1f}" for x in lat)
    print(f"  median {statistics.median(lat):.1f} s, max {max(lat):.1f} s   (each: {each})")
    print()
    print(f"{'lines on the server':>20} {'queries a poll':>15} {'ms a poll':>10}")
    for n, (queries, seconds) in cost.items():
        print(f"{n:>20} {queries:>15} {seconds * 1000:>10.2f}")
    print(f"ratio of poll seconds, 100 lines / 1 line: {cost[100][1] / cost[1][1]:.2f}")
    return 0


def _landed_all(ex: Any) -> bool:
    from flows.p4.session import P4Session

    with P4Session(ex.port, ex.user, ex.client) as s:
        return s.interchanges(branch=ex.branch) == []


if __name__ == "__main__":
    raise SystemExit(main())
