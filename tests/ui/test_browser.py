"""The main journeys in headless Chromium against the real front page, Prefect server, worker and depot."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from deployments import jobs
from flows.p4.example import Example
from flows.p4.session import P4Session
from tests.flows.helpers import PAUSED_OR_FINAL, second_user, until
from tests.ui.conftest import PASSWORD, make_depot
from ui import auth, backend
from ui.browser import launch, pick, settle, sign_in, type_into

JOB_URL = re.compile(r".*/job\?run=([0-9a-f-]{36})")


@pytest.fixture(scope="module")
def browser_depot(tmp_path_factory: pytest.TempPathFactory, local_worker: str, monkeypatch_module) -> Example:
    """One depot for the module's journeys, in file order: the conflict journey comes first."""
    ex = make_depot(tmp_path_factory.mktemp("browser-depot"))
    monkeypatch_module.setenv("P4INTEG_P4PORT", ex.port)
    return ex


@pytest.fixture(scope="module")
def front_page(browser_depot, monkeypatch_module) -> Iterator[str]:
    from deployments import processes
    from flows.settings import free_port

    monkeypatch_module.setenv("P4INTEG_UI_PORT", str(free_port()))
    processes.start_ui(browser_depot.port)
    yield processes.ui_url()
    processes.stop("ui")


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def signed_page(chromium, front_page, browser_depot) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    pg.goto(front_page + "/")
    settle(pg)
    sign_in(pg, browser_depot.user, PASSWORD)
    pg.get_by_role("heading", name="Jobs", exact=True).wait_for()
    yield pg
    context.close()


def _new_job_form(pg: Any, ex: Example) -> None:
    """Open New job and fill in the example's workspace and branch spec."""
    pg.get_by_role("link", name="New job").first.click()
    pg.get_by_role("heading", name="Where").wait_for()
    settle(pg)
    type_into(pg, "Workspace", ex.client)
    type_into(pg, "Branch spec", ex.branch)


