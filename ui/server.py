"""The front page's server: Streamlit plus the two routes that sign people in and out.

Run with ``streamlit run ui/server.py`` (``p4integ ui`` does that, bound to
localhost unless configured otherwise).
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from ui import auth, data  # noqa: F401 - data imports Prefect (~1 s) at start, not on the first visit


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never an absolute or protocol-relative URL."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def login(request: Request) -> RedirectResponse:
    form = await request.form()
    user, password = str(form.get("user", "")), str(form.get("password", ""))
    nxt = _safe_next(str(form.get("next", "")))
    try:
        granted = await run_in_threadpool(auth.check_credentials, user, password)
    except auth.LoginRefused as exc:
        sep = "&" if "?" in nxt else "?"
        return RedirectResponse(f"{nxt}{sep}login_error={quote(str(exc))}&login_user={quote(user.strip())}",
                                status_code=303)
    # The ticket lets the user's jobs run as them; it goes to a Secret block, not the browser.
    await run_in_threadpool(data.store_ticket, granted.user, granted.ticket)
    response = RedirectResponse(nxt, status_code=303)
    response.set_cookie(auth.COOKIE, auth.make_cookie(granted.user), max_age=auth.SESSION_SECONDS,
                        httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


async def logout(request: Request) -> RedirectResponse:
    auth.revoke(request.cookies.get(auth.COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/")
    return response


app = st.App(str(Path(__file__).with_name("app.py")),
             routes=[Route("/auth/login", login, methods=["POST"]), Route("/auth/logout", logout, methods=["POST"])])
