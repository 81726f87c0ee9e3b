"""Trust in an ``ssl:`` Helix server: its key fingerprint and the P4TRUST file.

Helix clients refuse an ``ssl:`` server until its fingerprint is in the P4TRUST
file (``p4 trust``); an unknown key fails every command with MsgRpc::HostKeyUnknown,
a changed one with MsgRpc::HostKeyMismatch. The fingerprint is the SHA-1 of the
server certificate's public key (its DER SubjectPublicKeyInfo), in upper-case hex
pairs joined by ':' (p4java ``ClientTrust.generateFingerprint(PublicKey)``; the
fingerprint P4Python's own HostKeyUnknown message shows is the same). A P4TRUST
line is ``<ip>:<port>=**++**:<fingerprint>``, keyed by the address the client
connected to (p4java ``FingerprintsHelper``/``AbstractAuthHelper``; Helix's default
``ssl.client.trust.name`` records the IP address).
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .ports import PROTOCOLS

TRUST_USER = "**++**"  # the P4TRUST entry of the primary fingerprint (p4java FINGERPRINT_USER_NAME)
CONNECT_TIMEOUT = 10.0
_FINGERPRINT = re.compile(r"^([0-9A-F]{2}:){19}[0-9A-F]{2}$")


@dataclass(frozen=True)
class SslPort:
    host: str
    port: int

    @property
    def text(self) -> str:
        return f"ssl:{self.host}:{self.port}"


@dataclass(frozen=True)
class ServerKey:
    address: str  # ip:port as P4TRUST keys it
    fingerprint: str


def ssl_port(p4port: str) -> SslPort | None:
    """The host and port of an ``ssl*:`` P4PORT; None for any other transport."""
    proto, _, rest = p4port.strip().partition(":")
    if proto not in PROTOCOLS or not proto.startswith("ssl"):
        return None
    host, sep, number = rest.rpartition(":")
    return SslPort(host=(host.strip("[]") if sep else "") or "localhost", port=int(number))


def check_fingerprint(value: str, field: str = "fingerprint") -> str:
    """A fingerprint as ``p4 trust`` and ``p4d -Gf`` show it: 20 hex pairs joined by ':'."""
    v = value.strip().upper()
    if not _FINGERPRINT.match(v):
        raise ValueError(f"{field}: '{value}' is not a Helix server fingerprint; give the 20 hex pairs that "
                         "'p4d -Gf' prints on the server (e.g. 7A:10:...:2E:A2)")
    return v


def fingerprint_of(certificate_der: bytes) -> str:
    """Helix's fingerprint of a server certificate: SHA-1 over its public key's DER."""
    key = x509.load_der_x509_certificate(certificate_der).public_key()
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return ":".join(f"{b:02X}" for b in hashlib.sha1(spki).digest())  # noqa: S324 - Helix's format


def trust_address(ip: str, port: int) -> str:
    """How P4TRUST names a server: ``ip:port``, an IPv6 address in brackets."""
    return f"[{ip}]:{port}" if ipaddress.ip_address(ip).version == 6 else f"{ip}:{port}"


def fetch_server_key(p4port: str, timeout: float = CONNECT_TIMEOUT) -> ServerKey:
    """Handshake with the server and return the address reached and its key's fingerprint.

    The certificate is not validated here on purpose: Helix servers commonly use
    self-signed certificates, and the fingerprint is what a person confirms."""
    where = ssl_port(p4port)
    if where is None:
        raise ValueError(f"p4port: '{p4port}' is not an ssl: port; only ssl: servers need trust")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((where.host, where.port), timeout=timeout) as raw:
        ip = raw.getpeername()[0]
        with ctx.wrap_socket(raw, server_hostname=where.host) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError(f"{p4port} sent no certificate")
    return ServerKey(address=trust_address(ip, where.port), fingerprint=fingerprint_of(der))


def trust_file(env: Mapping[str, str] | None = None) -> Path:
    """P4TRUST if set, else ``~/.p4trust`` (Helix's default on all but Windows)."""
    value = (env or {}).get("P4TRUST") or os.environ.get("P4TRUST")
    return Path(value) if value else Path.home() / ".p4trust"


def trusted(text: str, address: str) -> str | None:
    """The primary fingerprint the P4TRUST text holds for ``address``, if any."""
    prefix = f"{address}={TRUST_USER}:"
    for line in text.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return None


def pinned(text: str, addresses: Iterable[str], fingerprint: str) -> str:
    """P4TRUST text with ``fingerprint`` as the primary entry of each address; other lines kept."""
    wanted = list(dict.fromkeys(addresses))
    prefixes = tuple(f"{a}={TRUST_USER}:" for a in wanted)
    kept = [line for line in text.splitlines() if line and not line.startswith(prefixes)]
    return "\n".join(kept + [f"{a}={TRUST_USER}:{fingerprint}" for a in wanted]) + "\n"


def write_trust(path: Path, text: str) -> None:
    """Replace the file atomically, readable by its owner only (it decides whom to trust)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to here, as P4TRUST keys them."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(trust_address(str(info[4][0]), port) for info in found))


def pin_locally(p4port: str, fingerprint: str, env: Mapping[str, str] | None = None) -> Path:
    """What ``p4 trust -i FINGERPRINT`` does, for every address the server's name has here."""
    where = ssl_port(p4port)
    if where is None:
        raise ValueError(f"p4port: '{p4port}' is not an ssl: port; only ssl: servers need trust")
    path = trust_file(env)
    text = path.read_text() if path.exists() else ""
    write_trust(path, pinned(text, resolve(where.host, where.port), check_fingerprint(fingerprint)))
    return path
