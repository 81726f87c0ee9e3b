"""Workers on real SSH hosts (network namespaces), deployed by the service itself."""
from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from prefect.client.schemas.objects import StateType

from agent import registry, wheelhouse
from agent.converge import SOFTWARE_DIRS, converge
from agent.health import health
from agent.records import HostRecord
from agent.ssh import HostError
from deployments import jobs, processes
from flows.settings import api_auth_string, api_url
from flows.p4.session import P4Session
from flows.spec import FileChoice, JobSpec
from flows.vocabulary import PAUSED_OR_FINAL

from ..flows.helpers import logs, until, wait_for_log
from bench.loadday import make_workspace, shared_depot as shared_example
from tests.cli import enrol, p4integ

pytestmark = pytest.mark.usefixtures("local_worker")



def record(host, **over) -> HostRecord:
    values = dict(name=host.name, address=host.address, user=host.user, key_file=str(host.private_key_path),
                  host_key=host.host_public_key)
    values.update(over)
    return HostRecord(**values)


@pytest.fixture(scope="module")
def enrolled(host_network):
    """Hosts a and b enrolled through the command line, the dispatcher running."""
    for name in ("a", "b"):
        assert f"hostname {name}" in enrol(host_network.hosts[name]).stdout
    processes.start_dispatcher()
    yield host_network
    processes.stop("dispatcher")


def left_open(host) -> None:  # tests.testhosts.Host
    """The host's ~/.p4integ readable by all, with a worker log like one an older version wrote."""
    base = Path(host.home, ".p4integ")
    base.mkdir(exist_ok=True)
    old_log = base / "worker.log"
    old_log.touch()
    for p, mode in ((base, 0o755), (old_log, 0o644)):
        os.chown(p, host.uid, host.gid)
        p.chmod(mode)


def open_to_others(base: Path) -> list[str]:
    """The service's data under ``base`` that group or others may use (symbolic links and the
    installed software aside, as agent.converge._make_private leaves them)."""
    found = []
    for root, dirs, files in os.walk(base):
        if Path(root) == base:
            dirs[:] = [d for d in dirs if d not in SOFTWARE_DIRS]
        for name in dirs + files:
            path = Path(root, name)
            if not path.is_symlink() and path.stat().st_mode & 0o077:
                found.append(f"{path.relative_to(base)} {stat.S_IMODE(path.stat().st_mode):o}")
    return found


@pytest.fixture(scope="module")
def shared_depot():
    base = Path(tempfile.mkdtemp(prefix="p4integ-shared-", dir="/tmp"))
    yield shared_example(base)
    shutil.rmtree(base, ignore_errors=True)


def host_client(ex, host, name: str, view: str) -> str:
    """A workspace owned by the host's user, in its home."""
    return make_workspace(ex, host, name, [view])


def test_enrolment_pins_a_confirmed_key_only(host_network) -> None:
    h = host_network.hosts["a"]
    base = ["hosts", "add", "zz", "--address", h.address, "--user", h.user, "--key", str(h.private_key_path)]
    unconfirmed = p4integ(*base)
    assert unconfirmed.returncode == 2 and f"--fingerprint {h.host_key_fingerprint}" in unconfirmed.stderr
    wrong = p4integ(*base, "--fingerprint", "SHA256:" + "A" * 43)
    assert wrong.returncode == 2 and "refusing" in wrong.stderr
    known = Path(tempfile.mkdtemp()) / "known_hosts"
    known.write_text(host_network.known_hosts_text())
    ok = p4integ(*base, "--known-hosts", str(known))
    assert ok.returncode == 0, ok.stderr
    assert registry.get("zz").host_key.split()[1] == h.host_public_key.split()[1]
    assert p4integ("hosts", "remove", "zz").returncode == 0


