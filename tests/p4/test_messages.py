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


def test_proxy_carries_severity_generic_and_id() -> None:
    proxy = M.msg(M.ALREADY_INTEGRATED, argc="//x/...").proxy()
    assert (proxy.severity, proxy.generic) == (M.E_WARN, M.EV_EMPTY)
    assert proxy.msgid == (6 << 10) | 372  # MsgDm::ExINTEGPERM
    assert proxy.dict["argc"] == "//x/..." and str(proxy) == "//x/... - all revision(s) already integrated."
