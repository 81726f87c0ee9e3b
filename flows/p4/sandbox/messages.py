"""Helix messages: the texts, severities and generic codes the sandbox server reports.

A message is what P4Python exposes in ``p4.messages`` (severity, generic, msgid,
dict) and, rendered, in ``p4.warnings`` / ``p4.errors`` or the result list. Codes
and format strings come from Helix's own message table (``catalog.py``), rendered
with Helix's format language, so texts match what a real server prints, e.g.
"//depot/rel/... - all revision(s) already integrated.".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import P4API

from .catalog import CATALOG

# Severities (P4.P4.E_*)
E_INFO, E_WARN, E_FAILED, E_FATAL = 1, 2, 3, 4
EV_NONE, EV_USAGE, EV_UNKNOWN, EV_CONTEXT, EV_ILLEGAL, EV_NOTYET = 0, 1, 2, 3, 4, 5
EV_EMPTY, EV_CLIENT, EV_CONFIG, EV_COMM = 0x11, 0x22, 0x24, 0x26

_TOKEN = re.compile(r"%'(.*?)'%|%(\w*)%")


@dataclass(frozen=True)
class MsgDef:
    name: str
    code: int
    fmt: str

    @property
    def severity(self) -> int:
        return (self.code >> 28) & 0xF

    @property
    def generic(self) -> int:
        return (self.code >> 16) & 0xFF

    @property
    def msgid(self) -> int:
        return self.code & 0xFFFF


def _split_alternatives(body: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in body:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def render(fmt: str, args: dict[str, str]) -> str:
    """Helix's format language: %var%, %'literal'%, [shown if a var is set|else]."""
    out: list[str] = []
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "[":
            depth, j = 1, i + 1
            while j < len(fmt) and depth:
                depth += {"[": 1, "]": -1}.get(fmt[j], 0)
                j += 1
            alts = _split_alternatives(fmt[i + 1 : j - 1])
            names = [m.group(2) for m in _TOKEN.finditer(alts[0]) if m.group(2)]
            if not names and len(alts) == 1:
                # No variable to test: literal brackets, as in MsgDm::WildAdd's "[@#%*]".
                out.append(fmt[i:j])
            elif any(args.get(n) for n in names):
                out.append(render(alts[0], args))
            elif len(alts) > 1:
                out.append(render(alts[1], args))
            i = j
            continue
        if ch == "%":
            m = _TOKEN.match(fmt, i)
            if m:
                if m.group(1) is not None:
                    out.append(m.group(1))
                elif m.group(2) in ("", "!"):
                    out.append("%" if m.group(2) == "" else "")
                elif m.group(2) != "argc":
                    out.append(str(args.get(m.group(2), "")))
                else:
                    out.append(str(args.get("argc", "")))
                i = m.end()
                continue
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass
class Message:
    """One Helix message as the server sends it: one or more message ids in one
    error object. A failed submit, for one, is a single two-line error (the summary
    and MsgServer::SubmitFailed), the way P4Python's own test expects it
    (p4test.py testEvilTwin: ``str(e)`` is both lines)."""

    defn: MsgDef
    args: dict[str, str] = field(default_factory=dict)
    follow: list["Message"] = field(default_factory=list)

    @property
    def parts(self) -> list["Message"]:
        return [self, *self.follow]

    @property
    def severity(self) -> int:
        return max(p.defn.severity for p in self.parts)

    @property
    def generic(self) -> int:
        # Helix keeps the generic code of the most severe id; the last one wins a tie.
        return [p.defn.generic for p in self.parts if p.defn.severity == self.severity][-1]

    @property
    def text(self) -> str:
        return "\n".join(render(p.defn.fmt, p.args) for p in self.parts)

    def then(self, *more: "Message") -> "Message":
        """This message with ``more`` ids appended, as one error object."""
        return Message(self.defn, dict(self.args), [*self.follow, *more])

    def p4message(self) -> "HelixMessage":
        if not self.follow:
            d: dict[str, object] = {"code": str(self.defn.code), "fmt": self.defn.fmt, **self.args}
        else:
            # Several ids: P4Python turns the indexed code0/fmt0, code1/fmt1 into lists.
            d = {k: v for p in reversed(self.parts) for k, v in p.args.items()}
            d["code"] = [str(p.defn.code) for p in self.parts]
            d["fmt"] = [p.defn.fmt for p in self.parts]
        return HelixMessage(self.severity, self.generic, self.defn.msgid, d, self.text)

    proxy = p4message  # the name older callers use

    def __str__(self) -> str:
        return self.text


