"""What Helix says to ``p4 integrate``, by message identity: outcomes and per-file refusals.

Codes and formats are Helix's own (its message table, ``MsgDm::*``). A message reaches
P4Python in one of two shapes (PythonClientUser.cpp ``ProcessMessage``):
- a warning or error goes to an OutputHandler's ``outputMessage`` as a ``P4Message``
  carrying ``msgid`` (the code's low 16 bits), ``severity``, ``generic`` and ``dict``;
- an info message (most per-file refusals are infos) goes to ``outputInfo`` as its
  rendered text only. Such a line is identified by matching it against the exact
  format of each known info message.
Anything not in this table is unknown: the caller stops with it quoted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

Kind = Literal["already", "note", "refused"]
IntegrateOption = Literal["-i", "-d", "-Ds", "-Dt", "-Di", "-Rb", "-Rd", "-Rs"]

# Perforce's integrate options a job may choose, with what each does (p4 help integrate,
# Helix Command Reference "p4 integrate"; -i, -d, -Ds, -Dt from the 2009.2 reference and
# the P4API.NET IntegrateFilesCmdFlags documentation of those flags).
INTEGRATE_OPTIONS: dict[IntegrateOption, str] = {
    "-i": "integrate files that share no integration history (baseless merge)",
    "-d": "integrate around deleted revisions: both -Ds and -Dt",
    "-Ds": "source deleted, target edited: delete the target anyway",
    "-Dt": "target deleted, source edited: re-branch the source on top of the deleted target",
    "-Di": "source deleted and re-added: also consider the revisions before the delete",
    "-Rb": "schedule 'branch resolves' instead of branching new target files",
    "-Rd": "schedule 'delete resolves' instead of deleting target files",
    "-Rs": "skip cherry-picked revisions already integrated",
}
assert tuple(INTEGRATE_OPTIONS) == get_args(IntegrateOption)


@dataclass(frozen=True)
class IntegMessage:
    name: str
    code: int
    fmt: str
    kind: Kind
    option: str | None = None  # the integrate option that makes Helix accept the file
    fix: str = ""  # what to do when no option accepts it

    @property
    def msgid(self) -> int:
        return self.code & 0xFFFF

    @property
    def severity(self) -> int:
        return (self.code >> 28) & 0xF


def _m(name: str, code: int, fmt: str, kind: Kind, option: str | None = None, fix: str = "") -> IntegMessage:
    return IntegMessage(name, code, fmt, kind, option, fix)


_OPENED_HERE = "the file is already opened in this workspace; submit or revert it, then run the job again"
_OPENED_ELSEWHERE = "the file is opened elsewhere; wait until it is submitted or reverted, then run the job again"
_EXCLUSIVE = ("the file is exclusive (+l) and opened in another workspace; wait until it is submitted or reverted, "
              "then run the job again")
_MOVED = "map the moved file in the branch and client views, or integrate the move with its move/add"

MESSAGES: tuple[IntegMessage, ...] = (
    _m("MsgDm::ExINTEGPERM", 554768756, "[%argc% - all|All] revision(s) already integrated.", "already"),
    _m("MsgDm::OpenIsOpened", 318839083, "%depotFile% - also opened by %user%@%client%", "note"),
    _m("MsgDm::ExINTEGPEND", 554768755, "[%argc% - all|All] revision(s) already integrated in pending changelist.",
       "refused", fix="another pending change holds these integrations; submit or revert it"),
    _m("MsgDm::IntegBadBase", 335550718,
       "%depotFile% - can't %action% from %fromFile%%fromRev% without -i flag", "refused", "-i"),
    _m("MsgDm::IntegBadAncestor", 352327933,
       "%depotFile% - can't %action% from %fromFile%%fromRev% without %'-d'% or %flag% flag", "refused", "-d"),
    _m("MsgDm::IntegMovedNoFrom", 352328401,
       "%depotFile% - can't %action% from %fromFile%%fromRev% (moved from %movedFrom%; provide a branch view that "
       "maps this file, or use -Di to disregard move/deletes)", "refused", "-Di"),
    _m("MsgDm::IntegMovedNoFromS", 352328439,
       "%depotFile% - can't %action% from %fromFile%%fromRev% (moved from %movedFrom%; provide a branch/stream "
       "view that maps this file, or use 'p4 copy' to force)", "refused", fix=_MOVED),
    _m("MsgDm::IntegMovedUnmapped", 301996583, "%depotFile% - not in client view (remapped from %movedFrom%)",
       "refused", fix=_MOVED),
    _m("MsgDm::IntegMovedOutScope", 301996588, "%depotFile% - not in branch view (remapped from %movedFrom%)",
       "refused", fix=_MOVED),
    _m("MsgDm::IntegMovedNoAccess", 301996584, "%depotFile% - no permission (remapped from %movedFrom%)",
       "refused", fix="the job's user needs write permission on the moved file (p4 protect)"),
    _m("MsgDm::IntegBaselessMove", 587209386,
       "%depotFile% - resolve move to %moveFile% before integrating from %fromFile%", "refused",
       fix="resolve the pending move in the target first"),
    _m("MsgDm::ExINTEGMOVEDEL", 554769109,
       "[%argc% - move/delete(s)|Move/delete(s)] must be integrated along with matching move/add(s).", "refused",
       fix=_MOVED),
    _m("MsgDm::IntegXOpened", 301996284, "%depotFile% - can't %action% exclusive file already opened", "refused",
       fix=_EXCLUSIVE),
    _m("MsgDm::IntegXOpenedWarn", 570432469, "%depotFile% - can't %action% exclusive file already opened",
       "refused", fix=_EXCLUSIVE),
    _m("MsgDm::IntegBadAction", 335550719,
       "%depotFile% - can't %action% (already opened for %badAction%)[ (remapped from %movedFrom%)]", "refused",
       fix=_OPENED_HERE),
    _m("MsgDm::IntegAlreadyOpened", 301996282, "%depotFile% - can't %action% (already opened on this client)",
       "refused", fix=_OPENED_HERE),
    _m("MsgDm::IntegBadClient", 301996288, "%depotFile% - is already opened by client %client%", "refused",
       fix=_OPENED_ELSEWHERE),
    _m("MsgDm::IntegBadUser", 301996289, "%depotFile% - is already opened by user %user%", "refused",
       fix=_OPENED_ELSEWHERE),
    _m("MsgDm::IntegCantAdd", 301996290, "%depotFile% - can't %action% existing file", "refused",
       fix="the target exists; integrate without branch-only options"),
    _m("MsgDm::IntegCantModify", 301996291, "%depotFile% - can't %action% deleted file", "refused",
       fix="the target file is deleted at its head revision; re-add it or fix the branch view"),
    _m("MsgDm::IntegIncompatable", 301996493, "%depotFile% - file type of %fromFile% incompatible", "refused",
       fix="change the file type of the source or target (p4 retype/edit -t) so they are compatible"),
    _m("MsgDm::IntegIntoReadOnly", 301996283, "%depotFile% - can only %action% into file in a local depot",
       "refused", fix="the target must be in a local depot; fix the target path or branch view"),
    _m("MsgDm::IntegIntoReadOnlyAndMap", 301996958,
       "%clientFile% - can't %action% into file that is additionally mapped in client's View", "refused",
       fix="remove the extra (+) mapping of the target from the client view"),
    _m("MsgDm::IntegIntoReadOnlyCMap", 301996959,
       "%clientFile% - can't %action% into file that is restricted by client's ChangeView mapping", "refused",
       fix="remove the target from the client's ChangeView"),
    _m("MsgDm::IntegTooVirtual", 301996481, "%depotFile% - can't %action% file branched with %'integrate -v'%",
       "refused", fix="sync the target, then run the job again"),
    _m("MsgDm::IntegMustSync", 285219076, "%toFile% - must sync before integrating.", "refused",
       fix="sync the target files in the workspace, then run the job again"),
    _m("MsgDm::ExVIEW", 554768751, "[%argc% - file(s)|File(s)] not in client view.", "refused",
       fix="map the target in the workspace's client view"),
    _m("MsgDm::ExFILE", 554768759, "[%argc% - no|No] such file(s).", "refused",
       fix="the source has no files there; check the source path, branch view and changelist"),
)

BY_MSGID: dict[int, IntegMessage] = {m.msgid: m for m in MESSAGES}


def _regex(fmt: str, names: set[str] | None = None) -> str:
    """A regex matching what Helix renders from ``fmt`` (%var%, %'literal'%, [a|b])."""
    names = set() if names is None else names
    out, i = [], 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "[":
            depth, j = 1, i + 1
            while depth:
                depth += {"[": 1, "]": -1}.get(fmt[j], 0)
                j += 1
            alts = _alternatives(fmt[i + 1:j - 1])
            body = "|".join(_regex(a, names) for a in alts)
            out.append(f"(?:{body})" if len(alts) > 1 else f"(?:{body})?")
            i = j
            continue
        lit = re.match(r"%'(.*?)'%", fmt[i:])
        if lit:
            out.append(re.escape(lit.group(1)))
            i += lit.end()
            continue
        var = re.match(r"%(\w+)%", fmt[i:])
        if var:
            name = var.group(1)
            pattern = r"(?:[#@][^ ]*)?" if name.endswith("Rev") else r".+?"
            out.append(pattern if name in names else f"(?P<{name}>{pattern})")
            names.add(name)
            i += var.end()
            continue
        out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _alternatives(body: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in body:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "|" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


_INFO_PATTERNS = [(re.compile(f"^{_regex(m.fmt)}$", re.DOTALL), m) for m in MESSAGES]


@dataclass(frozen=True)
class Said:
    """One message of integrate's reply, identified (``message`` None: unknown)."""

    text: str
    message: IntegMessage | None
    args: dict[str, str]

    @property
    def file(self) -> str:
        for key in ("depotFile", "clientFile", "toFile", "argc"):
            if self.args.get(key):
                return self.args[key]
        return ""


