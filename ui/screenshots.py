"""Screenshots of every page, for the README: ``.venv/bin/python -m ui.screenshots``.

Builds a throw-away installation (its own Prefect server, worker, front page and a
sandbox depot with two conflicts), puts a few jobs, a template and a schedule in it,
and photographs each page at 1280 px in the system's Chromium into docs/screenshots/.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
PASSWORD = "Screenshot-pw-1"  # noqa: S105 - the throwaway depot the screenshots are taken on


def _environment(home: Path) -> None:
    from flows.settings import free_port

    port = free_port()
    os.environ.update(P4INTEG_HOME=str(home), P4INTEG_PREFECT_PORT=str(port), P4INTEG_UI_PORT=str(free_port()))
    from flows.settings import prefect_env

    os.environ.update(prefect_env())  # before Prefect is imported: its API, credential and home are ours


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="p4integ-shots-"))
    _environment(home)
    from agent import pools
    from deployments import jobs, processes, register, templates
    from flows.p4.example import make_example
    from flows.p4.sandbox import set_password
    from flows.spec import FileChoice, JobSpec
    from flows.vocabulary import PAUSED_OR_FINAL
    from ui import auth, backend
    from ui.browser import launch, settle, sign_in

    try:
        processes.start_server()
        pools.ensure_pool("local", 4)
        register.ensure_deployment()
        processes.start_worker("local", 4)
        ex = make_example(home / "depot", second_conflict=True)
        set_password(ex.depot_dir, ex.user, PASSWORD)
        backend.store_ticket(ex.user, auth.check_credentials(ex.user, PASSWORD, ex.port).ticket)
        processes.start_ui(ex.port)
        spec = JobSpec(p4port=ex.port, p4user=ex.user, client=ex.client, branch=ex.branch,
                       password_secret=backend.secret_for(ex.user))
        failed = jobs.submit(spec.model_copy(update={"client": "missing-ws"}))
        paused = jobs.submit(spec)
        jobs.wait(failed)
        jobs.wait(paused, until=PAUSED_OR_FINAL, timeout=180)
        # A schedule signs in with the password an administrator stored: sign-in tickets expire.
        scheduled = spec.model_copy(update={"password_secret": templates.store_password(ex.user, PASSWORD)})
        templates.create(ex.user, "nightly-main-to-rel", scheduled, visibility="global")
        templates.add_schedule(ex.user, "nightly-main-to-rel", "weekdays at 02:00")

        from playwright.sync_api import sync_playwright

        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            base = processes.ui_url()
            page.goto(base + "/")
            settle(page)
            page.screenshot(path=str(OUT / "sign-in.png"))
            sign_in(page, ex.user, PASSWORD)
            shots = [("jobs.png", "/", 900), ("new-job.png", "/new", 1150),
                     ("conflicts.png", f"/job?run={paused}", 1900), ("templates.png", "/templates", 900),
                     ("schedules.png", "/schedules", 900), ("hosts.png", "/hosts", 700)]
            for name, path, height in shots:
                page.set_viewport_size({"width": 1280, "height": height})
                page.goto(base + path)
                settle(page)
                page.wait_for_timeout(500)  # let badges and code blocks finish their layout
                page.screenshot(path=str(OUT / name))
                print(f"wrote {OUT / name}")
            backend.resume(paused, "apply", [FileChoice(path=c["depot_file"], choice="theirs")
                                             for c in backend.conflicts(paused)])
            jobs.wait(paused)
            page.set_viewport_size({"width": 1280, "height": 1300})
            page.goto(f"{base}/job?run={paused}")
            settle(page)
            page.get_by_role("heading", name="Summary").wait_for()
            page.screenshot(path=str(OUT / "job-done.png"))
            print(f"wrote {OUT / 'job-done.png'}")
            browser.close()
    finally:
        for name in list(processes.running()):
            processes.stop(name)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