class HelixMessage:
    """What ``p4.messages`` holds: P4Python's ``P4API.P4Message`` as seen from Python.

    P4API.P4Message wraps a C++ ``Error`` and cannot be made from Python: its type
    takes no subclasses, and one built with ``P4API.P4Message()`` has no ``Error``
    behind it, so reading any attribute crashes the interpreter. This class has the
    same attributes (severity, generic, msgid, dict), ``str()`` (the formatted text)
    and ``repr()`` (``[Gen:n/Sev:n]: text``, PythonMessage::getRepr), and reports
    ``P4API.P4Message`` as its ``__class__``, so ``isinstance(m, P4API.P4Message)``
    (P4Python's p4test.py testOutput) holds as it does for a real server's messages.
    """

    __slots__ = ("severity", "generic", "msgid", "dict", "_text")

    def __init__(self, severity: int, generic: int, msgid: int, msg_dict: dict[str, object], text: str) -> None:
        self.severity, self.generic, self.msgid, self.dict, self._text = severity, generic, msgid, msg_dict, text

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance() consults __class__
        return P4API.P4Message

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"[Gen:{self.generic}/Sev:{self.severity}]: {self._text}"

    def __reduce__(self) -> tuple[object, ...]:
        return (HelixMessage, (self.severity, self.generic, self.msgid, self.dict, self._text))


def _cat(name: str) -> MsgDef:
    code, fmt = CATALOG[name]
    return MsgDef(name, code, fmt)


def _own(subcode: int, severity: int, generic: int, fmt: str) -> MsgDef:
    """A sandbox-only message (subsystem 63, unused by Helix)."""
    return MsgDef(f"Sandbox::{subcode}", (severity << 28) | (generic << 16) | (63 << 10) | subcode, fmt)


# --- generic / usage ---------------------------------------------------------------
UNKNOWN_COMMAND = _cat("MsgServer::BadCommand")
UNICODE_NEEDS_CHARSET = _cat("MsgServer::Unicode")  # unicode server, client without P4CHARSET
CHARSET_NEEDS_UNICODE = _cat("MsgServer::Unicode2")  # P4CHARSET set, server not unicode
INVALID_OPTION = _cat("MsgSupp::Invalid")
NEEDS_ARG = _cat("MsgSupp::NeedsArg")
NOT_CONNECTED = _own(1, E_FAILED, EV_CLIENT, "not connected.")
BAD_PORT = _own(2, E_FATAL, EV_COMM, "Connect to server failed; check $P4PORT.\n%detail%")
BAD_INPUT = _own(3, E_FAILED, EV_USAGE, "Error in %spec% specification.\n%detail%")
USAGE = {
    "integrate": "MsgServer::UseInteg", "resolve": "MsgServer::UseResolve",
    "submit": "MsgServer::UseSubmit", "changes": "MsgServer::UseChanges",
    "describe": "MsgServer::UseDescribe", "fstat": "MsgServer::UseFstat",
    "files": "MsgServer::UseFiles", "filelog": "MsgServer::UseFilelog",
    "have": "MsgServer::UseHave", "sync": "MsgServer::UseSync", "opened": "MsgServer::UseOpened",
    "info": "MsgServer::UseInfo", "client": "MsgServer::UseClient", "change": "MsgServer::UseChange",
    "branch": "MsgServer::UseBranch", "login": "MsgServer::UseLogin", "logout": "MsgServer::UseLogout",
    "shelve": "MsgServer::UseShelve", "unshelve": "MsgServer::UseUnshelve",
    "reopen": "MsgServer::UseReopen", "add": "MsgServer::UseOpen", "edit": "MsgServer::UseOpen",
    "delete": "MsgServer::UseOpen", "revert": "MsgServer::UseRelease", "print": "MsgServer::UsePrint",
    "interchanges": "MsgServer::UseInterChanges", "clients": "MsgServer::UseClients",
    "branches": "MsgServer::UseBranches", "move": "MsgServer::UseMove", "rename": "MsgServer::UseMove",
}


def usage(command: str) -> MsgDef:
    return _cat(USAGE.get(command, "MsgServer::BadCommand"))


