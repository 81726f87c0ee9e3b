"""The job spec: what an integration job does, validated before anything runs.

Every field error names the field and the fix. Credentials are never part of the
spec: ``password_secret`` is the *name* of a Prefect Secret block holding the
user's password or ticket, so flow parameters (visible in the Prefect UI) never
contain it.
"""
from __future__ import annotations

import re
from enum import Enum
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .p4.integ_messages import INTEGRATE_OPTIONS, IntegrateOption
from .ports import check_p4port

_NAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.+=-]*$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
LINE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # also a deployment name and part of a tag
_RESERVED_ENV = {"P4PASSWD", "P4TICKETS", "P4PORT", "P4USER", "P4CLIENT"}

DEFAULT_PAUSE_TIMEOUT = 7 * 24 * 3600


class Stage(str, Enum):
    GET_LATEST_CL = "GET_LATEST_CL"
    SYNC = "SYNC"
    INTEGRATE = "INTEGRATE"
    RESOLVE_PASS_1 = "RESOLVE_PASS_1"  # noqa: S105 - a stage, not a password
    RESOLVE_CHECK = "RESOLVE_CHECK"
    NEEDS_RESOLVE = "NEEDS_RESOLVE"
    PRE_SUBMIT = "PRE_SUBMIT"
    SHELVE = "SHELVE"
    P4PUSH = "P4PUSH"
    DONE = "DONE"
    CLEANUP = "CLEANUP"
    ERROR = "ERROR"


Command = list[str]
# A site command as a spec holds it: the name of one an administrator defined
# (flows/site_commands.py), or, from an administrator only, the argument list itself.
CommandRef = str | Command
COMMAND_FIELDS = ("sync_command", "build_command", "name_check", "push_command")  # besides pre_submit
COMMAND_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_command(value: CommandRef | None, field: str) -> CommandRef | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not COMMAND_NAME.match(value):
            raise ValueError(f"{field}: '{value}' is not the name of a site command; pick one an administrator "
                             "defined (p4integ commands list), e.g. \"fast-sync\"")
        return value
    if not value or not all(isinstance(a, str) and a for a in value):
        raise ValueError(f"{field}: give the name of a site command, or the command as a non-empty list of "
                         f"arguments, e.g. [\"./hooks/check.sh\", \"--fast\"]")
    if any("\0" in a for a in value):
        raise ValueError(f"{field}: arguments must not contain NUL characters")
    return value


def check_env(v: dict[str, str]) -> dict[str, str]:
    for k in v:
        if not _ENV_KEY.match(k):
            raise ValueError(f"env: '{k}' is not a valid environment variable name")
        if k in _RESERVED_ENV:
            raise ValueError(f"env: {k} is set by the job itself; remove it from env")
    return v


