"""The front page's entry: page setup, the sign-in gate and the navigation. Nothing else."""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `streamlit run` puts only ui/ on the path

from ui import auth
from ui.views import VIEWS
from ui.views.login import render as sign_in
from ui.widgets import plain

USER_KEY = "_p4integ_user"  # no widget uses this key, so a browser cannot set it
SESSION_KEY = "_p4integ_session"  # the signed cookie this tab was signed in with
SIGNED_OUT_KEY = "_p4integ_signed_out"  # why the tab was signed out, said on the sign-in page

# (file, title, icon, url path, shown in the navigation)
ROUTES = [
    ("dashboard.py", "Jobs", ":material/dashboard:", "jobs", True),
    ("new_job.py", "New job", ":material/add_circle:", "new", True),
    ("job.py", "Job", ":material/work:", "job", False),
    ("templates.py", "Templates", ":material/bookmarks:", "templates", True),
    ("schedules.py", "Schedules", ":material/schedule:", "schedules", True),
    ("lines.py", "Lines", ":material/timeline:", "lines", True),
    ("hosts.py", "Hosts", ":material/dns:", "hosts", True),
]


def current_user() -> str | None:
    """Checked on every run: the browser's cookie (as sent when the tab connected), else the one
    this tab was signed in with. Either is checked again here, so a cookie signed out in another
    tab, ended because its user's ticket stopped working, or expired, signs this tab out on its
    next action; the tab's session state alone never keeps anyone signed in."""
    sent = st.context.cookies.get(auth.COOKIE)
    cookie = sent if isinstance(sent, str) and sent else st.session_state.get(SESSION_KEY)
    user = auth.user_from_cookie(cookie)
    if user is None:
        st.session_state.pop(USER_KEY, None)
        st.session_state.pop(SESSION_KEY, None)
        return None
    st.session_state[SESSION_KEY] = cookie
    return user


st.set_page_config(page_title="p4-integration", page_icon=":material/merge:", layout="wide")
user = current_user()
if user is None:
    # Every address answers with the sign-in form, so a deep link comes back to itself after it.
    nav = st.navigation([st.Page(sign_in, title="Sign in", icon=":material/login:", url_path=path, default=i == 0)
                         for i, (_, _, _, path, _) in enumerate(ROUTES)], position="hidden")
else:
    st.session_state[USER_KEY] = user
    nav = st.navigation([st.Page(VIEWS / file, title=title, icon=icon, url_path=path, default=i == 0,
                                 visibility="visible" if shown else "hidden")
                         for i, (file, title, icon, path, shown) in enumerate(ROUTES)], position="top")
    with st.sidebar:
        st.markdown(f"Signed in as **{plain(user)}**")
        st.caption(f"Perforce {auth.p4port()}")
        st.html('<form method="post" action="/auth/logout">'
                '<button type="submit" id="sign-out" class="p4i-button">Sign out</button></form>'
                "<style>.p4i-button{padding:.35rem .9rem;border-radius:.5rem;border:1px solid #ccc;"
                "background:white;cursor:pointer}</style>")
nav.run()
