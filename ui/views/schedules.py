"""Schedules: cron on my templates, with presets, plain words, next runs, on/off and run now."""
from __future__ import annotations

import streamlit as st

from ui import backend
from ui.widgets import code, empty, plain

USER = st.session_state["_p4integ_user"]
CUSTOM = "custom cron line"

st.title("Schedules")
notice = st.session_state.pop("sch_notice", None)
if notice:
    st.success(plain(notice), icon=":material/check_circle:")
started = st.session_state.pop("sch_started", None)
if started:
    st.switch_page("views/job.py", query_params={"run": started})

mine = [t for t in backend.list_templates(USER) if t.owner == USER]
if not mine:
    empty("Schedules run your templates. Save a template from **New job** first.")
    st.stop()

with st.container(border=True):
    st.subheader("New schedule")
    c1, c2, c3 = st.columns([1.3, 1.3, 1])
    c1.selectbox("Template", [t.name for t in mine], key="sch_template")
    preset = c2.selectbox("When", list(backend.PRESETS) + [CUSTOM], key="sch_preset")
    c3.text_input("Time zone", value="UTC", key="sch_tz")
    cron = backend.PRESETS.get(preset, "")
    if preset == CUSTOM:
        cron = st.text_input("Cron line (minute hour day month weekday)", key="sch_cron", placeholder="0 2 * * 1-5")
    try:
        words, upcoming = backend.preview_cron(cron, st.session_state.get("sch_tz") or "UTC") if cron else ("", [])
    except backend.TemplateError as exc:
        st.error(plain(exc), icon=":material/error:")
        words, upcoming = "", []
    if words:
        st.markdown(f"**{plain(words)}** ({plain(st.session_state.get('sch_tz') or 'UTC')}) · next: "
                    + ", ".join(f"{d:%a %d %b %H:%M}" for d in upcoming))

    def create() -> None:
        try:
            backend.add_schedule(USER, st.session_state["sch_template"], cron, st.session_state.get("sch_tz") or "UTC")
        except backend.TemplateError as exc:
            st.session_state["sch_error"] = str(exc)
            return
        st.session_state.pop("sch_error", None)
        st.session_state["sch_notice"] = f"Scheduled {st.session_state['sch_template']}: {words}."

    st.button("Add schedule", type="primary", icon=":material/add_alarm:", on_click=create, disabled=not words,
              key="sch_add")
    if st.session_state.get("sch_error"):
        st.error(plain(st.session_state["sch_error"]), icon=":material/error:")

st.subheader("My schedules")
shown = 0
for t in mine:
    for s in backend.schedules(USER, t.name):
        shown += 1
        with st.container(border=True, key=f"sch_row_{s.id}"):
            a, b, c, d, e = st.columns([2, 2.5, 1.1, 1.3, 1.2], vertical_alignment="center")
            a.markdown(f"**{plain(t.name)}**  \n{code(s.cron)} {plain(s.timezone)}")
            if s.problem:  # stored before cron lines were checked: say why it cannot fire
                b.error(f"Broken: {plain(s.problem)}", icon=":material/error:")
                words = ""
            else:
                words, _ = backend.preview_cron(s.cron, s.timezone, 0)
            nxt = ", ".join(f"{x:%a %d %b %H:%M}" for x in s.next_runs) if s.active else "paused"
            b.markdown(f"{words}  \nnext: {nxt}" + (f"  \nlast run: {s.last_run_state}" if s.last_run_state else ""))

            def toggle(name: str = t.name, sid=s.id, key: str = f"sch_on_{s.id}") -> None:  # noqa: ANN001
                on = bool(st.session_state[key])
                backend.set_schedule_active(USER, name, sid, on)
                st.session_state["sch_notice"] = f"{name}: schedule {'enabled' if on else 'disabled'}."

            def run_now(name: str = t.name) -> None:
                st.session_state["sch_started"] = str(backend.run_template(USER, name))

            def remove(name: str = t.name, sid=s.id) -> None:  # noqa: ANN001
                backend.delete_schedule(USER, name, sid)
                st.session_state["sch_notice"] = f"{name}: schedule deleted."

            c.toggle("Enabled", value=s.active, key=f"sch_on_{s.id}", on_change=toggle)
            d.button("Run now", icon=":material/play_arrow:", key=f"sch_run_{s.id}", on_click=run_now)
            e.button("Delete", icon=":material/delete:", key=f"sch_del_{s.id}", on_click=remove)
if not shown:
    empty("No schedules yet. Add one above.")
