"""Real SSH test hosts on this machine, for tests that deploy onto remote hosts (README.md says more).

``TestHostNetwork`` builds N "hosts" that look remote to an SSH client:

* one network namespace per host (``p4t-<run>-<name>``) whose ``eth0`` is one end of a
  veth pair; the other end is a port of a bridge ``p4b<run>`` in the root namespace.
  The bridge holds ``10.213.X.1/24`` (X chosen so it clashes with no route or address on
  this machine), hosts get ``.11``, ``.12`` ... Hosts have no default route: they can
  reach each other and the bridge address, nothing else. A server in the root namespace
  must bind ``bridge_address`` (127.0.0.1 of the root namespace is not theirs).
* a route ``unreachable 10.213.X.0/24 metric 4213`` in the root namespace. It is added
  *before* the bridge and deleted *after* it, so while a run exists nothing addressed to
  its range can leave the machine through the default route, even half set up or half
  torn down. While the bridge exists its kernel route (metric 0) wins, so root <-> host
  traffic is unaffected.
* a persistent UTS namespace per host (its own hostname) and a persistent mount namespace
  per host (its own ``/etc/hosts`` naming every host and ``p4t-controller`` = the bridge
  address, its own ``/etc/hostname``; for ``python=False`` hosts an overlay on ``/usr/bin``
  with whiteouts, so ``python3`` / ``python3.11`` do not exist there at all: not on PATH,
  not at ``/usr/bin/python3``).
* its own ``sshd -D -f <config> -E <log>`` running inside those namespaces on port 22 of
  the host's address, with its own ed25519 host key; public-key login only, no root
  login, ``AllowUsers`` = the host's own user.
* its own login user ``p4h-<name>-<run>`` (home ``/tmp/p4t-<run>/<name>/home``, shell
  bash, password ``*`` so keys work without PAM).
* one ed25519 client key pair per network, authorised on every host.

What the hosts share with this machine: the file system outside their mount-namespace
changes (``/tmp``, ``/opt``, ``/etc/passwd``...), the PID namespace (``ps`` shows every
process) and the kernel. Deploy into ``$HOME`` to keep hosts apart.

Teardown finds everything by the run id (namespaces, links, users, route, mounts, the
run directory), so it cleans a half-built network, and is safe to call more than once.
``cleanup_leftovers()`` does the same for runs whose owning process has died.

Needs root, iproute2, openssh-server, util-linux (unshare, nsenter, setpriv), mount and
passwd: ``.ci/hosts-prereqs`` installs them. ``missing_prerequisites()`` says what's
lacking (tests use it to skip).
"""
from __future__ import annotations

import base64
import contextlib
import fcntl
import ipaddress
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # paramiko is imported lazily: this module must import without it
    import paramiko

__all__ = [
    "Host",
    "TestHostNetwork",
    "TestHostError",
    "cleanup_leftovers",
    "missing_prerequisites",
]

BASE_DIR = Path(os.environ.get("P4T_BASE_DIR", "/tmp"))
SUBNET_POOL = ipaddress.ip_network("10.213.0.0/16")
ROUTE_METRIC = 4213
LOCK_FILE = Path("/run/lock/p4t-testhosts.lock")
SSHD = "/usr/sbin/sshd"
SSH_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/games"  # what Debian's sshd gives a session
NETNS_DIR = Path("/run/netns")
NAME_RE = re.compile(r"[a-z][a-z0-9]{0,9}")
RUN_ID_RE = r"[0-9a-f]{6}"
# Executables hidden on python=False hosts: python, python3, python3.11 ...
PYTHON_NAME_RE = re.compile(r"python(\d+(\.\d+)*)?")
PYTHON_BIN_DIRS = ("/usr/local/bin", "/usr/bin", "/usr/local/sbin", "/usr/sbin",
                   "/usr/local/games", "/usr/games")

