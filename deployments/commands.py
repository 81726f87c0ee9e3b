"""Who may give a site command's program: administrators define them, everyone names them.

The doors a person reaches (the front page, templates) refuse a spec that gives a
program or an environment itself unless its author is an administrator; naming a
command an administrator defined (flows/site_commands.py) is open to everyone. The CLI
is the operator's tool (it reads the 0600 Prefect API credential in ``$P4INTEG_HOME``),
so what it submits is an administrator's.
"""
from __future__ import annotations

from flows.site_commands import for_host, raw_fields
from flows.spec import JobSpec

from .roles import is_admin


def field_of(name: str) -> str:
    """The form field a message belongs to: pre_submit[1] is the pre_submit field."""
    return name.split("[", 1)[0]


def raw_command_problems(spec: JobSpec, author: str | None) -> dict[str, str]:
    """By field: the programs and environment a non-administrator gave instead of naming a site command."""
    raw = raw_fields(spec)
    if not raw or is_admin(author):  # naming defined commands needs no one's say
        return {}
    problems: dict[str, str] = {}
    names = ", ".join(names_for(spec.host)) or "none yet"
    for f in raw:
        what = "an environment" if f == "env" else "a command line"
        problems.setdefault(field_of(f), f"{f}: only administrators give {what}; pick a site command by name "
                            f"(defined for host {spec.host}: {names}), or ask an administrator to define one "
                            "(p4integ commands add)")
    return problems


def names_for(host: str) -> list[str]:
    return sorted(for_host(host))
