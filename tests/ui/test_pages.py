"""Each page's logic through AppTest, with the real Prefect server, worker and a sandbox depot."""
from __future__ import annotations

from uuid import UUID

import pytest

from deployments import jobs
from flows.p4.session import P4Session
from flows.spec import JobSpec, Stage
from tests.flows.helpers import PAUSED_OR_FINAL, logs, start_unchecked, until
from tests.ui.conftest import ADMIN_GROUP, PASSWORD, page, texts
from ui import auth, backend


def _button(at, label: str):  # AppTest types
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[0]


def _fill(at, **fields: str) -> None:  # AppTest
    """Type into the New job form's text boxes, by field name."""
    for field, value in fields.items():
        at.text_input(key=f"nj_{field}").set_value(value)


def _paused_job(ex, user: str) -> UUID:
    spec = JobSpec(p4port=ex.port, p4user=user, client=ex.client, branch=ex.branch,
                   password_secret=backend.secret_for(user))
    run_id = backend.start_job(spec, user)
    run = jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120)
    assert run.state.type.value == "PAUSED", run.state
    return run_id


# --- sign-in ---------------------------------------------------------------------------------

def test_every_page_asks_for_sign_in_first(ui_depot) -> None:
    at = page(None)
    html = "".join(h.proto.body for h in at.html)
    assert 'action="/auth/login"' in html and 'type="password"' in html
    assert "Jobs" not in [t.value for t in at.title]
    assert ui_depot.port in texts(at)


def test_a_refused_sign_in_is_shown_and_keeps_the_user_name(ui_depot) -> None:
    at = page(None, login_error="Perforce refused this user name and password.", login_user="release-bot")
    assert "Perforce refused this user name and password." in [e.value for e in at.error]
    html = "".join(h.proto.body for h in at.html)
    assert 'value="release-bot"' in html
    assert "login_error" not in html  # the next address drops the failed attempt


def test_credentials_are_checked_by_perforce(ui_depot) -> None:
    granted = auth.check_credentials(ui_depot.user, PASSWORD)
    assert granted.user == ui_depot.user and len(granted.ticket) == 32
    with pytest.raises(auth.LoginRefused, match="refused"):
        auth.check_credentials(ui_depot.user, "wrong")
    with pytest.raises(auth.LoginRefused, match="refused"):  # no password: else anyone could claim the name
        auth.check_credentials("nobody-with-a-password", "anything")
    with pytest.raises(auth.LoginRefused, match="Enter"):
        auth.check_credentials("", "")


def test_session_cookie_is_signed_expires_and_can_be_revoked(ui_depot) -> None:
    cookie = auth.make_cookie("alice", now=1000.0)
    assert auth.user_from_cookie(cookie, now=1001.0) == "alice"
    assert auth.user_from_cookie(cookie, now=1000.0 + auth.SESSION_SECONDS + 1) is None
    body, sig = cookie.rsplit(".", 1)
    forged = body.replace(body.split(".")[0], auth._b64(b"root")) + "." + sig
    assert auth.user_from_cookie(forged, now=1001.0) is None
    assert auth.user_from_cookie("garbage", now=1001.0) is None
    auth.revoke(cookie, now=1001.0)
    assert auth.user_from_cookie(cookie, now=1001.0) is None


# --- dashboard --------------------------------------------------------------------------------

def test_dashboard_counts_and_lists_mine_or_everyones(signed_in, ui_depot) -> None:
    paused = _paused_job(ui_depot, signed_in)
    # someone else's job that fails: made as a schedule makes one, since submitting refuses it
    other = start_unchecked(JobSpec(p4port=ui_depot.port, p4user="someone-else", client="no-such-ws",
                                    branch=ui_depot.branch))
    jobs.wait(other, timeout=120)

    def links(at) -> list[str]:  # which runs the page links to, once per link
        return [p.proto.query_string for p in at.get("page_link") if p.proto.query_string]

    at = page(signed_in)
    shown = texts(at)
    assert "All=" in shown and "Needs you=" in shown
    assert int(next(m.value for m in at.metric if m.label == "Needs you")) >= 1
    assert "wait for you" in shown
    assert links(at).count(f"run={paused}") == 2  # in "wait for you" and in the list
    assert f"run={other}" not in links(at), "someone else's job shown under Mine"
    at.segmented_control(key="dash_whose").set_value("Everyone's").run()
    assert f"run={other}" in links(at)
    at.pills(key="dash_states").set_value(["Failed"]).run()
    assert f"run={other}" in links(at)
    assert links(at).count(f"run={paused}") == 1  # only in "wait for you": it has not failed
    backend.resume(paused, "abort")
    jobs.wait(paused, timeout=240)


# --- new job ----------------------------------------------------------------------------------