def test_two_hosts_run_integrations_at_the_same_time(enrolled, shared_depot) -> None:
    a, b = enrolled.hosts["a"], enrolled.hosts["b"]
    left_open(a)  # as an earlier version, or a person, left ~/.p4integ on host a
    first = p4integ("hosts", "deploy", "a")
    assert first.returncode == 0, first.stderr
    assert "changed:" in first.stdout and "worker started" in first.stdout
    assert "made private" in first.stdout
    again = p4integ("hosts", "deploy", "a")
    assert again.returncode == 0 and "no change" in again.stdout
    ex = shared_depot
    wa = host_client(ex, a, "ws-a", "//depot/rel/... //ws-a/...")
    wb = host_client(ex, b, "ws-b", "//depot/rel2/... //ws-b/...")
    meet = Path(tempfile.mkdtemp(prefix="p4integ-meet-", dir="/tmp"))
    os.chmod(meet, 0o777)

    def hook(me: str, other: str) -> list[str]:
        # Finishes only if the other host's job is running at the same time.
        return ["sh", "-c", f"touch {meet}/{me}; i=0; while [ ! -e {meet}/{other} ] && [ $i -lt 1200 ]; "
                f"do sleep 0.1; i=$((i+1)); done; [ -e {meet}/{other} ]"]

    # Host b has no worker yet: the dispatcher deploys one when its job waits.
    ra = jobs.submit(JobSpec(p4port=ex.port, p4user=ex.user, client=wa, host="a", branch=ex.branch,
                             pre_submit=[hook("a", "b")]))
    rb = jobs.submit(JobSpec(p4port=ex.port, p4user=ex.user, client=wb, host="b",
                             source="//depot/main/...", target="//depot/rel2/...", pre_submit=[hook("b", "a")]))
    # The dispatcher's report of what it did on the host, in the job's own log. (Whether it also
    # says it is "deploying one" depends on Prefect still listing a worker stopped moments ago
    # as online, as it does for a while after an earlier test in this session.)
    wait_for_log(rb, "worker started", timeout=240)
    assert jobs.wait(ra, timeout=240).state.type == StateType.COMPLETED, "\n".join(logs(ra))
    assert jobs.wait(rb, timeout=240).state.type == StateType.COMPLETED, "\n".join(logs(rb))
    assert any("job on host a (a)" in l for l in wait_for_log(ra, "job on host"))
    assert any("job on host b (b)" in l for l in wait_for_log(rb, "job on host"))
    local_a = Path(a.home) / "ws" / "ws-a" / "src" / "app.py"
    assert local_a.stat().st_uid == a.uid  # the files were written by a's user, on a
    with P4Session(ex.port, ex.user, ex.client) as s:
        assert s.print_file("//depot/rel2/docs/notes.txt") == "Release notes for 2.1.\n"
        assert "# main feature" in str(s.print_file("//depot/rel/src/app.py"))
    st = health(registry.get("b"))
    assert st.online and st.process_alive and st.version == wheelhouse.source_version()
    env = Path(b.home, ".p4integ", "worker.env").stat()
    assert env.st_mode & 0o777 == 0o600 and env.st_uid == b.uid
    for h in (a, b):  # a tightened, b private from birth: the worker's log and the jobs' records too
        base = Path(h.home, ".p4integ")
        assert stat.S_IMODE(base.stat().st_mode) == 0o700
        assert {"worker.log", "worker.env"} <= {p.name for p in base.iterdir()}
        assert list(base.glob("locks/*.holder")), "the job's workspace lock record"
        assert open_to_others(base) == []
    # The API refuses anonymous calls: the host's worker sends the service's credential.
    assert f"PREFECT_API_AUTH_STRING={api_auth_string()}\n" in Path(b.home, ".p4integ", "worker.env").read_text()


def test_new_version_replaces_the_worker_and_jobs_still_run(enrolled, shared_depot, monkeypatch) -> None:
    a = enrolled.hosts["a"]
    host = registry.get("a")
    converge(host, api_url())
    old_pid = int((Path(a.home) / ".p4integ" / "worker.pid").read_text())
    processes.stop("dispatcher")  # it would converge back to the checkout's own version
    try:
        bumped = wheelhouse.source_version() + "-next"
        monkeypatch.setattr(wheelhouse, "source_version", lambda: bumped)
        report = converge(host, api_url())
        assert "worker restarted for the new version" in report.changes and report.version == bumped
        until(lambda: old_pid not in a.pids_of_user(), 240, "the old worker to end")
        assert Path(a.home, ".p4integ", "venvs", bumped, ".complete").exists()
        client = host_client(shared_depot, a, "ws-a2", "//depot/rel3/... //ws-a2/...")
        rid = jobs.submit(JobSpec(p4port=shared_depot.port, p4user=shared_depot.user, client=client, host="a",
                                  source="//depot/main/...", target="//depot/rel3/..."))
        assert jobs.wait(rid, timeout=180).state.type == StateType.COMPLETED, logs(rid)
    finally:
        monkeypatch.undo()
        processes.start_dispatcher()


