"""An ssl: Helix server's key pinned at enrolment lands in the host's P4TRUST (real SSH host)."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent import registry

from ..flows.test_trust import TlsServer
from tests.cli import p4integ

pytestmark = pytest.mark.usefixtures("prefect_server")



def test_enrolment_writes_the_confirmed_server_key_into_the_hosts_p4trust(host_network, tmp_path: Path) -> None:
    h = host_network.hosts["a"]
    server = TlsServer(tmp_path, address=host_network.bridge_address)  # reachable from the host
    trust_file = Path(h.home) / ".p4trust"
    try:
        out = p4integ("hosts", "add", "zt", "--address", h.address, "--user", h.user, "--key", str(h.private_key_path),
                      "--fingerprint", h.host_key_fingerprint, "--trust-p4port", server.p4port,
                      "--p4-fingerprint", server.spki_sha1)
        assert out.returncode == 0, out.stderr
        assert registry.get("zt").p4_trust == {server.p4port: server.spki_sha1}
        assert f"{host_network.bridge_address}:{server.port}=**++**:{server.spki_sha1}\n" in trust_file.read_text()
        st = trust_file.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (h.uid, 0o600)  # the host user's, private
    finally:
        server.close()
        p4integ("hosts", "remove", "zt")
        trust_file.unlink(missing_ok=True)