def test_new_job_marks_each_bad_field_and_starts_nothing(signed_in, ui_depot) -> None:
    before = backend.count_by_group({"All": None}, signed_in)
    at = page(signed_in, "views/new_job.py")
    _fill(at, branch="bad name!", changelist="abc")
    _button(at, "Start job").click().run()
    errors = [e.value for e in at.error]
    assert any(e.startswith("client: required") for e in errors), errors
    assert any(e.startswith("changelist: 'abc' is not a number") for e in errors), errors
    assert any("need attention" in e for e in errors)

    _fill(at, client="no-such-ws", branch="main-to-rel", changelist="")
    _button(at, "Start job").click().run()
    errors = [e.value for e in at.error]
    assert any(e.startswith("client: workspace 'no-such-ws' does not exist") for e in errors), errors
    assert backend.count_by_group({"All": None}, signed_in) == before


def test_new_job_asks_the_server_about_the_branch_spec_and_changelist(signed_in, ui_depot) -> None:
    before = backend.count_by_group({"All": None}, signed_in)
    at = page(signed_in, "views/new_job.py")
    # "main" is a prefix of the real branch spec "main-to-rel": only an exact name is one
    _fill(at, client=ui_depot.client, branch="main", changelist="999")
    _button(at, "Start job").click().run()
    errors = [e.value for e in at.error]
    assert any(e.startswith("branch: branch spec 'main' does not exist") for e in errors), errors
    assert any(e.startswith("changelist: 999 does not exist") for e in errors), errors
    assert not any(e.startswith("client:") for e in errors), errors
    assert backend.count_by_group({"All": None}, signed_in) == before


def test_new_job_starts_the_run_and_opens_its_page(signed_in, ui_depot) -> None:
    at = page(signed_in, "views/new_job.py")
    _fill(at, client=ui_depot.client, branch=ui_depot.branch)
    at.toggle(key="nj_trial").set_value(True)
    options = at.multiselect(key="nj_integrate_options")
    assert "-i: integrate files that share no integration history (baseless merge)" in options.options
    options.set_value(["-i", "-Rs"])
    _button(at, "Start job").click().run()
    run_id = at.query_params["run"]
    assert [t.value for t in at.title] == [backend.run_detail(run_id).name]
    run = jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=120)
    spec = backend.run_detail(run_id).spec
    assert spec["trial"] is True and spec["p4user"] == signed_in and spec["password_secret"]
    assert spec["integrate_options"] == ["-i", "-Rs"]
    if run.state.type.value == "PAUSED":
        backend.resume(run_id, "abort")
        jobs.wait(run_id, timeout=240)


# --- job page and conflicts ---------------------------------------------------------------------

def test_conflict_view_shows_each_file_and_resumes_with_the_choices(signed_in, ui_depot) -> None:
    run_id = _paused_job(ui_depot, signed_in)
    at = page(signed_in, "views/job.py", run=str(run_id))
    shown = texts(at)
    assert "2 file(s) need you" in shown and "NEEDS_RESOLVE" in shown
    conflicts = backend.conflicts(run_id)
    for c in conflicts:
        assert c["depot_file"] in shown
        for text in (c["theirs"], c["yours"]):
            assert text.rstrip("\n") in [b.value for b in at.code]  # st.code drops the final newline
    readme = next(i for i, c in enumerate(conflicts) if c["depot_file"].endswith("README.md"))
    config = 1 - readme
    at.radio(key=f"cf_{run_id}_{readme}_choice").set_value("theirs").run()
    at.radio(key=f"cf_{run_id}_{config}_choice").set_value("merged").run()
    _button(at, "Apply choices and continue").click().run()  # the merge still has conflict markers
    assert any("The merge still has conflicts" in e.value for e in at.error)
    assert backend.run_detail(run_id).state == "PAUSED"
    at.radio(key=f"cf_{run_id}_{config}_choice").set_value("edited").run()
    area = at.text_area(key=f"cf_{run_id}_{config}_text")
    assert ">>>> ORIGINAL" in area.value  # starts from the merge with its markers
    _button(at, "Apply choices and continue").click().run()
    assert any("conflict markers" in e.value for e in at.error)
    assert backend.run_detail(run_id).state == "PAUSED"
    edited = "[product]\nname = widget\nversion = 2.1.1\nchannel = stable\n"
    at.text_area(key=f"cf_{run_id}_{config}_text").set_value(edited).run()
    _button(at, "Apply choices and continue").click().run()
    assert any("Sent 2 choice(s)" in s.value for s in at.success)
    run = jobs.wait(run_id, timeout=120)
    assert run.state.type.value == "COMPLETED", run.state
    at = page(signed_in, "views/job.py", run=str(run_id))
    assert "Done" in texts(at) and "Outcome=DONE" in texts(at)
    submitted = next(m.value for m in at.metric if m.label == "Submitted change")
    with P4Session(ui_depot.port, ui_depot.user, ui_depot.client, password=PASSWORD) as s:
        assert s.print_file(f"//depot/rel/src/config.ini@{submitted}") == edited
        assert s.print_file(f"//depot/rel/README.md@{submitted}") == s.print_file("//depot/main/README.md")
    # retry makes a new run of the same spec and opens it
    _button(at, "Retry").click().run()
    again = at.query_params["run"]
    assert again != str(run_id) and backend.run_detail(again).spec == backend.run_detail(run_id).spec
    jobs.wait(again, timeout=120)


