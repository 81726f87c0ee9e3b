"""A team's day on the service: hosts, jobs, people and faults, and what must be true at its end.

The day is a script: jobs of a few kinds (clean, a conflict a person answers in one of
several ways, a failing hook) spread over SSH hosts and several workspaces per host,
submitted in bursts, with faults at set times (the Prefect server restarted, a host's
worker killed, a host's network cut). A scripted person answers each conflict after a
random delay. ``run_day`` drives it and returns what happened; ``check_day`` says what
is wrong at the end (nothing lost, stuck or duplicated, no workspace left with opened
files or a stray pending change, every person's choice in the depot, each notification
sent once). ``bench/bench_load.py`` runs full days and prints figures; the test suite
runs a small day and asserts that ``check_day`` finds nothing.

Everything here is driven through the service's own API (``deployments.jobs``), as the
front page and the CLI drive it.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

# One job of the day: what it meets and what the person does.
CLEAN, THEIRS, EDITED, RECHECK, ABORT, CANCEL, HOOK = (
    "clean", "theirs", "edited", "recheck-then-yours", "abort", "cancel", "failing-hook")
CONFLICT_KINDS = (THEIRS, EDITED, RECHECK, ABORT, CANCEL)
# The final state each kind must end in.
EXPECTED_STATE = {CLEAN: "Completed", THEIRS: "Completed", EDITED: "Completed", RECHECK: "Completed",
                  ABORT: "Failed", CANCEL: "Cancelled", HOOK: "Failed"}
CONFIG = "src/config.ini"
BASE_CHANGE = 2  # main before the 2.1 feature (flows.p4.example): each target branches from here
WAITING = {"Suspended", "Paused"}
# config.ini's version line in the depot once each kind of job has ended as expected (the
# target's own edit is 2.0.<index>; an edited answer is checked against its own text).
_VERSION_AFTER = {CLEAN: "2.1", THEIRS: "2.1", HOOK: "2.0", ABORT: "2.0.{i}", CANCEL: "2.0.{i}", RECHECK: "2.0.{i}"}


@dataclass
class Job:
    """One job of the day and what happened to it."""

    index: int
    kind: str
    host: str
    client: str
    target: str          # //depot/tN/...
    depot: Any           # flows.p4.example.Example
    submit_at: float     # seconds into the day
    answer_delay: float  # seconds the person takes once asked
    run_id: UUID | None = None       # the job's current run
    crashed: list[UUID] = field(default_factory=list)  # earlier runs that crashed and were started again
    submitted: float = 0.0           # wall clock
    answers: list[tuple[float, str]] = field(default_factory=list)  # (wall clock, action)
    asked: int = 0                   # times the person was asked (pauses seen)
    pending_answer_at: float | None = None
    final: str | None = None
    edited_text: str | None = None

    @property
    def name(self) -> str:
        return f"load-{self.index:03d}-{self.kind}"

    @property
    def runs(self) -> list[UUID]:
        """Every run of the job: those that crashed, then the current one."""
        return [*self.crashed, *([self.run_id] if self.run_id else [])]


@dataclass
class Fault:
    at: float      # seconds into the day
    what: str      # restart-server | kill-replica | kill-worker | cut-network
    host: str = ""
    seconds: float = 30.0
    done_at: float | None = None
    note: str = ""


@dataclass
class Plan:
    jobs: int = 40
    hosts: list[str] = field(default_factory=lambda: ["a", "b", "c", "d"])
    workspaces_per_host: int = 3
    conflict_share: float = 0.25
    hook_failures: int = 2
    burst: int = 6              # jobs per burst
    burst_every: float = 10.0   # seconds between bursts
    answer_delay: tuple[float, float] = (2.0, 20.0)
    faults: list[Fault] = field(default_factory=list)
    scheduled: int = 0          # templates firing every minute through the day
    seed: int = 7
    timeout: float = 900.0      # the day must settle within this


@dataclass
class Scheduled:
    """A template with an every-minute schedule, on its own workspace and target."""

    name: str
    target: Job            # the branch it integrates into, made as a clean job's would be
    deployment_id: UUID | None = None
    runs: list[UUID] = field(default_factory=list)  # the runs its schedule made during the day


@dataclass
class Day:
    plan: Plan
    jobs: list[Job]
    scheduled: list[Scheduled] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)  # (t, running, waiting, pending)
    faults: list[Fault] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


# --- the depots and workspaces ------------------------------------------------------------

def shared_depot(base: Path, conflict: bool = False) -> Any:
    """The example depot (``flows.p4.example``), open to every host's user: its files can be
    written by jobs on any host (in the load run, each host pair shares one)."""
    from flows.p4.example import make_example

    ex = make_example(base / "ex", conflict=conflict)
    for d in (base, base / "ex"):
        os.chmod(d, 0o755)
    for root, _dirs, files in os.walk(ex.depot_dir):
        os.chmod(root, 0o777)
        for f in files:
            os.chmod(os.path.join(root, f), 0o666)
    return ex


def _author(ex: Any) -> Any:
    from flows.p4.example import AUTHOR_CLIENT
    from flows.p4.sandbox import P4

    p4 = P4(port=ex.port, user=ex.user, client=AUTHOR_CLIENT, cwd=str(Path(ex.workspace).parent / AUTHOR_CLIENT))
    p4.connect()
    return p4


def make_targets(ex: Any, jobs: list[Job]) -> None:
    """One target branch per job, from main before its 2.1 change; a conflict job's target has
    its own edit of config.ini's version line, so the integration conflicts there."""
    p4 = _author(ex)
    root = Path(ex.workspace).parent / "authoring"
    try:
        for job in jobs:
            t = job.target.removesuffix("/...")
            p4.run_integrate(f"//depot/main/...@{BASE_CHANGE}", job.target)
            p4.run_submit("-d", f"branch {t} for {job.name}")
            if job.kind in CONFLICT_KINDS:
                p4.run_edit(f"{t}/{CONFIG}")
                path = root / t.removeprefix("//depot/") / CONFIG
                path.chmod(0o644)
                path.write_text(path.read_text().replace("version = 2.0", f"version = 2.0.{job.index}"))
                p4.run_submit("-d", f"{t}: hotfix 2.0.{job.index}")
    finally:
        p4.disconnect()


