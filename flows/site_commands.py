"""Site commands: programs an administrator names, which jobs pick by name.

A sync wrapper, hook, build, name check or push tool runs as the worker's OS user on a
build host, so choosing the program is an administrator's power, not a job author's.
An administrator defines each command once (``p4integ commands add NAME [--host H] --
argv...``), for every host or for one host; a job, a template or the front page names
it. The definitions live in Prefect's database (a JSON block), so a worker on any host
reads the current ones when its job starts.

Every site command runs with a minimal environment: PATH, HOME, the locale, the job's
Perforce variables (the ticket in P4PASSWD, never on a command line) and what the
definition and the spec add. Never the worker's own environment, which holds the
Prefect API address and its credential.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as default

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import P4IntegError
from .prefect_compat import load_secret, save_secret
from .spec import COMMAND_FIELDS, COMMAND_NAME, CommandRef, JobSpec, check_env

BLOCK_NAME = "p4integ-site-commands"
# What a site command inherits from the worker: enough to find programs, write files and
# read text; nothing that reaches Prefect or another job.
INHERITED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
                 "P4CHARSET", "P4TRUST", "P4HOST")


class SiteCommand(BaseModel):
    """One administrator's definition: a name, the argument list and what it adds to the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="What jobs call it by, e.g. fast-sync")
    argv: list[str] = Field(min_length=1, description="The program and its arguments; {change}, {client}, {cl}, "
                            "{port}, {user} and {root} are filled in when it runs")
    host: str | None = Field(default=None, description="The one host it is for; none = every host")
    env: dict[str, str] = Field(default_factory=dict, description="Environment the command gets besides the job's")
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not COMMAND_NAME.match(v):
            raise ValueError(f"name: '{v}' is not a command name; use letters, digits, '_', '-', '.' "
                             "(no spaces), starting with a letter or digit")
        return v

    @field_validator("argv")
    @classmethod
    def _argv(cls, v: list[str]) -> list[str]:
        if not all(isinstance(a, str) and a and "\0" not in a for a in v):
            raise ValueError("argv: every argument must be a non-empty text without NUL characters")
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        return check_env(v)

    @property
    def where(self) -> str:
        return f"host {self.host}" if self.host else "every host"


# --- the administrators' list, in Prefect's database -----------------------------------

def load() -> list[SiteCommand]:
    try:
        value = load_secret(BLOCK_NAME)  # also from a thread with a running loop
    except ValueError:  # never saved: no commands defined
        return []
    return [SiteCommand.model_validate(d) for d in value or []]


def _save(commands: Iterable[SiteCommand]) -> None:
    ordered = sorted(commands, key=lambda c: (c.name, c.host or ""))
    save_secret(BLOCK_NAME, json.dumps([c.model_dump(exclude_defaults=True) for c in ordered]))


def define(command: SiteCommand) -> bool:
    """Add or replace a definition; True when it replaced one."""
    current = load()
    others = [c for c in current if (c.name, c.host) != (command.name, command.host)]
    replaced = len(others) != len(current)
    _save([*others, command])
    return replaced


def remove(name: str, host: str | None) -> bool:
    current = load()
    kept = [c for c in current if (c.name, c.host) != (name, host)]
    if len(kept) == len(current):
        return False
    _save(kept)
    return True


def for_host(host: str, commands: Iterable[SiteCommand] | None = None) -> dict[str, SiteCommand]:
    """The commands a job on ``host`` may name: every-host ones, replaced by the host's own."""
    found: dict[str, SiteCommand] = {}
    for c in sorted(commands if commands is not None else load(), key=lambda c: c.host is not None):
        if c.host in (None, host):
            found[c.name] = c
    return found


# --- a job's commands, resolved --------------------------------------------------------

@dataclass(frozen=True)
class Resolved:
    """A site command as the job runs it: from a definition (``name``) or an administrator's raw argv."""

    field: str
    argv: list[str]
    env: dict[str, str] = default(default_factory=dict)
    name: str | None = None


@dataclass(frozen=True)
class JobCommands:
    sync_command: Resolved | None = None
    pre_submit: list[Resolved] = default(default_factory=list)
    build_command: Resolved | None = None
    name_check: Resolved | None = None
    push_command: Resolved | None = None

    def all(self) -> list[Resolved]:
        single = [getattr(self, f) for f in COMMAND_FIELDS]
        return [*self.pre_submit, *(c for c in single if c is not None)]


class UnknownCommand(P4IntegError, ValueError):
    """Names no administrator defined for the job's host, one message per field."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems.values()))


def refs(spec: JobSpec) -> list[tuple[str, CommandRef]]:
    """Every site command the spec names or gives, with its field."""
    found: list[tuple[str, CommandRef]] = [(f"pre_submit[{i}]", c) for i, c in enumerate(spec.pre_submit)]
    return found + [(f, getattr(spec, f)) for f in COMMAND_FIELDS if getattr(spec, f)]


def resolve(spec: JobSpec, commands: Iterable[SiteCommand] | None = None) -> JobCommands:
    """The spec's commands as argument lists, names looked up for the job's host.

    Raises ``UnknownCommand`` naming every field whose command is not defined."""
    needed = refs(spec)
    known = for_host(spec.host, commands if commands is not None
                     else (load() if any(isinstance(r, str) for _, r in needed) else []))
    problems: dict[str, str] = {}
    out: dict[str, Resolved] = {}
    for fld, ref in needed:
        if isinstance(ref, str):
            if ref not in known:
                names = ", ".join(sorted(known)) or "none"
                problems[fld] = (f"{fld}: no site command named '{ref}' for host {spec.host} (defined: {names}); "
                                 f"an administrator adds it with 'p4integ commands add {ref} --host {spec.host} "
                                 "-- PROGRAM ARGS...', or pick a defined one")
                continue
            d = known[ref]
            out[fld] = Resolved(field=fld, argv=list(d.argv), env=dict(d.env), name=d.name)
        else:
            out[fld] = Resolved(field=fld, argv=list(ref))
    if problems:
        raise UnknownCommand(problems)
    return JobCommands(pre_submit=[out[f] for f, _ in needed if f.startswith("pre_submit[")],
                       **{f: out.get(f) for f in COMMAND_FIELDS})


def raw_fields(spec: JobSpec) -> list[str]:
    """Fields where the spec gives a program itself rather than naming a defined command."""
    fields = [f for f, r in refs(spec) if not isinstance(r, str)]
    return fields + (["env"] if spec.env else [])


def minimal_env(spec: JobSpec, ticket: str | None, extra: Mapping[str, str] | None = None,
                base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a site command gets (see the module's docstring)."""
    source = os.environ if base is None else base
    env = {k: source[k] for k in INHERITED_ENV if k in source}
    env.setdefault("PATH", os.defpath)
    env.update(spec.env)
    env.update(extra or {})
    env.update(P4PORT=spec.p4port, P4USER=spec.p4user, P4CLIENT=spec.client)
    if ticket:
        env["P4PASSWD"] = ticket
    return env
