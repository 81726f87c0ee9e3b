"""Enrolled hosts, kept in ``$P4INTEG_HOME/hosts.json`` (readable by the service user only)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from flows.settings import home

from .records import HostRecord


def _path() -> Path:
    return home() / "hosts.json"


def load_all() -> dict[str, HostRecord]:
    try:
        data = json.loads(_path().read_text())
    except FileNotFoundError:
        return {}
    return {d["name"]: HostRecord.model_validate(d) for d in data}


def get(name: str) -> HostRecord:
    hosts = load_all()
    if name not in hosts:
        known = ", ".join(sorted(hosts)) or "none"
        raise KeyError(f"host: unknown host '{name}' (enrolled: {known}); enrol it with p4integ hosts add")
    return hosts[name]


def save(record: HostRecord) -> None:
    hosts = load_all()
    hosts[record.name] = record
    _write(hosts)


def remove(name: str) -> bool:
    hosts = load_all()
    if hosts.pop(name, None) is None:
        return False
    _write(hosts)
    return True


def _write(hosts: dict[str, HostRecord]) -> None:
    path = _path()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump([h.model_dump() for h in sorted(hosts.values(), key=lambda h: h.name)], fh, indent=2)
    os.replace(tmp, path)
