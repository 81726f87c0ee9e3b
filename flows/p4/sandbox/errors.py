"""Control flow inside the sandbox server.

A ``CommandError`` stops the current command: it is reported as that command's
error (or warning) message, exactly as Helix ends a command that cannot proceed.
Per-file problems are not exceptions: the command reports them and goes on with
the other files, again as Helix does.
"""
from __future__ import annotations

from .messages import Message


class CommandError(Exception):
    def __init__(self, *messages: Message) -> None:
        super().__init__(messages[0].text if messages else "")
        self.messages = list(messages)