# --- auth ------------------------------------------------------------------------
PASSWORD_INVALID = _cat("MsgServer::BadPassword")
LOGIN_BAD_PASSWORD = _cat("MsgServer::BadPassword0")
LOGIN_OK = _cat("MsgServer::LoginUser")
LOGIN_STATUS = _cat("MsgServer::LoginGoodTill")
LOGIN_EXPIRED = _cat("MsgServer::LoginExpired")
LOGIN_NOT_REQUIRED = _cat("MsgServer::LoginNotRequired")
LOGOUT_OK = _cat("MsgServer::LogoutUser")
LOGIN_NO_TICKET = _cat("MsgServer::LoginNoTicket")
LOGGED_OUT = _cat("MsgServer::LoggedOut")
MUST_SET_PASSWORD = _cat("MsgServer::MustSetPassword")
TICKET_ONLY = _cat("MsgServer::TicketOnly")
NO_HOSTLESS_TICKETS = _cat("MsgServer::NoHostlessTickets")
CONNECTION_DROPPED = _cat("MsgRpc::Closed")
NO_SUCH_USER = _cat("MsgServer::NoSuchUser")
NO_SUCH_USERS = _own(60, E_WARN, EV_EMPTY, "%user% - no such user(s).")

# --- specs -----------------------------------------------------------------------
NO_SUCH_DOMAIN2 = _cat("MsgDm::NoSuchDomain2")  # Client 'x' unknown - use 'client' ...
NO_SUCH_DOMAIN = _cat("MsgDm::NoSuchDomain")  # Branch 'x' doesn't exist.
DOMAIN_SAVED = _cat("MsgDm::DomainSave")
DOMAIN_NOT_CHANGED = _cat("MsgDm::DomainNoChange")
DOMAIN_DELETED = _cat("MsgDm::DomainDelete")
CLIENT_HAS_OPENED = _cat("MsgDm::OpenedDelete")
CLIENT_WRONG_HOST = _cat("MsgDm::LockedHost")  # Client 'ws' can only be used from host 'h'.
CLIENT_LOCKED_USE = _cat("MsgDm::LockedClient")  # Locked client 'ws' can only be used by owner 'u'.
SPEC_LOCKED_UPDATE = _cat("MsgDm::LockedUpdate")
SPEC_LOCKED_DELETE = _cat("MsgDm::LockedDelete")
FIELD_MISSING = _cat("MsgDb::FieldMissing")
FIELD_UNKNOWN = _cat("MsgDb::FieldUnknown")
MISSING_DESC = _cat("MsgDm::MissingDesc")
ID_WILD = _cat("MsgDm::IdWild")
REL_PATH = _cat("MsgDm::IdRelPath")  # ".", ".." after the first component of a path
NO_END_QUOTE = _cat("MsgDb::NoEndQuote")
MAX_RESULTS = _cat("MsgDb::MaxResults")
WILD_ADD = _cat("MsgDm::WildAdd")  # add without -f of a name with @ # % *
DEFAULT_BRANCH_VIEW = _cat("MsgDm::DfltBranchView")
BAD_VIEW = _own(10, E_FAILED, EV_USAGE, "Error in %spec% specification.\n%detail%")

# --- changes ---------------------------------------------------------------------
CHANGE_CREATED = _cat("MsgDm::ChangeCreated")
CHANGE_DELETED = _cat("MsgDm::ChangeDeleteSuccess")
CHANGE_UPDATED = _own(20, E_INFO, EV_NONE, "%change% updated.")
CHANGE_UNKNOWN = _cat("MsgDm::NoSuchChange")
CHANGE_HAS_FILES = _cat("MsgDm::ChangeDeleteOpen")
CHANGE_HAS_SHELF = _cat("MsgDm::ChangeDeleteShelved")
CHANGE_SUBMITTED = _own(21, E_FAILED, EV_CONTEXT, "%change% is already committed.")
CHANGE_NOT_YOURS = _own(22, E_FAILED, 6, "%change% belongs to client %client%.")
INVALID_CHANGE = _cat("MsgDm::BadChange")
BAD_REV_SPEC = _cat("MsgDm::BadRevision")
BAD_AT_REV = _cat("MsgDm::BadAtRev")