def make_workspace(ex: Any, host: Any, name: str, view: list[str]) -> str:
    """A workspace owned by the host's user, in its home, with this view."""
    from flows.p4.session import P4Session

    root = Path(host.home) / "ws" / name
    root.mkdir(parents=True, exist_ok=True)
    for p in (root.parent, root):
        os.chown(p, host.uid, host.gid)
    with P4Session(ex.port, ex.user, ex.client) as s:
        spec = s.p4.fetch_client(name)
        spec["Root"] = str(root)
        spec["View"] = view
        spec["Host"] = host.name  # as if made on the host: Helix fills Host: with the maker's host name
        s.p4.save_client(spec)
    return name


def plan_jobs(plan: Plan, hosts: dict[str, Any], base: Path) -> list[Job]:
    """The day's jobs: kinds shuffled by the seed, hosts and workspaces round robin."""
    rng = random.Random(plan.seed)
    conflicts = max(len(CONFLICT_KINDS), round(plan.jobs * plan.conflict_share)) if plan.jobs >= 10 else \
        min(plan.jobs, round(plan.jobs * plan.conflict_share))
    kinds = [CONFLICT_KINDS[i % len(CONFLICT_KINDS)] for i in range(conflicts)]
    kinds += [HOOK] * min(plan.hook_failures, plan.jobs - len(kinds))
    kinds += [CLEAN] * (plan.jobs - len(kinds))
    rng.shuffle(kinds)
    names = sorted(hosts)
    depots: dict[str, Any] = {}
    for i in range(0, len(names), 2):  # one depot per host pair
        pair = names[i:i + 2]
        ex = shared_depot(base / f"depot-{'-'.join(pair)}")
        for n in pair:
            depots[n] = ex
    jobs = []
    for i, kind in enumerate(kinds):
        host = names[i % len(names)]
        ws = f"ws-{host}-{(i // len(names)) % plan.workspaces_per_host}"
        jobs.append(Job(index=i, kind=kind, host=host, client=ws, target=f"//depot/t{i:03d}/...",
                        depot=depots[host], submit_at=(i // plan.burst) * plan.burst_every,
                        answer_delay=rng.uniform(*plan.answer_delay)))
    for ex in {id(d): d for d in depots.values()}.values():
        make_targets(ex, [j for j in jobs if j.depot is ex])
    for host in names:
        for w in range(plan.workspaces_per_host):
            ws = f"ws-{host}-{w}"
            view = [f"{j.target} //{ws}/{j.target.removeprefix('//depot/')}" for j in jobs if j.client == ws]
            if view:
                make_workspace(depots[host], hosts[host], ws, view)
    return jobs


def plan_scheduled(plan: Plan, hosts: dict[str, Any], jobs: list[Job]) -> list[Scheduled]:
    """The day's scheduled templates, each with a target branched as a clean job's and a
    workspace of its own, hosts round robin."""
    names = sorted(hosts)
    out = []
    for k in range(plan.scheduled):
        host = names[k % len(names)]
        depot = next(j.depot for j in jobs if j.host == host)
        target = Job(index=900 + k, kind=CLEAN, host=host, client=f"ws-cron-{k}", target=f"//depot/s{k:02d}/...",
                     depot=depot, submit_at=0.0, answer_delay=0.0)
        make_targets(depot, [target])
        make_workspace(depot, hosts[host], target.client,
                       [f"{target.target} //{target.client}/{target.target.removeprefix('//depot/')}"])
        out.append(Scheduled(name=f"load-cron-{k}", target=target))
    return out


def start_schedules(scheduled: list[Scheduled]) -> None:
    from deployments import templates

    for sch in scheduled:
        user = sch.target.depot.user
        sch.deployment_id = templates.create(user, sch.name, spec_of(sch.target), operator=True).deployment_id
        templates.add_schedule(user, sch.name, "* * * * *")


def end_schedules(day: Day) -> None:
    """Pause the schedules (Prefect deletes the runs they had made ahead of their time) and
    keep the runs they made during the day, which the end of the day waits for."""
    from datetime import datetime, timezone

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterExpectedStartTime,
    )

    from deployments import templates

    for sch in day.scheduled:
        user = sch.target.depot.user
        for info in templates.schedules(user, sch.name):
            templates.set_active(user, sch.name, info.id, False)
    now = datetime.now(timezone.utc)
    with get_client(sync_client=True) as c:
        for sch in day.scheduled:
            runs = c.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[sch.deployment_id])),
                flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(before_=now)),
                limit=200)
            sch.runs = [r.id for r in runs]


