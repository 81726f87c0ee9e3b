"""Sandbox messages use Helix's own message table and format language."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.p4.sandbox import messages as M
from flows.p4.sandbox.catalog import CATALOG

DOC = json.loads((Path(__file__).parent / "data" / "documented_messages.json").read_text())["messages"]
SEVERITY = {"info": 1, "warning": 2, "error": 3, "fatal": 4}


def test_catalog_matches_the_documented_table() -> None:
    shared = sorted(set(DOC) & set(CATALOG))
    assert len(shared) >= 60
    for name in shared:
        code, fmt = CATALOG[name]
        defn = M.MsgDef(name, code, fmt)
        assert fmt == DOC[name]["fmt"], name
        assert defn.severity == SEVERITY[DOC[name]["severity"]], name
        assert defn.generic == DOC[name]["generic_num"], name


@pytest.mark.parametrize("defn,args,text", [
    (M.ALREADY_INTEGRATED, {"argc": "//depot/rel/..."}, "//depot/rel/... - all revision(s) already integrated."),
    (M.ALREADY_INTEGRATED, {}, "All revision(s) already integrated."),
    (M.NO_FILES_TO_RESOLVE, {}, "No file(s) to resolve."),
    (M.UP_TO_DATE, {"argc": "//ws/..."}, "//ws/... - file(s) up-to-date."),
    (M.MERGES_PENDING, {}, "Merges still pending -- use 'resolve' to merge files."),
    (M.SUBMIT_ABORTED, {"change": 12}, "Submit aborted -- fix problems then use 'p4 submit -c 12'."),
    (M.NO_SUCH_DOMAIN2, {"type": "Client", "name": "ws", "command": "client"},
     "Client 'ws' unknown - use 'client' command to create it."),
    (M.SHELVE_DELETED, {"change": 7}, "Shelved change 7 deleted."),
    (M.SHELVE_DELETED, {"change": 7, "count": 2}, "Shelved change 7 partially deleted, still contains 2 file(s)."),
    (M.LOGOUT_OK, {"user": "bob"}, "User bob logged out."),
])
def test_rendering(defn: M.MsgDef, args: dict, text: str) -> None:
    assert M.msg(defn, **args).text == text


def test_p4message_carries_severity_generic_and_id() -> None:
    import P4API
    m = M.msg(M.ALREADY_INTEGRATED, argc="//x/...").p4message()
    assert isinstance(m, P4API.P4Message)
    assert (m.severity, m.generic) == (M.E_WARN, M.EV_EMPTY)
    assert m.msgid == (6 << 10) | 372  # MsgDm::ExINTEGPERM
    assert m.dict["argc"] == "//x/..." and str(m) == "//x/... - all revision(s) already integrated."


def test_one_error_with_two_ids() -> None:
    # MsgServer::MergesPending + MsgServer::SubmitFailed, as a failed submit sends them.
    joined = M.msg(M.MERGES_PENDING).then(M.msg(M.SUBMIT_FAILED, change=12))
    assert joined.text == ("Merges still pending -- use 'resolve' to merge files.\n"
                           "Submit failed -- fix problems above then use 'p4 submit -c 12'.")
    m = joined.p4message()
    assert (m.severity, m.generic, m.msgid) == (M.E_FAILED, M.EV_NOTYET, M.MERGES_PENDING.msgid)
    assert m.dict["code"] == [str(M.MERGES_PENDING.code), str(M.SUBMIT_FAILED.code)]
    assert m.dict["change"] == "12"
