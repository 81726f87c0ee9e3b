"""Typed records of what the P4 session's operations return."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class ChangeInfo(_Record):
    change: int
    user: str
    client: str
    status: str
    description: str
    time: int
    path: str = ""  # the deepest path holding all its files ("path" of a submitted change)


class SyncResult(_Record):
    added: int = 0
    updated: int = 0
    deleted: int = 0
    total_bytes: int = 0
    up_to_date: bool = False
    messages: list[str] = Field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.added + self.updated + self.deleted


class IntegratedFile(_Record):
    depot_file: str
    client_file: str
    action: str
    from_file: str
    start_from_rev: str
    end_from_rev: str


class RefusedFile(_Record):
    """A file Perforce would not integrate, with its reason as Perforce rendered it."""

    depot_file: str
    reason: str
    message: str  # Helix's message name, e.g. MsgDm::IntegBadBase
    option: str | None = None  # the integrate option that makes Perforce accept it
    fix: str = ""


class IntegrateResult(_Record):
    """``files`` holds at most ``sample_limit`` entries; counts cover all files.

    ``already_integrated`` only when Perforce said all revisions are already integrated
    and opened nothing; ``refused`` and ``unknown`` (messages not understood, quoted)
    are what must stop a job."""

    by_action: dict[str, int] = Field(default_factory=dict)
    files: list[IntegratedFile] = Field(default_factory=list)
    already_integrated: bool = False
    refused: list[RefusedFile] = Field(default_factory=list)
    unknown: list[str] = Field(default_factory=list)
    messages: list[str] = Field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.by_action.values())


class PendingResolve(_Record):
    local_path: str
    from_file: str
    start_from_rev: str
    end_from_rev: str
    resolve_type: str
    content_resolve_type: str

    @property
    def binary(self) -> bool:
        return self.content_resolve_type.endswith("raw")

    @property
    def is_action(self) -> bool:
        """A filetype, move, delete or branch resolve: theirs or yours, no text to merge."""
        return self.resolve_type != "content"


class ResolveSummary(_Record):
    """Outcome of an automatic resolve pass, by Helix's integration record kind.

    ``actions_accepted``: action resolves Perforce took itself ("file (kind: what)");
    ``actions_left``: action resolves left for a person ("file (kind)")."""

    by_how: dict[str, int] = Field(default_factory=dict)
    skipped: list[str] = Field(default_factory=list)
    actions_accepted: list[str] = Field(default_factory=list)
    actions_left: list[str] = Field(default_factory=list)
    nothing_to_resolve: bool = False

    @property
    def resolved(self) -> int:
        return sum(self.by_how.values())


class OpenedFile(_Record):
    depot_file: str
    action: str
    change: str
    type: str
    rev: str


class ShelveResult(_Record):
    change: int
    files: int


class SubmitResult(_Record):
    change: int
    files: int
    renamed_from: int | None = None


class RevertResult(_Record):
    files: list[str] = Field(default_factory=list)


class DescribedFile(_Record):
    depot_file: str
    action: str
    type: str
    rev: str


class Described(_Record):
    change: int
    status: str
    user: str
    client: str
    description: str
    files: list[DescribedFile] = Field(default_factory=list)
    shelved: bool = False