def _shown(pg: Any, text: str) -> None:
    """Wait for ``text``; a failure quotes what the page showed instead (a field error, say)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        pg.get_by_text(text).first.wait_for()
    except PlaywrightTimeout:
        pytest.fail(f"{text!r} not shown; the page reads:\n{pg.locator('[data-testid=stMain]').inner_text()}")


def _run_id(pg: Any) -> str:
    pg.wait_for_url(JOB_URL, timeout=30000)
    return JOB_URL.match(pg.url).group(1)


def test_wrong_password_is_refused_and_a_sign_in_survives_reload_and_deep_links(
        chromium, front_page, browser_depot) -> None:
    context = chromium.new_context()
    pg = context.new_page()
    pg.goto(front_page + "/templates")
    settle(pg)
    sign_in(pg, browser_depot.user, "not-the-password")
    pg.get_by_text("Perforce refused this user name and password.").wait_for()
    assert not [c for c in context.cookies() if c["name"] == auth.COOKIE]
    assert pg.locator("#p4i-password").count() == 1

    sign_in(pg, browser_depot.user, PASSWORD)
    pg.get_by_role("heading", name="Templates", exact=True).wait_for()  # back where the deep link pointed
    [cookie] = [c for c in context.cookies() if c["name"] == auth.COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert PASSWORD not in cookie["value"]
    pg.reload()
    settle(pg)
    pg.get_by_role("heading", name="Templates", exact=True).wait_for()
    other = context.new_page()
    other.goto(front_page + "/schedules")
    settle(other)
    other.get_by_role("heading", name="Schedules", exact=True).wait_for()

    other.click("#sign-out")
    settle(other)
    assert other.locator("#p4i-password").count() == 1
    assert not [c for c in context.cookies() if c["name"] == auth.COOKIE]
    context.close()


def test_someone_else_sees_a_jobs_state_but_no_log_or_conflict_text(
        chromium, front_page, signed_page, browser_depot, tmp_path) -> None:
    pg = signed_page
    _new_job_form(pg, browser_depot)
    pg.get_by_role("button", name="Start job").click()
    run_id = _run_id(pg)
    pg.get_by_text("2 file(s) need you").wait_for(timeout=120000)
    theirs = [c["theirs"].strip() for c in backend.conflicts(run_id)]
    second_user(browser_depot, "watcher", tmp_path / "watcher", password="Watcher-pw-3")
    context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    try:
        other = context.new_page()
        other.goto(f"{front_page}/job?run={run_id}")
        settle(other)
        sign_in(other, "watcher", "Watcher-pw-3")
        other.get_by_text("shown to its owner and administrators only").wait_for()
        settle(other)
        body = other.locator("body").inner_text()
        assert backend.run_detail(run_id).name in body and "NEEDS_RESOLVE" in body
        assert "need you" not in body and not [t for t in theirs if t and t in body]
        assert other.locator("pre").count() == 0  # no log lines, no file texts
        assert other.get_by_role("button", name="Cancel job").count() == 0
    finally:
        context.close()
        backend.resume(run_id, "abort")
        jobs.wait(run_id, timeout=240)


def test_job_with_two_conflicts_resolved_in_the_browser_ends_done(signed_page, browser_depot) -> None:
    pg = signed_page
    _new_job_form(pg, browser_depot)
    pg.get_by_role("button", name="Start job").click()
    run_id = _run_id(pg)
    pg.get_by_text("2 file(s) need you").wait_for(timeout=120000)
    settle(pg)
    boxes = pg.locator('[class*="st-key-cf_"][class*="_box"]')
    assert boxes.count() == 2
    readme = boxes.filter(has_text="//depot/rel/README.md")
    config = boxes.filter(has_text="//depot/rel/src/config.ini")
    readme.get_by_text("Theirs (source)").click()
    settle(pg)
    config.get_by_text("Edit the result").click()
    settle(pg)
    edited = "[product]\nname = widget\nversion = 2.1.1\nchannel = stable\n"
    area = config.get_by_role("textbox")
    area.fill(edited)
    area.press("Tab")
    settle(pg)
    pg.get_by_role("button", name="Apply choices and continue").click()
    settle(pg)
    pg.get_by_role("heading", name="Summary").wait_for(timeout=120000)
    settle(pg)
    assert jobs.read(run_id).state.type.value == "COMPLETED"
    submitted = backend.record(run_id).submitted_change
    assert pg.get_by_text("Done").first.is_visible()
    with P4Session(browser_depot.port, browser_depot.user, browser_depot.client, password=PASSWORD) as s:
        assert s.print_file(f"//depot/rel/src/config.ini@{submitted}") == edited
        assert s.print_file(f"//depot/rel/README.md@{submitted}") == s.print_file("//depot/main/README.md")
        assert s.opened() == []


@pytest.fixture
def slow_sync() -> Iterator[str]:
    """An administrator's slow sync wrapper, which a job picks by name."""
    from flows import site_commands

    site_commands.define(site_commands.SiteCommand(name="slow-sync", argv=["sleep", "300"]))
    yield "slow-sync"
    site_commands.remove("slow-sync", None)


def test_cancel_a_running_job(signed_page, browser_depot, slow_sync: str) -> None:
    pg = signed_page
    _new_job_form(pg, browser_depot)
    pg.get_by_text("Site commands").click()
    settle(pg)
    pick(pg, "Sync wrapper", slow_sync)
    pg.get_by_role("button", name="Start job").click()
    run_id = _run_id(pg)
    until(lambda: backend.run_detail(run_id).stage == "SYNC", 240, "the job at SYNC")
    pg.get_by_role("button", name="Cancel job").click()
    pg.get_by_role("button", name="Yes, cancel it").click()
    settle(pg)
    until(lambda: jobs.read(run_id).state.type.value == "CANCELLED", 240, "the job cancelled")
    pg.get_by_role("button", name="Retry").wait_for(timeout=30000)  # the page noticed by itself
    assert pg.get_by_text("Cancelled", exact=True).first.is_visible()


