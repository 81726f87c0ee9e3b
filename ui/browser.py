"""Driving the front page in the system's headless Chromium (for the browser tests and screenshots).

Debian's ``chromium`` package, never a browser downloaded by Playwright; the flags keep
it from reaching beyond this machine.
"""
from __future__ import annotations

import os
from typing import Any

CHROMIUM = os.environ.get("P4INTEG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def launch(playwright: Any) -> Any:
    if not os.path.exists(CHROMIUM):
        raise FileNotFoundError(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) "
                                "or point P4INTEG_CHROMIUM at a Chromium binary")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def settle(page: Any, timeout_ms: int = 30000) -> None:
    """Wait until Streamlit has finished running the script for what was just done."""
    page.wait_for_selector(IDLE, timeout=timeout_ms)


def sign_in(page: Any, user: str, password: str) -> None:
    page.fill("#p4i-user", user)
    page.fill("#p4i-password", password)
    page.click("#p4i-sign-in")
    settle(page)


def pick(page: Any, label: str, option: str, attempts: int = 5) -> None:
    """Choose ``option`` in a select box. A rerun still drawing the page closes an open list,
    so the list is opened again until the option can be clicked."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box, choice = page.get_by_role("combobox", name=label), page.get_by_role("option", name=option)
    for attempt in range(attempts):
        box.click()
        try:
            choice.click(timeout=5000)
            break
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise
            settle(page)
    settle(page)


def type_into(page: Any, label: str, text: str, within: Any = None) -> None:
    """Fill a text box and leave it, which is when Streamlit takes the value."""
    box = (within or page).get_by_role("textbox", name=label, exact=True)
    box.fill(text)
    box.press("Tab")
    settle(page)
