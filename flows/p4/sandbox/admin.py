"""Administration of a sandbox depot: create it, set a user's password, write a group,
change a setting, restart the server."""
from __future__ import annotations

import json
import os
from collections.abc import Iterable

from . import auth
from .store import Store

# Bumped by every restart; a connection made before the last restart is dropped.
RESTARTS_COUNTER = "restarts"
# A new Helix 2026.1 server starts at security level 4: every user needs a password
# from the first connection, and only tickets are accepted ("Secure by default";
# CVE-2026-6043 names the old default, level 0, insecure).
NEW_SERVER_SECURITY = 4


def init_depot(root: str | os.PathLike[str], *, unicode: bool = False, case_insensitive: bool = False,
               security: int | None = None) -> str:
    """Create an empty depot at ``root`` (idempotent); return its P4PORT.

    ``unicode`` is Helix's ``p4d -xi`` (clients must then set a charset) and
    ``case_insensitive`` its ``p4d -C1``. Both are fixed for the depot's life, as in
    Helix: asking an existing depot for another mode is refused. A new depot starts at
    ``NEW_SERVER_SECURITY`` as a new Helix server does, unless ``security`` says otherwise
    (what its administrator sets with ``p4 configure set security=N``)."""
    store = Store(root, create=True)
    try:
        unset = store.db.execute("SELECT 1 FROM config WHERE name='security'").fetchone() is None
        if security is not None or (unset and not _has_history(store)):
            auth.configure(store, "security", NEW_SERVER_SECURITY if security is None else security)
        modes = {"unicode": "1" if unicode else None, "caseHandling": "insensitive" if case_insensitive else None}
        current = {"unicode": "1" if store.unicode else None,
                   "caseHandling": "insensitive" if store.case_insensitive else None}
        if current != modes and _has_history(store):
            raise ValueError(f"the depot at {os.path.abspath(root)} already exists with "
                             f"unicode={store.unicode}, case_insensitive={store.case_insensitive}; "
                             "a server's modes cannot change once it holds files: use a new directory")
        for name, value in modes.items():
            if value is None:
                store.db.execute("DELETE FROM config WHERE name=?", (name,))
            else:
                store.set_config(name, value)
    finally:
        store.close()
    return f"sandbox:{os.path.abspath(root)}"


def _has_history(store: Store) -> bool:
    return store.change_counter() > 0 or store.db.execute("SELECT 1 FROM clients LIMIT 1").fetchone() is not None


def set_password(root: str | os.PathLike[str], user: str, password: str | None) -> None:
    """What a Helix administrator does with ``p4 passwd -O``: set or clear a password."""
    store = Store(root, create=False)
    try:
        auth.set_password(store, user, password)
    finally:
        store.close()


def set_group(root: str | os.PathLike[str], name: str, *, users: Iterable[str] = (),
              subgroups: Iterable[str] = (), owners: Iterable[str] = ()) -> None:
    """What a Helix superuser does with ``p4 group -i``: write group ``name`` whole (the new
    lists replace the old). A group exists while it has members: with no users, subgroups
    or owners it is deleted, as ``p4 group -d`` does."""
    if not name or name.startswith("-") or any(c in name for c in " @#%*/"):
        raise ValueError(f"group name '{name}' is not usable: no spaces, '@#%*/' or leading '-'")
    spec = {"Users": sorted(set(users)), "Subgroups": sorted(set(subgroups)), "Owners": sorted(set(owners))}
    store = Store(root, create=False)
    try:
        with store.transaction():
            store.db.execute("DELETE FROM groups WHERE name=?", (name,))
            if any(spec.values()):
                store.db.execute("INSERT INTO groups(name, spec) VALUES(?, ?)", (name, json.dumps(spec)))
    finally:
        store.close()


def set_max_results(root: str | os.PathLike[str], limit: int | None) -> None:
    """What a Helix administrator does with a group's ``MaxResults:`` field, for every
    user of this depot: a command that would return more than ``limit`` rows fails
    with "Request too large (over N)". ``None`` (or 0) lifts the limit (unset)."""
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"max results must be a whole number >= 0 or None, not {limit!r}")
    store = Store(root, create=False)
    try:
        with store.transaction():
            store.db.execute("DELETE FROM limits WHERE name='MaxResults'")
            if limit:
                store.db.execute("INSERT INTO limits(name, value) VALUES('MaxResults', ?)", (limit,))
    finally:
        store.close()


def configure(root: str | os.PathLike[str], name: str, value: int | None) -> None:
    """What ``p4 configure set|unset`` (and a group's Timeout) do on Helix: change one of
    ``auth.SETTINGS`` for the depot. Takes effect at the next command of every connection."""
    store = Store(root, create=False)
    try:
        auth.configure(store, name, value)
    finally:
        store.close()


def settings(root: str | os.PathLike[str]) -> dict[str, int]:
    store = Store(root, create=False)
    try:
        return {name: auth.setting(store.db, name) for name in auth.SETTINGS}
    finally:
        store.close()


def restart(root: str | os.PathLike[str]) -> None:
    """What ``p4 admin restart`` does to clients: every open connection is dropped, and
    its next command fails as a broken connection does (``MsgRpc::Closed``)."""
    store = Store(root, create=False)
    try:
        with store.transaction():
            store.db.execute("INSERT INTO counters(name, value) VALUES(?, 1) ON CONFLICT(name) "
                             "DO UPDATE SET value=value+1", (RESTARTS_COUNTER,))
    finally:
        store.close()


def restarts(store: Store) -> int:
    row = store.db.execute("SELECT value FROM counters WHERE name=?", (RESTARTS_COUNTER,)).fetchone()
    return int(row["value"]) if row else 0