# --- file arguments ----------------------------------------------------------------
NO_SUCH_FILES = _cat("MsgDm::ExFILE")
NOT_IN_CLIENT_VIEW = _cat("MsgDm::ExVIEW")
NOT_UNDER_ROOT = _cat("MsgDm::NotUnderRoot")
MUST_REFER_TO_CLIENT = _cat("MsgDm::ReferClient")
NO_REV_AT_CHANGE = _cat("MsgDm::ExATCHANGE")
NOT_OPENED = _cat("MsgDm::ExOPENCLIENT")
NOT_ON_CLIENT = _cat("MsgDm::ExHAVE")
UP_TO_DATE = _cat("MsgDm::ExUPTODATE")
NO_FILES_TO_RESOLVE = _cat("MsgDm::ExTORESOLVE")
ALREADY_INTEGRATED = _cat("MsgDm::ExINTEGPERM")
NOTHING_TO_UNSHELVE = _cat("MsgDm::ExTOUNSHELVE")

# --- opening files ---------------------------------------------------------------
OPENED_FOR = _cat("MsgDm::OpenSuccess")
REOPENED = _cat("MsgDm::OpenReOpen")
CURRENTLY_OPENED = _cat("MsgDm::OpenUpToDate")
ALSO_OPENED_BY = _cat("MsgDm::OpenIsOpened")
EXCLUSIVE_OPENED = _cat("MsgDm::OpenXOpenedFailed")
CANT_EXISTS = _cat("MsgDm::OpenCantExists")
BAD_ACTION = _cat("MsgDm::OpenBadAction")
INTEG_BAD_ACTION = _cat("MsgDm::IntegBadAction")
INTEG_EXCLUSIVE = _cat("MsgDm::IntegXOpenedWarn")
RELEASE_REVERT = _cat("MsgDm::ReleaseRevert")
RELEASE_ABANDON = _cat("MsgDm::ReleaseAbandon")
RELEASE_DELETE = _cat("MsgDm::ReleaseDelete")
LOCAL_MISSING = _own(30, E_FAILED, EV_CLIENT, "%path% - file does not exist in the workspace.")

# --- sync ----------------------------------------------------------------------------
SYNC_ADDED = _cat("MsgDm::SyncAdd")
SYNC_UPDATED = _cat("MsgDm::SyncUpdate")
SYNC_DELETED = _cat("MsgDm::SyncDelete")
SYNC_REFRESHED = _cat("MsgDm::SyncRefresh")
SYNC_MUST_RESOLVE = _cat("MsgDm::SyncResolve")
SYNC_OPENED_SKIP = _cat("MsgDm::SyncIntegUpdate")
CANT_CLOBBER = _cat("MsgClient::ClobberFile")

# --- integrate -----------------------------------------------------------------------
BASELESS = _cat("MsgDm::IntegBadBase")
INTEG_BAD_ANCESTOR = _cat("MsgDm::IntegBadAncestor")  # "... without -d or -Ds/-Dt flag"
INTEG_OPEN_OK = _cat("MsgDm::IntegOpenOkay")
INTEG_BRANCH = _cat("MsgDm::IntegSyncBranch")
INTEG_DELETE = _cat("MsgDm::IntegSyncDelete")

# --- resolve -----------------------------------------------------------------------
DIFF_CHUNKS = _cat("MsgClient::MergeMsg3")
DIFF_CHUNKS_2WAY = _cat("MsgClient::MergeMsg32")
RESOLVED_FILE = _cat("MsgServer::ResolvedFile")
RESOLVE_SKIPPED = _cat("MsgServer::ResolvedSkipped")
RESOLVE_MERGING = _cat("MsgDm::Resolve3WayText")
RESOLVE_BAD_ANSWER = _own(40, E_FAILED, EV_USAGE, "Resolver returned '%answer%'; expected one of at, ay, am, ae, s.")

