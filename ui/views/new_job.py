"""New job: every field checked where it is typed, then the run starts and its page opens."""
from __future__ import annotations

import streamlit as st

from flows.p4.integ_messages import INTEGRATE_OPTIONS
from ui import auth, backend
from ui.jobform import build_spec
from ui.widgets import field_error, plain

USER = st.session_state["_p4integ_user"]
ADMIN = backend.is_admin(USER)  # only administrators type a program; everyone picks a defined one
ERRORS_KEY = "new_job_errors"


def _values() -> dict[str, object]:
    g = st.session_state.get
    return {
        "p4port": auth.p4port(), "p4user": USER, "password_secret": backend.secret_for(USER),
        "host": g("nj_host", "local"), "client": g("nj_client", ""), "mode": g("nj_mode_key", "branch"),
        "branch": g("nj_branch", ""), "reverse": g("nj_reverse", False), "source": g("nj_source", ""),
        "target": g("nj_target", ""), "changelist": g("nj_changelist", ""), "description": g("nj_description", ""),
        "trial": g("nj_trial", False), "sync_command": g("nj_sync_command", ""), "pre_submit": g("nj_pre_submit", ""),
        "build_command": g("nj_build_command", ""), "name_check": g("nj_name_check", ""),
        "push_command": g("nj_push_command", ""), "integrate_options": g("nj_integrate_options", []),
    }


def _validate() -> object:
    spec, errors = build_spec(_values(), backend.site_command_names(st.session_state.get("nj_host", "local")))
    if spec is not None:
        errors.update(backend.spec_problems(spec, USER))  # commands, host, then what the Perforce server does not know
    if "password_secret" in errors:
        _end_sessions()
        return None
    st.session_state[ERRORS_KEY] = errors
    return None if errors else spec


def _end_sessions() -> None:
    """The ticket kept at sign-in no longer works (Perforce refused it, or it is gone): every
    session of this user ends, and this tab's next run shows the sign-in, which keeps a new one."""
    auth.revoke_user(USER)
    st.session_state.pop(ERRORS_KEY, None)
    st.session_state["_p4integ_signed_out"] = auth.TICKET_ENDED


def _start() -> None:
    spec = _validate()
    if spec is not None:
        st.session_state["new_job_started"] = str(backend.start_job(spec, USER))


def _save_template() -> None:
    spec = _validate()
    if spec is None:
        return
    # Its schedules run long after this sign-in's ticket expired: it names the stored password (or none).
    spec = spec.model_copy(update={"password_secret": backend.schedule_secret_for(USER)})
    try:
        backend.create_template(USER, st.session_state.get("nj_tpl_name", "").strip(), spec,
                             st.session_state.get("nj_tpl_visibility", "private"))
    except backend.TemplateError as exc:
        st.session_state[ERRORS_KEY] = {"template": str(exc)}
        return
    st.session_state["new_job_saved"] = st.session_state.get("nj_tpl_name")


started = st.session_state.pop("new_job_started", None)
if started:
    st.switch_page("views/job.py", query_params={"run": started})

st.title("New job")
errors: dict[str, str] = st.session_state.get(ERRORS_KEY, {})
if errors:
    st.error(f"{len(errors)} field(s) need attention; each is marked below.", icon=":material/error:")
saved = st.session_state.pop("new_job_saved", None)
if saved:
    st.success(f"Saved template **{plain(saved)}**. Run or schedule it from Templates.",
               icon=":material/bookmark_added:")

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Where")
    hosts = backend.hosts_with_pools() or ["local"]
    st.selectbox("Host", hosts, index=hosts.index("local") if "local" in hosts else 0, key="nj_host",
                 help="The host that owns the workspace; its worker runs the job.")
    field_error(errors, "host")
    st.text_input("Workspace", key="nj_client", placeholder="rel-integ", help="Perforce client on that host.")
    field_error(errors, "client")
    st.caption(f"Runs as **{USER}** on **{auth.p4port()}**.")
    st.subheader("What")
    mode = st.radio("Integrate by", ["branch", "paths"], horizontal=True, key="nj_mode_key",
                    format_func=lambda m: "Branch spec" if m == "branch" else "Source and target paths")
    if mode == "branch":
        st.text_input("Branch spec", key="nj_branch", placeholder="main-to-rel")
        field_error(errors, "branch")
        st.checkbox("Reverse (-r): integrate from the target back to the source", key="nj_reverse")
    else:
        st.text_input("Source", key="nj_source", placeholder="//depot/main/...")
        field_error(errors, "source")
        st.text_input("Target", key="nj_target", placeholder="//depot/rel/...")
        field_error(errors, "target")
    st.text_input("Changelist", key="nj_changelist", placeholder="latest submitted",
                  help="Integrate up to this source change; empty takes the latest.")
    field_error(errors, "changelist")