def test_killed_worker_is_offline_and_the_next_job_redeploys_it(enrolled, shared_depot) -> None:
    b = enrolled.hosts["b"]
    converge(registry.get("b"), api_url())
    pid = int((Path(b.home) / ".p4integ" / "worker.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    until(lambda: pid not in b.pids_of_user(), 240, "the worker to die")
    status = p4integ("hosts", "status", "b")
    assert status.returncode == 0 and "offline" in status.stdout and "no worker process" in status.stdout
    client = host_client(shared_depot, b, "ws-b2", "//depot/rel4/... //ws-b2/...")
    rid = jobs.submit(JobSpec(p4port=shared_depot.port, p4user=shared_depot.user, client=client, host="b",
                              source="//depot/main/...", target="//depot/rel4/..."))
    assert jobs.wait(rid, timeout=240).state.type == StateType.COMPLETED, logs(rid)
    assert health(registry.get("b")).process_alive


@pytest.mark.parametrize("case,expected", [
    ("unknown host key", "does not match the key pinned at enrolment"),
    ("wrong key", "was refused for user"),
    ("host down", "cannot reach"),
    ("no python", "no Python 3.11 or newer"),
])
def test_bad_hosts_are_refused_fast_with_nothing_half_installed(host_network, case: str, expected: str) -> None:
    other = host_network.hosts["b"]
    target = host_network.hosts["nopy" if case == "no python" else ("down" if case == "host down" else "a")]
    rec = {
        "unknown host key": lambda: record(target, host_key=other.host_public_key),
        "wrong key": lambda: record(target, key_file=str(host_network.hosts["b"].private_key_path) + ".nope"),
        "host down": lambda: record(target),
        "no python": lambda: record(target),
    }[case]()
    if case == "wrong key":
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", rec.key_file], check=True)
    venvs = Path(target.home, ".p4integ", "venvs")
    before = sorted(p.name for p in venvs.iterdir()) if venvs.exists() else []
    if case == "host down":
        target.stop_sshd()
    try:
        with pytest.raises(HostError) as info:
            converge(rec, api_url())
    finally:
        if case == "host down":
            target.start_sshd()
    assert expected in str(info.value)
    after = sorted(p.name for p in venvs.iterdir()) if venvs.exists() else []
    assert after == before  # nothing half-installed


def test_a_job_for_a_host_without_python_fails_saying_so(enrolled, shared_depot) -> None:
    nopy = enrolled.hosts["nopy"]
    enrol(nopy)
    rid = jobs.submit(JobSpec(p4port=shared_depot.port, p4user=shared_depot.user, client=shared_depot.client, host="nopy",
                              branch=shared_depot.branch))
    run = jobs.wait(rid, timeout=240)
    assert run.state.type == StateType.FAILED
    assert "no Python 3.11 or newer" in (run.state.message or "")
    wait_for_log(rid, "cannot deploy a worker")


def test_stop_leaves_no_process(enrolled) -> None:
    a = enrolled.hosts["a"]
    converge(registry.get("a"), api_url())
    out = p4integ("hosts", "stop", "a")
    assert out.returncode == 0 and "worker stopped" in out.stdout
    until(lambda: not [p for p in a.pids_of_user()
                       if b"prefect" in Path(f"/proc/{p}/cmdline").read_bytes()], 30, "no prefect process on a")
    again = p4integ("hosts", "stop", "a")
    assert "was not running" in again.stdout


def test_a_dead_worker_marks_its_job_and_the_next_job_cleans(enrolled, shared_depot) -> None:
    a = enrolled.hosts["a"]
    converge(registry.get("a"), api_url())
    client = host_client(shared_depot, a, "ws-a9", "//depot/rel9/... //ws-a9/...")
    spec = dict(p4port=shared_depot.port, p4user=shared_depot.user, client=client, host="a",
                source="//depot/main/...", target="//depot/rel9/...")
    first = jobs.submit(JobSpec(**spec, pre_submit=[["sh", "-c", "exec sleep 603"]]))
    until(lambda: [p for p in a.pids_of_user() if Path(f"/proc/{p}/cmdline").read_bytes() == b"sleep\x00603\x00"],
          180, "the first job's hook")
    with P4Session(shared_depot.port, shared_depot.user, client) as s:
        assert s.opened()  # the job has files open
    a.kill_user_processes()  # the host loses the worker and everything it ran
    run = jobs.wait(first, timeout=240)
    assert run.state.type == StateType.CRASHED and "process on host a is gone" in (run.state.message or "")
    second = jobs.submit(JobSpec(**spec))
    assert jobs.wait(second, timeout=240).state.type == StateType.COMPLETED, "\n".join(logs(second))
    # Whichever came first cleaned the dead run's files: the cleanup flow on host a (into the
    # dead run's log) or the next job on the workspace (into its own). A flow process sends
    # its last log lines as it exits, after its final state: wait for them.
    def cleaned() -> list[str]:
        return [l for l in logs(first) if l.startswith("CLEANUP after the run ended Crashed")] + \
            [l for l in logs(second) if f"cleaned what flow run {first} left behind" in l]
    lines = until(cleaned, 240, f"a line saying what flow run {first} left was cleaned")
    assert any("reverted" in l for l in lines), lines
    with P4Session(shared_depot.port, shared_depot.user, client) as s:
        assert s.opened() == [] and s.changes("-s", "pending", "-c", client) == []


def test_a_job_its_dead_worker_claimed_but_never_started_runs_on_the_next_worker(enrolled, shared_depot) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Pending, Scheduled

    b = enrolled.hosts["b"]
    client = host_client(shared_depot, b, "ws-b7", "//depot/rel7/... //ws-b7/...")
    spec = JobSpec(p4port=shared_depot.port, p4user=shared_depot.user, client=client, host="b",
                   source="//depot/main/...", target="//depot/rel7/...")
    assert p4integ("hosts", "stop", "b").returncode == 0  # the worker dies ...
    # ... right after it claimed a queued run, before starting its process: the run stays Pending,
    # holding one of the host's slots, and no worker will ever take it again.
    with get_client(sync_client=True) as c:
        dep = c.read_deployment_by_name("integrate/b")
        run = c.create_flow_run_from_deployment(dep.id, parameters={"spec": spec.model_dump(mode="json")},
                                                state=Scheduled(), tags=jobs.run_tags(spec))
        c.set_flow_run_state(run.id, Pending(), force=True)
    wait_for_log(run.id, "claimed this job but never started it", timeout=240)
    assert jobs.wait(run.id, timeout=240).state.type == StateType.COMPLETED, "\n".join(logs(run.id))
    with P4Session(shared_depot.port, shared_depot.user, shared_depot.client) as s:
        assert "# main feature" in str(s.print_file("//depot/rel7/src/app.py"))


def test_jobs_waiting_on_a_host_survive_the_loss_of_its_worker(enrolled) -> None:
    a = enrolled.hosts["a"]
    converge(registry.get("a"), api_url())
    bases = [Path(tempfile.mkdtemp(prefix=f"p4integ-wait{i}-", dir="/tmp")) for i in range(2)]
    try:
        examples = [shared_example(b, conflict=True) for b in bases]
        runs = []
        for i, ex in enumerate(examples):
            client = host_client(ex, a, f"ws-wait{i}", f"//depot/rel/... //ws-wait{i}/...")
            runs.append(jobs.submit(JobSpec(p4port=ex.port, p4user=ex.user, client=client, host="a",
                                            branch=ex.branch)))
        for r in runs:
            run = jobs.wait(r, until=PAUSED_OR_FINAL, timeout=240)
            assert run.state.name == "Suspended", "\n".join(logs(r))
        a.kill_user_processes()  # the host reboots: its worker and every process of its user are gone
        for r in runs:
            assert jobs.read(r).state.name == "Suspended"  # nothing was running, nothing is lost
            jobs.resume(r, "apply", [FileChoice(path="//depot/rel/src/config.ini", choice="theirs")])
        for r, ex in zip(runs, examples):
            assert jobs.wait(r, timeout=300).state.type == StateType.COMPLETED, "\n".join(logs(r))
            with P4Session(ex.port, ex.user, ex.client) as s:
                assert "version = 2.1" in str(s.print_file("//depot/rel/src/config.ini"))
                assert s.run("opened", "-a") == []
        # The last lines of a run are sent as its process exits, after the state turned final.
        wait_for_log(runs[0], "job on host a (a)", timeout=240)
    finally:
        for b in bases:
            shutil.rmtree(b, ignore_errors=True)


def test_a_job_answered_while_its_hosts_network_is_cut_waits_for_the_host(enrolled) -> None:
    """A person's answer must not be turned into a failure by a short outage: the job queued for
    a host that cannot be reached, but whose worker was heard from minutes ago, waits for it."""
    from bench.loadday import set_link

    a = enrolled.hosts["a"]
    converge(registry.get("a"), api_url())
    base = Path(tempfile.mkdtemp(prefix="p4integ-cut-", dir="/tmp"))
    try:
        ex = shared_example(base, conflict=True)
        client = host_client(ex, a, "ws-cut", "//depot/rel/... //ws-cut/...")
        rid = jobs.submit(JobSpec(p4port=ex.port, p4user=ex.user, client=client, host="a", branch=ex.branch))
        assert jobs.wait(rid, until=PAUSED_OR_FINAL, timeout=240).state.name == "Suspended", "\n".join(logs(rid))
        set_link(a, up=False)  # the host's cable is pulled
        try:
            jobs.resume(rid, "apply", [FileChoice(path="//depot/rel/src/config.ini", choice="theirs")])
            wait_for_log(rid, "so this job waits for the host", timeout=180)
            assert jobs.read(rid).state.type == StateType.SCHEDULED  # queued still, not failed
        finally:
            set_link(a, up=True)
        assert jobs.wait(rid, timeout=300).state.type == StateType.COMPLETED, "\n".join(logs(rid))
        with P4Session(ex.port, ex.user, ex.client) as s:
            assert "version = 2.1" in str(s.print_file("//depot/rel/src/config.ini"))  # the answer, submitted
    finally:
        shutil.rmtree(base, ignore_errors=True)
