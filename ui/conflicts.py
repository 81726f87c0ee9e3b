"""The conflict view of a paused job: each file's four texts, or both sides' actions for an
action resolve (filetype, move, delete, branch), a choice per resolve, and resume."""
from __future__ import annotations

import difflib
from typing import Any

import streamlit as st

from flows.spec import FileChoice, conflict_marker_lines
from ui import backend
from ui.widgets import code, plain

CHOICES = {"theirs": "Theirs (source)", "yours": "Yours (target)", "merged": "Merged as shown",
           "edited": "Edit the result"}


# What theirs and yours do to the file, per action resolve (Helix's own words for the
# choices are MsgDm::ResolveDoDeleteActionT/Y "delete"/"ignore", ResolveDoBranchActionT/Y
# "branch"/"ignore"; a filetype or filename resolve shows each side's type or path).
ACTION_TITLES = {"filetype": "Filetype change", "move": "Rename or move", "delete": "Deleted on one side",
                 "branch": "Deleted here, changed in the source"}


def action_effects(f: dict[str, Any]) -> dict[str, str]:
    """The sentence each choice stands for, for one action resolve."""
    theirs, yours = f.get("theirs_action") or "?", f.get("yours_action") or "?"
    kind = f.get("kind", "content")
    if kind == "filetype":
        return {"theirs": f"Theirs: the file becomes {theirs}", "yours": f"Yours: it stays {yours}"}
    if kind == "move":
        return {"theirs": f"Theirs: the file moves to {theirs}", "yours": f"Yours: it keeps its name {yours}"}
    if kind == "delete":
        return {"theirs": "Theirs: delete the file, as the source did", "yours": "Yours: keep the file and its edits"}
    if kind == "branch":
        return {"theirs": "Theirs: add the source's file back", "yours": "Yours: leave it deleted"}
    return {"theirs": f"Theirs: {theirs}", "yours": f"Yours: {yours}"}


def _key(f: dict[str, Any]) -> str:
    """One resolve of one file: where its error is kept."""
    return f["depot_file"] if f.get("kind", "content") == "content" else f"{f['depot_file']} ({f['kind']})"


def _label(f: dict[str, Any]) -> str:
    kind = f.get("kind", "content")
    return "content" if kind == "content" else f"{kind} resolve"


def _diff(a: str, b: str, a_name: str, b_name: str) -> str:
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), a_name, b_name)) or "(no change)"


def choices_from_state(run_id: str, files: list[dict[str, Any]]) -> tuple[list[FileChoice], dict[str, str]]:
    """The decisions made on the page; errors keyed by file for results still holding markers."""
    out, errors = [], {}
    for i, f in enumerate(files):
        choice = st.session_state.get(f"cf_{run_id}_{i}_choice")
        if not choice:
            continue
        text = None
        if choice == "merged" and conflict_marker_lines(f.get("merged", "")):
            errors[f["depot_file"]] = "The merge still has conflicts: choose theirs or yours, or edit the result."
            continue
        if choice == "edited":
            text = st.session_state.get(f"cf_{run_id}_{i}_text", f.get("merged", ""))
            if conflict_marker_lines(text):
                errors[f["depot_file"]] = "The edited result still has conflict markers (>>>> ==== <<<<); remove them."
                continue
        out.append(FileChoice(path=f["depot_file"], choice=choice, text=text, kind=f.get("kind", "content")))
    return out, errors


def _send(run_id: str, action: str, files: list[FileChoice] | None = None) -> bool:
    """Resume the job; a refusal (the job is not waiting, a choice cannot apply) is shown."""
    try:
        backend.resume(run_id, action, files)
    except ValueError as exc:
        st.session_state["job_notice"] = f"Not sent: {exc}"
        return False
    return True


def _action_box(run_id: str, i: int, f: dict[str, Any], can_act: bool) -> None:
    """An action resolve: both sides' actions and what each choice does; no texts to merge."""
    effects = action_effects(f)
    st.markdown(f"**{code(f['depot_file'])}** · {plain(ACTION_TITLES.get(f.get('kind', ''), f.get('kind', '')))}  \n"
                f"from {code(str(f['from_file']) + str(f.get('from_revs', '')))}")
    a, b = st.columns(2)
    a.caption("Theirs (source)")
    a.code(f.get("theirs_action") or "?", language=None)
    b.caption("Yours (target)")
    b.code(f.get("yours_action") or "?", language=None)
    st.radio("Result", ["theirs", "yours"], index=None, horizontal=True, key=f"cf_{run_id}_{i}_choice",
             format_func=effects.get, disabled=not can_act)


