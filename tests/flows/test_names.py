"""A job on a unicode server whose conflicts are a file named with '@' and a UTF-16
file, resolved by a person's edited results through resume."""
from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.schemas.objects import StateType

from deployments import jobs
from flows.p4.session import P4Session
from flows.spec import FileChoice, JobSpec

from ..p4.test_names import CLIENT, SETTLED, USER, seed_names_depot, utf16
from .helpers import PAUSED_OR_FINAL, logs, opened_and_pending

pytestmark = pytest.mark.usefixtures("local_worker")


def test_escaped_and_utf16_conflicts_on_a_unicode_server_resolve_through_resume(tmp_path: Path) -> None:
    port, root = seed_names_depot(tmp_path, unicode=True)
    spec = JobSpec(p4port=port, p4user=USER, client=CLIENT, source="//depot/main/...", target="//depot/rel/...")
    run_id = jobs.submit(spec)
    run = jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120)
    assert run.state.type == StateType.PAUSED, logs(run_id)
    found = {c["name"]: c for c in jobs.conflicts(run_id)}
    assert set(found) == {"//depot/rel/src/a@b.txt", "//depot/rel/src/u.txt"}
    assert found["//depot/rel/src/a@b.txt"]["depot_file"] == "//depot/rel/src/a%40b.txt"
    assert not found["//depot/rel/src/u.txt"]["binary"] and "line 4 on rel" in found["//depot/rel/src/u.txt"]["yours"]

    # Named as people read them; the flow hands Perforce the escaped form.
    jobs.resume(run_id, "apply", [FileChoice(path=name, choice="edited", text=SETTLED) for name in found])
    run = jobs.wait(run_id, timeout=120)
    assert run.state.type == StateType.COMPLETED, logs(run_id)
    with P4Session(port, USER, CLIENT) as s:
        assert s.print_file("//depot/rel/src/a%40b.txt") == SETTLED
    assert (root / "src/u.txt").read_bytes() == utf16(SETTLED)
    assert opened_and_pending(port, USER, CLIENT) == ([], [])
