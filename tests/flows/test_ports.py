"""P4PORT and TCP port values: one definition, refused where they are typed."""
from __future__ import annotations

import pytest
from prefect.client.schemas.objects import StateType

from deployments import jobs
from flows.ports import check_p4port, check_tcp_port
from flows.spec import JobSpec

from .helpers import logs

GOOD = ["ssl:perforce:1666", "perforce:1666", "1666", "tcp:perforce.example.com:1666", "tcp6:[::1]:1666",
        "ssl64:10.0.0.7:1666", "[::1]:1666", "rsh:p4d -r /srv/p4root -i", "sandbox:/srv/depot"]


@pytest.mark.parametrize("port", GOOD)
def test_ports_perforce_knows_are_accepted(port: str) -> None:
    assert check_p4port(port) == port
    assert JobSpec(p4port=port, p4user="u", client="c", branch="b").p4port == port


@pytest.mark.parametrize("port,message", [
    ("http://perforce:1666", "p4port: 'http://perforce:1666' is a URL; Perforce does not speak http://"),
    ("ftp://x", "p4port: 'ftp://x' is a URL; Perforce does not speak ftp://"),
    ("gopher:perforce:1666", "p4port: 'gopher:' in 'gopher:perforce:1666' is not a protocol Perforce knows"),
    ("not a port at all", "p4port: 'not a port at all' is not a Perforce port (no port number)"),
    ("ssl:perforce", "p4port: 'ssl:perforce' is not a Perforce port (no port number)"),
    ("perforce:70000", "p4port: 70000 is not a TCP port; give a number from 1 to 65535"),
    ("perforce:0", "p4port: 0 is not a TCP port"),
    ("sandbox:depot", "p4port: a sandbox port needs an absolute directory"),
    ("  ", "p4port: empty"),
])
def test_ports_perforce_does_not_know_are_refused_naming_the_field(port: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        check_p4port(port)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        JobSpec(p4port=port, p4user="u", client="c", branch="b")


@pytest.mark.parametrize("value", [0, -1, 65536, 70000, True])
def test_tcp_ports_outside_1_to_65535_are_refused(value: int) -> None:
    with pytest.raises(ValueError, match="^--port: .* is not a TCP port; give a number from 1 to 65535"):
        check_tcp_port(value, "--port")
    assert check_tcp_port(22) == 22 and check_tcp_port(65535) == 65535


@pytest.mark.usefixtures("local_worker")
def test_a_deployment_run_with_a_url_port_fails_at_once_without_retrying() -> None:
    """What `prefect deployment run --param spec=...` gets: the spec refused before any stage."""
    from prefect.deployments import run_deployment

    run = run_deployment(name="integrate/local", timeout=0, as_subflow=False, _sync=True, parameters={
        "spec": {"p4port": "http://perforce:1666", "p4user": "u", "client": "c", "branch": "b"}})
    done = jobs.wait(run.id, timeout=120)
    assert done.state.type == StateType.FAILED
    assert "is a URL; Perforce does not speak http://" in (done.state.message or ""), done.state.message
    assert not any("retrying" in line for line in logs(run.id))
