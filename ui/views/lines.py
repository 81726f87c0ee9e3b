"""Lines: each standing integration with where it is, and the branch graph they draw."""
from __future__ import annotations

import streamlit as st

from ui import backend
from ui.widgets import age, empty, plain

USER = st.session_state["_p4integ_user"]
COLOURS = {"flowing": "#2e7d32", "up to date": "#2e7d32", "blocked": "#e65100", "held": "#c62828",
           "gated": "#6a1b9a", "paused": "#757575", "unreadable": "#c62828"}
BADGES = {"flowing": "green", "up to date": "green", "blocked": "orange", "held": "red", "gated": "violet",
          "paused": "gray", "unreadable": "red"}

st.title("Lines")
notice = st.session_state.pop("lines_notice", None)
if notice:
    st.success(plain(notice), icon=":material/check_circle:")
st.caption("Each line integrates its source's changes into its target one by one, in order, by itself; "
           "a person is asked only when a change conflicts. Create lines with `p4integ lines create`.")


@st.fragment(run_every=10)
def board() -> None:
    rows = backend.lines_overview(USER)
    if not rows:
        empty("No lines yet (yours or global).")
        return
    dot = ["digraph lines {", "rankdir=LR;", 'node [shape=box, style=rounded, fontname="sans-serif"];']
    for r in rows:
        dot.append(f'"{r.source}" -> "{r.target}" [label="{r.name}", color="{COLOURS[r.state]}", '
                   f'fontcolor="{COLOURS[r.state]}", penwidth=2];')
    st.graphviz_chart("\n".join(dot + ["}"]))
    for r in rows:
        with st.container(border=True, key=f"line_{r.name}"):
            a, b = st.columns([3, 2], vertical_alignment="center")
            a.markdown(f"**{plain(r.name)}** :{BADGES[r.state]}-badge[{r.state}] · {plain(r.mode)} · "
                       f"{plain(r.source)} → {plain(r.target)} · owner {plain(r.owner or '-')}")
            a.markdown(plain(r.detail) + (f" · since {age(r.since)}" if r.since and r.state == "blocked" else ""))
            behind = f"{r.behind} change(s) behind" + (f", the oldest {age(r.oldest)}" if r.oldest else "")
            b.caption(behind if r.behind else "nothing behind")
            if r.job_id:
                b.page_link("views/job.py", label="Open the job", icon=":material/call_split:",
                            query_params={"run": r.job_id})
            if r.state in ("blocked", "held") and r.change is not None:
                if b.button(f"Skip change {r.change}", key=f"skip_{r.name}_{r.change}",
                            help="Never integrate this change on this line; recorded in Perforce with your name"):
                    backend.skip_change(USER, r.name, r.change)
                    st.session_state["lines_notice"] = f"skipped change {r.change} on line {r.name}"
                    st.rerun()


board()
