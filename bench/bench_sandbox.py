#!/usr/bin/env python
"""Benchmark the sandbox Helix server on a branch-integration cycle.

    .venv/bin/python bench/bench_sandbox.py [--sizes 1000,10000] [--repeat 3] [--profile]

For each size N, in a fresh depot in a temp dir:

* setup: N text files under //depot/main, one ``add`` and one ``submit``;
  branch to //depot/rel (``integrate`` + ``submit``, timed as "branch");
  edit 10% of the files on main (line 3); of those, 1% are also edited on rel
  at the same line (conflicts) and another 1% on rel at a different line
  (clean merges); the main edits and the rel edits are submitted;
* the measured cycle: ``integrate`` main->rel, ``resolve -am``, ``resolve -at``
  for the conflicts ``-am`` skipped, ``submit`` -- each step timed separately.

Setup, each timed cycle and the memory cycle run in their own processes, so
``ru_maxrss`` before a cycle is a fresh baseline and its delta is the cycle's
own growth. Every cycle starts from the same snapshot of the depot. The timed
cycles (``--repeat``, the fastest reported) run without ``tracemalloc``; one
more cycle runs under it for the peak of Python allocations, so tracing never
inflates the times. Every cycle checks its results (counts of files
integrated, merged, skipped, taken; nothing left opened or unresolved; revs,
contents and integration records of //depot/rel); the script exits non-zero
only when a result is wrong. Times and growth ratios are printed, never
asserted.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flows.p4.sandbox import P4, P4Exception, init_depot  # noqa: E402

CLIENT = "ws"
USER = "bench"
LINES = 10          # lines per file
PER_DIR = 100       # files per directory
TOLERANCE = 1.25    # "no worse than linear": ratio <= size ratio * TOLERANCE


class Wrong(Exception):
    """A result that is not what the scenario must produce."""


def check(cond: bool, what: str) -> None:
    if not cond:
        raise Wrong(what)


# --- the scenario -------------------------------------------------------------------------

def file_path(branch: str, i: int) -> str:
    return f"{branch}/d{i // PER_DIR:04d}/f{i:06d}.txt"


def content(i: int, edits: dict[int, str] | None = None) -> str:
    lines = [f"file {i} line {k}\n" for k in range(LINES)]
    for k, text in (edits or {}).items():
        lines[k] = text + "\n"
    return "".join(lines)


class Scenario:
    """Which files are edited where, and what the result must look like."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.main_edits = [i for i in range(n) if i % 10 == 0]             # 10%
        self.conflicts = [i for i in range(n) if i % 100 == 0]             # 1%, subset of main_edits
        self.clean = [i for i in range(n) if i % 100 == 10]                # 1%, subset of main_edits
        self.rel_edits = self.conflicts + self.clean
        self._main_set, self._conflict_set, self._clean_set = set(self.main_edits), set(self.conflicts), set(self.clean)

    @staticmethod
    def main_text(i: int) -> str:
        return content(i, {3: f"file {i} line 3 changed on main"})

    def rel_text(self, i: int) -> str:
        line = 3 if i in self._conflict_set else 7
        return content(i, {line: f"file {i} line {line} changed on rel"})

    def merged_text(self, i: int) -> str:
        """What //depot/rel must hold after the cycle."""
        if i in self._clean_set:
            return content(i, {3: f"file {i} line 3 changed on main", 7: f"file {i} line 7 changed on rel"})
        if i in self._main_set:
            return self.main_text(i)  # a copy, or 'theirs' for a conflict
        return content(i)


def connect(port: str, ws: Path) -> P4:
    p = P4()
    p.port, p.user, p.client, p.cwd = port, USER, CLIENT, str(ws)
    p.connect()
    return p


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.chmod(0o644)
    path.write_text(text)


def submitted_files(result: list[Any]) -> list[dict[str, Any]]:
    return [r for r in result if isinstance(r, dict) and "depotFile" in r]