def test_site_commands_are_picked_by_name_and_typed_only_by_administrators(
        signed_in, ui_depot, monkeypatch) -> None:
    from flows import settings
    from flows import site_commands

    from deployments import roles
    from flows.p4.sandbox import set_group

    site_commands.define(site_commands.SiteCommand(name="unit-tests", argv=["true"]))
    site_commands.define(site_commands.SiteCommand(name="b-only", argv=["true"], host="b"))
    set_group(ui_depot.depot_dir, ADMIN_GROUP, users=[])  # the signed-in user is no administrator here
    monkeypatch.setenv(settings.ADMINS_VAR, "an-admin")
    settings.admins.cache_clear()
    roles.forget()
    try:
        at = page(signed_in, "views/new_job.py")
        assert not [t for t in at.text_input if t.key in ("nj_sync_command", "nj_push_command")]  # nothing to type
        assert at.selectbox(key="nj_build_command").options == ["none", "unit-tests"]  # not b's
        assert at.multiselect(key="nj_pre_submit").options == ["unit-tests"]
        at.text_input(key="nj_client").set_value(ui_depot.client)
        at.text_input(key="nj_branch").set_value(ui_depot.branch)
        at.multiselect(key="nj_pre_submit").set_value(["unit-tests"])
        _button(at, "Start job").click().run()
        assert not at.error, [e.value for e in at.error]
        run_id = at.query_params["run"]
        assert backend.run_detail(run_id).spec["pre_submit"] == ["unit-tests"]
        # The name was found on the job's host: the job went past its first stage to the conflicts.
        assert jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=240).state.type.value == "PAUSED", logs(run_id)
        backend.resume(run_id, "abort")
        jobs.wait(run_id, timeout=240)
        # The same person cannot send a program of their own past the form.
        raw = JobSpec(p4port=ui_depot.port, p4user=signed_in, client=ui_depot.client, branch=ui_depot.branch,
                      pre_submit=[["sh", "-c", "id"]])
        assert set(backend.spec_problems(raw, signed_in)) == {"pre_submit"}
        with pytest.raises(jobs.SpecRefused, match="pre_submit\\[0\\]: only administrators give a command line"):
            backend.start_job(raw, signed_in)
        admin = page("an-admin", "views/new_job.py")
        typed = {t.key for t in admin.text_input}  # an administrator may type a command line
        assert {"nj_sync_command", "nj_build_command", "nj_name_check", "nj_push_command"} <= typed
    finally:
        site_commands.remove("unit-tests", None)
        site_commands.remove("b-only", "b")


def test_cancel_asks_first_then_cancels(signed_in, ui_depot) -> None:
    spec = JobSpec(p4port=ui_depot.port, p4user=signed_in, client=ui_depot.client, branch=ui_depot.branch,
                   password_secret=backend.secret_for(signed_in), sync_command=["sleep", "120"])
    run_id = jobs.submit(spec)  # an administrator's command line: from the CLI
    until(lambda: backend.run_detail(run_id).stage == "SYNC", 240, "the job at SYNC")
    at = page(signed_in, "views/job.py", run=str(run_id))
    assert backend.run_detail(run_id).state == "RUNNING"  # drawing the page cancelled nothing
    _button(at, "Yes, cancel it").click().run()
    run = jobs.wait(run_id, timeout=240)
    assert run.state.type.value == "CANCELLED"


def test_job_page_without_or_with_unknown_run(signed_in) -> None:
    at = page(signed_in, "views/job.py")
    assert "No job chosen" in texts(at)
    at = page(signed_in, "views/job.py", run="not-a-run")
    assert any("No job with id" in e.value for e in at.error)


def _count_calls(monkeypatch, names: tuple[str, ...]) -> list[str]:
    """Record which of ui.backend's functions the page calls (they still run): what a page fetches, not only shows."""
    calls: list[str] = []
    for name in names:
        real = getattr(backend, name)

        def counted(*a, _real=real, _name=name, **k):
            calls.append(_name)
            return _real(*a, **k)

        monkeypatch.setattr(backend, name, counted)
    return calls


