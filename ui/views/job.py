"""One job: where it is, its log as it grows, what it did; cancel, retry, resolve."""
from __future__ import annotations

import streamlit as st

from flows.spec import Stage
from flows.vocabulary import COMPLETED, FINAL_NAMES, PAUSED
from ui import backend, conflicts
from ui.widgets import age, code, duration, empty, plain, stage_line, state_badge

run_id = st.query_params.get("run")
if not run_id:
    empty("No job chosen. Pick one on the Jobs page.")
    st.page_link("views/dashboard.py", label="Jobs", icon=":material/dashboard:")
    st.stop()
try:
    run = backend.run_detail(run_id)
except Exception:  # noqa: BLE001 - a bad or unknown id: say so where the job would be
    st.error(f"No job with id {code(run_id)}. It may have been deleted; pick one on the Jobs page.")
    st.page_link("views/dashboard.py", label="Jobs", icon=":material/dashboard:")
    st.stop()

USER = st.session_state["_p4integ_user"]
ACTIVE = run.state not in FINAL_NAMES
# Acting on a job acts with its owner's Perforce identity: only the owner may.
MINE = run.user == USER
# Log, conflicts and summary hold depot file contents: not even fetched for anyone else.
READ = backend.may_read_contents(USER, run)
notice = st.session_state.pop("job_notice", None)

title, links = st.columns([4, 1.3], vertical_alignment="bottom")
title.title(plain(run.name))
title.markdown(f"{state_badge(run.state)} &nbsp; host **{plain(run.host)}** · user **{plain(run.user or '-')}** · "
               f"started {age(run.started or run.created)} · {code(run.spec.get('branch') or '')}")
if READ:
    links.link_button("Open in Prefect", backend.prefect_ui_url(run.id), icon=":material/open_in_new:")
if run.spec.get("line"):  # one change of an integration line
    st.page_link("views/lines.py", icon=":material/timeline:",
                 label=f"Line {run.spec['line']}: source change {run.spec.get('changelist')}")
if notice:
    st.success(plain(notice), icon=":material/check_circle:")


def _retry() -> None:
    st.session_state["job_retried"] = str(backend.retry(run.id))


retried = st.session_state.pop("job_retried", None)
if retried:
    st.switch_page("views/job.py", query_params={"run": retried})

actions = st.columns([1, 1, 4])
if not READ:
    st.info(f"This is {plain(run.user or 'another user')}'s job: you can follow its state and stage; its log, "
            "conflicts and summary are shown to its owner and administrators only.", icon=":material/lock:")
elif not MINE:
    st.info(f"This is {plain(run.user or 'another user')}'s job: you can follow it; only they can cancel, retry or "
            "resolve it.", icon=":material/visibility:")
elif ACTIVE:
    with actions[0].popover("Cancel job", icon=":material/stop_circle:"):
        st.write("Stop this job? It reverts every file it opened and ends Cancelled.")
        if st.button("Yes, cancel it", type="primary", key="job_cancel_yes"):
            try:
                backend.cancel(run.id)
                st.session_state["job_notice"] = "Cancel requested; the job is cleaning up."
            except ValueError as exc:  # it ended meanwhile
                st.session_state["job_notice"] = f"Not cancelled: {exc}"
            st.rerun()
else:
    actions[0].button("Retry", icon=":material/replay:", on_click=_retry, key="job_retry",
                      help="Start a new run with the same job spec.")


def _timeline_and_log() -> None:
    state = backend.state_of(run.id)
    if (state in FINAL_NAMES) != (run.state in FINAL_NAMES) or (state == PAUSED) != (run.state == PAUSED):
        st.rerun()  # the page's shape changes (conflicts, summary, buttons): redraw all of it
    rows = backend.stages(run.id)
    done = {r.stage for r in rows if r.state == COMPLETED}
    if state == COMPLETED:
        done.add("DONE")
    current = failed = None
    if state == PAUSED:
        current = Stage.NEEDS_RESOLVE.value
    elif state not in FINAL_NAMES:
        current = next((r.stage for r in reversed(rows) if r.stage != Stage.CLEANUP), Stage.GET_LATEST_CL.value)
    elif state != COMPLETED:
        record = backend.record(run.id) if READ else None
        failed = record.failed_stage.value if record and record.failed_stage else \
            next((r.stage for r in reversed(rows) if r.stage != Stage.CLEANUP), None)
    st.markdown(stage_line(backend.STAGES, done, current, failed))
    if READ:
        _log()


def _log() -> None:
    """The log as it grows: drawn for those who may read it (READ), fetched for no one else."""
    key = f"log_{run.id}"
    lines, last = st.session_state.get(key, ([], None))
    new = backend.logs_after(run.id, last)
    if new:  # append what is new; earlier lines are kept, not fetched again
        lines = lines + [f"{n.timestamp:%H:%M:%S}  {n.message}" for n in new]
        last = new[-1].timestamp
        st.session_state[key] = (lines, last)
    with st.container(height=360, border=True, key="job_log"):
        st.code("\n".join(lines) or "(no log lines yet)", language=None, wrap_lines=True)


if run.state == PAUSED and READ:  # what the person has to do comes first
    conflicts.render(str(run.id), can_act=MINE)
st.subheader("Progress")
st.fragment(run_every=2 if ACTIVE and run.state != PAUSED else None)(_timeline_and_log)()
if run.state == PAUSED:
    st.button("Refresh", icon=":material/refresh:", key="job_refresh")

if not ACTIVE and READ:
    st.subheader("Summary")
    record = backend.record(run.id)
    if record is None:
        empty("This job ended before writing a summary; the log above says why.")
    else:
        facts = record.facts()
        headline = ("outcome", "conflicts", "shelved change", "submitted change")
        for col, key in zip(st.columns(4), headline):
            col.metric(key.capitalize(), facts.get(key, "-"), border=True)
        rest = {k: v for k, v in facts.items() if k not in headline}
        st.table({"item": [plain(k) for k in rest], "value": [plain(v) for v in rest.values()]})  # cells are markdown
    st.caption(f"Ran {duration(run.started, run.ended)}." if run.started else "")