def remove_schedules(day: Day) -> None:
    """The day's templates are gone (after the end-of-day check)."""
    from deployments import templates

    for sch in day.scheduled:
        templates.delete(sch.target.depot.user, sch.name)


def spec_of(job: Job) -> Any:
    from flows.spec import JobSpec

    ex = job.depot
    hook = [["sh", "-c", "echo 'build: 1 error' >&2; exit 3"]] if job.kind == HOOK else []
    return JobSpec(p4port=ex.port, p4user=ex.user, client=job.client, host=job.host,
                   source="//depot/main/...", target=job.target, pre_submit=hook)


# --- faults -------------------------------------------------------------------------------

def restart_server() -> str:
    from deployments import processes

    processes.stop("server")
    processes.start_server()
    return "server stopped and started again"


def kill_replica(which: int = 1) -> str:
    """SIGKILL one API replica of a scaled-out server (``p4integ up --replicas``): the balancer
    finds it gone at its next health check and the other replicas serve everyone."""
    from deployments import processes, replicas

    name = replicas.REPLICA.format(which)
    pid = processes.running().get(name)
    if pid is None:
        return f"no API replica {which} to kill"
    os.kill(pid, signal.SIGKILL)
    return f"killed API replica {which} (pid {pid})"


def kill_worker(host: Any) -> str:
    """SIGKILL the host's worker process (as the kernel's OOM killer would). Its running jobs'
    processes die with it (their output pipes break), and the dispatcher takes it from there."""
    pid_file = Path(host.home, ".p4integ", "worker.pid")
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError) as exc:
        return f"no worker to kill on {host.name}: {exc}"
    return f"killed worker pid {pid} on {host.name}"


