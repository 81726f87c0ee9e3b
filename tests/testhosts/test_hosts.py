"""The real SSH test hosts of tests/testhosts/ behave like remote machines.

Skipped unless we are root with iproute2, openssh-server and util-linux installed
(`.ci/hosts-prereqs`). Waits poll a condition with a deadline; nothing sleeps blindly.
"""
from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests import testhosts
from tests.testhosts import TestHostNetwork

REASONS = testhosts.missing_prerequisites()
pytestmark = pytest.mark.skipif(bool(REASONS), reason="real SSH test hosts unavailable: "
                                + "; ".join(REASONS))
paramiko = pytest.importorskip("paramiko")


def wait_for(condition, timeout: float, what: str, interval: float = 0.02):
    """The infrastructure's own poll-with-deadline, failing the test on timeout."""
    try:
        return testhosts._poll(condition, timeout, what, interval)
    except testhosts.TestHostError as exc:
        raise AssertionError(str(exc)) from None


def ssh(host: testhosts.Host, command: str, **kw) -> tuple[int, str, str]:
    client = host.ssh_client(**kw)
    try:
        _, out, err = client.exec_command(command, timeout=30)
        status = out.channel.recv_exit_status()
        return status, out.read().decode(), err.read().decode()
    finally:
        client.close()


