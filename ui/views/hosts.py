"""Hosts: each enrolled host's worker, whether it is online, what it runs; administrators deploy and stop.

Everyone sees every host's health; the Deploy and Stop controls are drawn for administrators
only, and ``ui.backend`` refuses anyone else whatever the page drew."""
from __future__ import annotations

import streamlit as st

from ui import backend
from ui.widgets import age, empty, plain

USER = st.session_state["_p4integ_user"]
ADMIN = backend.is_admin(USER)

st.title("Hosts")
if ADMIN:
    st.caption("Each host runs a Prefect worker on its own work pool. Enrol a host with "
               "`p4integ hosts add` (its SSH host key is pinned then); jobs for `local` run on this machine.")
else:
    st.caption("Each host runs a Prefect worker on its own work pool; jobs for `local` run on this machine. "
               "Administrators enrol, deploy and stop hosts.")
notice = st.session_state.pop("hosts_notice", None)
if notice:
    st.success(plain(notice), icon=":material/check_circle:")
check = st.toggle("Also check the worker process over SSH", key="hosts_ssh",
                  help="Exact, but slower: it logs in to every host.")
hosts = backend.hosts(check_process=check)
if not hosts:
    empty("No hosts enrolled. Jobs run on `local` until an administrator enrols one with `p4integ hosts add`.")
    st.stop()

for h in hosts:
    with st.container(border=True, key=f"host_{h.name}"):
        a, b, c, d = st.columns([1.4, 3, 1, 1], vertical_alignment="center")
        badge = ":green-badge[online]" if h.online else ":red-badge[offline]"
        a.markdown(f"**{plain(h.name)}** {badge}")
        detail = [f"worker {h.version or '-'}", f"heartbeat {age(h.last_heartbeat)}"]
        if h.process_alive is not None:
            detail.append("process running" if h.process_alive else "no process")
        detail.append(f"{len(h.running_jobs)} running · {len(h.waiting_jobs)} waiting for a person")
        b.markdown(" · ".join(detail) + (f"  \nrunning: {plain(', '.join(h.running_jobs))}" if h.running_jobs else "")
                   + (f"  \nwaiting: {plain(', '.join(h.waiting_jobs))}" if h.waiting_jobs else "")
                   + (f"  \n:red[{plain(h.reason)}]" if h.reason else ""))
        if not ADMIN:
            continue

        def deploy(name: str = h.name) -> None:
            try:
                report = backend.deploy_host(USER, name)
            except Exception as exc:  # noqa: BLE001 - HostError carries the command and output
                st.session_state[f"host_{name}_error"] = str(exc)
                return
            st.session_state.pop(f"host_{name}_error", None)
            what = "; ".join(report.changes) if report.changed else "no change"
            st.session_state["hosts_notice"] = f"{name}: {what} (worker {report.version}, {report.seconds:.1f} s)"

        def stop(name: str = h.name) -> None:
            try:
                was = backend.stop_host(USER, name)
            except Exception as exc:  # noqa: BLE001
                st.session_state[f"host_{name}_error"] = str(exc)
                return
            st.session_state.pop(f"host_{name}_error", None)
            st.session_state["hosts_notice"] = f"{name}: worker {'stopped' if was else 'was not running'}."

        c.button("Deploy", icon=":material/rocket_launch:", key=f"host_{h.name}_deploy", on_click=deploy,
                 help="Install or update the worker and start it (idempotent).")
        d.button("Stop", icon=":material/stop_circle:", key=f"host_{h.name}_stop", on_click=stop)
        if st.session_state.get(f"host_{h.name}_error"):
            st.error(plain(st.session_state[f"host_{h.name}_error"]), icon=":material/error:")