def set_link(host: Any, up: bool) -> None:
    """The host's cable: its veth end on this machine's bridge, down or up."""
    import subprocess

    subprocess.run(["ip", "link", "set", host._veth, "up" if up else "down"], check=True,
                   capture_output=True)


# --- the day ------------------------------------------------------------------------------

def _read_runs(ids: list[UUID]) -> dict[UUID, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    found: dict[UUID, Any] = {}
    with get_client(sync_client=True) as c:
        for i in range(0, len(ids), 200):  # the API gives at most 200 rows a call
            part = ids[i:i + 200]
            found.update((r.id, r) for r in c.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=part)), limit=len(part)))
    return found


def _answer(job: Job, now: float) -> None:
    from deployments import jobs as api
    from flows.spec import FileChoice

    path = f"{job.target.removesuffix('/...')}/{CONFIG}"
    if job.kind == CANCEL:
        api.cancel(job.run_id)  # type: ignore[arg-type]
        action = "cancel"
    elif job.kind == ABORT:
        api.resume(job.run_id, "abort")  # type: ignore[arg-type]
        action = "abort"
    elif job.kind == RECHECK and job.asked == 1:
        api.resume(job.run_id, "recheck")  # type: ignore[arg-type]
        action = "recheck"
    elif job.kind == EDITED:
        job.edited_text = f"[product]\nname = widget\nversion = 2.1-load{job.index}\nchannel = stable\n"
        api.resume(job.run_id, "apply", [FileChoice(path=path, choice="edited", text=job.edited_text)])  # type: ignore[arg-type]
        action = "edited"
    else:
        choice = "yours" if job.kind == RECHECK else "theirs"
        api.resume(job.run_id, "apply", [FileChoice(path=path, choice=choice)])  # type: ignore[arg-type,arg-type]
        action = choice
    job.answers.append((now, action))


def run_day(plan: Plan, hosts: dict[str, Any], base: Path, *, say: Callable[[str], None] = print,
            on_tick: Callable[[], None] | None = None) -> Day:
    """Prepare the depots, then submit, answer and break things on schedule until every job ended."""
    from deployments import jobs as api
    from flows import runs as runs_api

    jobs = plan_jobs(plan, hosts, base)
    day = Day(plan=plan, jobs=jobs, faults=sorted((Fault(**vars(f)) for f in plan.faults), key=lambda f: f.at),
              scheduled=plan_scheduled(plan, hosts, jobs))
    rng = random.Random(plan.seed + 1)
    day.started = time.time()
    start_schedules(day.scheduled)
    deadline = time.monotonic() + plan.timeout
    cut: list[tuple[float, Any]] = []
    while time.monotonic() < deadline:
        now = time.time()
        t = now - day.started
        for job in jobs:
            if job.run_id is None and job.submit_at <= t:
                job.submitted = time.time()
                job.run_id = api.submit(spec_of(job), name=job.name)
        for fault in day.faults:
            if fault.done_at is None and fault.at <= t:
                fault.done_at = time.time() - day.started
                if fault.what == "restart-server":
                    fault.note = restart_server()
                elif fault.what == "kill-replica":
                    fault.note = kill_replica()
                elif fault.what == "kill-worker":
                    fault.note = kill_worker(hosts[fault.host])
                elif fault.what == "cut-network":
                    set_link(hosts[fault.host], up=False)
                    cut.append((time.time() + fault.seconds, hosts[fault.host]))
                    fault.note = f"{fault.host}'s link down for {fault.seconds:.0f} s"
                say(f"  t={fault.done_at:6.1f}s fault: {fault.note}")
        for until_t, host in list(cut):
            if time.time() >= until_t:
                set_link(host, up=True)
                cut.remove((until_t, host))
                say(f"  t={time.time() - day.started:6.1f}s fault: {host.name}'s link up again")
        ids = [j.run_id for j in jobs if j.run_id is not None]
        try:
            runs = _read_runs(ids) if ids else {}
        except Exception as exc:  # noqa: BLE001 - the server may be restarting: look again
            day.events.append(f"t={t:.1f}s read failed: {exc}")
            time.sleep(0.5)
            continue
        running = waiting = pending = 0
        for job in jobs:
            run = runs.get(job.run_id) if job.run_id else None
            if run is None or run.state is None:
                continue
            name = run.state.name
            if run.state.is_final():
                if name == "Crashed" and job.pending_answer_at is None:
                    # As a person does with the Retry button, after a while.
                    job.pending_answer_at = now + job.answer_delay
                elif name == "Crashed" and now >= job.pending_answer_at:  # type: ignore[operator]
                    job.crashed.append(job.run_id)  # type: ignore[arg-type]
                    job.run_id = api.submit(spec_of(job), name=job.name)
                    job.answers.append((time.time(), "retry"))
                    job.asked, job.pending_answer_at, job.final = 0, None, None
                    continue
                job.final = name
                continue
            job.final = None
            if name in WAITING:
                waiting += 1
                pauses = runs_api.pauses_of(run)
                if pauses > job.asked and job.pending_answer_at is None:
                    job.asked = pauses
                    job.pending_answer_at = now + rng.uniform(*plan.answer_delay) if job.asked > 1 \
                        else now + job.answer_delay
                if job.pending_answer_at is not None and now >= job.pending_answer_at:
                    try:
                        _answer(job, time.time())
                    except Exception as exc:  # noqa: BLE001 - e.g. the server restarting: ask again later
                        day.events.append(f"{job.name}: answer refused: {exc}")
                        job.pending_answer_at = now + 1.0
                    else:
                        job.pending_answer_at = None
            elif name == "Running":
                running += 1
            else:
                pending += 1
        day.samples.append((t, running, waiting, pending))
        if on_tick:
            on_tick()
        if all(j.run_id is not None for j in jobs) and all(j.final and j.final != "Crashed" for j in jobs) and not cut \
                and all(f.done_at is not None for f in day.faults):
            break
        time.sleep(0.5)
    for _until, host in cut:
        set_link(host, up=True)
    end_schedules(day)
    day.ended = time.time()
    return day


