"""Trust in an ssl: server, against a real TLS listener, judged by P4Python itself.

The listener has a self-signed certificate made here; P4Python's own client (the
Helix C++ API) connects to it and says whether it trusts the key, so the fingerprint
and the P4TRUST line format are checked against Helix, not against this code.
"""
from __future__ import annotations

import datetime
import hashlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import P4 as p4python
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.p4trust import addresses_from_getent
from agent.records import HostRecord
from flows import trust
from flows.checks import trust_problem
from flows.spec import JobSpec
from tests.cli import p4integ

HOST_KEY_UNKNOWN, HOST_KEY_MISMATCH = 3120, 3121  # MsgRpc::HostKeyUnknown / HostKeyMismatch msgids


class TlsServer:
    """Accepts connections, completes the TLS handshake, hangs up."""

    def __init__(self, directory: Path, address: str = "127.0.0.1") -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "helix.test")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
        (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / "key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        self.spki_sha1 = ":".join(f"{b:02X}" for b in hashlib.sha1(spki).digest())
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(directory / "cert.pem", directory / "key.pem")
        self.sock = socket.create_server((address, 0))
        self.port = self.sock.getsockname()[1]
        self.p4port = f"ssl:{address}:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            try:
                self.ctx.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (a close alone does not on Linux)
        self.sock.close()
        self._thread.join(timeout=10)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TlsServer]:
    monkeypatch.setenv("P4TRUST", str(tmp_path / "p4trust"))
    monkeypatch.setenv("P4ENVIRO", str(tmp_path / "p4enviro"))
    s = TlsServer(tmp_path)
    yield s
    s.close()


def helix_verdict(p4port: str) -> tuple[list[int], list[str]]:
    """What the Helix client says on a first command to the server: message ids, and
    its errors (or the exception's text when the failure is not a server message)."""
    p4 = p4python.P4()
    p4.port = p4port
    p4.user = "alice"
    p4.exception_level = 1
    try:
        p4.connect()
        p4.run("info")
    except p4python.P4Exception as exc:
        return [m.msgid for m in p4.messages], list(p4.errors) or [str(exc)]
    finally:
        if p4.connected():
            p4.disconnect()
    return [], []


def trusted_by_helix(p4port: str) -> bool:
    """Helix passed the key check and went on to talk: the listener's hang-up is all it
    reports ('SSL receive failed.' or a reset, by timing), no HostKey message."""
    ids, errors = helix_verdict(p4port)
    return ids == [] and len(errors) == 1 and "fingerprint" not in errors[0]


def spec_on(p4port: str) -> JobSpec:
    """A spec naming this server only (the trust check reads no more of it)."""
    return JobSpec(p4port=p4port, p4user="alice", client="ws", branch="b")


def test_the_fingerprint_is_the_one_helix_shows(server: TlsServer) -> None:
    key = trust.fetch_server_key(server.p4port)
    assert key.address == f"127.0.0.1:{server.port}"
    assert key.fingerprint == server.spki_sha1
    ids, errors = helix_verdict(server.p4port)
    assert ids == [HOST_KEY_UNKNOWN]
    assert f"The authenticity of '127.0.0.1:{server.port}' can't be established" in errors[0]
    assert f"\n{key.fingerprint}\n" in errors[0]
    assert not trusted_by_helix(server.p4port)


def test_a_pinned_fingerprint_is_trusted_by_helix_and_the_first_stage(server: TlsServer, tmp_path: Path) -> None:
    problem = trust_problem(spec_on(server.p4port))
    assert problem == (
        f"p4port: {server.p4port} (127.0.0.1:{server.port}) is not trusted on host local: {tmp_path / 'p4trust'} "
        f"has no fingerprint for it; check that {server.spki_sha1} is the server's ('p4d -Gf' on the server), "
        f"then run 'p4integ hosts trust local {server.p4port} --fingerprint {server.spki_sha1}'")

    (tmp_path / "p4trust").write_text("other.example:1666=**++**:00:11\n")
    path = trust.pin_locally(server.p4port, server.spki_sha1.lower())
    assert path == tmp_path / "p4trust"
    assert path.read_text() == ("other.example:1666=**++**:00:11\n"
                                f"127.0.0.1:{server.port}=**++**:{server.spki_sha1}\n")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert trusted_by_helix(server.p4port)
    assert trust_problem(spec_on(server.p4port)) is None


