"""Administration of a sandbox depot: create it, set a user's password."""
from __future__ import annotations

import os

from . import auth
from .store import Store


def init_depot(root: str | os.PathLike[str]) -> str:
    """Create an empty depot at ``root`` (idempotent); return its P4PORT."""
    Store(root, create=True).close()
    return f"sandbox:{os.path.abspath(root)}"


def set_password(root: str | os.PathLike[str], user: str, password: str | None) -> None:
    """What a Helix administrator does with ``p4 passwd -O``: set or clear a password."""
    store = Store(root, create=False)
    try:
        auth.set_password(store, user, password)
    finally:
        store.close()
