"""Lines: each standing integration with where it is, and the branch graph they draw."""
from __future__ import annotations

import streamlit as st

from ui import backend
from ui.widgets import age, empty, field_error, plain

USER = st.session_state["_p4integ_user"]
ADMIN = backend.is_admin(USER)  # only administrators make a line global (deployments.lines refuses others)
ERRORS_KEY = "new_line_errors"
COLOURS = {"flowing": "#2e7d32", "up to date": "#2e7d32", "scheduled": "#1565c0", "blocked": "#e65100",
           "held": "#c62828", "gated": "#6a1b9a", "paused": "#757575", "unreadable": "#c62828"}
BADGES = {"flowing": "green", "up to date": "green", "scheduled": "blue", "blocked": "orange", "held": "red",
          "gated": "violet", "paused": "gray", "unreadable": "red"}

st.title("Lines")
notice = st.session_state.pop("lines_notice", None)
if notice:
    st.success(plain(notice), icon=":material/check_circle:")
st.caption("Each line integrates its source's changes into its target one by one, in order, by itself; "
           "a person is asked only when a change conflicts. Create lines here, with `p4integ lines create`, "
           "or from a lines file (`p4integ lines apply`).")


def _create() -> None:
    g = st.session_state.get
    name = str(g("nl_name", "") or "").strip()
    errors = backend.create_line(USER, name, str(g("nl_template") or ""), str(g("nl_mode", "per-change")),
                                 str(g("nl_gate", "") or ""), str(g("nl_cron", "") or ""),
                                 str(g("nl_visibility", "private")))
    st.session_state[ERRORS_KEY] = errors
    if not errors:
        cron = str(g("nl_cron", "") or "").strip()
        st.session_state["lines_notice"] = f"created line {name}; " + (
            f"it runs on its schedule ({cron}, UTC)" if cron else "it takes its first change now")
        for key in ("nl_name", "nl_gate", "nl_cron"):
            st.session_state[key] = ""


def new_line() -> None:
    errors: dict[str, str] = st.session_state.get(ERRORS_KEY, {})
    templates = [t.name for t in backend.list_templates(USER)]
    with st.expander("New line", icon=":material/add_circle:", expanded=bool(errors)):
        if not templates:
            st.caption("A line runs a template's job (host, workspace, branch or paths, site commands): save one "
                       "from **New job** first.")
            return
        st.caption(f"Its jobs run as **{plain(USER)}** with your stored password (`p4integ credentials set`), "
                   "since they start long after this sign-in.")
        a, b = st.columns(2)
        a.text_input("Line name", key="nl_name", placeholder="main-to-rel")
        with a:
            field_error(errors, "name")
        b.selectbox("Jobs like template", templates, key="nl_template",
                    help="The line's jobs are this template's, each for one source change (or all, batched).")
        with b:
            field_error(errors, "template")
        c, d, e = st.columns([2, 2, 1])
        c.radio("Mode", ["per-change", "batched"], key="nl_mode", horizontal=True,
                help="per-change: each source change integrated and submitted on its own, in order, its "
                     "description kept; batched: one job up to the latest change.")
        d.text_input("Gate (a Perforce key)", key="nl_gate", placeholder="none: every change",
                     help="Integrate no change past the number this key holds (set by a check, e.g. "
                          "'p4 key ci-good-main 12345').")
        with d:
            field_error(errors, "gate")
        e.selectbox("Visibility", ["private", "global"] if ADMIN else ["private"], key="nl_visibility",
                    help=None if ADMIN else "Administrators make lines global.")
        st.text_input("Schedule (batched lines)", key="nl_cron", placeholder="none: on each submit",
                      help="A cron line in UTC, e.g. '0 2 * * *' for 02:00 daily: the batched line moves only "
                           "then, up to the latest change.")
        field_error(errors, "cron")
        field_error(errors, "visibility")
        field_error(errors, "mode")
        st.button("Create line", type="primary", icon=":material/add:", key="nl_create", on_click=_create)


new_line()


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
            if r.last:
                a.caption(f"last: {plain(r.last)}" + (f" {age(r.last_at)}" if r.last_at else ""))
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
            if r.owner == USER:
                owner_actions(r.name, paused=r.state == "paused")


def owner_actions(name: str, *, paused: bool) -> None:
    """Pause, resume and remove: the line's owner's alone (deployments.lines refuses others too)."""
    left, right = st.columns(2)
    if left.button("Resume" if paused else "Pause", key=f"pause_{name}",
                   icon=":material/play_arrow:" if paused else ":material/pause:",
                   help=None if paused else "Start no job until resumed; a job under way goes on"):
        backend.set_line_paused(USER, name, not paused)
        st.session_state["lines_notice"] = f"{'resumed' if paused else 'paused'} line {name}"
        st.rerun()
    with right.popover("Remove", icon=":material/delete:"):
        st.write(f"Remove line **{plain(name)}**? Its jobs and what they submitted stay.")
        if st.button("Yes, remove", type="primary", key=f"remove_{name}"):
            backend.remove_line(USER, name)
            st.session_state["lines_notice"] = f"removed line {name}"
            st.rerun()


board()