def test_a_changed_key_is_refused_by_helix_and_the_first_stage(server: TlsServer, tmp_path: Path) -> None:
    old = "7A:10:F6:00:95:87:5B:2E:D4:33:AB:44:42:05:85:94:1C:93:2E:A2"
    trust.write_trust(tmp_path / "p4trust", trust.pinned("", [f"127.0.0.1:{server.port}"], old))
    ids, errors = helix_verdict(server.p4port)
    assert ids == [HOST_KEY_MISMATCH], errors
    problem = trust_problem(spec_on(server.p4port))
    assert problem is not None and problem.startswith(
        f"p4port: {server.p4port} (127.0.0.1:{server.port}) presents key {server.spki_sha1}, not the {old} trusted")
    assert problem.endswith(f"run 'p4integ hosts trust local {server.p4port} --fingerprint {server.spki_sha1}'")


def test_only_ssl_ports_need_trust_and_an_unreachable_one_is_left_to_connect(tmp_path: Path) -> None:
    assert trust.ssl_port("perforce:1666") is None and trust.ssl_port("sandbox:/srv/depot") is None
    assert trust.ssl_port("ssl64:[::1]:1666") == trust.SslPort("::1", 1666)
    assert trust.ssl_port("ssl:1666") == trust.SslPort("localhost", 1666)
    assert trust_problem(spec_on(f"sandbox:{tmp_path}")) is None
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    assert trust_problem(spec_on(f"ssl:127.0.0.1:{port}")) is None


@pytest.mark.parametrize("value", ["", "7A:10", "SHA256:abc", "7A10F60095875B2ED433AB444205859" + "41C932EA2"])
def test_a_fingerprint_that_is_not_helixs_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(ValueError, match="^fingerprint: .* is not a Helix server fingerprint; give the 20 hex"):
        trust.check_fingerprint(value)



def test_hosts_trust_pins_only_a_confirmed_key(server: TlsServer, tmp_path: Path) -> None:
    unconfirmed = p4integ("hosts", "trust", "local", server.p4port)
    assert unconfirmed.returncode == 2
    assert (f"error: --fingerprint: confirm the server's key with --fingerprint {server.spki_sha1} "
            "(after checking it with 'p4d -Gf' on the server)") in unconfirmed.stderr
    wrong = "7A:10:F6:00:95:87:5B:2E:D4:33:AB:44:42:05:85:94:1C:93:2E:A2"
    refused = p4integ("hosts", "trust", "local", server.p4port, "--fingerprint", wrong)
    assert refused.returncode == 2
    assert f"error: --fingerprint: {server.p4port} presents {server.spki_sha1}, not {wrong}; refusing" in refused.stderr
    assert not (tmp_path / "p4trust").exists()
    assert p4integ("hosts", "trust", "local", "perforce:1666").stderr.startswith(
        "error: p4port: 'perforce:1666' is not an ssl: port; only ssl: servers need trust")

    done = p4integ("hosts", "trust", "local", server.p4port, "--fingerprint", server.spki_sha1)
    assert done.returncode == 0, done.stderr
    assert f"local: trusted {server.p4port} in {tmp_path / 'p4trust'}" in done.stdout
    assert trusted_by_helix(server.p4port)


def test_addresses_from_getent_are_what_this_machine_resolves() -> None:
    out = subprocess.run(["getent", "ahosts", "localhost"], capture_output=True, text=True, check=True).stdout
    assert set(addresses_from_getent(out, 1666)) == set(trust.resolve("localhost", 1666))
    assert addresses_from_getent("::1  STREAM localhost\n10.1.2.3  STREAM\n10.1.2.3  DGRAM\n", 1666) == [
        "[::1]:1666", "10.1.2.3:1666"]


def test_a_host_record_keeps_only_ssl_ports_and_helix_fingerprints() -> None:
    fields = dict(name="h1", address="h1.example.com", user="p4build", key_file="/k", host_key="ssh-ed25519 AAAA")
    fp = "7a:10:f6:00:95:87:5b:2e:d4:33:ab:44:42:05:85:94:1c:93:2e:a2"
    assert HostRecord(**fields, p4_trust={"ssl:helix:1666": fp}).p4_trust == {"ssl:helix:1666": fp.upper()}
    with pytest.raises(ValueError, match="p4_trust: 'helix:1666' is not an ssl: port"):
        HostRecord(**fields, p4_trust={"helix:1666": fp})
    with pytest.raises(ValueError, match=r"p4_trust\[ssl:helix:1666\]: 'SHA256:x' is not a Helix server fingerprint"):
        HostRecord(**fields, p4_trust={"ssl:helix:1666": "SHA256:x"})