def setup(p: P4, ws: Path, sc: Scenario) -> float:
    """Build the depot; return the seconds the branch (integrate + submit) took."""
    n = sc.n
    c = p.fetch_client(CLIENT)
    c._root = str(ws)
    c._view = [f"//depot/... //{CLIENT}/..."]
    p.save_client(c)

    paths = []
    for i in range(n):
        path = ws / file_path("main", i)
        write(path, content(i))
        paths.append(str(path))
    added = [r for r in p.run_add(*paths) if isinstance(r, dict)]
    check(len(added) == n, f"add opened {len(added)} files, expected {n}")
    done = submitted_files(p.run_submit("-d", "initial import"))
    check(len(done) == n, f"initial submit made {len(done)} revisions, expected {n}")

    t0 = time.perf_counter()
    branched = [r for r in p.run_integrate("//depot/main/...", "//depot/rel/...") if isinstance(r, dict)]
    done = submitted_files(p.run_submit("-d", "branch main to rel"))
    branch_s = time.perf_counter() - t0
    check(len(branched) == n and all(r["action"] == "branch" for r in branched),
          f"branch integrate opened {len(branched)} files for branch, expected {n}")
    check(len(done) == n, f"branch submit made {len(done)} revisions, expected {n}")

    main_paths = [str(ws / file_path("main", i)) for i in sc.main_edits]
    check(len([r for r in p.run_edit(*main_paths) if isinstance(r, dict)]) == len(main_paths),
          "edit on main opened the wrong number of files")
    for i in sc.main_edits:
        write(ws / file_path("main", i), sc.main_text(i))
    check(len(submitted_files(p.run_submit("-d", "edits on main"))) == len(sc.main_edits),
          "main edit submit made the wrong number of revisions")

    rel_paths = [str(ws / file_path("rel", i)) for i in sc.rel_edits]
    check(len([r for r in p.run_edit(*rel_paths) if isinstance(r, dict)]) == len(rel_paths),
          "edit on rel opened the wrong number of files")
    for i in sc.rel_edits:
        write(ws / file_path("rel", i), sc.rel_text(i))
    check(len(submitted_files(p.run_submit("-d", "edits on rel"))) == len(sc.rel_edits),
          "rel edit submit made the wrong number of revisions")
    return branch_s


def cycle(p: P4, sc: Scenario, profiler: cProfile.Profile | None = None) -> dict[str, float]:
    """integrate, resolve -am, resolve -at, submit: each timed, each checked."""
    n_int, n_conf, n_clean = len(sc.main_edits), len(sc.conflicts), len(sc.clean)
    times: dict[str, float] = {}

    def timed(name: str, fn: Any, *args: Any) -> list[Any]:
        if profiler is not None:
            profiler.enable()
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            times[name] = time.perf_counter() - t0
            if profiler is not None:
                profiler.disable()

    integ = timed("integrate", p.run_integrate, "//depot/main/...", "//depot/rel/...")
    recs = [r for r in integ if isinstance(r, dict)]
    check(len(recs) == n_int, f"integrate opened {len(recs)} files, expected {n_int}")
    check(all(r["action"] == "integrate" for r in recs), "integrate opened files for something else")

    am = timed("resolve_am", p.run_resolve, "-am")
    msgs = [m for m in am if isinstance(m, str)]
    copies = sum(" - copy from //" in m for m in msgs)
    merges = sum(" - merge from //" in m for m in msgs)
    skipped = sum(m.endswith(" - resolve skipped.") for m in msgs)
    check(len([r for r in am if isinstance(r, dict)]) == n_int, "resolve -am did not consider every file")
    check(copies == n_int - n_conf - n_clean, f"resolve -am copied {copies}, expected {n_int - n_conf - n_clean}")
    check(merges == n_clean, f"resolve -am merged {merges}, expected {n_clean}")
    check(skipped == n_conf, f"resolve -am skipped {skipped}, expected {n_conf}")
    with p.at_exception_level(P4.RAISE_ERRORS):
        pending = [r for r in p.run_resolve("-n") if isinstance(r, dict)]
    check(len(pending) == n_conf, f"{len(pending)} files left to resolve after -am, expected {n_conf}")

    at = timed("resolve_at", p.run_resolve, "-at")
    taken = sum(isinstance(m, str) and " - copy from //" in m for m in at)
    check(taken == n_conf, f"resolve -at took theirs for {taken} files, expected {n_conf}")

    sub = timed("submit", p.run_submit, "-d", "integrate main to rel")
    check(len(submitted_files(sub)) == n_int, f"submit made {len(submitted_files(sub))} revisions, expected {n_int}")
    check(any(isinstance(r, dict) and "submittedChange" in r for r in sub), "submit reported no submitted change")
    times["cycle"] = sum(times[k] for k in ("integrate", "resolve_am", "resolve_at", "submit"))
    return times


