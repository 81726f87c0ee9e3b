"""The front page's server: Streamlit plus the two routes that sign people in and out.

Run with ``streamlit run ui/server.py`` (``p4integ ui`` does that, bound to
localhost unless configured otherwise).
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from flows.settings import ui_tls_proxy
from ui import auth, backend  # backend imports Prefect (~1 s) at start, not on the first visit

auth.signing_key()  # a short or empty signing key stops the front page here, with the fix in the message
failures = auth.FailureLimiter()
CROSS_SITE = "Refused: this form was not sent from the p4-integration front page itself."


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never an absolute or protocol-relative URL."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _over_tls(request: Request) -> bool:
    """Served over TLS: by Streamlit itself, or by a proxy we were told to trust (only then
    is its X-Forwarded-Proto believed: anyone can send that header)."""
    if st.get_option("server.sslCertFile"):
        return True
    if ui_tls_proxy():
        return request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https"
    return request.url.scheme == "https"


def _same_origin(request: Request) -> bool:
    """The post came from a page of this site: its Origin (or, without one, its Referer) names
    this host. A browser always sends one of them with a form post from a page; a post with
    neither is refused too."""
    claimed = request.headers.get("origin") or request.headers.get("referer") or ""
    parts = urlsplit(claimed)
    host = request.headers.get("host", "")
    scheme = "https" if _over_tls(request) else "http"
    return bool(host) and parts.netloc.lower() == host.lower() and parts.scheme == scheme


def _client(request: Request) -> str:
    """The client's address; behind the trusted proxy, the one the proxy saw (its last hop)."""
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
    if ui_tls_proxy() and forwarded:
        return forwarded
    return request.client.host if request.client else "unknown"


def _refused(nxt: str, message: str, user: str) -> RedirectResponse:
    sep = "&" if "?" in nxt else "?"
    return RedirectResponse(f"{nxt}{sep}login_error={quote(message)}&login_user={quote(user.strip())}",
                            status_code=303)


async def login(request: Request) -> Response:
    if not _same_origin(request):
        return PlainTextResponse(CROSS_SITE, status_code=403)
    form = await request.form()
    user, password = str(form.get("user", "")), str(form.get("password", ""))
    nxt = _safe_next(str(form.get("next", "")))
    name = user.strip().lower()  # one count however the name is spelt (servers may ignore case)
    if failures.limited(name, _client(request)):
        return _refused(nxt, auth.LIMITED, user)  # Perforce is not asked while limited
    try:
        granted = await run_in_threadpool(auth.check_credentials, user, password)
    except auth.LoginRefused as exc:
        if str(exc) == auth.REFUSED:
            failures.failed(name, _client(request))
        return _refused(nxt, str(exc), user)
    # The ticket lets the user's jobs run as them; it goes to a Secret block, not the browser.
    await run_in_threadpool(backend.store_ticket, granted.user, granted.ticket)
    response = RedirectResponse(nxt, status_code=303)
    response.set_cookie(auth.COOKIE, auth.make_cookie(granted.user), max_age=auth.SESSION_SECONDS,
                        httponly=True, samesite="strict", secure=_over_tls(request), path="/")
    return response


async def logout(request: Request) -> Response:
    if not _same_origin(request):
        return PlainTextResponse(CROSS_SITE, status_code=403)
    auth.revoke(request.cookies.get(auth.COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/")
    return response


app = st.App(str(Path(__file__).with_name("app.py")),
             routes=[Route("/auth/login", login, methods=["POST"]), Route("/auth/logout", logout, methods=["POST"])])
