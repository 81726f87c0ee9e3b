"""Pin Helix ``ssl:`` servers on an enrolled host: its P4TRUST file, written over SSH.

The fingerprint is confirmed by a person at enrolment (``hosts add --trust-p4port``,
``hosts trust``) and kept in the host's record; here it is written into the SSH
user's ``~/.p4trust`` (the worker sets no P4TRUST) for every address the server's
name has *on that host*, since P4TRUST is keyed by the address connected to. A key
the server does not actually present is then refused by Helix (HostKeyMismatch) and
by the job's first stage, never silently accepted.
"""
from __future__ import annotations

import ipaddress

from flows import trust

from .records import HostRecord
from .ssh import Connection, HostError


def addresses_from_getent(output: str, port: int) -> list[str]:
    """P4TRUST addresses from ``getent ahosts`` output (first column, in order, once each)."""
    ips = [line.split()[0] for line in output.splitlines() if line.strip()]
    return list(dict.fromkeys(trust.trust_address(ip, port) for ip in ips))


def _addresses_on_host(c: Connection, p4port: str) -> list[str]:
    where = trust.ssl_port(p4port)
    assert where is not None  # HostRecord accepts ssl: ports only
    try:
        return [trust.trust_address(str(ipaddress.ip_address(where.host)), where.port)]
    except ValueError:
        pass  # a name: resolve it as the host does
    r = c.run(["getent", "ahosts", where.host], step=f"resolve {where.host} for P4TRUST", check=False)
    found = addresses_from_getent(r.stdout, where.port) if r.ok else []
    if not found:
        raise HostError(c.host.name, "trust", f"host cannot resolve {where.host} (from {p4port}); fix its DNS "
                        "or /etc/hosts, or give the server's address in the P4PORT")
    return found


def pin_on_host(c: Connection, host: HostRecord) -> bool:
    """Write the host's pinned fingerprints into its ``~/.p4trust``; True if it changed."""
    if not host.p4_trust:
        return False
    path = f"{c.home()}/.p4trust"
    have = c.run(["cat", path], step="read P4TRUST", check=False)
    old = have.stdout if have.ok else ""
    text = old
    for p4port, fingerprint in sorted(host.p4_trust.items()):
        text = trust.pinned(text, _addresses_on_host(c, p4port), fingerprint)
    if text == old:
        return False
    c.write(path, text.encode(), mode=0o600)
    return True
