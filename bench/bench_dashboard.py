"""How fast the front page's dashboard draws with 10 and with 1,000 jobs in Prefect.

Starts a Prefect server of its own (free port, temporary P4INTEG_HOME), seeds flow
runs of the "integrate" flow straight through the API (mostly Completed, some
Failed, Cancelled, Paused and Running; half of them release-bot's, the rest spread
over five other users; the newest 50, every row either view lists, with the stage
task runs a real job of that state leaves), and renders the whole
app (sign-in gate, navigation, dashboard) with Streamlit's AppTest as release-bot.
At 10 runs, then again after seeding 990 more, it prints side by side:

- cold render: a fresh Python process's first page view (the app's imports, the
  Prefect client, the first queries), as after the front page's server starts;
- warm render: the median of 5 page views in this process (a new session each);
- Everyone's view: the median of 5 switches of "Show" to "Everyone's";
- Prefect API calls per render, and which of them take the time.

Figures only: nothing is asserted on time. Exits non-zero only if a result is
wrong (an exception on the page, or a count that does not match what was seeded).

    .venv/bin/python bench/bench_dashboard.py [--staged 50]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.settings import free_port  # noqa: E402 - after the path is set

APP = str(ROOT / "ui" / "app.py")
ME = "release-bot"
OTHERS = ["alice", "bob", "carol", "dave", "erin"]
P4PORT = "sandbox:/x"
SIZES = (10, 1000)
WARM_RENDERS = 5
TARGET_S = 1.5
# One cycle of 20 runs: 14 Completed, 2 Failed, 1 Cancelled, 2 Paused, 1 Running,
# spread out so that even the first 10 runs hold more than one state.
CYCLE = ["COMPLETED", "FAILED", "COMPLETED", "PAUSED", "COMPLETED", "RUNNING", "COMPLETED", "COMPLETED",
         "CANCELLED", "COMPLETED", "COMPLETED", "PAUSED", "COMPLETED", "COMPLETED", "FAILED", "COMPLETED",
         "COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"]
# The stages a real job of each final state has task runs for (the last one in that state).
PIPELINE = ["GET_LATEST_CL", "SYNC", "INTEGRATE", "RESOLVE_PASS_1", "RESOLVE_CHECK", "PRE_SUBMIT", "SHELVE",
            "P4PUSH", "DONE"]
STAGES_BY_STATE = {"COMPLETED": PIPELINE, "FAILED": PIPELINE[:3], "CANCELLED": PIPELINE[:2],
                   "PAUSED": PIPELINE[:5] + ["NEEDS_RESOLVE"], "RUNNING": PIPELINE[:2]}


# --- seeding ------------------------------------------------------------------------------------

def _state(kind: str) -> Any:
    from prefect import states

    return {"COMPLETED": states.Completed, "FAILED": states.Failed, "CANCELLED": states.Cancelled,
            "PAUSED": states.Paused, "RUNNING": states.Running}[kind]()


def user_of(i: int) -> str:
    """Every other run is release-bot's; the rest go round the five other users."""
    return ME if i % 2 == 0 else OTHERS[(i // 2) % len(OTHERS)]


def state_of(i: int) -> str:
    # By i // 2, so that release-bot and the others get the same mix of states.
    return CYCLE[(i // 2) % len(CYCLE)]


def make_deployment(client: Any) -> UUID:
    """integrate/local on pool p4-local, as `p4integ up` leaves it (no worker: nothing runs)."""
    from agent import pools
    from flows.settings import FLOW_ENTRYPOINT, FLOW_NAME, pool_name

    pools.ensure_pool("local", 4)
    flow_id = client.create_flow_from_name(FLOW_NAME)
    return client.create_deployment(flow_id=flow_id, name="local", work_pool_name=pool_name("local"),
                                    entrypoint=FLOW_ENTRYPOINT, tags=["p4-integration"])


def seed(client: Any, deployment_id: UUID, start: int, stop: int,
         staged: int) -> tuple[Counter[tuple[str, str]], int]:
    """Runs start..stop-1, the newest ``staged`` with their stage task runs; (runs by (user, state), task runs).

    Only the newest runs get stages: the page reads only the stages of the 25 runs it
    lists (and of up to 10 paused ones, whose stage it does not show), and at 20-70 ms
    a call, stages for all 1,000 runs (~7,400 task runs) make seeding take minutes."""
    from prefect import task

    stage_tasks = {s: task(lambda: None, name=s) for s in PIPELINE + ["NEEDS_RESOLVE"]}
    seeded: Counter[tuple[str, str]] = Counter()
    tasks = 0
    for i in range(start, stop):
        user, kind = user_of(i), state_of(i)
        spec = {"p4port": P4PORT, "p4user": user, "client": "rel-integ", "branch": "main-to-rel"}
        run = client.create_flow_run_from_deployment(deployment_id, parameters={"spec": spec},
                                                     tags=["p4-integration", f"p4user:{user}"], state=_state(kind))
        stages = STAGES_BY_STATE[kind] if i >= stop - staged else []
        for n, stage in enumerate(stages):
            last = n == len(stages) - 1
            client.create_task_run(stage_tasks[stage], run.id, dynamic_key="0", name=f"{stage}-0",
                                   state=_state(kind if last else "COMPLETED"))
        seeded[(user, kind)] += 1
        tasks += len(stages)
    return seeded, tasks


# --- counting the app's calls to Prefect --------------------------------------------------------

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class CallLog:
    """HTTP requests to the Prefect API while recording, by endpoint: count and seconds."""
    recording: bool = False
    count: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> None:
        # At httpx's level: every request the Prefect client sends, retries included, whoever sends it.
        import httpx

        send = httpx.Client.send
        log = self

        def counted(client: httpx.Client, request: httpx.Request, **kw: Any) -> httpx.Response:
            t = time.perf_counter()
            try:
                return send(client, request, **kw)
            finally:
                if log.recording:
                    key = f"{request.method} {_ID.sub('{id}', request.url.path.split('/api', 1)[-1])}"
                    with log.lock:
                        log.count[key] += 1
                        log.seconds[key] += time.perf_counter() - t

        httpx.Client.send = counted  # type: ignore[method-assign]

    @contextmanager
    def record(self) -> Iterator[None]:
        self.count.clear()
        self.seconds.clear()
        self.recording = True
        try:
            yield
        finally:
            self.recording = False


CALLS = CallLog()


# --- rendering ----------------------------------------------------------------------------------

@dataclass
class Render:
    seconds: float
    metrics: dict[str, str]
    errors: list[str]


def _result(at: Any, seconds: float) -> Render:
    return Render(seconds=seconds, metrics={m.label: str(m.value) for m in at.metric},
                  errors=[str(e.value) for e in at.exception])


def _quiet_streamlit() -> None:
    # AppTest touches the session from this (the main) thread, which has no script
    # run: Streamlit warns about it twice a render. True, and irrelevant here.
    import logging

    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda rec: "missing ScriptRunContext" not in rec.getMessage())


def render_mine() -> tuple[Any, Render]:
    """The app's default page (the dashboard) for a new session signed in as release-bot."""
    from streamlit.testing.v1 import AppTest

    t = time.perf_counter()
    at = AppTest.from_file(APP, default_timeout=120)
    from ui import auth

    at.session_state["_p4integ_session"] = auth.make_cookie(ME)  # what a sign-in leaves in the tab
    at.run()
    return at, _result(at, time.perf_counter() - t)


def render_everyones(at: Any) -> Render:
    t = time.perf_counter()
    at.segmented_control(key="dash_whose").set_value("Everyone's").run()
    return _result(at, time.perf_counter() - t)


def cold_render() -> Render:
    """One page view in a fresh interpreter (this script with --cold), so each size starts equally cold."""
    done = subprocess.run([sys.executable, __file__, "--cold"], env=os.environ.copy(), capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        raise SystemExit(f"cold render failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return Render(**json.loads(done.stdout.strip().splitlines()[-1]))


def cold_child() -> int:
    # Streamlit itself is loaded before the clock starts: a running front page has it already.
    import streamlit.testing.v1  # noqa: F401

    _, r = render_mine()
    print(json.dumps(r.__dict__))
    return 0


def check(r: Render, expected: Counter[tuple[str, str]], whose: str) -> None:
    """The metrics must count exactly what was seeded; a page exception is a failure too."""
    if r.errors:
        raise SystemExit(f"{whose}: the page raised: {r.errors}")
    mine = {k: n for k, n in expected.items() if whose == "Everyone's" or k[0] == ME}
    want = {"All": sum(mine.values()), "Needs you": sum(n for (_, s), n in mine.items() if s == "PAUSED")}
    got = {label: r.metrics.get(label) for label in want}
    if got != {label: str(n) for label, n in want.items()}:
        raise SystemExit(f"{whose}: metrics {got}, expected {want}")


@dataclass
class Figures:
    runs: int
    cold: float
    warm: float
    everyones: float
    calls_mine: Counter[str]
    calls_everyones: Counter[str]
    seconds_mine: Counter[str]


def measure(runs: int, expected: Counter[tuple[str, str]]) -> Figures:
    cold = cold_render()
    check(cold, expected, "Mine")
    warm, everyones = [], []
    for _ in range(WARM_RENDERS):
        at, mine = render_mine()
        check(mine, expected, "Mine")
        ev = render_everyones(at)
        check(ev, expected, "Everyone's")
        warm.append(mine.seconds)
        everyones.append(ev.seconds)
    # One more round, counted apart from the timed ones; any one-time call (client setup) is behind us.
    with CALLS.record():
        at, _ = render_mine()
    calls_mine, seconds_mine = Counter(CALLS.count), Counter(CALLS.seconds)
    with CALLS.record():
        render_everyones(at)
    return Figures(runs=runs, cold=cold.seconds, warm=statistics.median(warm), everyones=statistics.median(everyones),
                   calls_mine=calls_mine, calls_everyones=Counter(CALLS.count), seconds_mine=seconds_mine)


# --- report -------------------------------------------------------------------------------------

def report(figs: list[Figures]) -> None:
    print()
    print(f"{'runs':>6}{'cold render s':>16}{'warm median s':>16}{'everyone view s':>18}"
          f"{'API calls mine':>16}{'everyone':>10}")
    for f in figs:
        print(f"{f.runs:>6}{f.cold:>16.2f}{f.warm:>16.2f}{f.everyones:>18.2f}"
              f"{sum(f.calls_mine.values()):>16}{sum(f.calls_everyones.values()):>10}")
    print("cold: a new process's first page view; warm: a new session's page view in a warm process;\n"
          "everyone: the switch to Everyone's, a rerun in that session (so no session setup)")
    small, big = figs[0], figs[-1]
    print(f"ratio {big.runs}/{small.runs} of warm medians: {big.warm / small.warm:.2f}")
    print(f"ratio {big.runs}/{small.runs} of everyone view medians: {big.everyones / small.everyones:.2f}")
    print(f"\nAPI calls in one warm render of Mine at {big.runs} runs (endpoint, calls, seconds):")
    total = sum(big.seconds_mine.values())
    for key, s in big.seconds_mine.most_common():
        print(f"  {key:34}{big.calls_mine[key]:>4}{s:>8.3f}  ({s / total:.0%} of API time)")
    print(f"  {'all API calls':34}{sum(big.calls_mine.values()):>4}{total:>8.3f}  "
          f"(the median render took {big.warm:.2f} s)")
    verdict = "met" if big.warm < TARGET_S else "missed"
    print(f"\ntarget: dashboard under {TARGET_S} s with {big.runs:,} runs: {verdict} (warm median {big.warm:.2f} s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--staged", type=int, default=50,
                    help="how many of the newest runs get stage task runs (more: slower seeding)")
    ap.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)  # the child of cold_render()
    args = ap.parse_args()
    if args.cold:
        return cold_child()
    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    os.environ.update(P4INTEG_HOME=str(work / "home"), P4INTEG_PREFECT_PORT=str(free_port()),
                      PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", P4INTEG_P4PORT=P4PORT)
    from flows import settings

    os.environ.update(PREFECT_API_URL=settings.api_url(), PREFECT_HOME=str(settings.home() / "prefect"),
                      PREFECT_API_AUTH_STRING=settings.api_auth_string())
    from deployments import processes

    try:
        t = time.perf_counter()
        processes.start_server()
        print(f"Prefect server up in {time.perf_counter() - t:.1f} s")
        CALLS.install()
        _quiet_streamlit()
        figs = seed_and_measure(args.staged)
    finally:
        for name in list(processes.running()):
            processes.stop(name)
        shutil.rmtree(work, ignore_errors=True)
    report(figs)
    return 0


def seed_and_measure(staged: int) -> list[Figures]:
    from prefect.client.orchestration import get_client

    figs: list[Figures] = []
    expected: Counter[tuple[str, str]] = Counter()
    with get_client(sync_client=True) as client:
        deployment_id = make_deployment(client)
        seeded = tasks = 0
        for size in SIZES:
            t = time.perf_counter()
            runs, new_tasks = seed(client, deployment_id, seeded, size, staged)
            expected += runs
            tasks += new_tasks
            print(f"seeded {size - seeded} runs + {new_tasks} task runs in {time.perf_counter() - t:.1f} s "
                  f"(now {size} runs, {sum(n for (u, _), n in expected.items() if u == ME)} of them {ME}'s; "
                  f"{tasks} task runs)")
            seeded = size
            figs.append(measure(size, expected))
            print(f"measured {size} runs")
    return figs


if __name__ == "__main__":
    raise SystemExit(main())
