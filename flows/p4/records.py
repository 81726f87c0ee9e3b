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


class IntegrateResult(_Record):
    """``files`` holds at most ``sample_limit`` entries; counts cover all files."""

    by_action: dict[str, int] = Field(default_factory=dict)
    files: list[IntegratedFile] = Field(default_factory=list)
    already_integrated: bool = False
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


class ResolveSummary(_Record):
    """Outcome of an automatic resolve pass, by Helix's integration record kind."""

    by_how: dict[str, int] = Field(default_factory=dict)
    skipped: list[str] = Field(default_factory=list)
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
