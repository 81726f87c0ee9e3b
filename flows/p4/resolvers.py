"""Reading and answering ``resolve``: the replies Helix sends, and the P4Python
``Resolver`` classes the session answers resolves with.

P4Python hands content merges to ``Resolver.resolve(merge_data)`` and action resolves
(filetype, move, delete, branch) to ``Resolver.actionResolve(merge_data)``, whose
default accepts; every resolver here answers both, so nothing is accepted unseen.
Every line ``resolve`` prints is understood (``read_resolve``) or the job stops on it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import P4 as _p4

from .errors import P4Error
from .textcodec import TextEncoding, encoding_of

# What ``resolve`` says, one pattern per message of Helix's table (the comments name them).
# Outcomes: MsgServer::ResolvedFile / MsgDm::ResolvedData(Base) "%toFile% - %how% %fromFile%"
_RESOLVED_INFO = re.compile(r"^(?P<file>\S.*) - (?P<how>copy from|merge from|edit from|ignored) (?P<src>//.+)$")
# MsgDm::ResolvedAction "%localPath% - resolved %resolveType% from %fromFile%%fromRev%[ using base ...]"
_RESOLVED_ACTION = re.compile(r"^(?P<file>\S.*) - resolved (?P<kind>\w+) from (?P<src>//.+?)(?: using base //.+)?$")
# MsgDm::ResolvedActionMove "%localPath% - resolved move (%how% %fromFile%)[ using base %baseFile%]"
_RESOLVED_MOVE = re.compile(r"^(?P<file>\S.*) - resolved move \((?P<how>.+?) (?P<src>//[^)]+)\)(?: using base .+)?$")
# MsgServer::ResolvedSkipped "%toFile% - resolve skipped."
_SKIPPED_INFO = re.compile(r"^(?P<file>\S.*) - resolve skipped\.$")
# What resolve says on the way to an outcome: MsgDm::Resolve3WayText(Base) "merging",
# Resolve2WayRaw "vs", Resolve3WayRaw "%baseType%/%headType% merge", ResolveAction
# "resolving %resolveType% from", ResolveActionMove "resolving move to"; the client's
# MsgClient::MergeMsg2/MergeMsg3/MergeMsg32 chunk counts, NonTextFileMerge, ResolveManually.
_PROGRESS_INFO = re.compile(
    r"^(?:\S.* - (?:merging //|vs //|\S+/\S+ merge //|resolving \w+ from //|resolving move to //).*"
    r"|Diff chunks: .*|Non-text diff: .*|Non-text file merge\.|Must resolve manually\.)$")
# MsgDm::ResolveFiletype/ResolveMove/ResolveDoDelete/ResolveDoBranch: ActionMergeData.type
_ACTION_TYPES = {"Filetype resolve": "filetype", "Filename resolve": "move", "Delete resolve": "delete",
                 "Branch resolve": "branch"}


def action_kind(merge_data: Any) -> str:
    """The kind of an action resolve P4Python hands ``actionResolve``: ``info['resolveType']``
    (p4test.py testResolve: 'filetype'), else the ``type`` line (MsgDm::ResolveFiletype ...)."""
    info = getattr(merge_data, "info", None) or {}
    kind = str(info.get("resolveType") or "")
    return kind or _ACTION_TYPES.get(str(getattr(merge_data, "type", "")), str(getattr(merge_data, "type", "")))


class AutoResolver(_p4.Resolver):
    """The pass-1 resolver: content as ``resolve -am``/``-as`` would take it. An action
    resolve is taken only when one side alone changed: the hint names a side (``at``/``ay``)
    and the merged action is exactly that side's (a file renamed or retyped in the source
    only). Both sides changed, or no merged action (delete, branch): skipped for a person."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self._mode = mode

    def resolve(self, merge_data: Any) -> str:
        hint = merge_data.merge_hint
        if self._mode == "as":
            return hint if hint in ("at", "ay") else "s"
        return "s" if hint == "e" else hint

    def actionResolve(self, merge_data: Any) -> str:  # P4Python's name
        hint = merge_data.merge_hint
        side = {"at": merge_data.their_action, "ay": merge_data.yours_action}.get(hint)
        return hint if side and merge_data.merge_action == side else "s"


class ChoiceResolver(_p4.Resolver):
    """Answers one resolve of one file with a person's choice and skips the file's others,
    so a content choice never decides its filetype or name, nor the other way round."""

    def __init__(self, kind: str, answer: str, text: str | bytes | None = None) -> None:
        super().__init__()
        self._kind, self._answer = kind, answer
        self._text = text

    def resolve(self, merge_data: Any) -> str:
        if self._kind != "content":
            return "s"
        if self._answer == "ae":
            data = self._text or b""
            if isinstance(data, str):  # written in the workspace file's own encoding
                data = workspace_encoding(merge_data).encode(data)
            with open(merge_data.result_path, "wb") as fh:
                fh.write(data)
        return self._answer

    def actionResolve(self, merge_data: Any) -> str:  # P4Python's name
        return self._answer if action_kind(merge_data) == self._kind else "s"


def workspace_encoding(merge_data: Any) -> TextEncoding:
    for path in (merge_data.your_path, merge_data.their_path, merge_data.result_path):
        try:
            with open(path, "rb") as fh:
                head = fh.read(4)
        except (OSError, TypeError):
            continue
        if head:
            return encoding_of(head)
    return encoding_of(b"")


class ResolveOutcome:
    def __init__(self) -> None:
        self.content: list[tuple[str, str]] = []
        self.actions: list[tuple[str, str, str]] = []
        self.skipped: list[str] = []


def read_resolve(cmd: list[str], lines: Iterable[str]) -> ResolveOutcome:
    """Every line ``resolve`` said, understood; a line that is not stops here, quoted."""
    out = ResolveOutcome()
    for line in lines:
        if m := _RESOLVED_MOVE.match(line):
            out.actions.append((m.group("file"), "move", f"{m.group('how')} {m.group('src')}"))
        elif m := _RESOLVED_ACTION.match(line):
            out.actions.append((m.group("file"), m.group("kind"), f"resolved {m.group('kind')} from {m.group('src')}"))
        elif m := _RESOLVED_INFO.match(line):
            out.content.append((m.group("file"), m.group("how")))
        elif m := _SKIPPED_INFO.match(line):
            out.skipped.append(m.group("file"))
        elif not _PROGRESS_INFO.match(line):
            raise P4Error(cmd, [f"resolve said something this job does not understand, so it stops: {line!r}"])
    return out