def verify_after(p: P4, ws: Path, sc: Scenario) -> None:
    """Nothing left open; //depot/rel holds the merged result at the right revisions."""
    with p.at_exception_level(P4.RAISE_ERRORS):
        opened = p.run_opened()
        unresolved = [r for r in p.run_resolve("-n") if isinstance(r, dict)]
    check(not opened, f"{len(opened)} files still opened after submit")
    check(not unresolved, f"{len(unresolved)} files still to resolve after submit")
    main_set, rel_set = set(sc.main_edits), set(sc.rel_edits)
    files = p.run_files("//depot/rel/...")
    check(len(files) == sc.n, f"//depot/rel has {len(files)} files, expected {sc.n}")
    by_name = {f["depotFile"]: int(f["rev"]) for f in files}
    for i in range(sc.n):
        want = 1 + (i in main_set) + (i in rel_set)
        got = by_name.get("//" + "depot/" + file_path("rel", i))
        check(got == want, f"//depot/{file_path('rel', i)} is at #{got}, expected #{want}")
    for i in sc.main_edits:
        got = (ws / file_path("rel", i)).read_text()
        check(got == sc.merged_text(i), f"workspace {file_path('rel', i)} holds the wrong text")
    main_only = next(i for i in sc.main_edits if i not in rel_set)
    for i, how in ((main_only, "copy from"), (sc.conflicts[0], "copy from"), (sc.clean[0], "merge from")):
        log = p.run_filelog(f"//depot/{file_path('rel', i)}")[0].revisions[0].integrations
        check([x.how for x in log] == [how], f"//depot/{file_path('rel', i)}: last integration {[x.how for x in log]}, "
                                             f"expected {how!r}")
    printed = p.run_print(*[f"//depot/{file_path('rel', i)}" for i in sc.rel_edits])
    texts = printed[1::2]
    check(len(texts) == len(sc.rel_edits), "print returned the wrong number of files")
    for i, text in zip(sc.rel_edits, texts):
        check(text == sc.merged_text(i), f"//depot/{file_path('rel', i)} holds the wrong text")


# --- snapshot and restore ------------------------------------------------------------------
#
# The cycle changes only the depot metadata (db.sqlite), adds blobs to the archive and
# rewrites the workspace files of its targets (//depot/rel files edited on main). So a
# snapshot is: a copy of the db files, the list of archive blobs, and copies of those
# workspace files -- cheap, where copying the whole depot and workspace is not.

def snapshot(tmp: Path, sc: Scenario) -> None:
    depot, ws, snap = tmp / "depot", tmp / "ws", tmp / "snap"
    (snap / "db").mkdir(parents=True)
    for f in depot.glob("db.sqlite*"):
        shutil.copy2(f, snap / "db" / f.name)
    blobs = sorted(str(f.relative_to(depot)) for f in (depot / "archive").rglob("*") if f.is_file())
    (snap / "archive.json").write_text(json.dumps(blobs))
    for i in sc.main_edits:
        dst = snap / "ws" / file_path("rel", i)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ws / file_path("rel", i), dst)


def restore(tmp: Path, sc: Scenario) -> None:
    depot, ws, snap = tmp / "depot", tmp / "ws", tmp / "snap"
    for f in depot.glob("db.sqlite*"):
        f.unlink()
    for f in (snap / "db").iterdir():
        shutil.copy2(f, depot / f.name)
    keep = set(json.loads((snap / "archive.json").read_text()))
    for f in (depot / "archive").rglob("*"):
        if f.is_file() and str(f.relative_to(depot)) not in keep:
            f.unlink()
    for i in sc.main_edits:
        dst = ws / file_path("rel", i)
        if dst.exists():
            dst.chmod(0o644)
            dst.unlink()
        shutil.copy2(snap / "ws" / file_path("rel", i), dst)


