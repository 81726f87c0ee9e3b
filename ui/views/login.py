"""Sign in with Perforce: a plain form that posts to /auth/login (the password never enters Streamlit)."""
from __future__ import annotations

from html import escape
from urllib.parse import urlencode, urlsplit

import streamlit as st

from ui import auth


def _next_url() -> str:
    """Where to come back to: this page and its query, minus the last attempt's error."""
    parts = urlsplit(st.context.url or "/")
    query = {k: v for k, v in st.query_params.to_dict().items() if not k.startswith("login_")}
    return (parts.path or "/") + (f"?{urlencode(query)}" if query else "")


def render() -> None:
    _, middle, _ = st.columns([1, 1.2, 1])
    with middle:
        st.title("p4-integration")
        st.caption(f"Sign in with your Perforce account on **{auth.p4port()}**.")
        ended = st.session_state.pop("_p4integ_signed_out", None)
        if ended:
            st.warning(ended, icon=":material/lock_clock:")
        error = st.query_params.get("login_error")
        if error in auth.MESSAGES:  # anything else in the address is someone's text: not shown
            st.error(error, icon=":material/lock:")
        user = escape(st.query_params.get("login_user", ""), quote=True)
        st.html(f"""
<form method="post" action="/auth/login" class="p4i-login" autocomplete="on">
  <label for="p4i-user">Perforce user</label>
  <input id="p4i-user" name="user" value="{user}" autocomplete="username" required autofocus>
  <label for="p4i-password">Password</label>
  <input id="p4i-password" name="password" type="password" autocomplete="current-password" required>
  <input type="hidden" name="next" value="{escape(_next_url(), quote=True)}">
  <button type="submit" id="p4i-sign-in">Sign in</button>
</form>
<style>
.p4i-login{{display:flex;flex-direction:column;gap:.4rem;max-width:26rem}}
.p4i-login label{{font-size:.9rem;color:#555}}
.p4i-login input{{padding:.55rem .7rem;border:1px solid #ccc;border-radius:.5rem;font-size:1rem}}
.p4i-login button{{margin-top:.8rem;padding:.6rem;border:0;border-radius:.5rem;background:#2563eb;color:white;
  font-size:1rem;cursor:pointer}}
</style>""")
        st.caption("Your password is checked by Perforce (`login -p`) and is not stored. "
                   "A ticket is kept in Prefect for the jobs you start here.")