def test_run_a_template(signed_page, browser_depot) -> None:
    pg = signed_page
    _new_job_form(pg, browser_depot)
    type_into(pg, "Template name", "browser-tpl")
    pg.get_by_role("button", name="Save as template").click()
    settle(pg)
    _shown(pg, "Saved template browser-tpl")
    pg.get_by_role("link", name="Templates").first.click()
    pg.get_by_role("heading", name="Templates", exact=True).wait_for()
    settle(pg)
    run_now = pg.locator(".st-key-tpl_browser-tpl_run button")
    if not run_now.is_visible():  # many templates: theirs are folded
        pg.locator('[data-testid="stExpander"] summary').filter(has_text="browser-tpl").click()
    run_now.click()
    run_id = _run_id(pg)
    assert backend.run_detail(run_id).spec["client"] == browser_depot.client
    until(lambda: jobs.read(run_id).state.type in PAUSED_OR_FINAL, 240, "the run to settle")
    if jobs.read(run_id).state.type == jobs.StateType.PAUSED:
        backend.resume(run_id, "abort")
    jobs.wait(run_id, timeout=240)


def test_create_and_disable_a_schedule(signed_page, browser_depot) -> None:
    from deployments import templates
    from flows.spec import JobSpec

    templates.create(browser_depot.user, "browser-sched", JobSpec(p4port=browser_depot.port, p4user=browser_depot.user,
                                                           client=browser_depot.client, branch=browser_depot.branch))
    pg = signed_page
    pg.get_by_role("link", name="Schedules").first.click()
    pg.get_by_role("heading", name="New schedule").wait_for()
    settle(pg)
    pick(pg, "Template", "browser-sched")  # Streamlit's select boxes are comboboxes
    pick(pg, "When", "nightly at 02:00")
    pg.get_by_text("At 02:00 AM").first.wait_for()  # the preview, in plain words
    pg.get_by_role("button", name="Add schedule").click()
    settle(pg)
    _shown(pg, "Scheduled browser-sched")
    [sched] = templates.schedules(browser_depot.user, "browser-sched")
    assert sched.active and sched.cron == "0 2 * * *"
    row = pg.locator(f'[class*="st-key-sch_row_{sched.id}"]')
    row.get_by_text("Enabled").click()
    settle(pg)
    pg.get_by_text("browser-sched: schedule disabled.").wait_for()
    assert not templates.schedules(browser_depot.user, "browser-sched")[0].active


def test_the_jobs_page_shows_a_new_job_by_itself(signed_page, browser_depot) -> None:
    from flows.spec import JobSpec

    pg = signed_page
    pg.goto(pg.url.split("/job")[0].rstrip("/") + "/")
    pg.get_by_role("heading", name="Jobs", exact=True).wait_for()
    settle(pg)
    name = "ws-appears-by-itself"
    assert pg.get_by_text(name).count() == 0
    backend.start_job(JobSpec(p4port=browser_depot.port, p4user=browser_depot.user, client=name, branch=browser_depot.branch),
                   browser_depot.user)
    pg.get_by_text(name).first.wait_for(timeout=30000)  # no reload, no click: the list refreshed itself


def test_a_form_posted_from_another_site_does_not_sign_in_and_a_crafted_error_is_not_a_link(
        chromium, front_page, browser_depot) -> None:
    from urllib.parse import quote

    context = chromium.new_context()
    pg = context.new_page()
    # A page of another origin (answered here, not fetched) whose form posts to our sign-in route.
    pg.route("http://evil.example/", lambda route: route.fulfill(content_type="text/html", body=(
        f'<form method="post" action="{front_page}/auth/login"><input name="user" value="{browser_depot.user}">'
        f'<input name="password" value="{PASSWORD}"><button id="go">go</button></form>')))
    pg.goto("http://evil.example/")
    pg.click("#go")
    pg.get_by_text("Refused: this form was not sent from the p4-integration front page itself.").wait_for()
    assert not [c for c in context.cookies() if c["name"] == auth.COOKIE]

    pg.goto(front_page + "/?login_error=" + quote("[click](https://evil.example)"))
    pg.locator("#p4i-password").wait_for()  # the real sign-in page, drawn
    settle(pg)
    assert pg.locator('a[href*="evil"]').count() == 0 and pg.get_by_text("click").count() == 0
    context.close()


