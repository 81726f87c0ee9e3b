"""The server the scenario suite runs against: the sandbox always, a real p4d when one is installed.

``helix`` is parametrized over ``["sandbox", "p4d"]``. Both yield a :class:`Helix`:
a connected P4 (user ``alice``, client ``ws`` rooted in the test's tmp dir with view
``//depot/... //ws/...``), its workspace root, ``set_password`` and ``connect_as``.

The p4d variant is the real thing: P4Python's ``P4.P4`` over
``rsh:p4d -r <dir> -L log -i -J off`` (p4d started per connection on a fresh root).
It runs only where ``p4d`` is on PATH (``pytest -m p4d`` selects just those).
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

import P4 as p4python
from flows.p4.sandbox import P4 as SandboxP4
from flows.p4.sandbox import configure as sandbox_configure, init_depot, set_group as sandbox_set_group
from flows.p4.sandbox import set_password as sandbox_set_password

HAS_P4D = shutil.which("p4d") is not None
# Both servers are set up as an administrator sets up a private test server
# ("p4 configure set security=0"): a new Helix server starts at level 4, where every
# user needs a password first. Tests of the levels set them themselves.
SUITE_SECURITY = 0
KINDS = [
    pytest.param("sandbox", id="sandbox"),
    pytest.param("p4d", id="p4d", marks=[pytest.mark.p4d,
                                          pytest.mark.skipif(not HAS_P4D, reason="p4d is not on PATH")]),
]


def p4d_port(root: Path) -> str:
    return f"rsh:p4d -r {root} -L log -i -J off"


def p4_class(kind: str) -> type:
    return SandboxP4 if kind == "sandbox" else p4python.P4


class Helix:
    """One server for one test, with alice connected in client ``ws``."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind = kind
        self.tmp = tmp
        self.server_dir = tmp / "server"
        self.server_dir.mkdir()
        if kind == "sandbox":
            self.port = init_depot(self.server_dir, security=SUITE_SECURITY)
        else:
            subprocess.run(["p4d", "-r", str(self.server_dir), "-L", "log", f"-cset security={SUITE_SECURITY}"],
                           check=True, capture_output=True)
            self.port = p4d_port(self.server_dir)
        self.P4: type = p4_class(kind)
        self._open: list[Any] = []
        self._passwords: dict[str, str] = {}
        self.root = tmp / "ws"
        self.p4 = self.connect_as("alice", "ws", root=self.root)

    # --- connections -------------------------------------------------------------
    def new_p4(self, user: str, client: str | None = None, **attrs: Any) -> Any:
        """A connected P4 with nothing else done (no client spec created)."""
        p4 = self.P4()
        p4.port = self.port
        p4.user = user
        p4.client = client or f"{user}-noclient"
        p4.ticket_file = str(attrs.pop("ticket_file", self.tmp / f".p4tickets-{user}"))
        p4.password = ""
        p4.prog = "scenario-suite"
        p4.exception_level = 2
        for k, v in attrs.items():
            setattr(p4, k, v)
        p4.connect()
        self._open.append(p4)
        return p4

    def connect_as(self, user: str, client: str, *, root: Path | None = None,
                   view: list[str] | None = None) -> Any:
        """A second (third, ...) connection on the same server: ``user`` in ``client``,
        created if missing with its root under the tmp dir and ``view`` (default
        ``//depot/... //<client>/...``)."""
        root = root or (self.tmp / client)
        root.mkdir(parents=True, exist_ok=True)
        p4 = self.new_p4(user, client, cwd=str(root))
        spec = p4.fetch_client(client)
        if "Update" not in spec or view is not None:  # new client, or a view to set
            spec["Root"] = str(root)
            spec["View"] = view or [f"//depot/... //{client}/..."]
            spec["Description"] = f"{client} for the scenario suite\n"
            p4.save_client(spec)
        return p4

    def set_password(self, user: str, password: str) -> None:
        """What an administrator does (``p4 passwd``)."""
        if self.kind == "sandbox":
            sandbox_set_password(self.server_dir, user, password)
            return
        # Real p4d at security level 0: a user sets a first password without an old one.
        p4 = self.new_p4(user, ticket_file=str(self.tmp / f".p4tickets-admin-{user}"))
        p4.run_password(self._passwords.get(user, ""), password)
        self._passwords[user] = password

    def set_ticket_timeout(self, user: str, seconds: int) -> None:
        """How long ``user``'s next tickets last: the Timeout of a group holding the user
        (set by alice, a superuser on a fresh server); the sandbox's depot setting."""
        if self.kind == "sandbox":
            sandbox_configure(self.server_dir, "ticket.timeout", seconds)
            return
        self.p4.save_group({"Group": f"timeout-{user}", "Users": [user], "Timeout": str(seconds)})

    def set_group(self, name: str, users: list[str] = [], subgroups: list[str] = []) -> None:  # noqa: B006
        """Write a group (``p4 group -i``), as alice, a superuser on a fresh server."""
        if self.kind == "sandbox":
            sandbox_set_group(self.server_dir, name, users=users, subgroups=subgroups)
            return
        self.p4.save_group({"Group": name, "Users": users, "Subgroups": subgroups})

    def set_security(self, level: int) -> None:
        """The server's ``security`` configurable, set by alice (a superuser on a fresh server)."""
        if self.kind == "sandbox":
            sandbox_configure(self.server_dir, "security", level)
            return
        self.p4.run_configure("set", f"security={level}")

    def bad_port(self) -> str:
        """A port nothing can be reached on: an unknown scheme for the sandbox,
        a closed loopback port for P4Python (no traffic leaves the machine)."""
        return "nosuchscheme:1666" if self.kind == "sandbox" else "tcp:127.0.0.1:1"

    def close(self) -> None:
        for p4 in self._open:
            try:
                if p4.connected():
                    p4.disconnect()
            except Exception:  # noqa: BLE001 - teardown must not mask the test's outcome
                pass


@pytest.fixture(params=KINDS)
def helix(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Helix]:
    # Nothing from the developer's own Perforce setup may leak in.
    for var in ("P4PORT", "P4USER", "P4CLIENT", "P4PASSWD", "P4CONFIG", "P4CHARSET", "P4HOST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("P4TICKETS", str(tmp_path / ".p4tickets"))
    monkeypatch.setenv("P4ENVIRO", str(tmp_path / ".p4enviro"))
    monkeypatch.setenv("P4TRUST", str(tmp_path / ".p4trust"))
    h = Helix(request.param, tmp_path)
    try:
        yield h
    finally:
        h.close()

