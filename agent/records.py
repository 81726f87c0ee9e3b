"""What the service knows about an enrolled host."""
from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


class HostRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Host name used in job specs and pool names (p4-<name>)")
    address: str = Field(description="Address the service connects to")
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(description="SSH user that owns the workspaces and runs the worker")
    key_file: str = Field(description="Private key the service logs in with")
    host_key: str = Field(description="The host's public key, pinned at enrolment (OpenSSH line)")
    limit: int = Field(default=4, ge=1, le=64, description="Parallel jobs on this host")
    api_url: str | None = Field(default=None, description="Prefect API URL as the host reaches it")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v == "local" or not _NAME.match(v):
            raise ValueError(f"name: '{v}' is not usable; use lowercase letters, digits and '-' "
                             "(and not 'local', the service's own host)")
        return v

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        if not re.match(r"^[a-z_][a-z0-9_.-]{0,31}$", v):
            raise ValueError(f"user: '{v}' is not a valid user name")
        return v