_REQUIRED_COMMANDS = {
    "ip": "iproute2", "sshd": "openssh-server", "ssh-keygen": "openssh-client",
    "unshare": "util-linux", "nsenter": "util-linux", "setpriv": "util-linux",
    "mount": "mount", "umount": "mount", "useradd": "passwd", "userdel": "passwd",
}


class TestHostError(RuntimeError):
    """Setting up, driving or tearing down a test host failed."""

    __test__ = False


def missing_prerequisites() -> list[str]:
    """Why real test hosts can't be built here (empty list: they can)."""
    reasons = []
    if os.geteuid() != 0:
        reasons.append("needs root (network namespaces, useradd, private sshd)")
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
    for cmd, pkg in _REQUIRED_COMMANDS.items():
        if shutil.which(cmd, path=path) is None:
            reasons.append(f"`{cmd}` missing (Debian package {pkg}; run .ci/hosts-prereqs)")
    return reasons


# --------------------------------------------------------------------------- helpers

def _which(cmd: str) -> str:
    found = shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin")
    if found is None:
        raise TestHostError(f"`{cmd}` not found; run .ci/hosts-prereqs")
    return found


def _cmd(argv: Sequence[str], *, check: bool = True, input: str | None = None,
         timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], input=input, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise TestHostError(f"{' '.join(map(str, argv))!s} -> {proc.returncode}: "
                            f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _user_cmd(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """useradd/userdel, retried while another process holds the passwd lock."""
    deadline = time.monotonic() + 20
    while True:
        proc = _cmd(argv, check=False)
        if proc.returncode == 0 or "lock" not in proc.stderr.lower() \
                or time.monotonic() > deadline:
            return proc
        time.sleep(0.05)


def _poll(condition, timeout: float, what: str, interval: float = 0.01):
    """Call condition() until it returns a truthy value; TestHostError after timeout."""
    from flows.polling import poll_until

    value = poll_until(condition, timeout, interval)
    if not value:
        raise TestHostError(f"timed out after {timeout:g} s waiting for {what}")
    return value


def _proc_status(pid: int) -> dict[str, str] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _live_pids() -> Iterator[tuple[int, dict[str, str]]]:
    """(pid, /proc/pid/status fields) of every process that is not a zombie."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        status = _proc_status(pid)
        if status is None or status.get("State", "").startswith(("Z", "X")):
            continue
        yield pid, status


def _uids(status: Mapping[str, str]) -> set[int]:
    return {int(u) for u in status.get("Uid", "").split()[:2]}


def _ns_inode(path: str | Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _pid_netns(pid: int) -> int | None:
    return _ns_inode(f"/proc/{pid}/ns/net")


def _kill_until_gone(select, timeout: float = 10) -> list[int]:
    """SIGKILL every live process select(pid, status) picks, until none is left.

    Returns the pids still alive at the deadline (empty on success).
    """
    me = os.getpid()
    deadline = time.monotonic() + timeout
    while True:
        victims = [pid for pid, st in _live_pids() if pid != me and select(pid, st)]
        if not victims or time.monotonic() > deadline:
            return victims
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def _starttime(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below root in this mount namespace, deepest first."""
    prefix = str(root).rstrip("/")
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def _used_networks() -> list[ipaddress.IPv4Network]:
    nets = []
    for route in json.loads(_cmd(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]"):
        dst = route.get("dst", "default")
        if dst == "default":
            continue
        with contextlib.suppress(ValueError):
            nets.append(ipaddress.ip_network(dst, strict=False))
    for link in json.loads(_cmd(["ip", "-j", "-4", "addr"]).stdout or "[]"):
        for info in link.get("addr_info", []):
            with contextlib.suppress(ValueError, KeyError):
                nets.append(ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}",
                                                 strict=False))
    return nets


def _host_key_from_line(line: str) -> "paramiko.PKey":
    import paramiko

    keytype, b64 = line.split()[:2]
    return paramiko.PKey.from_type_string(keytype, base64.b64decode(b64))


# ------------------------------------------------------------------------------ hosts

class Host:
    """One test host. Attributes are plain values; see the module docstring."""

    __test__ = False

    def __init__(self, network: TestHostNetwork, name: str, index: int, *, python: bool):
        self.network = network
        self.name = name
        self.index = index
        self.python = python
        self.address: str = str(network._subnet[10 + index])
        self.port: int = 22
        self.user: str = f"p4h-{name}-{network.run_id}"
        self.netns: str = f"p4t-{network.run_id}-{name}"
        self.dir: Path = network.root / name
        self.home: Path = self.dir / "home"
        self.sshd_dir: Path = self.dir / "sshd"
        self.sshd_config: Path = self.sshd_dir / "sshd_config"
        self.sshd_log: Path = self.sshd_dir / "sshd.log"
        self.authorized_keys: Path = self.dir / "authorized_keys"
        self.hosts_file: Path = self.dir / "hosts"
        self.private_key_path: Path = network.client_key_path
        self.host_public_key: str = ""      # "ssh-ed25519 AAAA..."
        self.host_key_fingerprint: str = ""  # "SHA256:..."
        self.uid: int = -1
        self.gid: int = -1
        self._uts = network._ns_dir / f"{name}.uts"
        self._mnt = network._ns_dir / f"{name}.mnt"
        self._veth = f"p4v{network.run_id}{index:02d}"
        self._sshd: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<Host {self.name} {self.user}@{self.address}:{self.port} netns={self.netns}>"

    # -- paths and strings for clients
    @property
    def netns_path(self) -> Path:
        return NETNS_DIR / self.netns

    @property
    def known_hosts_name(self) -> str:
        """The name paramiko / OpenSSH look the host key up under."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"

    @property
    def known_hosts_line(self) -> str:
        return f"{self.known_hosts_name} {self.host_public_key}"

    def host_key(self) -> "paramiko.PKey":
        """The host's public key as a paramiko key (for pinning)."""
        return _host_key_from_line(self.host_public_key)

    def ssh_client(self, *, key_path: str | Path | None = None, timeout: float = 10.0,
                   pin: bool = True) -> "paramiko.SSHClient":
        """A connected paramiko client: RejectPolicy, host key pinned, client key only."""
        import paramiko

        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        if pin:
            client.get_host_keys().add(self.known_hosts_name, "ssh-ed25519", self.host_key())
        try:
            client.connect(self.address, port=self.port, username=self.user,
                           key_filename=str(key_path or self.private_key_path),
                           look_for_keys=False, allow_agent=False, timeout=timeout,
                           banner_timeout=timeout, auth_timeout=timeout)
        except BaseException:
            client.close()
            raise
        return client

    # -- commands inside the host
    def _enter(self) -> list[str]:
        return [_which("nsenter"), f"--net={self.netns_path}", f"--uts={self._uts}",
                f"--mount={self._mnt}"]

    def run(self, argv: Sequence[str] | str, *, as_root: bool = False, input: str | None = None,
            timeout: float = 60, check: bool = False, env: Mapping[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the host (its namespaces), as its user, in its home.

        A str is run with ``bash -c``. The environment is a fresh one like an SSH
        session's (HOME, USER, LOGNAME, SHELL from setpriv --reset-env; sshd's PATH)
        plus ``env``. as_root=True runs as root inside the host instead.
        """
        if isinstance(argv, str):
            argv = ["bash", "-c", argv]
        inner = ["env", *(f"{k}={v}" for k, v in {"PATH": SSH_PATH, **(env or {})}.items()),
                 *argv]
        if not as_root:
            inner = [_which("setpriv"), f"--reuid={self.uid}", f"--regid={self.gid}",
                     "--init-groups", "--reset-env", "--", *inner]
        wrapped = [*self._enter(), "sh", "-c", 'cd "$0" && exec "$@"', str(self.home), *inner]
        proc = subprocess.run(wrapped, input=input, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise TestHostError(f"{self.name}: {list(argv)} -> {proc.returncode}: "
                                f"{proc.stderr.strip()}")
        return proc

    # -- processes
    def pids_of_user(self) -> list[int]:
        """Live (non-zombie) processes whose real or effective uid is the host's user."""
        return sorted(pid for pid, st in _live_pids() if self.uid in _uids(st))

    def pids_in_host(self) -> list[int]:
        """Live processes in the host's network namespace (sshd, sessions, run())."""
        ino = _ns_inode(self.netns_path)
        if ino is None:
            return []
        return sorted(pid for pid, _ in _live_pids() if _pid_netns(pid) == ino)

    def kill_user_processes(self, timeout: float = 10) -> None:
        left = _kill_until_gone(lambda pid, st: self.uid in _uids(st), timeout)
        if left:
            raise TestHostError(f"{self.name}: processes of {self.user} survive SIGKILL: {left}")

    # -- sshd
    @property
    def sshd_running(self) -> bool:
        return self._sshd is not None and self._sshd.poll() is None

    @property
    def sshd_pid(self) -> int | None:
        return self._sshd.pid if self.sshd_running else None

    def _listening(self) -> bool:
        assert self._sshd is not None
        try:
            lines = Path(f"/proc/{self._sshd.pid}/net/tcp").read_text().splitlines()[1:]
        except OSError:
            return False
        # local_address is hex "ADDR:PORT"; state 0A = LISTEN
        return any(f.split()[1].endswith(f":{self.port:04X}") and f.split()[3] == "0A"
                   for f in lines)

    def start_sshd(self, timeout: float = 10) -> None:
        """Start the host's sshd (host "up") and wait until it listens."""
        if self.sshd_running:
            return
        self._sshd = subprocess.Popen(
            [*self._enter(), SSHD, "-D", "-f", str(self.sshd_config), "-E", str(self.sshd_log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)

        def ready() -> bool:
            if self._sshd.poll() is not None:
                err = self._sshd.stderr.read().decode(errors="replace") if self._sshd.stderr else ""
                log = self.sshd_log.read_text(errors="replace") if self.sshd_log.exists() else ""
                raise TestHostError(f"{self.name}: sshd exited with {self._sshd.returncode}: "
                                    f"{err.strip()} {log[-2000:]}")
            return self._listening()

        _poll(ready, timeout, f"sshd of {self.name} to listen")
        if self._sshd.stderr:
            self._sshd.stderr.close()
            self._sshd.stderr = None

    def stop_sshd(self, *, kill_sessions: bool = True, timeout: float = 10) -> None:
        """Stop the host's sshd (host "down": new connections are refused at once).

        kill_sessions=True also ends open SSH connections (every sshd process in the
        host). Processes the user started (workers...) keep running either way; use
        kill_user_processes() for those.
        """
        proc = self._sshd
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        ino = _ns_inode(self.netns_path)
        if kill_sessions and ino is not None:
            def is_sshd(pid: int, st: Mapping[str, str]) -> bool:
                return st.get("Name") == "sshd" and _pid_netns(pid) == ino
            left = _kill_until_gone(is_sshd, timeout)
            if left:
                raise TestHostError(f"{self.name}: sshd processes survive SIGKILL: {left}")

    # -- setup (called by TestHostNetwork)
    def _create(self) -> None:
        net = self.network
        for d, mode in ((self.dir, 0o755), (self.sshd_dir, 0o700)):
            d.mkdir(mode=mode)
            d.chmod(mode)
        key = self.sshd_dir / "ssh_host_ed25519_key"
        _cmd(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{self.name}",
              "-f", key])
        self.host_public_key = " ".join(Path(f"{key}.pub").read_text().split()[:2])
        self.host_key_fingerprint = _cmd(["ssh-keygen", "-l", "-f", f"{key}.pub"]).stdout.split()[1]
        self.authorized_keys.write_text(net.client_public_key + "\n")
        self.authorized_keys.chmod(0o644)

        proc = _user_cmd(["useradd", "--create-home", "--home-dir", self.home,
                          "--shell", "/bin/bash", "--user-group", "--password", "*",
                          "--comment", f"p4 test host {self.name} (run {net.run_id})",
                          self.user])
        if proc.returncode != 0:
            raise TestHostError(f"useradd {self.user}: {proc.stderr.strip()}")
        pw = pwd.getpwnam(self.user)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

        # network: namespace, veth pair (peer created straight inside it), addresses
        _cmd(["ip", "netns", "add", self.netns])
        _cmd(["ip", "link", "add", self._veth, "type", "veth", "peer", "name",
              f"p4p{net.run_id}{self.index:02d}", "netns", self.netns])
        _cmd(["ip", "link", "set", self._veth, "master", net.bridge, "up"])
        _cmd(["ip", "-n", self.netns, "-batch", "-"], input="\n".join([
            f"link set p4p{net.run_id}{self.index:02d} name eth0",
            f"addr add {self.address}/{net._subnet.prefixlen} dev eth0",
            "link set eth0 up",
            "link set lo up",
        ]) + "\n")

        # persistent UTS (hostname) and mount namespaces
        for f in (self._uts, self._mnt):
            f.touch(mode=0o600)
        _cmd(["unshare", f"--uts={self._uts}", f"--mount={self._mnt}",
              "--propagation", "private", "true"])
        _cmd(["nsenter", f"--uts={self._uts}", "hostname", self.name])
        net._write_hosts_files()
        (self.dir / "hostname").write_text(self.name + "\n")
        (self.dir / "hostname").chmod(0o644)
        script = [
            "set -e",
            # hide our own bookkeeping mounts (namespace files of every run) inside the host
            "for m in $(awk '{print $5}' /proc/self/mountinfo"
            f" | grep -E '^(/run/netns|{BASE_DIR}/p4t-{RUN_ID_RE}/ns)$' | sort -r); do"
            ' umount -l "$m" 2>/dev/null || true; done',
            f"mount --bind {self.hosts_file} /etc/hosts",
            f"mount --bind {self.dir / 'hostname'} /etc/hostname",
        ]
        if not self.python:
            script += self._hide_python()
        _cmd(["nsenter", f"--mount={self._mnt}", "sh", "-c", "\n".join(script)])

        self._write_sshd_config()
        self.start_sshd()

    def _hide_python(self) -> list[str]:
        """Shell lines that overlay every bin dir holding python* with whiteouts."""
        lines = []
        seen: set[str] = set()
        for d in PYTHON_BIN_DIRS:
            real = os.path.realpath(d)
            if real in seen or not os.path.isdir(real):
                continue
            seen.add(real)
            names = [n for n in os.listdir(real) if PYTHON_NAME_RE.fullmatch(n)]
            if not names:
                continue
            white = self.dir / "nopython" / real.strip("/").replace("/", "_")
            white.mkdir(parents=True)
            for n in names:
                os.mknod(white / n, 0o600 | 0o020000, os.makedev(0, 0))  # overlay whiteout
            lines.append(f"mount -t overlay p4t-nopython -o lowerdir={white}:{real} {real}")
        return lines

    def _write_sshd_config(self) -> None:
        self.sshd_config.write_text(f"""\
# p4t test host {self.name} (run {self.network.run_id})
ListenAddress {self.address}:{self.port}
AddressFamily inet
HostKey {self.sshd_dir}/ssh_host_ed25519_key
PidFile none
LogLevel VERBOSE
UsePAM no
UseDNS no
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthenticationMethods publickey
AuthorizedKeysFile {self.authorized_keys}
StrictModes no
AllowUsers {self.user}
PermitUserEnvironment no
X11Forwarding no
AllowAgentForwarding no
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
""")


# ---------------------------------------------------------------------------- network

class TestHostNetwork:
    """N SSH test hosts on a private bridge. Use as a context manager::

        with TestHostNetwork(["a", "b"], no_python=["b"]) as net:
            host = net.hosts["a"]
            client = host.ssh_client()
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, names: Iterable[str] = ("a", "b"), *, no_python: Iterable[str] = (),
                 subnet: str | None = None):
        self.names = list(names)
        self.no_python = set(no_python)
        for n in [*self.names, *self.no_python]:
            if not NAME_RE.fullmatch(n):
                raise ValueError(f"host name {n!r} must match {NAME_RE.pattern}")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate host names in {self.names}")
        if unknown := self.no_python - set(self.names):
            raise ValueError(f"no_python names not in names: {sorted(unknown)}")
        self._wanted_subnet = ipaddress.ip_network(subnet) if subnet else None
        self.run_id: str = secrets.token_hex(3)
        self.root: Path = BASE_DIR / f"p4t-{self.run_id}"
        self.bridge: str = f"p4b{self.run_id}"
        self.client_key_path: Path = self.root / "client" / "id_ed25519"
        self.client_public_key: str = ""
        self.hosts: dict[str, Host] = {}
        self._subnet: ipaddress.IPv4Network | None = None
        self._ns_dir = self.root / "ns"
        self._started = False
        self.timings: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"<TestHostNetwork {self.run_id} {self.subnet} hosts={list(self.hosts)}>"

    @property
    def subnet(self) -> str | None:
        return str(self._subnet) if self._subnet else None

    @property
    def bridge_address(self) -> str:
        """Address of this machine (root namespace) as the hosts see it."""
        if self._subnet is None:
            raise TestHostError("network not started")
        return str(self._subnet[1])

    # -- lifecycle
    def __enter__(self) -> TestHostNetwork:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.teardown(raise_errors=exc_type is None)

    def start(self) -> TestHostNetwork:
        if self._started:
            raise TestHostError("already started")
        if reasons := missing_prerequisites():
            raise TestHostError("; ".join(reasons))
        self._started = True
        t0 = time.monotonic()
        try:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
            self.root.mkdir(mode=0o755)
            self.root.chmod(0o755)  # the hosts' users must traverse it to their homes
            (self.root / "owner").write_text(json.dumps(
                {"pid": os.getpid(), "start": _starttime(os.getpid())}))
            # namespace files live on a private bind mount (unshare needs that)
            self._ns_dir.mkdir(mode=0o700)
            _cmd(["mount", "--bind", self._ns_dir, self._ns_dir])
            _cmd(["mount", "--make-private", self._ns_dir])
            self.client_key_path.parent.mkdir(mode=0o700)
            _cmd(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                  f"p4t-client-{self.run_id}", "-f", self.client_key_path])
            self.client_public_key = " ".join(
                Path(f"{self.client_key_path}.pub").read_text().split()[:2])
            self._make_bridge()
            for name in self.names:
                self.add_host(name, python=name not in self.no_python)
        except BaseException:
            with contextlib.suppress(Exception):
                self.teardown(raise_errors=False)
            raise
        self.timings["start"] = time.monotonic() - t0
        return self

    def _make_bridge(self) -> None:
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        with open(LOCK_FILE, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two runs must not pick the same subnet
            used = _used_networks()
            if self._wanted_subnet is not None:
                candidates = [self._wanted_subnet]
            else:
                subnets = list(SUBNET_POOL.subnets(new_prefix=24))
                start = int(self.run_id, 16) % len(subnets)
                candidates = subnets[start:] + subnets[:start]
            for net in candidates:
                if not any(net.overlaps(u) for u in used):
                    break
            else:
                raise TestHostError(f"no free /24 in {SUBNET_POOL} (or {self._wanted_subnet} "
                                    "is in use)")
            self._subnet = net
            (self.root / "subnet").write_text(str(net))
            # safety net first: nothing in our range may leave via the default route
            _cmd(["ip", "route", "add", "unreachable", str(net), "metric", str(ROUTE_METRIC)])
            _cmd(["ip", "link", "add", self.bridge, "type", "bridge", "stp_state", "0",
                  "forward_delay", "0"])
            _cmd(["ip", "addr", "add", f"{self.bridge_address}/{net.prefixlen}",
                  "dev", self.bridge])
            _cmd(["ip", "link", "set", self.bridge, "up"])

    def add_host(self, name: str, *, python: bool = True) -> Host:
        """Create one more host on this network (and start its sshd)."""
        if not NAME_RE.fullmatch(name):
            raise ValueError(f"host name {name!r} must match {NAME_RE.pattern}")
        if self._subnet is None:
            raise TestHostError("start the network before adding hosts")
        if name in self.hosts:
            raise ValueError(f"host {name!r} exists")
        if len(self.hosts) >= 200:
            raise TestHostError("at most 200 hosts per network")
        host = Host(self, name, len(self.hosts) + 1, python=python)
        self.hosts[name] = host  # registered first: teardown must see half-made hosts
        host._create()
        return host

    def _write_hosts_files(self) -> None:
        lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
                 f"{self.bridge_address}\tp4t-controller"]
        lines += [f"{h.address}\t{h.name}" for h in self.hosts.values()]
        text = "\n".join(lines) + "\n"
        for h in self.hosts.values():
            if h.dir.exists():
                with open(h.hosts_file, "w") as f:  # in place: the bind mount keeps the inode
                    f.write(text)
                h.hosts_file.chmod(0o644)

    def known_hosts_text(self) -> str:
        """known_hosts lines pinning every host's key."""
        return "".join(h.known_hosts_line + "\n" for h in self.hosts.values())

    def teardown(self, *, raise_errors: bool = True) -> None:
        """Remove everything this run made. Safe to call twice, and after a failed start."""
        t0 = time.monotonic()
        for h in self.hosts.values():
            if h._sshd is not None and h._sshd.poll() is None:
                with contextlib.suppress(Exception):
                    h._sshd.kill()
        errors = _teardown_run(self.run_id)
        for h in self.hosts.values():  # reap our own children (no zombies left behind)
            if h._sshd is not None:
                with contextlib.suppress(Exception):
                    h._sshd.wait(timeout=5)
        self.timings["teardown"] = time.monotonic() - t0
        if errors:
            msg = f"teardown of test hosts run {self.run_id} incomplete: " + "; ".join(errors)
            if raise_errors:
                raise TestHostError(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)


# --------------------------------------------------------------------------- teardown

def _run_resources(run_id: str) -> dict[str, list[str]]:
    netns = sorted(p.name for p in NETNS_DIR.glob(f"p4t-{run_id}-*")) if NETNS_DIR.is_dir() else []
    users = sorted(pw.pw_name for pw in pwd.getpwall()
                   if re.fullmatch(rf"p4h-[a-z0-9]+-{run_id}", pw.pw_name))
    links = sorted(p.name for p in Path("/sys/class/net").iterdir()
                   if p.name.startswith((f"p4v{run_id}", f"p4b{run_id}")))
    return {"netns": netns, "users": users, "links": links}


def _teardown_run(run_id: str) -> list[str]:
    """Delete every resource of run run_id; returns what could not be deleted."""
    errors: list[str] = []
    root = BASE_DIR / f"p4t-{run_id}"
    res = _run_resources(run_id)

    # 1. processes: everything in the run's network namespaces or owned by its users
    inodes = {i for i in (_ns_inode(NETNS_DIR / n) for n in res["netns"]) if i is not None}
    uids = set()
    for user in res["users"]:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(user).pw_uid)
    if inodes or uids:
        left = _kill_until_gone(lambda pid, st: bool(uids & _uids(st)) or _pid_netns(pid) in inodes)
        if left:
            errors.append(f"processes survive SIGKILL: {left}")

    # 2. users (and their groups, homes)
    for user in res["users"]:
        proc = _user_cmd(["userdel", "--force", "--remove", user])
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            errors.append(f"userdel {user}: {proc.stderr.strip()}")

    # 3. namespaces (deleting one also deletes the veth end inside it, hence the pair)
    for ns in res["netns"]:
        proc = _cmd(["ip", "netns", "del", ns], check=False)
        if proc.returncode != 0 and (NETNS_DIR / ns).exists():
            errors.append(f"ip netns del {ns}: {proc.stderr.strip()}")

    # 4. links left in the root namespace: veth ends, then the bridge
    for link in sorted(res["links"], key=lambda n: n.startswith("p4b")):
        if Path(f"/sys/class/net/{link}").exists():
            proc = _cmd(["ip", "link", "del", link], check=False)
            if proc.returncode != 0 and Path(f"/sys/class/net/{link}").exists():
                errors.append(f"ip link del {link}: {proc.stderr.strip()}")

    # 5. the unreachable route, last: it guards the range until the bridge is gone
    subnet_file = root / "subnet"
    if subnet_file.exists():
        subnet = subnet_file.read_text().strip()
        routes = json.loads(_cmd(["ip", "-j", "route", "show", "type", "unreachable",
                                  subnet]).stdout or "[]")
        if any(r.get("metric") == ROUTE_METRIC for r in routes):
            proc = _cmd(["ip", "route", "del", "unreachable", subnet, "metric",
                         str(ROUTE_METRIC)], check=False)
            if proc.returncode != 0:
                errors.append(f"ip route del unreachable {subnet}: {proc.stderr.strip()}")

    # 6. mounts (namespace files, their bind-mounted directory), then the files
    if root.exists():
        for point in _mounts_under(root):
            proc = _cmd(["umount", "--lazy", point], check=False)
            if proc.returncode != 0:
                errors.append(f"umount {point}: {proc.stderr.strip()}")
        if _mounts_under(root):
            errors.append(f"mounts left under {root}; not deleting it")
        else:
            def rm_error(fn, path, exc):  # a concurrent reaper may have removed it first
                exc = exc if isinstance(exc, BaseException) else exc[1]
                if not isinstance(exc, FileNotFoundError):
                    errors.append(f"rm {path}: {exc}")
            if sys.version_info >= (3, 12):
                shutil.rmtree(root, onexc=rm_error)
            else:
                shutil.rmtree(root, onerror=rm_error)
    return errors


def _run_ids_on_machine() -> set[str]:
    ids = {m.group(1) for p in BASE_DIR.glob("p4t-*")
           if (m := re.fullmatch(rf"p4t-({RUN_ID_RE})", p.name))}
    if NETNS_DIR.is_dir():
        ids |= {m.group(1) for p in NETNS_DIR.iterdir()
                if (m := re.match(rf"p4t-({RUN_ID_RE})-", p.name))}
    ids |= {m.group(1) for pw in pwd.getpwall()
            if (m := re.fullmatch(rf"p4h-[a-z0-9]+-({RUN_ID_RE})", pw.pw_name))}
    ids |= {m.group(1) for p in Path("/sys/class/net").iterdir()
            if (m := re.fullmatch(rf"p4[bv]({RUN_ID_RE})\d*", p.name))}
    return ids


def _run_is_alive(run_id: str) -> bool:
    root = BASE_DIR / f"p4t-{run_id}"
    owner = root / "owner"
    try:
        data: dict[str, Any] = json.loads(owner.read_text())
    except (OSError, ValueError):
        # no owner file: a run being born (dir made a moment ago) or a dead one
        with contextlib.suppress(OSError):
            return time.time() - root.stat().st_mtime < 60
        return False
    return data.get("start") is not None and _starttime(int(data["pid"])) == data["start"]


def cleanup_leftovers() -> list[str]:
    """Tear down runs whose owning process is gone (e.g. a killed pytest).

    Never touches a live run. Returns the run ids it removed.
    """
    removed = []
    for run_id in sorted(_run_ids_on_machine()):
        if not _run_is_alive(run_id):
            errors = _teardown_run(run_id)
            if errors:
                warnings.warn(f"leftover run {run_id}: {'; '.join(errors)}", RuntimeWarning,
                              stacklevel=2)
            removed.append(run_id)
    return removed
