"""A team's day under load: many jobs on several SSH hosts, people answering, faults in between.

Builds the team setup on this machine (needs root for the SSH test hosts): a Prefect
server on PostgreSQL (``--database``, default the machine's, or ``sqlite``), SSH test
hosts each with its own worker and pool (deployed by the dispatcher when jobs wait), one
shared sandbox depot per host pair, an SMTP sink and a webhook receiver for the
notifications. Then runs the day of ``bench/loadday.py`` once per host count in
``--scaling`` (default 1,2,4), with the faults (server restart, a worker killed, a host's
network cut for 30 s) in the run with the most hosts, and prints side by side. With
``--replicas N`` the server is the scaled-out shape (``p4integ up --replicas``: PostgreSQL,
Redis, HAProxy) and the fault on the server is one API replica killed instead of a restart.

- jobs per minute for each host count, and the ratio to one host;
- request -> first stage and resume -> continue, p50 and p95;
- the server's CPU seconds and peak memory (its process tree), PostgreSQL rows and bytes
  per job;
- what ``check_day`` found wrong at the end (nothing, when all is well);
- with ``--plot FILE``: jobs running and waiting over time, faults marked (PNG).

Figures only; exits non-zero when the day's end-state check finds anything wrong.

    .venv/bin/python bench/bench_load.py [--jobs 40] [--scaling 1,2,4] [--database sqlite] [--replicas 2]
        [--plot docs/load.png]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadday  # noqa: E402 - after the path is set
from flows.settings import free_port  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _pg(sql: str, db: str = "postgres", fetch: bool = False) -> Any:
    import asyncpg

    async def go() -> Any:
        conn = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + db)
        try:
            return await (conn.fetch(sql) if fetch else conn.execute(sql))
        finally:
            await conn.close()

    return asyncio.run(go())


def _tree_usage(pid: int) -> tuple[float, int]:
    """CPU seconds and resident bytes of a process and its children (a server's tree)."""
    tick, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    pids, cpu, rss = [pid], 0.0, 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                pids.append(int(entry))
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            rss += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return cpu, rss


def _environment(work: Path, bridge: str, database: str) -> str | None:
    """Point this process and what it starts at a new home and server; returns the PG database name."""
    dbname = None
    os.environ.update(P4INTEG_HOME=str(work / "home"), P4INTEG_PREFECT_PORT=str(free_port()),
                      P4INTEG_PREFECT_HOST=bridge, PREFECT_SERVER_ANALYTICS_ENABLED="false",
                      DO_NOT_TRACK="1", PREFECT_WORKER_QUERY_SECONDS="1",
                      PREFECT_LOGGING_TO_API_BATCH_INTERVAL="0.5",
                      P4INTEG_SMTP_HOST="127.0.0.1", P4INTEG_SMTP_PORT=str(free_port()))
    if database == "postgres":
        dbname = f"p4integ_load_{uuid.uuid4().hex[:8]}"
        _pg(f'CREATE DATABASE "{dbname}"')
        os.environ["P4INTEG_DATABASE_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}"
    else:
        os.environ.pop("P4INTEG_DATABASE_URL", None)
    from flows import settings

    os.environ.update(PREFECT_API_URL=settings.api_url(), PREFECT_HOME=str(settings.home() / "prefect"),
                      PREFECT_API_AUTH_STRING=settings.api_auth_string())
    return dbname


def _pg_size(dbname: str) -> tuple[int, int]:
    """(rows in all tables, bytes on disk) of the database."""
    rows = _pg("SELECT sum(n_live_tup)::bigint AS n FROM pg_stat_user_tables", dbname, fetch=True)[0]["n"] or 0
    size = _pg(f"SELECT pg_database_size('{dbname}') AS b", dbname, fetch=True)[0]["b"]
    return int(rows), int(size)


def _server_usage() -> tuple[float, int]:
    """CPU seconds and memory of the server's processes (one, or replicas, services and balancer)."""
    from deployments import processes
    from deployments.replicas import server_side

    cpu, rss = 0.0, 0
    for name, pid in processes.running().items():
        if server_side(name):
            c, r = _tree_usage(pid)
            cpu, rss = cpu + c, rss + r
    return cpu, rss


def one_day(plan: loadday.Plan, hosts: dict[str, Any], work: Path, dbname: str | None) -> dict[str, Any]:
    from deployments.notifications import set_notifications
    from flows.p4.example import USER
    from flows.polling import poll_until
    from tests import sinks

    base = work / f"day-{len(hosts)}"
    base.mkdir(mode=0o755)
    os.chmod(base, 0o755)
    before = _pg_size(dbname) if dbname else (0, 0)
    cpu0 = _server_usage()[0]
    peak = [0]
    with sinks.smtp_sink(int(os.environ["P4INTEG_SMTP_PORT"])) as mails, sinks.webhook_receiver() as (url, hooks):
        set_notifications(USER, email="team@example.com", webhook=url)

        def say(msg: str) -> None:
            print(msg, flush=True)

        def sample() -> None:  # the server's memory through the day (its pids change on a restart)
            peak[0] = max(peak[0], _server_usage()[1])

        t0 = time.monotonic()
        day = loadday.run_day(plan, hosts, base, say=say, on_tick=sample)
        elapsed = time.monotonic() - t0
        poll_until(lambda: not loadday.notices_missing(day, loadday.notices_received(mails.messages, hooks)), 180, 2.0)
        loadday.settle(day)
        wrong = loadday.check_day(day, loadday.notices_received(mails.messages, hooks))
        loadday.remove_schedules(day)
        set_notifications(USER)
    cpu1 = _server_usage()[0]  # a process that died during the day takes its CPU seconds with it
    after = _pg_size(dbname) if dbname else (0, 0)
    lat = loadday.latencies(day)
    n = len(day.jobs)
    # After a restart the two readings are of different processes: their difference means nothing.
    restarted = any(f.what in ("restart-server", "kill-replica") for f in day.faults)
    return {"day": day, "elapsed": elapsed, "wrong": wrong, "lat": lat, "rss": peak[0],
            "cpu": None if restarted else cpu1 - cpu0,
            "rows_per_job": (after[0] - before[0]) / n, "bytes_per_job": (after[1] - before[1]) / n}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    day = result["day"]
    t = [s[0] for s in day.samples]
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=110)
    dots = {"marker": ".", "markersize": 3}  # every sample shown: a straight stretch without dots has none
    ax.plot(t, [s[1] for s in day.samples], label="running", color="#1f77b4", **dots)
    ax.plot(t, [s[2] for s in day.samples], label="waiting for a person", color="#ff7f0e", **dots)
    ax.plot(t, [s[3] for s in day.samples], label="queued (pending, late, scheduled)", color="#7f7f7f", **dots)
    for f in day.faults:
        if f.done_at is not None:
            ax.axvline(f.done_at, color="#d62728", linestyle="--", linewidth=1)
            ax.text(f.done_at, ax.get_ylim()[1] * 0.95, f" {f.what} {f.host}".rstrip(), color="#d62728",
                    fontsize=8, rotation=90, va="top")
    ax.set_xlabel("seconds into the day")
    ax.set_ylabel("jobs")
    ax.set_title(f"{len(day.jobs)} jobs on {len(day.plan.hosts)} hosts")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=40)
    ap.add_argument("--scaling", default="1,2,4", help="host counts to run the day with")
    ap.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    ap.add_argument("--replicas", type=int, default=1, help="API replicas (2+: PostgreSQL, Redis, HAProxy)")
    ap.add_argument("--scheduled", type=int, default=2, help="templates firing every minute through each day")
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory and database for a post-mortem")
    ap.add_argument("--plot", type=Path, default=None, help="PNG of the run with the most hosts")
    args = ap.parse_args()
    from tests.testhosts import TestHostNetwork, missing_prerequisites

    if missing_prerequisites():
        print("cannot build test hosts here:", "; ".join(missing_prerequisites()))
        return 2
    counts = sorted({int(x) for x in args.scaling.split(",")})
    names = [f"h{i}" for i in range(1, max(counts) + 1)]
    work = Path(tempfile.mkdtemp(prefix="bench-load-", dir="/tmp"))
    os.chmod(work, 0o755)
    net = TestHostNetwork(names).start()
    dbname = _environment(work, net.bridge_address, args.database)
    from agent import pools
    from deployments import notifications, processes, recovery, register

    results: dict[int, dict[str, Any]] = {}
    try:
        if args.replicas > 1:
            os.environ.setdefault("P4INTEG_REDIS_URL", "redis://127.0.0.1:6379/0")
        processes.start_server(args.replicas)
        pools.ensure_pool("local", 6)
        register.ensure_deployment()
        notifications.ensure_automation()
        recovery.ensure_automations()
        processes.start_worker("local", 6)
        processes.start_dispatcher()
        from tests.cli import enrol

        for n in names:
            enrol(net.hosts[n])
        for n in counts:
            hosts = {h: net.hosts[h] for h in names[:n]}
            faults = [] if args.no_faults or n != max(counts) else [
                loadday.Fault(at=25, what="kill-replica" if args.replicas > 1 else "restart-server"),
                loadday.Fault(at=50, what="kill-worker", host=names[0]),
                loadday.Fault(at=75, what="cut-network", host=names[-1], seconds=30)]
            plan = loadday.Plan(jobs=args.jobs, hosts=list(hosts), faults=faults, timeout=1800,
                                scheduled=args.scheduled)
            print(f"day with {n} host(s), {args.jobs} jobs{', faults' if faults else ''}:", flush=True)
            results[n] = one_day(plan, hosts, work, dbname)
            print(f"  ended in {results[n]['elapsed']:.0f} s; wrong: {len(results[n]['wrong'])}", flush=True)
            for line in results[n]["wrong"]:
                print(f"  WRONG {line}", flush=True)
    finally:
        for name in list(processes.running()):
            processes.stop(name)
        net.teardown(raise_errors=False)
        if args.keep:
            print(f"kept: {work}" + (f", database {dbname}" if dbname else ""))
        else:
            if dbname:
                _pg(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"database: {args.database}; {args.jobs} jobs a day"
          + (f"; {args.replicas} API replicas behind HAProxy, Redis" if args.replicas > 1 else ""))
    print(f"{'hosts':>5} {'faults':>6} {'minutes':>8} {'jobs/min':>9} {'x 1 host':>9} {'first p50':>10} "
          f"{'first p95':>10} {'resume p50':>11} {'resume p95':>11} {'server cpu s':>13} {'server MB':>10} "
          f"{'rows/job':>9} {'KB/job':>7} {'wrong':>6}")
    base_rate = None
    for n, r in results.items():
        rate = len(r["day"].jobs) / (r["elapsed"] / 60)
        base_rate = base_rate or rate
        lat = r["lat"]
        print(f"{n:>5} {len(r['day'].faults):>6} {r['elapsed'] / 60:8.1f} {rate:9.1f} {rate / base_rate:9.2f} "
              f"{loadday.pct(lat['first_stage'], 50):10.1f} {loadday.pct(lat['first_stage'], 95):10.1f} "
              f"{loadday.pct(lat['resume'], 50):11.1f} {loadday.pct(lat['resume'], 95):11.1f} "
              f"{'n/a' if r['cpu'] is None else format(r['cpu'], '.0f'):>13} "
              f"{r['rss'] / 2**20:10.0f} {r['rows_per_job']:9.0f} "
              f"{r['bytes_per_job'] / 1024:7.0f} {len(r['wrong']):>6}")
    for n, r in results.items():
        for f in r["day"].faults:
            print(f"  {n} host(s): fault at {f.done_at or 0:.0f} s: {f.note}")
    if args.plot:
        plot(results[max(results)], args.plot)
        print(f"plot: {args.plot}")
    return 1 if any(r["wrong"] for r in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