# --- the end of the day -------------------------------------------------------------------

def check_day(day: Day, notices: dict[str, list[tuple[str, str]]] | None = None) -> list[str]:
    """Everything that is not as it must be at the end of the day ([] when all is well).

    ``notices``: per channel, the (run id, state) of every notification received."""
    from datetime import datetime, timezone

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterExpectedStartTime, FlowRunFilterName

    from flows.p4.session import P4Session

    wrong: list[str] = []
    faulted = {f.host for f in day.faults if f.what in ("kill-worker", "cut-network")}
    for job in day.jobs:
        if job.run_id is None:
            wrong.append(f"{job.name}: never submitted")
        elif job.final != EXPECTED_STATE[job.kind]:
            wrong.append(f"{job.name}: ended {job.final or 'not at all'}, expected {EXPECTED_STATE[job.kind]}")
    runs = _read_runs([r for j in day.jobs for r in j.runs])
    for job in day.jobs:
        if job.crashed and job.host not in faulted:
            why = "; ".join(str(runs[r].state.message) for r in job.crashed if r in runs and runs[r].state)
            wrong.append(f"{job.name}: {len(job.crashed)} run(s) crashed on host {job.host}, which had no fault: {why}")
    # The flow names each run after its job ("<workspace>: <source> -> <target>"): a job's runs
    # are exactly its first run, and one more for each time a person started it again (a run
    # that crashed before its flow began keeps the name Prefect gave it).
    attempts = {runs[j.run_id].name: 1 + sum(1 for r in j.crashed if r in runs and runs[r].name == runs[j.run_id].name)
                for j in day.jobs if j.run_id in runs}
    since = datetime.fromtimestamp(day.started, timezone.utc)  # an earlier day may have used the same names
    with get_client(sync_client=True) as c:
        same = c.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(any_=list(attempts)),
            expected_start_time=FlowRunFilterExpectedStartTime(after_=since)), limit=200) if attempts else []
    by_name: dict[str, int] = {}
    for r in same:
        by_name[r.name] = by_name.get(r.name, 0) + 1
    wrong += [f"{n}: {by_name.get(n, 0)} runs, expected {k}" for n, k in attempts.items() if by_name.get(n, 0) != k]
    wrong += _check_scheduled(day)
    wrong += [f"run {r.name} ({r.id}) still {r.state.name if r.state else 'without a state'}"
              for r in unsettled_runs(day)]
    every = day.jobs + [sch.target for sch in day.scheduled]
    for (port, client), ex in {(j.depot.port, j.client): j.depot for j in every}.items():
        with P4Session(port, ex.user, ex.client) as s:
            opened = [o["depotFile"] for o in s.p4.run("opened", "-a", "-C", client)]
            pending = [c.change for c in s.changes("-s", "pending", "-c", client)]
        if opened or pending:
            wrong.append(f"workspace {client}: opened {opened}, pending changes {pending}")
    for job in day.jobs:
        if job.final != EXPECTED_STATE[job.kind]:
            continue
        want = _expected_config(job)
        if want is not None:
            have = _head(job.depot, f"{job.target.removesuffix('/...')}/{CONFIG}")
            if have != want:
                wrong.append(f"{job.name}: {CONFIG} in the depot is {have!r}, expected {want!r}")
    cron_runs = _read_runs([r for sch in day.scheduled for r in sch.runs])
    expected = notices_due({**runs, **cron_runs})
    names = {str(r): j.name for j in day.jobs for r in j.runs}
    names.update({str(r): sch.name for sch in day.scheduled for r in sch.runs})
    for channel, got_list in (notices or {}).items():
        got: dict[tuple[str, str], int] = {}
        for key in got_list:
            got[key] = got.get(key, 0) + 1
        for key in expected:
            n = got.pop(key, 0)
            if n != 1:
                wrong.append(f"{names[key[0]]} (run {key[0]}): {n} {channel} notification(s) for {key[1]}, "
                             "expected 1")
        wrong += [f"{names.get(rid, rid)}: {n} unexpected {channel} notification(s) for {state}"
                  for (rid, state), n in got.items() if rid in names]
    return wrong