def render(run_id: str, can_act: bool = True) -> None:
    render_files(run_id, backend.conflicts(run_id), can_act)


def render_files(run_id: str, files: list[dict[str, Any]], can_act: bool = True) -> None:
    distinct = len({f["depot_file"] for f in files})
    st.subheader(f":material/call_split: {distinct} file(s) need you"
                 + (f" ({len(files)} resolves)" if len(files) != distinct else ""))
    if not files:
        st.info("The job is paused but published no conflicts yet; refresh in a moment.")
        return
    st.caption("Pick a result for each resolve, or resolve on the host and ask for a check. "
               "Resolves left without a choice stay open and the job asks again.")
    errors: dict[str, str] = st.session_state.get(f"cf_{run_id}_errors", {})
    kinds: dict[str, list[str]] = {}
    for f in files:
        kinds.setdefault(f["depot_file"], []).append(_label(f))
    for i, f in enumerate(files):
        with st.container(border=True, key=f"cf_{run_id}_{i}_box"):
            both = kinds[f["depot_file"]]
            if len(both) > 1:
                st.caption(f"This file waits for {len(both)} resolves ({', '.join(both)}); each is decided on "
                           f"its own: this choice decides its {_label(f)} only.")
            if f.get("kind", "content") != "content":
                _action_box(run_id, i, f, can_act)
                if _key(f) in errors:
                    st.error(plain(errors[_key(f)]), icon=":material/error:")
                continue
            st.markdown(f"**{code(f.get('name') or f['depot_file'])}**  \n"
                        f"from {code(str(f['from_file']) + str(f['from_revs']))}"
                        + (f" · base {code(f['base_name'])}" if f.get("base_name") else ""))
            if f.get("binary"):
                st.caption("Binary file: take one side.")
                options = ["theirs", "yours"]
            else:
                options = list(CHOICES)
                side, diffs = st.tabs(["Side by side", "Diffs against base"])
                with side:
                    cols = st.columns(4)
                    for col, (label, key) in zip(cols, [("Base", "base"), ("Theirs", "theirs"),
                                                         ("Yours", "yours"), ("Merged", "merged")]):
                        col.caption(label)
                        col.code(f.get(key) or "", language=None, line_numbers=True, wrap_lines=True)
                with diffs:
                    a, b = st.columns(2)
                    a.caption("Theirs vs base")
                    a.code(_diff(f.get("base", ""), f.get("theirs", ""), "base", "theirs"), language="diff")
                    b.caption("Yours vs base")
                    b.code(_diff(f.get("base", ""), f.get("yours", ""), "base", "yours"), language="diff")
                if f.get("truncated"):
                    st.caption("Texts are cut short for display; the job resolves the whole file.")
            choice = st.radio("Result", options, index=None, horizontal=True, key=f"cf_{run_id}_{i}_choice",
                              format_func=CHOICES.get, disabled=not can_act)
            if choice == "edited":
                st.text_area("Result text", value=f.get("merged", ""), height=220, key=f"cf_{run_id}_{i}_text")
            if f["depot_file"] in errors:
                st.error(plain(errors[f["depot_file"]]), icon=":material/error:")

    if not can_act:
        return

    def apply() -> None:
        picked, errs = choices_from_state(run_id, files)
        st.session_state[f"cf_{run_id}_errors"] = errs
        if errs:
            return
        if not picked:
            st.session_state[f"cf_{run_id}_errors"] = {_key(f): "Pick a result for this file first."
                                                       for f in files}
            return
        if _send(run_id, "apply", picked):
            st.session_state["job_notice"] = f"Sent {len(picked)} choice(s); the job continues."

    def recheck() -> None:
        if _send(run_id, "recheck"):
            st.session_state["job_notice"] = "Asked the job to check the workspace again."

    a, b, c = st.columns([1.4, 1.6, 1])
    a.button("Apply choices and continue", type="primary", icon=":material/done_all:", on_click=apply,
             key=f"cf_{run_id}_apply")
    b.button("I resolved on the host, check again", icon=":material/refresh:", on_click=recheck,
             key=f"cf_{run_id}_recheck")
    with c.popover("Abort job", icon=":material/cancel:"):
        st.write("Revert everything this job opened and end it with ERROR?")
        if st.button("Yes, abort", type="primary", key=f"cf_{run_id}_abort"):
            if _send(run_id, "abort"):
                st.session_state["job_notice"] = "Aborting: the job reverts its files."
            st.rerun()
    with st.expander("Resolve on the host instead"):
        st.code("\n".join(f["resolve_command"] for f in files if f.get("resolve_command")) or "p4 resolve",
                language="bash")
