"""The watcher: watching a server costs one query a poll however many lines read from it. That
a change submitted to a line's source then arrives on its target by itself, through the
watcher in the service's background process, is the browser journey's
(tests/ui/test_browser.py)."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from deployments.lines import Line
from deployments.watcher import Watcher
from flows.lines import LineSpec
from flows.p4.example import make_example
from flows.p4.session import P4Session
from flows.spec import JobSpec

from ..flows.helpers import spec_for
from ..flows.test_lines import _edit

pytestmark = pytest.mark.usefixtures("local_worker")


class CountingSession(P4Session):
    """A real session to the sandbox server that counts the commands sent to it."""

    sent: list[list[str]]

    def run(self, *args: Any, **kwargs: Any) -> list[Any]:
        self.sent.append([str(a) for a in args])
        return super().run(*args, **kwargs)


def _lines(ex: Any, n: int) -> list[Line]:
    """n lines on one server: half by the branch spec, half by paths (each its own subfolder)."""
    out = []
    for i in range(n):
        job = spec_for(ex) if i % 2 == 0 else JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client,
                                                      source=f"//depot/main/part{i}/...",
                                                      target=f"//depot/rel/part{i}/...")
        out.append(Line(spec=LineSpec(name=f"count-{i}", job=job), owner=ex.user, visibility="private",
                        paused=False, deployment_id=uuid.uuid4()))
    return out


def _queries_per_poll(ex: Any, n: int) -> int:
    watcher = Watcher()
    session = CountingSession(ex.port, ex.user, ex.client).__enter__()
    session.sent = []
    watcher._sessions[ex.port] = session  # the watcher's own session for that server, counted
    try:
        watcher.poll(_lines(ex, n))  # the first poll also reads each branch spec once
        session.sent.clear()
        _edit(ex, "//depot/main/src/app.py", "return 2", f"return 2  # {n}", f"app: step 2 for {n}")
        emitted = watcher.poll(_lines(ex, n))
    finally:
        session.close()
    assert [e["lines"] for e in emitted] == [[f"count-{i}" for i in range(0, n, 2)]], emitted
    return len(session.sent)


def test_one_query_a_poll_whatever_the_number_of_lines(tmp_path: Path) -> None:
    ex = make_example(tmp_path / "ex", conflict=False)
    assert _queries_per_poll(ex, 1) == _queries_per_poll(ex, 20) == 1
