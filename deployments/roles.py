"""Who is an administrator: the one question every door asks (docs/security.md, "Roles").

An administrator is a Perforce user listed in ``P4INTEG_ADMINS``, or a member of the
Perforce group named by ``P4INTEG_ADMIN_GROUP``, directly or through a subgroup. Perforce
answers the second with ``groups -i USER``: it needs only ``list`` access, so it runs as
the user themselves, with the ticket the front page keeps from their sign-in (or the
password stored with ``p4integ credentials set``), and the service needs no Perforce
account of its own that can read everyone's groups.

Perforce is asked at most once a minute per user (``CACHE_SECONDS``): each page run asks,
and a page must stay fast. A change to the group reaches the pages within that minute.
Any failure to ask (no port, no credential Perforce takes, the server down) counts as
"not an administrator", is logged, and is not raised: seeing hosts' health must not
depend on Perforce answering, and changing them must not be allowed by an error.
"""
from __future__ import annotations

import logging
import os
import threading
import time

from flows.settings import ADMIN_GROUP_VAR, ADMINS_VAR, P4PORT_VAR, admin_group, admins

CACHE_SECONDS = 60.0
# Said wherever something is refused for not being one.
WHO = (f"administrators are the members of the Perforce group named by {ADMIN_GROUP_VAR} and the users "
       f"listed in {ADMINS_VAR}; the p4integ command counts as one")
log = logging.getLogger(__name__)
_cache: dict[tuple[str, str, str], tuple[float, bool]] = {}
_lock = threading.Lock()


def is_admin(user: str | None) -> bool:
    """Listed by the operator, or in the administrators' Perforce group."""
    if not user:
        return False
    if user in admins():
        return True
    group = admin_group()
    if group is None:
        return False
    port = os.environ.get(P4PORT_VAR, "").strip()
    key = (user, group, port)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit and hit[0] > now:
        return hit[1]
    answer = _in_group(user, group, port)
    with _lock:
        _cache[key] = (now + CACHE_SECONDS, answer)
    return answer


def forget() -> None:
    """Ask Perforce again at the next check (after the group or the settings changed)."""
    with _lock:
        _cache.clear()


def groups_of(user: str, port: str, credential: str | None) -> set[str]:
    """The groups ``user`` belongs to, directly or through subgroups, asked as ``user``."""
    from flows.p4.session import P4Session

    with P4Session(port, user, "p4integ-roles-noclient", password=credential, prog="p4-integration-roles") as p4:
        return {str(r["group"]) for r in p4.run("groups", "-i", user) if isinstance(r, dict) and "group" in r}


def _in_group(user: str, group: str, port: str) -> bool:
    if not port:
        log.warning("%s=%s is set but %s is not: no one is an administrator through the group; "
                    "start the front page with --p4port", ADMIN_GROUP_VAR, group, P4PORT_VAR)
        return False
    try:
        return group in groups_of(user, port, _credential(user))
    except Exception as exc:  # noqa: BLE001 - any failure to ask means "not an administrator"
        # The message is Perforce's (or the connection's): it never holds the ticket.
        log.warning("could not read the Perforce groups of '%s' on %s, so they are not an administrator: %s",
                    user, port, exc)
        return False


def _credential(user: str) -> str | None:
    """The ticket the front page kept at sign-in, else the stored password, if any."""
    from prefect.blocks.system import Secret

    from flows.usernames import secret_name, ticket_secret_name

    for name in (ticket_secret_name(user), secret_name(user)):
        try:
            return str(Secret.load(name).get())
        except ValueError:  # not stored: try the next
            continue
    return None  # none stored: ask without one (a server at security level 0 answers)
