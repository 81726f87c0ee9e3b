"""Server addresses a person types: a Perforce P4PORT and a TCP port number.

One definition, used by the job spec, the front page's ``--p4port`` and host
enrolment, so a value Perforce would not understand is refused where it is typed,
not after a job has retried the connection for ten seconds.
"""
from __future__ import annotations

import re

# The transports Helix Core understands in P4PORT ("p4 help environment").
PROTOCOLS = ("tcp", "tcp4", "tcp6", "tcp46", "tcp64", "ssl", "ssl4", "ssl6", "ssl46", "ssl64")
# The bundled sandbox server's form: sandbox:<absolute depot directory> (flows.p4.sandbox).
SANDBOX_PREFIX = "sandbox:"
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?)$")
_EXAMPLES = "ssl:perforce:1666, perforce:1666, 1666 or sandbox:/path/to/depot"


def check_tcp_port(value: int, field: str = "port") -> int:
    """A TCP port number, 1 to 65535."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{field}: {value!r} is not a TCP port; give a number from 1 to 65535")
    return value


def check_p4port(value: str, field: str = "p4port") -> str:
    """``[protocol:]host:port``, ``port``, ``rsh:command`` or the sandbox's ``sandbox:/dir``."""
    v = (value or "").strip()
    if not v:
        raise ValueError(f"{field}: empty; give the Perforce server as {_EXAMPLES}")
    if v.startswith(SANDBOX_PREFIX):
        if not v[len(SANDBOX_PREFIX):].startswith("/"):
            raise ValueError(f"{field}: a sandbox port needs an absolute directory, e.g. sandbox:/srv/depot")
        return v
    if v.startswith("rsh:"):  # Helix runs the command line after rsh: (e.g. a p4d -i for tests)
        if not v[4:].strip():
            raise ValueError(f"{field}: 'rsh:' needs the command that starts the server, e.g. "
                             "rsh:p4d -r /srv/p4root -i")
        return v
    if "://" in v:
        scheme = v.split("://", 1)[0]
        raise ValueError(f"{field}: '{v}' is a URL; Perforce does not speak {scheme}:// - give the server as "
                         f"{_EXAMPLES}")
    head, _, rest = v.partition(":")
    if head in PROTOCOLS:
        address = rest
    elif ":" in rest and not v.startswith("["):
        raise ValueError(f"{field}: '{head}:' in '{v}' is not a protocol Perforce knows "
                         f"({', '.join(PROTOCOLS)}, rsh); give the server as {_EXAMPLES}")
    else:
        address = v
    host, sep, number = address.rpartition(":")
    if not number.isdigit():
        raise ValueError(f"{field}: '{v}' is not a Perforce port (no port number); give the server as {_EXAMPLES}")
    if sep and not _HOST.match(host):
        raise ValueError(f"{field}: '{host}' in '{v}' is not a host name; give the server as {_EXAMPLES}")
    check_tcp_port(int(number), field)
    return v