# --- phases, each in its own process ----------------------------------------------------------

def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def phase_setup(tmp: Path, sc: Scenario) -> dict[str, Any]:
    ws = tmp / "ws"
    ws.mkdir()
    p = connect(init_depot(tmp / "depot", security=0), ws)
    t0 = time.perf_counter()
    branch_s = setup(p, ws, sc)
    setup_s = time.perf_counter() - t0
    p.disconnect()
    snapshot(tmp, sc)
    return {"branch": branch_s, "setup": setup_s}


def phase_cycle(tmp: Path, sc: Scenario, profile: bool) -> dict[str, Any]:
    restore(tmp, sc)
    ws = tmp / "ws"
    p = connect(f"sandbox:{tmp / 'depot'}", ws)
    profiler = cProfile.Profile() if profile else None
    rss0 = maxrss_mb()
    times = cycle(p, sc, profiler)
    out: dict[str, Any] = {**times, "rss_delta_mb": maxrss_mb() - rss0, "rss_mb": maxrss_mb()}
    verify_after(p, ws, sc)
    p.disconnect()
    if profiler is not None:
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(25)
        out["profile"] = buf.getvalue()
    return out


def phase_memory(tmp: Path, sc: Scenario) -> dict[str, Any]:
    restore(tmp, sc)
    ws = tmp / "ws"
    p = connect(f"sandbox:{tmp / 'depot'}", ws)
    # Warm up (a preview integrate, a resolve listing) so one-time allocations --
    # lazily built caches, compiled patterns -- are not counted as the cycle's.
    p.run_integrate("-n", "//depot/main/...", "//depot/rel/...")
    with p.at_exception_level(P4.RAISE_ERRORS):
        p.run_resolve("-n")
    tracemalloc.start()
    cycle(p, sc)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    verify_after(p, ws, sc)
    p.disconnect()
    return {"peak_mb": peak / 2**20}


def run_phase(phase: str, n: int, tmp: Path, profile: bool) -> int:
    sc = Scenario(n)
    try:
        if phase == "setup":
            res = phase_setup(tmp, sc)
        elif phase == "cycle":
            res = phase_cycle(tmp, sc, profile)
        else:
            res = phase_memory(tmp, sc)
        res["ok"] = True
    except (Wrong, P4Exception) as exc:
        res = {"ok": False, "error": f"{phase}: {type(exc).__name__}: {exc}"}
    print(json.dumps(res))
    return 0 if res["ok"] else 1


# --- driver -------------------------------------------------------------------------------

def spawn(phase: str, n: int, tmp: Path, profile: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--n", str(n), "--dir", str(tmp)]
    proc = subprocess.run(cmd + (["--profile"] if profile else []), stdout=subprocess.PIPE, text=True)
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"ok": False, "error": f"{phase}: bench process exited {proc.returncode} without a result"}


def bench_size(n: int, repeat: int, profile: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"p4bench-{n}-"))
    try:
        res: dict[str, Any] = {"n": n}
        r = spawn("setup", n, tmp)
        if not r["ok"]:
            return {**res, **r}
        res.update(branch=r["branch"], setup=r["setup"])
        runs = []
        for k in range(repeat):
            r = spawn("cycle", n, tmp, profile and k == 0)
            if not r["ok"]:
                return {**res, **r}
            runs.append(r)
        best = min(runs, key=lambda x: x["cycle"])
        res.update({k: v for k, v in best.items() if k != "profile"})
        res["cycles"] = [x["cycle"] for x in runs]
        res["profile"] = runs[0].get("profile")
        r = spawn("memory", n, tmp)
        if not r["ok"]:
            return {**res, **r}
        res.update(peak_mb=r["peak_mb"], ok=True)
        return res
    finally:
        _rmtree_ro(tmp)