def _check_depot_path(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    v = value.strip()
    if not v:
        raise ValueError(f"{field}: empty path; give a depot path such as //depot/main/...")
    if not v.startswith("//") or v.startswith("///"):
        raise ValueError(f"{field}: '{v}' is not a depot path; depot paths start with // (e.g. //depot/main/...)")
    if not v.endswith("/..."):
        raise ValueError(f"{field}: '{v}' must name a whole branch ending in /... (e.g. {v.rstrip('/')}/...)")
    if any(c in v for c in "@#%*") or " " in v:
        raise ValueError(f"{field}: '{v}' must not contain revisions or wildcards other than the final /... "
                         "(use 'changelist' for the revision)")
    return v


class JobSpec(BaseModel):
    """One integration job. Either ``branch`` or both ``source`` and ``target``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    p4port: str = Field(description="Perforce server, e.g. ssl:perforce:1666 or sandbox:/path")
    p4user: str = Field(description="Perforce user the job runs as")
    password_secret: str | None = Field(
        default=None, description="Name of the Prefect Secret block with the user's password or ticket")
    client: str = Field(description="Perforce workspace (client) the job integrates in")
    host: str = Field(default="local", description="Host that owns the workspace")
    branch: str | None = Field(default=None, description="Branch spec to integrate by")
    source: str | None = Field(default=None, description="Source depot path, e.g. //depot/main/...")
    target: str | None = Field(default=None, description="Target depot path, e.g. //depot/rel/...")
    reverse: bool = Field(default=False, description="Integrate the branch spec in reverse (-r)")
    changelist: int | None = Field(default=None, description="Source changelist; empty = latest submitted")
    description: str | None = Field(default=None, description="Changelist description")
    trial: bool = Field(default=False, description="Shelve but do not submit (push in trial mode)")
    automerge: Literal["am", "as"] = Field(default="am", description="Automatic resolve mode for pass 1")
    integrate_options: list[IntegrateOption] = Field(
        default_factory=list, description="Perforce's own integrate options the job passes: "
        + "; ".join(f"{k} {v}" for k, v in INTEGRATE_OPTIONS.items()))
    sync_command: CommandRef | None = Field(default=None, description="Site sync wrapper; default p4 sync")
    pre_submit: list[CommandRef] = Field(default_factory=list, description="Hooks run before shelving")
    build_command: CommandRef | None = Field(default=None, description="Build run before shelving")
    name_check: CommandRef | None = Field(default=None, description="Tool listing files to drop from the shelf")
    name_check_passes: int = Field(default=3, ge=1, le=10)
    push_command: CommandRef | None = Field(default=None, description="Site push tool; default submit the shelf")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment for site commands "
                                "(administrators only)")
    pause_timeout: int = Field(default=DEFAULT_PAUSE_TIMEOUT, ge=5,
                               description="Seconds to wait for a person at NEEDS_RESOLVE")
    line: str | None = Field(default=None, description="The integration line that started this job for the "
                             "source change in 'changelist' (flows/lines.py); set by the line")
    only_changelist: bool = Field(default=False, description="Integrate the revisions of 'changelist' only "
                                  "(@N,@N), not everything up to it: a line's per-change jobs")

    @field_validator("p4port")
    @classmethod
    def _port(cls, v: str) -> str:
        return check_p4port(v)

    @field_validator("p4user", "client", "host")
    @classmethod
    def _name(cls, v: str, info) -> str:  # noqa: ANN001 - pydantic's ValidationInfo
        v = v.strip()
        if not v or not _NAME.match(v) or "..." in v:
            raise ValueError(f"{info.field_name}: '{v}' is not a valid name; use letters, digits, '_', '-', '.'")
        return v

    @field_validator("branch")
    @classmethod
    def _branch(cls, v: str | None) -> str | None:
        if v is None or v.strip() == "":
            return None
        if not _NAME.match(v.strip()):
            raise ValueError(f"branch: '{v}' is not a valid branch spec name")
        return v.strip()

    @field_validator("source", "target")
    @classmethod
    def _paths(cls, v: str | None, info) -> str | None:  # noqa: ANN001
        return _check_depot_path(v, info.field_name)

    @field_validator("line")
    @classmethod
    def _line(cls, v: str | None) -> str | None:
        if v is not None and not LINE_NAME.match(v):
            raise ValueError(f"line: '{v}' is not a line name; use lowercase letters, digits and '-'")
        return v

    @field_validator("password_secret")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if not _SECRET_NAME.match(v):
            raise ValueError("password_secret: give the NAME of a Prefect Secret block (lowercase letters, "
                             "digits, dashes), never the password itself")
        return v

    @field_validator("integrate_options", mode="before")
    @classmethod
    def _integrate_options(cls, v: object) -> object:
        if v is None:
            return []
        if isinstance(v, str) or not isinstance(v, (list, tuple)):
            raise ValueError(f"integrate_options: give a list of options, e.g. [\"-i\"], not {v!r}")
        known = ", ".join(INTEGRATE_OPTIONS)
        for o in v:
            if o not in INTEGRATE_OPTIONS:
                raise ValueError(f"integrate_options: {o!r} is not one of Perforce's integrate options a job "
                                 f"may choose ({known}); remove it")
        if twice := sorted({o for o in v if list(v).count(o) > 1}):
            raise ValueError(f"integrate_options: {', '.join(twice)} given twice; give each option once")
        return list(v)

    @field_validator("changelist")
    @classmethod
    def _changelist(cls, v: int | None) -> int | None:
        if v is not None and v <= 0:
            raise ValueError(f"changelist: {v} is not a changelist number; give a positive number or leave it "
                             "empty for the latest submitted change")
        return v

    @field_validator(*COMMAND_FIELDS)
    @classmethod
    def _command(cls, v: CommandRef | None, info) -> CommandRef | None:  # noqa: ANN001
        return _check_command(v, info.field_name)

    @field_validator("pre_submit")
    @classmethod
    def _hooks(cls, v: list[CommandRef]) -> list[CommandRef]:
        for i, cmd in enumerate(v):
            _check_command(cmd, f"pre_submit[{i}]")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        return check_env(v)

    @model_validator(mode="after")
    def _mode(self) -> "JobSpec":
        if self.branch and (self.source or self.target):
            raise ValueError("branch, source, target: give either a branch spec or source and target, not both")
        if not self.branch:
            if not self.source or not self.target:
                missing = "source" if not self.source else "target"
                raise ValueError(f"{missing}: empty; give both source and target paths, or a branch spec")
            if self.source == self.target:
                raise ValueError("target: equals source; integrate between two different branches")
            if self.target.startswith(self.source[:-3]) or self.source.startswith(self.target[:-3]):
                raise ValueError("target: source and target overlap; one may not contain the other")
        if self.only_changelist and not self.changelist:
            raise ValueError("only_changelist: needs a changelist; give the source change to integrate alone")
        return self

    @property
    def mode(self) -> str:
        return f"branch {self.branch}{' (reverse)' if self.reverse else ''}" if self.branch \
            else f"{self.source} -> {self.target}"

    def default_description(self, cl: int) -> str:
        what = (f"branch {self.branch}{' -r' if self.reverse else ''}" if self.branch
                else f"{self.source} into {self.target}")
        return self.description or f"Integrate {what} @{cl}\n\nAutomated by p4-integration."


# Lines that only a merge that still has conflicts writes: Helix's own markers
# (">>>> ORIGINAL", "==== THEIRS", "==== YOURS", "<<<<") and the classic diff3 ones
# ("<<<<<<<", "=======", ">>>>>>>"). A bare "=======" line alone is ordinary text
# (reStructuredText underlines); it counts only beside the others.
_MARKER_STARTS = (">>>> ORIGINAL", "==== THEIRS", "==== YOURS", "<<<<", ">>>>>>>")


def conflict_marker_lines(text: str) -> list[int]:
    """1-based numbers of the lines in ``text`` that are conflict markers."""
    lines = text.splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if line.startswith(_MARKER_STARTS)]
    if hits:
        hits += [i + 1 for i, line in enumerate(lines) if line.rstrip() == "======="]
    return sorted(set(hits))


# What a pending resolve decides: the file's content, or one of Helix's action resolves
# (P4Python hands those to ``Resolver.actionResolve``; they take theirs or yours only).
ResolveKind = Literal["content", "filetype", "move", "delete", "branch"]
ACTION_KINDS: tuple[str, ...] = tuple(k for k in get_args(ResolveKind) if k != "content")


class FileChoice(BaseModel):
    """A person's decision for one conflicting file: its content, or one action resolve of it."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, description="Local path or depot path of the conflicting file")
    choice: Literal["theirs", "yours", "merged", "edited"]
    text: str | None = Field(default=None, description="The result, when choice is 'edited'")
    kind: ResolveKind = Field(default="content", description="Which resolve of the file this decides: content, "
                              "or the action resolve filetype, move, delete or branch (theirs or yours only)")

    @model_validator(mode="after")
    def _text(self) -> "FileChoice":
        if self.kind in ACTION_KINDS and self.choice in ("merged", "edited"):
            raise ValueError(f"choice: the {self.kind} resolve of {self.path} takes 'theirs' or 'yours', "
                             f"not '{self.choice}'")
        if self.choice == "edited":
            if self.text is None:
                raise ValueError(f"text: choice 'edited' for {self.path} needs the text of the result")
            marks = conflict_marker_lines(self.text)
            if marks:
                raise ValueError(f"text: the edited result for {self.path} still has conflict markers on line(s) "
                                 f"{', '.join(map(str, marks[:10]))}; remove them, or choose theirs or yours")
        elif self.text is not None:
            raise ValueError(f"text: only choice 'edited' takes a text ({self.path} has '{self.choice}')")
        return self