def leftovers(run_id: str, subnet: str | None = None) -> dict[str, list[str]]:
    """Everything of run run_id still on this machine (all lists empty when clean)."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    passwd = subprocess.run(["getent", "passwd"], capture_output=True, text=True).stdout
    group = subprocess.run(["getent", "group"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    routes = subprocess.run(["ip", "route", "show", "table", "all"], capture_output=True,
                            text=True).stdout
    mounts = Path("/proc/self/mountinfo").read_text()
    users = [line.split(":")[0] for line in passwd.splitlines()
             if re.fullmatch(rf"p4h-[a-z0-9]+-{run_id}", line.split(":")[0])]
    return {
        "netns": [n for n in netns.split() if n.startswith(f"p4t-{run_id}-")],
        "users": users,
        "groups": [line for line in group.splitlines()
                   if re.match(rf"p4h-[a-z0-9]+-{run_id}:", line)],
        "links": re.findall(rf"p4[bvp]{run_id}\w*", links),
        "routes": [r for r in routes.splitlines()
                   if f"p4b{run_id}" in r or (subnet and r.startswith(f"unreachable {subnet} "))],
        "mounts": [m for m in mounts.splitlines() if f"p4t-{run_id}" in m],
        "dirs": [str(p) for p in Path(testhosts.BASE_DIR).glob(f"p4t-{run_id}")],
    }


def assert_clean(run_id: str, uids: list[int], subnet: str | None = None) -> None:
    left = leftovers(run_id, subnet)
    assert left == {k: [] for k in left}
    procs = [pid for pid, st in testhosts._live_pids() if set(uids) & testhosts._uids(st)]
    assert procs == []


@pytest.fixture(scope="module")
def net():
    t0 = time.monotonic()
    with TestHostNetwork(["a", "b", "c"], no_python=["c"]) as network:
        print(f"\n[testhosts] 3 hosts up in {time.monotonic() - t0:.3f} s "
              f"({network.subnet}, run {network.run_id})")
        yield network


def test_each_host_answers_as_itself_over_pinned_ssh(net):
    homes = set()
    for name in ("a", "b"):
        host = net.hosts[name]
        t0 = time.monotonic()
        client = host.ssh_client()
        connect = time.monotonic() - t0
        try:
            _, out, _ = client.exec_command("hostname; echo $HOME; id -un; pwd")
            lines = out.read().decode().split()
        finally:
            client.close()
        print(f"[testhosts] paramiko connect to {name}: {connect:.3f} s")
        assert lines == [name, str(host.home), host.user, str(host.home)]
        assert host.home.is_dir() and host.home.stat().st_uid == host.uid
        homes.add(lines[1])
    assert len(homes) == 2
    a, b = net.hosts["a"], net.hosts["b"]
    assert a.host_public_key.startswith("ssh-ed25519 AAAA")
    assert a.host_public_key != b.host_public_key
    assert a.host_key_fingerprint.startswith("SHA256:")
    assert a.host_key().get_fingerprint() != b.host_key().get_fingerprint()
    assert (a.address, b.address) != (b.address, a.address) and a.port == 22


def test_sftp_works(net):
    host = net.hosts["a"]
    client = host.ssh_client()
    try:
        with client.open_sftp() as sftp:
            with sftp.open("uploaded.txt", "w") as f:
                f.write("hello")
    finally:
        client.close()
    assert (host.home / "uploaded.txt").read_text() == "hello"
    assert host.run(["cat", "uploaded.txt"]).stdout == "hello"


def test_unknown_or_wrong_host_key_is_refused(net):
    host = net.hosts["a"]
    with pytest.raises(paramiko.SSHException):
        host.ssh_client(pin=False)  # RejectPolicy, key not known
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.get_host_keys().add(host.known_hosts_name, "ssh-ed25519", net.hosts["b"].host_key())
    with pytest.raises(paramiko.BadHostKeyException):
        client.connect(host.address, username=host.user, key_filename=str(host.private_key_path),
                       look_for_keys=False, allow_agent=False, timeout=10)
    client.close()


def test_wrong_client_key_and_wrong_user_are_refused(net, tmp_path):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    host = net.hosts["a"]
    with pytest.raises(paramiko.AuthenticationException):
        host.ssh_client(key_path=other)
    # each host lets in only its own user, even with the right key
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.get_host_keys().add(host.known_hosts_name, "ssh-ed25519", host.host_key())
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(host.address, username=net.hosts["b"].user,
                       key_filename=str(host.private_key_path), look_for_keys=False,
                       allow_agent=False, timeout=10)
    client.close()
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(host.address, username="root", key_filename=str(host.private_key_path),
                       look_for_keys=False, allow_agent=False, timeout=10)
    client.close()


def test_host_down_refuses_quickly_and_comes_back(net):
    host = net.hosts["b"]
    session = host.ssh_client()
    try:
        host.stop_sshd()
        assert not host.sshd_running
        wait_for(lambda: not session.get_transport().is_active(), 10, "open session to drop")
        # Refused at once (no listener), not a timeout.
        with pytest.raises((paramiko.ssh_exception.NoValidConnectionsError, ConnectionRefusedError)):
            host.ssh_client(timeout=5)
        assert not [p for p in host.pids_in_host()
                    if testhosts._proc_status(p).get("Name") == "sshd"]
    finally:
        session.close()
        host.start_sshd()
    assert ssh(host, "hostname")[1].strip() == "b"


def test_hosts_reach_each_other_and_the_bridge_but_nothing_else(net):
    a, b = net.hosts["a"], net.hosts["b"]
    probe = "exec 3<>/dev/tcp/{}/{}; head -c 8 <&3"
    r = a.run(probe.format(b.address, 22), timeout=10)
    assert r.stdout == "SSH-2.0-", r.stderr

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"hello from the root namespace"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((net.bridge_address, 0), Hello)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        get = ("exec 3<>/dev/tcp/{}/{} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3")
        r = wait_for(lambda: (p := a.run(get.format(net.bridge_address, port), timeout=10))
                     .returncode == 0 and p, 10, "HTTP server on the bridge")
        assert r.stdout.startswith("HTTP/1.0 200") and r.stdout.endswith("root namespace")
        # ...from an SSH session too, and with the host's own python
        status, out, err = ssh(a, "python3 -c 'import urllib.request as u; print(u.urlopen("
                                  f"\"http://{net.bridge_address}:{port}/\").read().decode())'")
        assert (status, out.strip()) == (0, "hello from the root namespace"), err
        # the root namespace's loopback is not the host's loopback
        r = a.run(get.format("127.0.0.1", port), timeout=10)
        assert r.returncode != 0 and "refused" in r.stderr
    finally:
        server.shutdown()
        server.server_close()
    # no route out of a host: the kernel refuses locally, nothing is sent
    r = a.run(probe.format("198.51.100.1", 80), timeout=10)
    assert r.returncode != 0 and "Network is unreachable" in r.stderr
    routes = subprocess.run(["ip", "route", "show", net.subnet], capture_output=True,
                            text=True).stdout
    assert f"dev {net.bridge}" in routes and "unreachable" in routes and "metric 4213" in routes
    got = subprocess.run(["ip", "-j", "route", "get", a.address], capture_output=True,
                         text=True).stdout
    assert json.loads(got)[0]["dev"] == net.bridge


def test_host_without_python(net):
    c = net.hosts["c"]
    assert not c.python
    status, out, err = ssh(c, "command -v python3 python3.11 python; echo rc=$?; /usr/bin/python3 -V")
    assert "rc=1" in out and "python" not in out.replace("rc=1", "")
    assert status == 127 and "No such file or directory" in err
    assert c.run("command -v python3").returncode == 1
    # other hosts keep theirs, and so does this machine
    assert ssh(net.hosts["a"], "python3 -c 'print(6*7)'")[1].strip() == "42"
    assert Path("/usr/bin/python3").exists()


def test_user_processes_are_seen_and_killed(net):
    host = net.hosts["a"]
    status, _, err = ssh(host, "setsid -f sh -c 'echo $$ > bg.pid; exec sleep 300' "
                               "</dev/null >/dev/null 2>&1")
    assert status == 0, err
    pid = int(wait_for(lambda: (host.home / "bg.pid").exists()
                       and (host.home / "bg.pid").read_text().strip(), 10, "bg.pid"))
    wait_for(lambda: pid in host.pids_of_user(), 10, "sleep to show up as the host's user")
    assert pid not in net.hosts["b"].pids_of_user()
    host.kill_user_processes()
    assert host.pids_of_user() == []
    assert ssh(host, "echo still-up")[1].strip() == "still-up"


def test_teardown_leaves_nothing_behind_and_runs_do_not_clash():
    t0 = time.monotonic()
    first = TestHostNetwork(["x", "y"]).start()
    up = time.monotonic() - t0
    second = TestHostNetwork(["x"]).start()
    try:
        assert first.run_id != second.run_id and first.subnet != second.subnet
        assert second.hosts["x"].user != first.hosts["x"].user
        session = first.hosts["x"].ssh_client()
        status, _, _ = ssh(first.hosts["y"], "setsid -f sleep 300 </dev/null >/dev/null 2>&1")
        assert status == 0
        wait_for(lambda: first.hosts["y"].pids_of_user(), 10, "background process")
        uids = [h.uid for h in first.hosts.values()]
        t0 = time.monotonic()
        first.teardown()
        down = time.monotonic() - t0
        print(f"[testhosts] 2 hosts up in {up:.3f} s, teardown {down:.3f} s")
        assert_clean(first.run_id, uids, first.subnet)
        session.close()
        first.teardown()  # twice is fine
        assert_clean(first.run_id, uids, first.subnet)
        assert ssh(second.hosts["x"], "hostname")[1].strip() == "x"  # the other run is intact
    finally:
        second.teardown()
    assert_clean(second.run_id, [h.uid for h in second.hosts.values()], second.subnet)


def test_failed_setup_is_cleaned_up(monkeypatch):
    real = testhosts.Host._write_sshd_config

    def broken(self):
        if self.name == "y":
            raise RuntimeError("boom halfway")
        real(self)

    monkeypatch.setattr(testhosts.Host, "_write_sshd_config", broken)
    network = TestHostNetwork(["x", "y"])
    with pytest.raises(RuntimeError, match="boom halfway"):
        network.start()
    uids = [h.uid for h in network.hosts.values() if h.uid >= 0]
    assert len(uids) == 2  # it did get as far as creating both users
    assert_clean(network.run_id, uids, network.subnet)
    network.teardown()


def test_leftovers_of_a_killed_run_are_reaped():
    code = ("import sys, time; sys.path.insert(0, 'tests'); import testhosts as t; "
            "n = t.TestHostNetwork(['z']).start(); "
            "print(n.run_id, n.hosts['z'].uid, n.subnet, flush=True); "
            "time.sleep(300)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent, start_new_session=True)
    try:
        run_id, uid, subnet = proc.stdout.readline().split()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert leftovers(run_id)["netns"], "the killed run should have left its namespace"
    testhosts.cleanup_leftovers()  # (a parallel session may reap it first: that's fine)
    assert_clean(run_id, [int(uid)], subnet)
