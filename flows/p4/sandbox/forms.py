"""Spec forms (client, change, branch, user): fields, text form, P4Python ``Spec``.

``fetch_client`` returns a ``P4.Spec`` whose fields are the form's fields;
``save_client(spec)`` sends it back as input to ``client -i``. Input may be a
``dict``/``Spec`` or the text form (``Field:\\tvalue`` and tab-indented lists).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import P4 as _p4

from . import messages as M
from .errors import CommandError


@dataclass(frozen=True)
class FormDef:
    name: str
    fields: tuple[str, ...]
    lists: frozenset[str]
    text: frozenset[str]  # multi-line text fields
    required: tuple[str, ...]
    header: str

    def fieldmap(self) -> dict[str, str]:
        return {f.lower(): f for f in self.fields}


CLIENT = FormDef(
    "client",
    ("Client", "Update", "Access", "Owner", "Host", "Description", "Root", "AltRoots",
     "Options", "SubmitOptions", "LineEnd", "Stream", "View"),
    frozenset({"AltRoots", "View"}), frozenset({"Description"}), ("Client", "Root"),
    "# A Perforce Client Specification.",
)
CHANGE = FormDef(
    "change",
    ("Change", "Date", "Client", "User", "Status", "Type", "Description", "Jobs", "Files"),
    frozenset({"Jobs", "Files"}), frozenset({"Description"}), ("Change", "Description"),
    "# A Perforce Change Specification.",
)
BRANCH = FormDef(
    "branch",
    ("Branch", "Update", "Access", "Owner", "Description", "Options", "View"),
    frozenset({"View"}), frozenset({"Description"}), ("Branch", "View"),
    "# A Perforce Branch Specification.",
)
USER = FormDef(
    "user",
    ("User", "Type", "Email", "Update", "Access", "FullName", "Password"),
    frozenset(), frozenset(), ("User",),
    "# A Perforce User Specification.",
)
FORMS = {f.name: f for f in (CLIENT, CHANGE, BRANCH, USER)}

DEFAULT_CLIENT_OPTIONS = "noallwrite noclobber nocompress unlocked nomodtime normdir"


def timestamp(t: int | None = None) -> str:
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(t if t is not None else time.time()))


def new_spec(form: FormDef, values: dict[str, object]) -> _p4.Spec:
    spec = _p4.Spec(form.fieldmap())
    for key in form.fields:
        if key in values and values[key] is not None:
            v = values[key]
            spec[key] = list(v) if isinstance(v, (list, tuple)) else str(v)
    return spec


def parse_text(form: FormDef, text: str) -> dict[str, object]:
    """Parse the text form; unknown fields are refused the way Helix refuses them."""
    out: dict[str, object] = {}
    current: str | None = None
    fmap = form.fieldmap()
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if raw.startswith(("\t", " ")) and current is not None:
            line = raw.strip()
            if current in form.lists:
                if line:
                    out.setdefault(current, []).append(line)  # type: ignore[union-attr]
            else:
                prev = out.get(current, "")
                out[current] = f"{prev}{line}\n"
            continue
        if not raw.strip():
            continue
        if ":" not in raw:
            raise CommandError(M.msg(M.BAD_INPUT, spec=form.name, detail=f"Syntax error in '{raw}'."))
        key, _, value = raw.partition(":")
        proper = fmap.get(key.strip().lower())
        if proper is None:
            raise CommandError(M.msg(M.FIELD_UNKNOWN, field=key.strip()))
        current = proper
        value = value.strip()
        if proper in form.lists:
            out[proper] = [value] if value else []
        elif proper in form.text:
            out[proper] = f"{value}\n" if value else ""
        else:
            out[proper] = value
    return out


def coerce_input(form: FormDef, data: object) -> dict[str, object]:
    """Accept a dict/Spec or the text form; return fields by their proper names."""
    if data is None:
        raise CommandError(M.msg(M.BAD_INPUT, spec=form.name,
                                 detail='No input given: set p4.input (or pass the spec) when running with -i.'))
    if isinstance(data, (list, tuple)):
        data = data[0] if data else None
        return coerce_input(form, data)
    if isinstance(data, bytes):
        data = data.decode()
    if isinstance(data, str):
        return parse_text(form, data)
    if isinstance(data, dict):
        fmap = form.fieldmap()
        out: dict[str, object] = {}
        for k, v in data.items():
            proper = fmap.get(str(k).lower())
            if proper is None:
                raise CommandError(M.msg(M.FIELD_UNKNOWN, field=k))
            out[proper] = list(v) if isinstance(v, (list, tuple)) else str(v)
        return out
    raise CommandError(M.msg(M.BAD_INPUT, spec=form.name, detail=f"Unsupported input type {type(data).__name__}."))


def require(form: FormDef, values: dict[str, object]) -> None:
    for f in form.required:
        v = values.get(f)
        if v is None or v == "" or v == []:
            raise CommandError(M.msg(M.FIELD_MISSING, field=f))


def format_text(form: FormDef, spec: dict[str, object]) -> str:
    lines = [form.header, ""]
    for f in form.fields:
        if f not in spec:
            continue
        v = spec[f]
        if f in form.lists:
            lines.append(f"{f}:")
            lines.extend(f"\t{x}" for x in v)  # type: ignore[union-attr]
        elif f in form.text:
            lines.append(f"{f}:")
            lines.extend(f"\t{x}" for x in str(v).rstrip("\n").split("\n"))
        else:
            lines.append(f"{f}:\t{v}")
        lines.append("")
    return "\n".join(lines)


# --- client rules ------------------------------------------------------------------

def client_options(spec: dict[str, object]) -> list[str]:
    return str(spec.get("Options") or "").split()


def is_locked(spec: dict[str, object]) -> bool:
    return "locked" in client_options(spec)


def client_root(spec: dict[str, object], cwd: str) -> str:
    """The root a command works under: Helix takes the first of Root and AltRoots
    that holds the current directory (so one workspace serves hosts that name its
    directory differently), and Root when none does."""
    roots = [str(spec["Root"])] + [str(r) for r in spec.get("AltRoots") or []]  # type: ignore[union-attr]
    here = os.path.normpath(cwd)
    for root in roots:
        top = os.path.normpath(root)
        if here == top or here.startswith(top.rstrip(os.sep) + os.sep):
            return root
    return roots[0]


def check_client_use(spec: dict[str, object], user: str, host: str) -> None:
    """Helix refuses a command that uses a workspace from a host other than its
    ``Host:`` (when set), and a locked workspace to anyone but its owner."""
    name = str(spec["Client"])
    want_host = str(spec.get("Host") or "")
    if want_host and want_host != host:
        raise CommandError(M.msg(M.CLIENT_WRONG_HOST, client=name, host=want_host))
    owner = str(spec.get("Owner") or "")
    if is_locked(spec) and owner and owner != user:
        raise CommandError(M.msg(M.CLIENT_LOCKED_USE, client=name, user=owner))