with right:
    st.subheader("How")
    st.text_area("Description", key="nj_description", height=90,
                 placeholder="Integrate main into rel (a default names the branch and change)")
    field_error(errors, "description")
    st.toggle("Trial: shelve, but do not submit", key="nj_trial")
    st.multiselect("Perforce integrate options", list(INTEGRATE_OPTIONS), key="nj_integrate_options",
                   format_func=lambda o: f"{o}: {INTEGRATE_OPTIONS[o]}", placeholder="none: Perforce's defaults",
                   help="Passed to p4 integrate as they are. Without them Perforce refuses some files (a baseless "
                        "merge needs -i, edits against a deleted file need -Ds/-Dt or -d); the job then stops "
                        "naming each file, Perforce's reason and the option that accepts it.")
    field_error(errors, "integrate_options")
    with st.expander("Site commands", expanded=any(k in errors for k in
                                                   ("sync_command", "pre_submit", "build_command",
                                                    "name_check", "push_command"))):
        names = backend.site_command_names(st.session_state.get("nj_host", "local"))
        fields = [("sync_command", "Sync wrapper", "default: p4 sync"),
                  ("build_command", "Build before shelving", "none"),
                  ("name_check", "Name check (prints files to drop from the shelf)", "none"),
                  ("push_command", "Push tool", "default: submit the shelf")]
        if ADMIN:
            st.caption("A site command's name, or a command line, run as an argument list (never through a "
                       f"shell). Defined for this host: {', '.join(names) or 'none yet'} (p4integ commands add).")
            for field, label, hint in fields:
                st.text_input(label, key=f"nj_{field}", placeholder=hint)
                field_error(errors, field)
            st.text_area("Pre-submit hooks, one a line", key="nj_pre_submit", height=80)
        else:
            st.caption("Commands an administrator defined for this host; ask one to add another.")
            for field, _, _ in fields:  # a name picked for another host is not offered on this one
                if st.session_state.get(f"nj_{field}") not in ("", *names):
                    st.session_state[f"nj_{field}"] = ""
            hooks = st.session_state.get("nj_pre_submit")
            st.session_state["nj_pre_submit"] = [n for n in hooks if n in names] if isinstance(hooks, list) else []
            for field, label, hint in fields:
                st.selectbox(label, ["", *names], key=f"nj_{field}", format_func=lambda n, h=hint: n or h)
                field_error(errors, field)
            st.multiselect("Pre-submit hooks, in order", names, key="nj_pre_submit", placeholder="none")
        field_error(errors, "pre_submit")
    field_error(errors, "form")

st.divider()
go, tpl_name, tpl_vis, tpl_save = st.columns([1.2, 2, 1.2, 1.2], vertical_alignment="bottom")
go.button("Start job", type="primary", icon=":material/play_arrow:", on_click=_start, key="nj_start")
tpl_name.text_input("Template name", key="nj_tpl_name", placeholder="nightly-main-to-rel")
tpl_vis.selectbox("Visibility", ["private", "global"] if ADMIN else ["private"], key="nj_tpl_visibility",
                  help=None if ADMIN else "Administrators make templates global.")
tpl_save.button("Save as template", icon=":material/bookmark_add:", on_click=_save_template, key="nj_save")
field_error(errors, "template")
field_error(errors, "name")
