"""Templates: global ones and my private ones; run with overrides, share, delete."""
from __future__ import annotations

import streamlit as st

from flows.p4.integ_messages import INTEGRATE_OPTIONS
from ui import backend
from ui.widgets import code, empty, plain, run_identity

USER = st.session_state["_p4integ_user"]
ADMIN = backend.is_admin(USER)  # only administrators make a template global (deployments.templates refuses others)

st.title("Templates")
st.caption("A template is a saved job. Save one from **New job**; global ones are shared with everyone, "
           "private ones are yours alone.")
started = st.session_state.pop("tpl_started", None)
if started:
    st.switch_page("views/job.py", query_params={"run": started})
notice = st.session_state.pop("tpl_notice", None)
if notice:
    st.success(plain(notice), icon=":material/check_circle:")

templates = backend.list_templates(USER)
if not templates:
    empty("No templates yet. Fill in **New job** and choose *Save as template*.")
    st.page_link("views/new_job.py", label="New job", icon=":material/add_circle:")
    st.stop()

for t in templates:
    spec = t.spec
    what = spec.get("branch") or f"{spec.get('source')} → {spec.get('target')}"
    badge = ":blue-badge[global]" if t.visibility == "global" else ":violet-badge[private]"
    with st.expander(f"**{plain(t.name)}** · {plain(what)} · {plain(spec.get('client'))} on {plain(t.host)}",
                     expanded=len(templates) <= 3):
        st.markdown(f"{badge} owner **{plain(t.owner or 'project')}** · {plain(t.description)}")
        st.caption(run_identity(t, USER))
        if spec.get("integrate_options"):
            st.caption("Integrate options: " + " · ".join(f"{code(o)} {INTEGRATE_OPTIONS.get(o, '')}"
                                                           for o in spec["integrate_options"]))
        errors = st.session_state.get(f"tpl_{t.name}_errors", {})
        c1, c2, c3, c4 = st.columns([1, 1, 2, 1], vertical_alignment="bottom")
        c1.text_input("Changelist", key=f"tpl_{t.name}_cl", placeholder="latest")
        c2.text_input("Workspace", key=f"tpl_{t.name}_client", placeholder=spec.get("client", ""))
        c3.text_input("Description", key=f"tpl_{t.name}_desc", placeholder="template's default")
        c4.toggle("Trial", key=f"tpl_{t.name}_trial", value=bool(spec.get("trial")))

        def run(name: str = t.name) -> None:
            g = st.session_state.get
            cl = str(g(f"tpl_{name}_cl", "") or "").strip()
            if cl and not cl.isdigit():
                st.session_state[f"tpl_{name}_errors"] = {"run": f"changelist: '{cl}' is not a number; give a "
                                                                 "changelist number or leave it empty"}
                return
            try:
                run_id = backend.run_template(USER, name, changelist=int(cl) if cl else None,
                                           client=(g(f"tpl_{name}_client") or "").strip() or None,
                                           description=(g(f"tpl_{name}_desc") or "").strip() or None,
                                           trial=bool(g(f"tpl_{name}_trial")))
            except (backend.TemplateError, ValueError) as exc:
                st.session_state[f"tpl_{name}_errors"] = {"run": str(exc)}
                return
            st.session_state.pop(f"tpl_{name}_errors", None)
            st.session_state["tpl_started"] = str(run_id)

        b1, b2, b3, _ = st.columns([1, 1.3, 1, 2])
        b1.button("Run now", type="primary", icon=":material/play_arrow:", key=f"tpl_{t.name}_run", on_click=run)
        if "run" in errors:
            st.error(plain(errors["run"]), icon=":material/error:")
        if t.owner == USER:
            other = "global" if t.visibility == "private" else "private"

            def switch(name: str = t.name, to: str = other) -> None:
                try:
                    backend.switch_template(USER, name, to)
                except backend.TemplateError as exc:
                    st.session_state[f"tpl_{name}_errors"] = {"run": str(exc)}
                    return
                st.session_state["tpl_notice"] = f"{name} is now {to}."

            def delete(name: str = t.name) -> None:
                backend.delete_template(USER, name)
                st.session_state["tpl_notice"] = f"Deleted template {name} and its schedules."

            if other == "private" or ADMIN:
                b2.button(f"Make {other}", icon=":material/swap_horiz:", key=f"tpl_{t.name}_switch",
                          on_click=switch)
            with b3.popover("Delete", icon=":material/delete:"):
                st.write(f"Delete **{plain(t.name)}** and its schedules? Runs already made stay.")
                st.button("Yes, delete", type="primary", key=f"tpl_{t.name}_delete", on_click=delete)
        with st.popover("Job spec", icon=":material/data_object:"):
            st.json(backend.spec_for_display(spec))
