"""One job per workspace: an OS file lock on the host that owns the workspace.

Why not a Prefect global concurrency slot: a holder that is killed keeps a slot
until its lease expires (minutes), and a job paused for a person must hold the
workspace for days. A ``flock`` is held exactly as long as the job's process lives,
is released by the kernel on any exit, and lives on the host where the workspace
is. Waiters log what they wait for (the holder's flow run) until it is free.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_dir() -> Path:
    from .settings import home

    path = home() / "locks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _lock_path(port: str, client: str) -> Path:
    key = hashlib.sha256(f"{port}\0{client}".encode()).hexdigest()[:16]
    return lock_dir() / f"{client}-{key}.lock"


def holder(port: str, client: str) -> dict[str, str] | None:
    try:
        text = _lock_path(port, client).with_suffix(".holder").read_text()
        return json.loads(text) if text else None
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@contextmanager
def workspace_lock(port: str, client: str, owner: dict[str, str], *,
                   on_wait: Callable[[dict[str, str] | None, float], None],
                   poll: float = 0.5, report_every: float = 30.0) -> Iterator[None]:
    """Hold the workspace for the duration of the block; wait (reporting) while busy."""
    path = _lock_path(port, client)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        started = time.monotonic()
        next_report = 0.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= next_report:
                    on_wait(holder(port, client), waited)
                    next_report = waited + report_every
                time.sleep(poll)
        info = path.with_suffix(".holder")
        info.write_text(json.dumps({**owner, "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        try:
            yield
        finally:
            try:
                info.write_text("")
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
