"""The conflict view of a paused job: each file's four texts, a choice per file, and resume."""
from __future__ import annotations

import difflib
from typing import Any

import streamlit as st

from flows.spec import FileChoice
from ui import data

MARKERS = (">>>> ORIGINAL", "==== THEIRS", "==== YOURS", "<<<<")
CHOICES = {"theirs": "Theirs (source)", "yours": "Yours (target)", "merged": "Merged as shown",
           "edited": "Edit the result"}


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
        if choice == "edited":
            text = st.session_state.get(f"cf_{run_id}_{i}_text", f.get("merged", ""))
            if any(line.startswith(MARKERS) for line in text.splitlines()):
                errors[f["depot_file"]] = "The edited result still has conflict markers (>>>> ==== <<<<); remove them."
                continue
        out.append(FileChoice(path=f["depot_file"], choice=choice, text=text))
    return out, errors


def render(run_id: str, can_act: bool = True) -> None:
    files = data.conflicts(run_id)
    st.subheader(f":material/call_split: {len(files)} file(s) need you")
    if not files:
        st.info("The job is paused but published no conflicts yet; refresh in a moment.")
        return
    st.caption("Pick a result for each file, or resolve on the host and ask for a check. "
               "Files left without a choice stay open and the job asks again.")
    errors: dict[str, str] = st.session_state.get(f"cf_{run_id}_errors", {})
    for i, f in enumerate(files):
        with st.container(border=True, key=f"cf_{run_id}_{i}_box"):
            st.markdown(f"**`{f['depot_file']}`**  \nfrom `{f['from_file']}{f['from_revs']}`"
                        + (f" · base `{f['base_name']}`" if f.get("base_name") else ""))
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
                st.error(errors[f["depot_file"]], icon=":material/error:")

    if not can_act:
        return

    def apply() -> None:
        picked, errs = choices_from_state(run_id, files)
        st.session_state[f"cf_{run_id}_errors"] = errs
        if errs:
            return
        if not picked:
            st.session_state[f"cf_{run_id}_errors"] = {f["depot_file"]: "Pick a result for this file first."
                                                       for f in files}
            return
        data.resume(run_id, "apply", picked)
        st.session_state["job_notice"] = f"Sent {len(picked)} choice(s); the job continues."

    def recheck() -> None:
        data.resume(run_id, "recheck")
        st.session_state["job_notice"] = "Asked the job to check the workspace again."

    a, b, c = st.columns([1.4, 1.6, 1])
    a.button("Apply choices and continue", type="primary", icon=":material/done_all:", on_click=apply,
             key=f"cf_{run_id}_apply")
    b.button("I resolved on the host, check again", icon=":material/refresh:", on_click=recheck,
             key=f"cf_{run_id}_recheck")
    with c.popover("Abort job", icon=":material/cancel:"):
        st.write("Revert everything this job opened and end it with ERROR?")
        if st.button("Yes, abort", type="primary", key=f"cf_{run_id}_abort"):
            data.resume(run_id, "abort")
            st.session_state["job_notice"] = "Aborting: the job reverts its files."
            st.rerun()
    with st.expander("Resolve on the host instead"):
        st.code("\n".join(f["resolve_command"] for f in files if f.get("resolve_command")) or "p4 resolve",
                language="bash")
