"""Jobs: counts by state, what needs me, and every run with its stage, host and age."""
from __future__ import annotations

import streamlit as st

from flows.vocabulary import (
    CANCELLED, CANCELLING, COMPLETED, CRASHED, FAILED, PAUSED, PENDING, RUNNING, SCHEDULED,
)
from ui import backend
from ui.widgets import STATE_LOOK, age, code, empty, plain, state_badge

USER = st.session_state["_p4integ_user"]
PAGE_SIZE = 25
QUICK = {"Running": [RUNNING, PENDING, CANCELLING], "Needs you": [PAUSED],
         "Failed": [FAILED, CRASHED], "Done": [COMPLETED], "Cancelled": [CANCELLED]}

head, action = st.columns([4, 1], vertical_alignment="bottom")
head.title("Jobs")
action.page_link("views/new_job.py", label="New job", icon=":material/add_circle:")

who, quick, host_col = st.columns([1.2, 3, 1.2], vertical_alignment="bottom")
whose = who.segmented_control("Show", ["Mine", "Everyone's"], default="Mine", key="dash_whose")
picked = quick.pills("State", list(QUICK), selection_mode="multi", key="dash_states")
hosts = ["All hosts"] + backend.hosts_with_pools()
host = host_col.selectbox("Host", hosts, key="dash_host")
st.session_state.setdefault("dash_limit", PAGE_SIZE)


@st.fragment(run_every=5)
def board() -> None:
    """Redrawn in place every 5 s: only this part reruns, so nothing else flickers."""
    owner = USER if whose != "Everyone's" else None
    where = None if host == "All hosts" else host
    states = [s for q in picked or [] for s in QUICK[q]] or None
    counts = backend.count_by_group({"All": None, **QUICK}, owner, where)
    for col, (label, n) in zip(st.columns(len(counts)), counts.items()):
        col.metric(label, n, border=True)

    # Whatever the filters, the signed-in person's own paused jobs come first.
    mine_waiting = [r for r in backend.list_runs(USER, [PAUSED], None, limit=10) if r.user == USER]
    if mine_waiting:
        with st.container(border=True):
            st.markdown(f"**{len(mine_waiting)} job(s) wait for you** - conflicts to resolve")
            for r in mine_waiting:
                st.page_link("views/job.py", label=f"{plain(r.name)} · {plain(r.host)} · waiting since {age(r.since)}",
                             icon=":material/call_split:", query_params={"run": str(r.id)})

    rows = backend.list_runs(owner, states, where, limit=st.session_state["dash_limit"])
    if not rows:
        empty("No jobs match. Start one from **New job**, or run a template." if not states and owner
              else "No jobs match these filters.")
        return
    header = st.columns([3.6, 1.1, 1.8, 0.9, 1.4, 1.1])
    for col, title in zip(header, ["Job", "State", "Stage", "Host", "User", "Started"]):
        col.caption(title)
    for r in rows:
        c = st.columns([3.6, 1.1, 1.8, 0.9, 1.4, 1.1], vertical_alignment="center")
        c[0].page_link("views/job.py", label=plain(r.name), query_params={"run": str(r.id)})
        c[1].markdown(state_badge(r.state))
        c[2].markdown(code(r.stage) if r.stage else "-")
        c[3].markdown(plain(r.host))
        c[4].markdown(plain(r.user or "-"))
        c[5].markdown(age(r.started or r.created))
    if len(rows) >= st.session_state["dash_limit"]:
        if st.button("Show more", key="dash_more"):
            st.session_state["dash_limit"] += PAGE_SIZE
            st.rerun(scope="fragment")


board()
st.caption("States: " + " ".join(state_badge(s) for s in STATE_LOOK if s not in (CANCELLING, SCHEDULED)))