def _rmtree_ro(path: Path) -> None:
    """rmtree that copes with the read-only files a Helix workspace is full of."""
    def onerror(fn: Any, p: str, exc: Any) -> None:
        os.chmod(os.path.dirname(p), 0o755)
        if os.path.lexists(p):
            os.chmod(p, 0o644)
        fn(p)
    shutil.rmtree(path, onerror=onerror)


def report(results: list[dict[str, Any]], repeat: int) -> None:
    cols = [("N", "n", "{:d}"), ("branch s", "branch", "{:.2f}"), ("integrate s", "integrate", "{:.3f}"),
            ("resolve -am s", "resolve_am", "{:.3f}"), ("resolve -at s", "resolve_at", "{:.3f}"),
            ("submit s", "submit", "{:.3f}"), ("cycle s", "cycle", "{:.3f}"),
            ("tracemalloc peak MB", "peak_mb", "{:.2f}"), ("maxrss delta MB", "rss_delta_mb", "{:.1f}")]
    ok = [r for r in results if r.get("ok")]
    title = f"sandbox integration cycle, best of {repeat} (integrate + resolve -am + resolve -at + submit)"
    try:
        from rich.console import Console
        from rich.table import Table
        table = Table(title=title)
        for head, _, _ in cols:
            table.add_column(head, justify="right")
        for r in ok:
            table.add_row(*[fmt.format(r[key]) for _, key, fmt in cols])
        Console(width=170).print(table)
    except ImportError:
        print(title)
        print("  ".join(f"{h:>13}" for h, _, _ in cols))
        for r in ok:
            print("  ".join(f"{fmt.format(r[key]):>13}" for _, key, fmt in cols))
    for r in results:
        if not r.get("ok"):
            print(f"N={r['n']}: WRONG RESULT: {r.get('error')}")
    if len(ok) >= 2:
        small, big = min(ok, key=lambda r: r["n"]), max(ok, key=lambda r: r["n"])
        size_ratio = big["n"] / small["n"]
        limit = size_ratio * TOLERANCE
        t_ratio = big["cycle"] / small["cycle"] if small["cycle"] else float("inf")
        m_ratio = big["peak_mb"] / small["peak_mb"] if small["peak_mb"] else float("inf")
        label = f"{big['n']}/{small['n']}"
        print(f"{label} ratio: cycle time {t_ratio:.2f}, peak memory (tracemalloc) {m_ratio:.2f}   "
              f"(linear = {size_ratio:g}, tolerance x{TOLERANCE} -> limit {limit:g})")
        for what, ratio in (("cycle time", t_ratio), ("peak memory", m_ratio)):
            good = ratio <= limit
            print(f"  {what} growth: {'no worse than linear' if good else 'WORSE than linear'} "
                  f"({ratio:.2f} {'<=' if good else '>'} {limit:g})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000", help="comma-separated file counts (default 1000,10000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed cycles per size; the fastest is reported (default 3)")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the first timed cycle of each size")
    ap.add_argument("--phase", choices=("setup", "cycle", "memory"), help=argparse.SUPPRESS)  # internal
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.phase:
        return run_phase(a.phase, a.n, a.dir, a.profile)
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 100:
        ap.error("every size must be at least 100 (1% of the files must be at least one file)")
    repeat = max(1, a.repeat)
    results = []
    t0 = time.perf_counter()
    for n in sizes:
        r = bench_size(n, repeat, a.profile)
        results.append(r)
        if r.get("ok"):
            print(f"N={n}: setup {r['setup']:.1f}s (branch {r['branch']:.2f}s); cycles "
                  f"{', '.join(f'{c:.3f}' for c in r['cycles'])}s; tracemalloc peak {r['peak_mb']:.2f} MB; "
                  f"maxrss {r['rss_mb']:.0f} MB (cycle delta {r['rss_delta_mb']:.1f} MB); results verified",
                  flush=True)
            if r.get("profile"):
                print(r["profile"])
    report(results, repeat)
    print(f"total wall time {time.perf_counter() - t0:.1f}s")
    return 0 if all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
