"""Waiting for a condition, the one way the service does it: ask again until a deadline."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll_until(check: Callable[[], T], timeout: float, interval: float) -> T | None:
    """Call ``check`` until it returns something truthy, and return that; None once ``timeout``
    seconds have passed. ``check`` runs at least once, and once more at the deadline, so a
    condition met during the last sleep is not missed. Exceptions from ``check`` propagate:
    a check that knows waiting is pointless (a process that died) raises."""
    end = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        left = end - time.monotonic()
        if left <= 0:
            return None
        time.sleep(min(interval, left))


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True if a GET of ``url`` answers 200: how a server we wait for says it is up."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - our own servers' URLs
            return r.status == 200
    except OSError:  # refused, timed out, or an HTTP error status
        return False
