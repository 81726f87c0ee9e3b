"""The front page's entry: page setup, the sign-in gate and the navigation. Nothing else."""
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `streamlit run` puts only ui/ on the path

from ui import auth  # noqa: E402
from ui.views import VIEWS  # noqa: E402
from ui.views.login import render as sign_in  # noqa: E402

USER_KEY = "_p4integ_user"  # no widget uses this key, so a browser cannot set it

# (file, title, icon, url path, shown in the navigation)
ROUTES = [
    ("dashboard.py", "Jobs", ":material/dashboard:", "jobs", True),
    ("new_job.py", "New job", ":material/add_circle:", "new", True),
    ("job.py", "Job", ":material/work:", "job", False),
    ("templates.py", "Templates", ":material/bookmarks:", "templates", True),
    ("schedules.py", "Schedules", ":material/schedule:", "schedules", True),
    ("hosts.py", "Hosts", ":material/dns:", "hosts", True),
]


def current_user() -> str | None:
    cookie_user = auth.user_from_cookie(st.context.cookies.get(auth.COOKIE))
    return cookie_user or st.session_state.get(USER_KEY)


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
        st.markdown(f"Signed in as **{user}**")
        st.caption(f"Perforce {auth.p4port()}")
        st.html('<form method="post" action="/auth/logout">'
                '<button type="submit" id="sign-out" class="p4i-button">Sign out</button></form>'
                "<style>.p4i-button{padding:.35rem .9rem;border-radius:.5rem;border:1px solid #ccc;"
                "background:white;cursor:pointer}</style>")
nav.run()
