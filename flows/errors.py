"""The project's root exception, at the bottom of the stack so every package can use it."""
from __future__ import annotations


class P4IntegError(Exception):
    """A failure the service understands and puts in words: bad input, a refusal by Perforce,
    a host or site command that failed. Callers catch it apart from bugs, which keep their
    tracebacks. Each subclass keeps the builtin base it had (``ValueError``, ``RuntimeError``)
    so existing handlers still match."""
