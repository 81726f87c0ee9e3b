"""Sign-in and sessions: the routes, the signing key, signed-out sessions on disk, what the pages draw."""
from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows import settings
from tests.flows.helpers import PAUSED_OR_FINAL
from tests.ui.conftest import PASSWORD, SESSION_KEY, page
from ui import auth, backend

ORIGIN = "http://testserver"  # the TestClient's own address


@pytest.fixture
def routes(ui_depot, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The front page's own sign-in and sign-out routes (ui.server), served without Streamlit."""
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from ui import server

    monkeypatch.setattr(server, "failures", auth.FailureLimiter())
    app = Starlette(routes=[Route("/auth/login", server.login, methods=["POST"]),
                            Route("/auth/logout", server.logout, methods=["POST"])])
    with TestClient(app, follow_redirects=False) as client:
        yield client


def _sign_in(client: Any, user: str, password: str, **headers: str) -> Any:
    return client.post("/auth/login", data={"user": user, "password": password, "next": "/"},
                       headers={"Origin": ORIGIN, **headers})


# --- the routes ---------------------------------------------------------------------------------

def test_a_cross_site_post_neither_signs_in_nor_out(routes, ui_depot) -> None:
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "", "Referer": "http://evil.example/x"},
                    {"Origin": ""}):
        r = _sign_in(routes, ui_depot.user, PASSWORD, **headers)
        assert r.status_code == 403 and auth.COOKIE not in r.cookies, headers
    r = _sign_in(routes, ui_depot.user, PASSWORD, Origin="", Referer=f"{ORIGIN}/templates")  # no Origin: Referer
    cookie = r.cookies[auth.COOKIE]
    assert r.status_code == 303 and auth.user_from_cookie(cookie) == ui_depot.user

    routes.cookies.set(auth.COOKIE, cookie)
    r = routes.post("/auth/logout", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and auth.user_from_cookie(cookie) == ui_depot.user
    r = routes.post("/auth/logout", headers={"Origin": ORIGIN})
    assert r.status_code == 303 and auth.user_from_cookie(cookie) is None


def test_signing_in_keeps_its_ticket_apart_from_the_stored_password(routes, ui_depot,
                                                                    stored_password) -> None:
    from prefect.blocks.system import Secret

    from deployments import jobs
    from flows.usernames import ticket_secret_name

    user = ui_depot.user
    stored = stored_password(user, PASSWORD)  # an administrator's, for the user's schedules
    r = _sign_in(routes, user, PASSWORD)
    assert r.status_code == 303 and auth.user_from_cookie(r.cookies[auth.COOKIE]) == user
    assert Secret.load(stored).get() == PASSWORD  # the sign-in did not replace it
    ticket = Secret.load(ticket_secret_name(user)).get()
    assert len(ticket) == 32 and ticket != PASSWORD

    # A job the person starts on the front page signs in with the ticket, not the stored password.
    at = page(user, "views/new_job.py")
    at.text_input(key="nj_client").set_value(ui_depot.client)
    at.text_input(key="nj_branch").set_value(ui_depot.branch)
    at.toggle(key="nj_trial").set_value(True)
    [start] = [b for b in at.button if b.label == "Start job"]
    start.click().run()
    run_id = at.query_params["run"]
    assert backend.run_detail(run_id).spec["password_secret"] == ticket_secret_name(user)
    run = jobs.wait(run_id, until=PAUSED_OR_FINAL, timeout=240)
    if run.state.type == jobs.StateType.PAUSED:  # leave nothing waiting
        backend.resume(run_id, "abort")
        jobs.wait(run_id, timeout=240)


def test_the_sixth_failed_sign_in_is_refused_without_asking_perforce(routes, ui_depot) -> None:
    for _ in range(auth.MAX_FAILURES):
        r = _sign_in(routes, ui_depot.user, "wrong")
        assert auth.REFUSED in _error(r)
    # The right password now: Perforce would accept it, so being refused shows it was not asked.
    r = _sign_in(routes, ui_depot.user, PASSWORD)
    assert auth.LIMITED in _error(r) and auth.COOKIE not in r.cookies
    # Another name from the same address is limited too (guessing across names).
    assert auth.LIMITED in _error(_sign_in(routes, "someone-else", "x"))


def test_an_unknown_user_a_wrong_password_and_no_password_read_the_same(ui_depot) -> None:
    said = set()
    for user, password in ((ui_depot.user, "wrong"), ("nobody-at-all", "x"), ("nobody-with-a-password", "x")):
        with pytest.raises(auth.LoginRefused) as refused:
            auth.check_credentials(user, password)
        said.add(str(refused.value))
    assert said == {auth.REFUSED}


def test_the_cookie_is_secure_over_tls_and_a_forwarded_proto_counts_only_when_configured(
        routes, ui_depot, monkeypatch: pytest.MonkeyPatch) -> None:
    r = _sign_in(routes, ui_depot.user, PASSWORD, **{"X-Forwarded-Proto": "https"})
    assert "secure" not in r.headers["set-cookie"].lower()  # anyone can send that header
    monkeypatch.setenv("P4INTEG_UI_TLS_PROXY", "1")
    r = _sign_in(routes, ui_depot.user, PASSWORD, Origin="https://testserver", **{"X-Forwarded-Proto": "https"})
    assert r.status_code == 303 and "; secure" in r.headers["set-cookie"].lower()


def _error(response: Any) -> str:
    from urllib.parse import parse_qs, urlsplit

    assert response.status_code == 303
    return parse_qs(urlsplit(response.headers["location"]).query).get("login_error", [""])[0]


# --- the signing key and signed-out sessions ------------------------------------------------------

def test_a_missing_key_is_made_and_a_short_one_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P4INTEG_HOME", str(tmp_path))
    key = auth.signing_key()
    path = tmp_path / "ui-secret"
    assert len(key) == settings.KEY_BYTES and stat.S_IMODE(path.stat().st_mode) == 0o600
    for short in (b"", b"tooshort"):
        path.write_bytes(short)
        with pytest.raises(settings.KeyRefused, match="ui-secret holds .* delete it"):
            auth.make_cookie("alice")
        assert path.read_bytes() == short  # refused, not silently replaced


def test_signed_out_sessions_are_kept_on_disk_and_pruned_after_they_expire(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P4INTEG_HOME", str(tmp_path))
    old, new = auth.make_cookie("alice", now=1000.0), auth.make_cookie("bob", now=1000.0 + auth.SESSION_SECONDS)
    auth.revoke(old, now=1001.0)
    path = tmp_path / "ui-revoked.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.user_from_cookie(old, now=1002.0) is None
    auth.revoke(new, now=1000.0 + auth.SESSION_SECONDS + 1)  # old's cookie has expired by now: dropped
    assert old.split(".")[2] not in path.read_text() and new.split(".")[2] in path.read_text()


def test_a_users_sessions_end_together_and_a_later_sign_in_works(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("P4INTEG_HOME", str(tmp_path))
    t = time.time()
    first, second, other = (auth.make_cookie(u, now=t) for u in ("alice", "alice", "bob"))
    auth.revoke_user("alice", now=t + 1)
    assert auth.user_from_cookie(first) is None and auth.user_from_cookie(second) is None
    assert auth.user_from_cookie(other) == "bob"
    assert auth.user_from_cookie(auth.make_cookie("alice", now=t + 2)) == "alice"


# --- what the pages do with it --------------------------------------------------------------------

def test_a_tab_whose_cookie_was_signed_out_shows_the_sign_in_on_its_next_run(signed_in) -> None:
    at = page(signed_in)
    assert "Jobs" in [t.value for t in at.title]
    auth.revoke(at.session_state[SESSION_KEY])  # signed out in another tab
    at.run()
    assert "Jobs" not in [t.value for t in at.title]
    assert 'action="/auth/login"' in "".join(h.proto.body for h in at.html)


def test_a_ticket_perforce_refuses_ends_the_users_sessions(signed_in, ui_depot) -> None:
    at = page(signed_in, "views/new_job.py")
    elsewhere = auth.make_cookie(signed_in)  # the same user in another browser
    backend.store_ticket(signed_in, "0" * 32)  # a ticket the server does not know (logged out, expired)
    at.text_input(key="nj_client").set_value(ui_depot.client)
    at.text_input(key="nj_branch").set_value(ui_depot.branch)
    [start] = [b for b in at.button if b.label == "Start job"]
    start.click().run()
    assert [w.value for w in at.warning] == [auth.TICKET_ENDED]
    assert 'action="/auth/login"' in "".join(h.proto.body for h in at.html)
    assert auth.user_from_cookie(elsewhere) is None


def test_a_crafted_error_in_the_address_is_not_drawn(ui_depot) -> None:
    at = page(None, login_error="[click](https://evil.example)")
    assert not at.error and "evil" not in "".join(str(m.value) for m in at.markdown)
    at = page(None, login_error=auth.LIMITED)
    assert [e.value for e in at.error] == [auth.LIMITED]


def test_plain_text_draws_as_typed() -> None:
    from ui.widgets import code, plain

    assert plain("[click](https://evil.example)") == r"\[click\](https\://evil.example)"
    assert plain("www.evil.example a@b.example") == r"www\.evil.example a\@b.example"
    assert code("a`b") == "``a`b``" and code("`x") == "`` `x ``"
