"""Which reactions to a job run's state have been taken: telling its owner, cleaning after it.

Two things start a reaction: Prefect's automations, at once, and the recovery sweep
(deployments/recovery.py), later, for a reaction whose event was lost (a server that
restarted with events in flight, an action the database refused). Whichever comes
first takes it; the file is made atomically, so a reaction is taken exactly once per
run and state however many times it is started.
"""
from __future__ import annotations

import os
from typing import Literal

Reaction = Literal["notified", "cleaned"]


def _marker(reaction: Reaction, run_id: str, state_name: str) -> os.PathLike[str]:
    from .settings import home

    base = home() / reaction
    base.mkdir(parents=True, exist_ok=True)
    return base / f"{run_id}-{state_name}"


def take(reaction: Reaction, run_id: str, state_name: str) -> bool:
    """True for the first caller for this run and state, False for every later one."""
    try:
        os.close(os.open(_marker(reaction, run_id, state_name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return True
    except FileExistsError:
        return False


def taken(reaction: Reaction, run_id: str, state_name: str) -> bool:
    return os.path.exists(_marker(reaction, run_id, state_name))


def release(reaction: Reaction, run_id: str, state_name: str) -> None:
    """Un-take a reaction that did nothing (a notice no channel accepted): the recovery sweep
    then starts it again."""
    try:
        os.unlink(_marker(reaction, run_id, state_name))
    except FileNotFoundError:
        pass