def test_a_tab_signed_out_elsewhere_is_signed_out_on_its_next_action_and_after_a_restart(
        chromium, front_page, browser_depot) -> None:
    from urllib.parse import quote

    from deployments import processes

    context = chromium.new_context()
    tab = context.new_page()
    tab.goto(front_page + "/templates")
    settle(tab)
    sign_in(tab, browser_depot.user, PASSWORD)
    tab.get_by_role("heading", name="Templates", exact=True).wait_for()
    [cookie] = [c for c in context.cookies() if c["name"] == auth.COOKIE]

    other = context.new_page()
    other.goto(front_page + "/job?run=" + quote("x`[click](https://evil.example)"))  # drawn as typed
    settle(other)
    other.get_by_text("No job with id").wait_for()
    assert other.locator('a[href*="evil"]').count() == 0
    other.click("#sign-out")
    settle(other)

    tab.get_by_role("link", name="Schedules").first.click()  # the first tab's next action
    tab.locator("#p4i-password").wait_for()
    assert tab.get_by_role("heading", name="Schedules", exact=True).count() == 0
    context.close()

    processes.stop("ui")
    processes.start_ui(browser_depot.port)
    fresh = chromium.new_context()
    fresh.add_cookies([cookie])  # the signed-out cookie, kept by someone
    pg = fresh.new_page()
    pg.goto(front_page + "/schedules")
    pg.locator("#p4i-password").wait_for()  # a restarted front page draws its first view later
    assert pg.locator("#p4i-password").count() == 1
    assert pg.get_by_role("heading", name="Schedules", exact=True).count() == 0
    fresh.close()


def test_a_line_made_in_the_browser_brings_a_change_submitted_to_its_source_to_its_target(
        signed_page, browser_depot) -> None:
    """The watcher (in the service's background process) sees the submit; the line's job integrates
    it; the Lines page shows it arrived, by itself."""
    from deployments import lines, processes, templates
    from flows.prefect_compat import save_secret
    from flows.spec import JobSpec
    from flows.usernames import secret_name
    from tests.flows.test_lines import _edit

    user = browser_depot.user
    save_secret(secret_name(user), PASSWORD)  # what 'p4integ credentials set' stores: a line's jobs outlive tickets
    templates.create(user, "browser-docs", JobSpec(p4port=browser_depot.port, p4user=user, client=browser_depot.client,
                                                   source="//depot/main/docs/...", target="//depot/rel/docs/..."))
    processes.start_dispatcher()
    try:
        pg = signed_page
        pg.get_by_role("link", name="Lines").first.click()
        pg.get_by_role("heading", name="Lines", exact=True).wait_for()
        settle(pg)
        pg.get_by_text("New line").first.click()
        type_into(pg, "Line name", "browser-docs")
        pick(pg, "Jobs like template", "browser-docs")
        pg.get_by_role("button", name="Create line").click()
        settle(pg)
        _shown(pg, "created line browser-docs")
        row = pg.locator(".st-key-line_browser-docs")
        row.get_by_text("up to date", exact=True).first.wait_for(timeout=120000)  # its first step integrated what waited, if anything

        change = _edit(browser_depot, "//depot/main/docs/notes.txt", "2.1.", "2.1.1.", "docs: notes for 2.1.1")
        row.get_by_text(re.compile(rf"last: change {change} integrated as change \d+")).wait_for(timeout=180000)
        with P4Session(browser_depot.port, user, browser_depot.client, password=PASSWORD) as s:
            [arrived] = s.changes("-l", "-s", "submitted", "-m", "1", "//depot/rel/docs/...")
        assert row.get_by_text(f"last: change {change} integrated as change {arrived.change}").is_visible()
        assert arrived.description.startswith(f"[browser-docs] @{change} by alice: docs: notes for 2.1.1")
    finally:
        processes.stop("dispatcher")
        lines.remove(user, "browser-docs")