# --- moves and action resolves ----------------------------------------------------------
MOVED = _cat("MsgDm::MoveSuccess")
MOVE_BAD_ACTION = _cat("MsgDm::MoveBadAction")
MOVE_EXISTS = _cat("MsgDm::MoveExists")
MOVE_NO_MATCH = _cat("MsgDm::MoveNoMatch")
MOVE_NEED_FORCE = _cat("MsgDm::MoveNeedForce")
MOVE_NOT_SYNCED = _cat("MsgDm::MoveNotSynced")
NOT_OPENED_FOR_EDIT = _cat("MsgDm::ExOPENNOTEDIT")
DELETE_MOVED = _cat("MsgDm::DeleteMoved")
INTEG_MOVED_NO_FROM = _cat("MsgDm::IntegMovedNoFrom")
INTEG_MOVED_UNMAPPED = _cat("MsgDm::IntegMovedUnmapped")
INTEG_MOVED_OUT_SCOPE = _cat("MsgDm::IntegMovedOutScope")
INTEG_BASELESS_MOVE = _cat("MsgDm::IntegBaselessMove")
RESOLVE_FILETYPE = _cat("MsgDm::ResolveFiletype")
RESOLVE_FILETYPE_ACTION = _cat("MsgDm::ResolveFiletypeAction")
RESOLVE_MOVE = _cat("MsgDm::ResolveMove")
RESOLVE_MOVE_ACTION = _cat("MsgDm::ResolveMoveAction")
RESOLVE_BRANCH = _cat("MsgDm::ResolveDoBranch")
RESOLVE_BRANCH_THEIRS = _cat("MsgDm::ResolveDoBranchActionT")
RESOLVE_BRANCH_YOURS = _cat("MsgDm::ResolveDoBranchActionY")
RESOLVE_DELETE = _cat("MsgDm::ResolveDoDelete")
RESOLVE_DELETE_THEIRS = _cat("MsgDm::ResolveDoDeleteActionT")
RESOLVE_DELETE_YOURS = _cat("MsgDm::ResolveDoDeleteActionY")
RESOLVED_ACTION = _cat("MsgDm::ResolvedAction")
RESOLVED_MOVE = _cat("MsgDm::ResolvedActionMove")

# --- submit ------------------------------------------------------------------------
SUBMIT_ABORTED = _cat("MsgServer::SubmitAborted")
SUBMIT_SHELVED_ABORTED = _cat("MsgServer::SubmitShelvedAborted")
SUBMIT_FAILED = _cat("MsgServer::SubmitFailed")  # closes a failed submit's one error
SUBMIT_SHELVED_FAILED = _cat("MsgServer::SubmitShelvedFailed")
BAD_TRANSFERS = _cat("MsgServer::BadTransfers")
MERGES_PENDING = _cat("MsgServer::MergesPending")
RESOLVE_OR_REVERT = _cat("MsgServer::ResolveOrRevert")
MUST_RESOLVE = _cat("MsgDm::SubmitMustResolve")
MUST_SYNC_RESOLVE = _cat("MsgDm::OpenMustResolve")
SUBMIT_BEGIN = _cat("MsgServer::SubmitBegin")
SUBMIT_LOCKING = _cat("MsgServer::SubmitLocking")
SUBMITTED = _cat("MsgServer::SubmitComplete")
SUBMIT_RENAMED = _cat("MsgServer::SubmitRenamed")
NO_FILES_TO_SUBMIT = _cat("MsgServer::NoSubmit")
NO_DEFAULT_SUBMIT = _cat("MsgServer::NoDefaultSubmit")
SUBMIT_IS_SHELVED = _cat("MsgServer::SubmitIsShelved")
RESUBMIT_NO_FILES = _cat("MsgDm::ResubmitNoFiles")

# --- shelve --------------------------------------------------------------------------
SHELVE_BEGIN = _cat("MsgServer::ShelveBegin")
SHELVE_COMPLETE = _cat("MsgServer::ShelveComplete")
SHELVE_DELETED = _cat("MsgServer::ShelveDelete")
SHELVE_ABORTED = _cat("MsgServer::ShelveAborted")
NO_SHELVE_DELETE = _cat("MsgServer::NoShelveDelete")
UNSHELVED = _cat("MsgDm::UnshelveSuccess")
UNSHELVE_BAD_ACTION = _cat("MsgDm::UnshelveBadAction")
SHELVE_NEEDS_RESOLVE = _cat("MsgDm::ShelveNeedsResolve")
CHANGE_NOT_SHELVED = _cat("MsgDm::ChangeNotShelved")
USAGE_SHELVE_REPLACE = _cat("MsgServer::UseShelver")  # shelve -r takes no files
WRONG_ARGS = _cat("MsgSupp::WrongArg")
SHELF_EXISTS = _own(50, E_FAILED, EV_NOTYET,
                    "%depotFile% - shelved file exists; use -f to replace it or -r to replace all.")
NO_FILES_TO_SHELVE = _own(51, E_WARN, EV_EMPTY, "No files to shelve.")


def msg(defn: MsgDef, **args: object) -> Message:
    return Message(defn, {k: str(v) for k, v in args.items() if v is not None})