def _check_scheduled(day: Day) -> list[str]:
    """Each schedule fired once a minute through the day (none lost, none twice), and every
    run it made ended Completed."""
    wrong = []
    minutes = int((day.ended - day.started) // 60)
    for sch in day.scheduled:
        runs = _read_runs(sch.runs)
        due = [r.expected_start_time for r in runs.values()]
        if len(due) < minutes - 1:
            wrong.append(f"{sch.name}: {len(due)} runs in a day of {minutes} minutes: some were lost")
        if len(set(due)) != len(due):
            wrong.append(f"{sch.name}: two runs for the same minute")
        wrong += [f"{sch.name}: run {r.name} ({r.id}) ended {r.state.name if r.state else 'without a state'}"
                  for r in runs.values() if not (r.state and r.state.name == "Completed")]
    return wrong


def notices_due(runs: dict[UUID, Any]) -> set[tuple[str, str]]:
    """(run id, state) for every notification the runs' owners are due: once for a run that waited
    for a person, once for how it ended unless it was cancelled (flows/notify.py)."""
    from flows import runs as runs_api

    due = set()
    for rid, run in runs.items():
        if runs_api.pauses_of(run):
            due.add((str(rid), "Suspended"))
        if run.state and run.state.name in ("Completed", "Failed", "Crashed"):
            due.add((str(rid), run.state.name))
    return due


def unsettled_runs(day: Day) -> list[Any]:
    """The day's runs that have not ended: its jobs', and the notifications and cleanups that
    followed them (their ``flow_run_id`` names a job's run). Runs of others on the same server,
    such as the runs a schedule makes ahead of their time, are not the day's to wait for."""
    from datetime import datetime, timezone

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterExpectedStartTime

    since = datetime.fromtimestamp(day.started, timezone.utc)
    ours = {str(r) for j in day.jobs for r in j.runs} | {str(r) for sch in day.scheduled for r in sch.runs}
    found, offset = [], 0
    with get_client(sync_client=True) as c:
        while True:
            page = c.read_flow_runs(flow_run_filter=FlowRunFilter(
                expected_start_time=FlowRunFilterExpectedStartTime(after_=since)), limit=200, offset=offset)
            found += [r for r in page if not (r.state and r.state.is_final()) and _of_day(r, ours)]
            if len(page) < 200:
                return found
            offset += 200


def _of_day(run: Any, ours: set[str]) -> bool:
    about = str((run.parameters or {}).get("flow_run_id", ""))
    return str(run.id) in ours or about.rsplit(".", 1)[-1] in ours  # an event's resource id: prefect.flow-run.<id>


def settle(day: Day, timeout: float = 240.0) -> None:
    """Wait until every run the day made has ended (the last notifications and cleanups among
    them): only then are counts final. ``check_day`` names any run that never does."""
    from flows.polling import poll_until

    poll_until(lambda: not unsettled_runs(day), timeout, 0.5)


def notices_missing(day: Day, notices: dict[str, list[tuple[str, str]]]) -> int:
    """How many due notifications have not arrived yet on some channel: waited on until 0, so a
    notice still on its way (or made up by the recovery sweep a minute on) is not counted lost."""
    due = notices_due(_read_runs([r for j in day.jobs for r in j.runs]
                                 + [r for sch in day.scheduled for r in sch.runs]))
    return sum(len(due - set(got)) for got in notices.values())


def notices_received(mails: list[str], hooks: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """(run id, state) of each e-mail (its link names the run, its subject what happened) and
    webhook call (its run id and event). Mail about runs of others is kept out by the caller."""
    import email
    import email.policy
    import re

    from flows.notify import KINDS

    state_of = {what: event.rsplit(".", 1)[-1] for event, what in KINDS.items() if not event.endswith("Paused")}
    out: dict[str, list[tuple[str, str]]] = {"e-mail": [], "webhook": []}
    for m in mails:
        msg = email.message_from_string(m, policy=email.policy.default)
        subject = " ".join(str(msg["Subject"]).split())
        rid = re.search(r"job\?run=([0-9a-f-]{36})", msg.get_content())  # type: ignore[attr-defined]
        state = next((st for what, st in state_of.items() if subject.endswith(" " + what)), "?")
        out["e-mail"].append((rid.group(1) if rid else subject, state))
    for h in hooks:
        out["webhook"].append((h["run_id"], h["event"].rsplit(".", 1)[-1]))
    return out


def _expected_config(job: Job) -> str | None:
    if job.kind == EDITED:
        return job.edited_text
    version = _VERSION_AFTER[job.kind].format(i=job.index)
    return f"[product]\nname = widget\nversion = {version}\nchannel = stable\n"


def _head(ex: Any, path: str) -> str:
    from flows.p4.session import P4Session

    with P4Session(ex.port, ex.user, ex.client) as s:
        data = s.print_file(path)
    return data if isinstance(data, str) else data.decode()


# --- figures ------------------------------------------------------------------------------

def stage_starts(run_ids: list[UUID]) -> dict[UUID, list[float]]:
    """Start times (wall clock) of each run's task runs, sorted."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    out: dict[UUID, list[float]] = {r: [] for r in run_ids}
    with get_client(sync_client=True) as c:
        for i in range(0, len(run_ids), 5):
            flt = FlowRunFilter(id=FlowRunFilterId(any_=run_ids[i:i + 5]))
            offset = 0
            while True:  # the API gives at most 200 rows a call
                tasks = c.read_task_runs(flow_run_filter=flt, limit=200, offset=offset)
                for t in tasks:
                    if t.start_time and t.flow_run_id in out:
                        out[t.flow_run_id].append(t.start_time.timestamp())
                if len(tasks) < 200:
                    break
                offset += 200
    return {k: sorted(v) for k, v in out.items()}


def latencies(day: Day) -> dict[str, list[float]]:
    """request -> first stage, and answer -> first stage after it, per job (seconds)."""
    starts = stage_starts([j.run_id for j in day.jobs if j.run_id])
    first, resumed = [], []
    for job in day.jobs:
        s = starts.get(job.run_id, []) if job.run_id else []
        if s:
            first.append(s[0] - job.submitted)
        for at, action in job.answers:
            if action in ("cancel", "abort"):
                continue
            after = [x for x in s if x > at]
            if after:
                resumed.append(after[0] - at)
    return {"first_stage": first, "resume": resumed}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def cleanup(base: Path) -> None:
    shutil.rmtree(base, ignore_errors=True)
