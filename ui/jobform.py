"""From what a person typed to a JobSpec, with every problem pinned to its field."""
from __future__ import annotations

import re
import shlex
from collections.abc import Collection
from typing import Any

from pydantic import ValidationError

from flows.spec import COMMAND_FIELDS, JobSpec

_FIELD_PREFIX = re.compile(r"^([a-z_]+)(?:\[\d+\])?(?:, [a-z_]+)*: ")


def parse_command(text: str, field: str, errors: dict[str, str],
                  names: Collection[str] = ()) -> str | list[str] | None:
    """A site command's name, or a command line typed by a person, split like a shell would
    but never run by one. A defined name given alone is the name."""
    text = text.strip()
    if not text:
        return None
    if text in names:
        return text
    try:
        return shlex.split(text)
    except ValueError as exc:
        errors[field] = f"{field}: {exc}; close the quote or drop it"
        return None


def _field_of(error: dict[str, Any]) -> tuple[str, str]:
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    m = _FIELD_PREFIX.match(message)
    if m:
        return m.group(1), message
    loc = [str(x) for x in error.get("loc", ()) if not str(x).isdigit()]
    field = loc[0] if loc else "form"
    if error.get("type") == "missing":
        return field, f"{field}: required; fill it in"
    return field, f"{field}: {message}"


def build_spec(values: dict[str, Any], names: Collection[str] = ()) -> tuple[JobSpec | None, dict[str, str]]:
    """Validate the form; errors are keyed by the field the person has to change.

    Site commands come as picked names, or (from administrators) typed command lines;
    ``names`` are the site commands defined for the job's host."""
    errors: dict[str, str] = {}
    raw: dict[str, Any] = {k: v for k, v in values.items()
                           if k not in COMMAND_FIELDS and k not in ("pre_submit", "changelist", "mode")}
    for field in COMMAND_FIELDS:
        raw[field] = parse_command(str(values.get(field) or ""), field, errors, names)
    hooks = []
    given = values.get("pre_submit") or ""
    for line in (given if isinstance(given, list) else str(given).splitlines()):
        cmd = parse_command(line, "pre_submit", errors, names)
        if cmd:
            hooks.append(cmd)
    raw["pre_submit"] = hooks
    cl = str(values.get("changelist") or "").strip()
    if cl:
        if not cl.isdigit():
            errors["changelist"] = f"changelist: '{cl}' is not a number; give a changelist number or leave it empty"
        else:
            raw["changelist"] = int(cl)
    if values.get("mode") == "branch":
        raw["source"] = raw["target"] = None
    else:
        raw["branch"] = None
        raw["reverse"] = False
    raw = {k: (v.strip() if isinstance(v, str) else v) for k, v in raw.items()}
    raw = {k: v for k, v in raw.items() if v not in (None, "")}
    try:
        spec = JobSpec.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            field, message = _field_of(err)
            errors.setdefault(field, message)
        return None, errors
    return (None, errors) if errors else (spec, errors)
