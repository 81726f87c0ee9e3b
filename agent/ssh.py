"""SSH to a host with its pinned key: run argument lists, copy files.

Host keys are verified against the key pinned at enrolment (paramiko's
``RejectPolicy``): an unknown or changed key is refused, never added. Remote
commands are argument lists quoted one by one (``shlex.join``), never strings
assembled from user input, and run under umask 077.
"""
from __future__ import annotations

import os
import shlex
import socket
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from flows.settings import PRIVATE_UMASK
from flows.errors import P4IntegError

from .records import HostRecord

CONNECT_TIMEOUT = 10.0


class HostError(P4IntegError, RuntimeError):
    """Something on a host failed; the message names the host, the step and the cause."""

    def __init__(self, host: str, step: str, reason: str, *, command: Sequence[str] | None = None,
                 exit_code: int | None = None, tail: Sequence[str] = ()) -> None:
        self.host, self.step, self.reason = host, step, reason
        self.command, self.exit_code, self.tail = list(command or []), exit_code, list(tail)
        text = f"host {host}: {step}: {reason}"
        if command:
            text += f" (command {shlex.join(self.command)!r}, exit code {exit_code})"
        if tail:
            text += "; last lines:\n" + "\n".join(f"    {l}" for l in tail[-10:])
        super().__init__(text)


class HostUnreachable(HostError):
    """The host did not answer on its SSH port (down, rebooting, its network cut): unlike a
    refused key or a changed host key, something that may pass by itself."""


@dataclass(frozen=True)
class Result:
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def host_key_of(line: str) -> paramiko.PKey:
    """Parse an OpenSSH public key line ('ssh-ed25519 AAAA... [comment]')."""
    parts = line.split()
    if len(parts) < 2:
        raise ValueError("host_key: expected an OpenSSH public key line such as 'ssh-ed25519 AAAA...'")
    return paramiko.PKey.from_type_string(parts[0], __import__("base64").b64decode(parts[1]))


def _host_id(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def fetch_host_key(address: str, port: int = 22, timeout: float = CONNECT_TIMEOUT) -> paramiko.PKey:
    """Ask a server for its host key (no authentication), for a person to confirm."""
    sock = socket.create_connection((address, port), timeout=timeout)
    transport = paramiko.Transport(sock)
    try:
        transport.get_security_options().key_types = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512",
                                                      "rsa-sha2-256"]
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    finally:
        transport.close()


class Connection:
    """One SSH session to one enrolled host."""

    def __init__(self, host: HostRecord) -> None:
        self.host = host
        self._client: paramiko.SSHClient | None = None
        self._home: str | None = None

    def __enter__(self) -> "Connection":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> "Connection":
        h = self.host
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        key = host_key_of(h.host_key)
        client.get_host_keys().add(_host_id(h.address, h.port), key.get_name(), key)
        try:
            client.connect(h.address, port=h.port, username=h.user, key_filename=os.path.expanduser(h.key_file),
                           timeout=CONNECT_TIMEOUT, banner_timeout=CONNECT_TIMEOUT, auth_timeout=CONNECT_TIMEOUT,
                           allow_agent=False, look_for_keys=False)
        except paramiko.BadHostKeyException:
            raise HostError(h.name, "connect", "the host key does not match the key pinned at enrolment; "
                            "if the host was reinstalled, re-enrol it (p4integ hosts add) after checking "
                            "the new fingerprint") from None
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc) or "Server" in str(exc) and "not found" in str(exc):
                raise HostError(h.name, "connect", "unknown host key; enrol the host first") from None
            if isinstance(exc, paramiko.AuthenticationException):
                raise HostError(h.name, "connect", f"the key {h.key_file} was refused for user {h.user}") from None
            raise HostError(h.name, "connect", f"SSH failed: {exc}") from None
        except (OSError, socket.timeout) as exc:
            raise HostUnreachable(h.name, "connect", f"cannot reach {h.address}:{h.port} ({exc})") from None
        self._client = client
        return self

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def home(self) -> str:
        """The SSH user's home on the host (asked once per connection): the service's files live under it."""
        if self._home is None:
            # The login's HOME, else the account's entry: a home of "" would put the service in /.
            found = self.run(["sh", "-c", 'printf %s "${HOME:-$(getent passwd "$(id -un)" | cut -d: -f6)}"'],
                             step="find home").stdout.strip()
            if not found.startswith("/"):
                raise HostError(self.host.name, "find home", f"the SSH user {self.host.user} has no home directory "
                                f"(HOME is {found!r}); give the account a home on the host")
            self._home = found
        return self._home

    @property
    def client(self) -> paramiko.SSHClient:
        if self._client is None:
            raise RuntimeError("not connected")
        return self._client

    def run(self, argv: Sequence[str], *, step: str, check: bool = True, timeout: float = 600.0,
            stdin: bytes | None = None) -> Result:
        # Under umask 077: whatever a command makes on the host (the worker's log, records, the
        # files its flow runs write) is the SSH user's alone, whatever the login's umask.
        command = f"umask {PRIVATE_UMASK:03o}; {shlex.join(argv)}"
        chan = self.client.get_transport().open_session()  # type: ignore[union-attr]
        chan.settimeout(timeout)
        chan.exec_command(command)
        if stdin is not None:
            chan.sendall(stdin)
        chan.shutdown_write()
        out, err = bytearray(), bytearray()
        end = time.monotonic() + timeout
        while True:
            if chan.recv_ready():
                out += chan.recv(65536)
            elif chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            elif chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            elif time.monotonic() > end:
                chan.close()
                raise HostError(self.host.name, step, f"timed out after {timeout:.0f} s", command=argv)
            else:
                chan.status_event.wait(0.05)
        code = chan.recv_exit_status()
        chan.close()
        text, etext = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        result = Result(list(argv), code, text, etext, (text + etext).splitlines())
        if check and code != 0:
            raise HostError(self.host.name, step, "command failed", command=argv, exit_code=code,
                            tail=result.lines[-20:])
        return result

    def write(self, remote: str, data: bytes, mode: int = 0o600) -> None:
        """Write a file created with ``mode`` from the start (no window with wider rights).

        Under umask 077 the file is born 0600: SFTP would create it with the login's umask
        and chmod afterwards, and whoever opened it in between keeps reading it. The
        content goes through stdin, never the command line."""
        tmp = f"{remote}.tmp-{os.getpid()}"
        self.run(["sh", "-c", 'umask 077 && rm -f "$1" && cat > "$1" && chmod "$2" "$1" && mv -f "$1" "$3"', "write",
                  tmp, format(mode, "o"), remote], step=f"write {remote}", stdin=data)

    def listdir(self, remote: str) -> dict[str, int]:
        """Names and sizes of regular files in a remote directory ({} if missing)."""
        with self.client.open_sftp() as sftp:
            try:
                return {a.filename: a.st_size or 0 for a in sftp.listdir_attr(remote)
                        if a.st_mode is not None and stat.S_ISREG(a.st_mode)}
            except FileNotFoundError:
                return {}

    def put_many(self, files: Sequence[Path], remote_dir: str) -> int:
        """Copy files not already there with the same size; returns how many were sent."""
        present = self.listdir(remote_dir)
        sent = 0
        with self.client.open_sftp() as sftp:
            for f in files:
                if present.get(f.name) == f.stat().st_size:
                    continue
                tmp = f"{remote_dir}/.{f.name}.part"
                sftp.put(str(f), tmp)
                sftp.chmod(tmp, 0o600)  # SFTP creates files with the login's umask, not ours
                sftp.posix_rename(tmp, f"{remote_dir}/{f.name}")
                sent += 1
        return sent