def test_only_the_owner_and_administrators_read_a_jobs_log_conflicts_and_summary(signed_in, ui_depot,
                                                                                   monkeypatch) -> None:
    from flows import settings

    run_id = _paused_job(ui_depot, signed_in)
    monkeypatch.setenv(settings.ADMINS_VAR, "an-admin, other-admin")
    settings.admins.cache_clear()
    theirs = [c["theirs"].rstrip("\n") for c in backend.conflicts(run_id)]
    a_log_line = backend.logs_after(run_id)[0].message
    calls = _count_calls(monkeypatch, ("logs_after", "conflicts", "record"))
    try:
        at = page("someone-else", "views/job.py", run=str(run_id))
        shown = texts(at)
        assert calls == []  # not fetched at all, not merely hidden
        run = backend.run_detail(run_id)
        assert run.name in shown and f"user **{signed_in}**" in shown and f"host **{run.host}**" in shown
        assert "NEEDS_RESOLVE" in shown and "started " in shown
        assert "need you" not in shown and not at.code and not at.radio  # no log lines, no conflict texts
        assert any("shown to its owner and administrators only" in i.value for i in at.info)
        assert not [b for b in at.get("link_button") if b.proto.label == "Open in Prefect"]
        for viewer in (signed_in, "an-admin"):
            calls.clear()
            at = page(viewer, "views/job.py", run=str(run_id))
            assert "logs_after" in calls and "conflicts" in calls
            assert "2 file(s) need you" in texts(at)
            codes = [c.value for c in at.code]
            assert all(t in codes for t in theirs) and any(a_log_line in c for c in codes)
        # the administrator reads but does not act: acting uses the owner's Perforce identity
        labels = [b.label for b in at.button]
        for label in ("Apply choices and continue", "I resolved on the host, check again", "Yes, cancel it",
                      "Yes, abort", "Retry"):
            assert label not in labels
        assert any("only they can cancel" in i.value for i in at.info)
        assert all(r.disabled for r in at.radio)
        backend.resume(run_id, "abort")
        jobs.wait(run_id, timeout=240)
        calls.clear()
        at = page("someone-else", "views/job.py", run=str(run_id))
        assert calls == [] and "Summary" not in [h.value for h in at.subheader] and not at.metric
        at = page("an-admin", "views/job.py", run=str(run_id))
        assert "Outcome=ERROR at NEEDS_RESOLVE" in texts(at)
    finally:
        settings.admins.cache_clear()
        if backend.run_detail(run_id).state == "PAUSED":
            backend.resume(run_id, "abort")
            jobs.wait(run_id, timeout=240)


def test_recheck_pauses_again_and_abort_cleans_up(signed_in, ui_depot) -> None:
    run_id = _paused_job(ui_depot, signed_in)
    at = page(signed_in, "views/job.py", run=str(run_id))
    link = [b for b in at.get("link_button") if b.proto.label == "Open in Prefect"][0]
    assert link.proto.url.endswith(f"/runs/flow-run/{run_id}")
    _button(at, "I resolved on the host, check again").click().run()
    assert any("check the workspace again" in s.value for s in at.success)
    # nothing was resolved on the host: the job looks again and pauses again for the same two files
    until(lambda: any("answer: 'recheck'" in line.message for line in backend.logs_after(run_id)), 240,
          "the recheck in the log")
    jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=240)
    assert backend.run_detail(run_id).state == "PAUSED" and len(backend.conflicts(run_id)) == 2
    at = page(signed_in, "views/job.py", run=str(run_id))
    _button(at, "Yes, abort").click().run()
    run = jobs.wait(run_id, timeout=240)
    assert run.state.type.value == "FAILED"
    assert backend.record(run_id).failed_stage == Stage.NEEDS_RESOLVE
    with P4Session(ui_depot.port, ui_depot.user, ui_depot.client, password=PASSWORD) as s:
        assert s.opened() == []


def test_log_lines_are_fetched_after_the_last_one_seen(signed_in, ui_depot) -> None:
    run_id = _paused_job(ui_depot, signed_in)
    try:
        first = backend.logs_after(run_id)
        assert len(first) > 5
        seen = {(n.timestamp, n.message) for n in first}
        # Lines the worker sends after the pause may still arrive; none already seen is fetched again.
        assert not seen & {(n.timestamp, n.message) for n in backend.logs_after(run_id, first[-1].timestamp)}
        backend.resume(run_id, "abort")
        jobs.wait(run_id, timeout=240)
        newer = until(lambda: (lambda ns: ns if any("aborted by the person resolving" in n.message for n in ns)
                               else None)(backend.logs_after(run_id, first[-1].timestamp)), 240, "the abort's log line")
        assert all(n.timestamp > first[-1].timestamp for n in newer) and not seen & {(n.timestamp, n.message)
                                                                                      for n in newer}
    finally:
        if backend.run_detail(run_id).state == "PAUSED":
            backend.resume(run_id, "abort")
