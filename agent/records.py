"""What the service knows about an enrolled host."""
from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flows.ports import check_p4port, check_tcp_port

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
MAX_JOBS = 64


def check_job_limit(value: int, field: str = "limit") -> int:
    """Parallel jobs on a host: a pool limit of 0 would leave every job Late with no word why."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_JOBS:
        raise ValueError(f"{field}: {value!r} parallel jobs is not usable; give a number from 1 to {MAX_JOBS}")
    return value


class HostRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Host name used in job specs and pool names (p4-<name>)")
    address: str = Field(description="Address the service connects to")
    port: int = Field(default=22, description="SSH port")
    user: str = Field(description="SSH user that owns the workspaces and runs the worker")
    key_file: str = Field(description="Private key the service logs in with")
    host_key: str = Field(description="The host's public key, pinned at enrolment (OpenSSH line)")
    limit: int = Field(default=4, description="Parallel jobs on this host")
    api_url: str | None = Field(default=None, description="Prefect API URL as the host reaches it")
    p4_trust: dict[str, str] = Field(default_factory=dict, description="Helix ssl: servers trusted on the host: "
                                     "P4PORT -> key fingerprint, confirmed by a person, written into P4TRUST")

    @field_validator("p4_trust")
    @classmethod
    def _p4_trust(cls, v: dict[str, str]) -> dict[str, str]:
        from flows.trust import check_fingerprint, ssl_port

        for port in v:
            if ssl_port(check_p4port(port, "p4_trust")) is None:
                raise ValueError(f"p4_trust: '{port}' is not an ssl: port; only ssl: servers need trust")
        return {port: check_fingerprint(fp, f"p4_trust[{port}]") for port, fp in v.items()}

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v == "local" or not _NAME.match(v):
            raise ValueError(f"name: '{v}' is not usable; use lowercase letters, digits and '-' "
                             "(and not 'local', the service's own host)")
        return v

    @field_validator("port")
    @classmethod
    def _port(cls, v: int) -> int:
        return check_tcp_port(v)

    @field_validator("limit")
    @classmethod
    def _limit(cls, v: int) -> int:
        return check_job_limit(v)

    @field_validator("user")
    @classmethod
    def _user(cls, v: str) -> str:
        if not re.match(r"^[a-z_][a-z0-9_.-]{0,31}$", v):
            raise ValueError(f"user: '{v}' is not a valid user name")
        return v
