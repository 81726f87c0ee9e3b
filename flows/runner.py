"""Site commands: argument lists run in the workspace, streamed line by line.

Each command runs in its own session (process group) so that a cancel kills the
whole tree, not just the direct child; output is merged, redacted and handed to a
callback line by line as it comes; a non-zero exit raises ``SiteCommandError``
carrying the command, the exit code and the last lines.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .errors import P4IntegError
from .polling import poll_until

TAIL_LINES = 20
KILL_GRACE_SECONDS = 5.0


class Redactor:
    """Replaces every known secret with ``****`` in text bound for logs."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: list[str] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 3 and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "****")
        return text


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]
    exit_code: int
    tail: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class SiteCommandError(P4IntegError, RuntimeError):
    def __init__(self, stage: str, result: CommandResult) -> None:
        self.stage, self.result = stage, result
        last = "\n".join(f"    {line}" for line in result.tail[-10:]) or "    (no output)"
        super().__init__(f"{stage}: command {result.argv!r} exited with code {result.exit_code}; "
                         f"last lines:\n{last}")


def expand(argv: Sequence[str], values: Mapping[str, object]) -> list[str]:
    """Fill ``{change}``-style placeholders inside arguments (never through a shell)."""
    out = []
    for a in argv:
        for k, v in values.items():
            a = a.replace("{" + k + "}", str(v))
        out.append(a)
    return out


def run_command(argv: Sequence[str], *, cwd: str, env: Mapping[str, str], stage: str,
                on_line: Callable[[str], None], redact: Redactor | None = None,
                check: bool = True) -> CommandResult:
    redact = redact or Redactor()
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        result = CommandResult(list(argv), 127, [redact(f"cannot start: {exc}")])
        if check:
            raise SiteCommandError(stage, result) from None
        return result
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = redact(raw.decode("utf-8", "replace").rstrip("\r\n"))
            tail.append(line)
            on_line(line)
        code = proc.wait()
    except BaseException:
        # Cancel, timeout or crash of the caller: take the whole tree down with us.
        kill_tree(proc)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
    result = CommandResult(list(argv), code, list(tail), time.monotonic() - started)
    if check and code != 0:
        raise SiteCommandError(stage, result)
    return result


def kill_tree(proc: subprocess.Popen[bytes], grace: float = KILL_GRACE_SECONDS) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace``."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        if poll_until(lambda: proc.poll() is not None and not _group_alive(pgid), wait, 0.05):
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