def identify_info(text: str) -> Said:
    """An info line (P4Python hands infos over as text) by the exact format it matches."""
    for pattern, m in _INFO_PATTERNS:
        hit = pattern.match(text)
        if hit:
            return Said(text, m, {k: v for k, v in hit.groupdict().items() if v})
    return Said(text, None, {})


def identify_message(msg: Any) -> Said:
    """A P4Message (warning or error) by its message id; its arguments from its dict."""
    text = str(msg)
    m = BY_MSGID.get(int(getattr(msg, "msgid", -1)))
    if m is None or int(getattr(msg, "severity", -1)) != m.severity:
        return Said(text, None, {})
    args = {str(k): str(v) for k, v in (getattr(msg, "dict", None) or {}).items()}
    parsed = identify_info(text)
    if parsed.message is not None:  # the dict may lack arguments: take them from the text
        args = {**parsed.args, **args}
    return Said(text, m, args)


def accepting_option(said: Said) -> str | None:
    """The integrate option that makes Helix accept this refused file, if one does.
    ``IntegBadAncestor`` names its own (-Ds or -Dt; -d covers both)."""
    if said.message is None:
        return None
    if said.message.name == "MsgDm::IntegBadAncestor":
        return said.args.get("flag") or "-d"
    return said.message.option


def accepted_by(option: str, chosen: set[str]) -> bool:
    """Whether the chosen options include ``option`` (``-d`` counts as -Ds and -Dt)."""
    return option in chosen or (option in ("-Ds", "-Dt") and "-d" in chosen)
