"""File arguments: depot, client and local syntax, revision specifiers, views.

Helix accepts a file argument in three syntaxes (``//depot/...``, ``//client/...``
and a local path under the client root) with an optional revision specifier
(``#n``, ``#head``, ``#have``, ``#none``, ``@change``, ``@=shelf``, and ranges
``@a,@b``). Mapping between depot and client space uses P4Python's own ``P4.Map``,
the same view engine the real client API uses.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable

import P4 as _p4

from . import messages as M
from .errors import CommandError

_WILDCARD = re.compile(r"\.\.\.|\*|%%\d")


@dataclass(frozen=True)
class RevPoint:
    kind: str  # rev | change | head | have | none | shelf
    n: int = 0

    def label(self) -> str:
        if self.kind == "rev":
            return f"#{self.n}"
        if self.kind in ("head", "have", "none"):
            return f"#{self.kind}"
        if self.kind == "shelf":
            return f"@={self.n}"
        return f"@{self.n}"


@dataclass(frozen=True)
class FileArg:
    raw: str
    path: str
    lo: RevPoint | None = None  # exclusive lower bound of a range
    hi: RevPoint | None = None  # the revision (or upper bound of a range)

    @property
    def has_wildcard(self) -> bool:
        return bool(_WILDCARD.search(self.path))


def _rev_point(text: str) -> RevPoint:
    if text.startswith("#"):
        body = text[1:]
        if body in ("head", "have", "none"):
            return RevPoint(body)
        if body.isdigit():
            return RevPoint("none") if int(body) == 0 else RevPoint("rev", int(body))
        raise CommandError(M.msg(M.BAD_REV_SPEC, rev=text))
    body = text[1:]
    if body.startswith("=") and body[1:].isdigit():
        return RevPoint("shelf", int(body[1:]))
    if body.isdigit():
        return RevPoint("change", int(body))
    if body == "now":
        return RevPoint("head")
    raise CommandError(M.msg(M.BAD_REV_SPEC, rev=text))


def parse_file_arg(raw: str) -> FileArg:
    m = re.search(r"[#@]", raw)
    if not m:
        return FileArg(raw, raw)
    path, revs = raw[: m.start()], raw[m.start():]
    if "," in revs:
        a, b = revs.split(",", 1)
        lo = _rev_point(a)
        return FileArg(raw, path, lo=lo, hi=_rev_point(b))
    return FileArg(raw, path, hi=_rev_point(revs))


def validate_view(lines: list[str], client: str | None, spec: str) -> None:
    """Refuse view lines Helix would refuse, naming the line."""
    for line in lines:
        parts = line.split()
        if len(parts) != 2 if client is not None else len(parts) not in (1, 2):
            raise CommandError(M.msg(M.BAD_VIEW, spec=spec,
                                     detail=f"Bad view line '{line}': expected '<depot-path> <{'client' if client else 'target'}-path>'."))
        for side in parts:
            side = side.lstrip("-+")
            if not side.startswith("//"):
                raise CommandError(M.msg(M.BAD_VIEW, spec=spec,
                                         detail=f"Mapping '{side}' is not under '//'."))
        if client is not None and not parts[1].lstrip("-+").startswith(f"//{client}/"):
            raise CommandError(M.msg(M.BAD_VIEW, spec=spec,
                                     detail=f"Mapping '{parts[1]}' is not under '//{client}/...'."))
        if len(parts) == 2 and _WILDCARD.findall(parts[0]) != _WILDCARD.findall(parts[1]):
            raise CommandError(M.msg(M.BAD_VIEW, spec=spec,
                                     detail=f"Wildcards in view line '{line}' must match on both sides."))


class ClientView:
    """A client spec's view and root: depot <-> //client/... <-> local path."""

    def __init__(self, name: str, root: str, view: list[str]) -> None:
        self.name = name
        self.root = os.path.normpath(root)
        self.map = _p4.Map(view)
        positive = [l.split()[0] for l in view if not l.startswith("-")]
        self.depot_prefixes = [literal_prefix(p.lstrip("+")) for p in positive]

    def to_client(self, depot_file: str) -> str | None:
        return self.map.translate(depot_file)

    def to_depot(self, client_file: str) -> str | None:
        return self.map.translate(client_file, 0)

    def local(self, client_file: str) -> str:
        rel = client_file[len(self.name) + 3:]
        return os.path.join(self.root, *rel.split("/"))

    def local_of(self, depot_file: str) -> str | None:
        c = self.to_client(depot_file)
        return self.local(c) if c else None

    def client_of_local(self, local: str) -> str | None:
        local = os.path.normpath(local)
        if local != self.root and not local.startswith(self.root.rstrip(os.sep) + os.sep):
            return None
        rel = os.path.relpath(local, self.root)
        rel = "" if rel == "." else rel.replace(os.sep, "/")
        return f"//{self.name}/{rel}"


def literal_prefix(pattern: str) -> str:
    m = _WILDCARD.search(pattern)
    return pattern[: m.start()] if m else pattern


@dataclass
class Matcher:
    """Which depot files an argument names: SQL prefixes to narrow, then a predicate."""

    prefixes: list[str]
    exact: str | None
    predicate: Callable[[str], bool]
    display: str  # how Helix echoes the argument in warnings

    def __call__(self, depot_file: str) -> bool:
        return self.predicate(depot_file)


def matcher_for(arg: FileArg, view: ClientView | None, cwd: str, *, need_client: bool = False) -> Matcher:
    """Resolve an argument to depot space.

    Local and client syntax need a client; local paths must lie under its root.
    """
    path = arg.path
    if path.startswith("//"):
        first = path[2:].split("/", 1)[0]
        if view is not None and first == view.name:
            return _client_matcher(path, view, arg.raw)
        return _depot_matcher(path, view if need_client else None, arg.raw)
    if view is None:
        raise CommandError(M.msg(M.NOT_UNDER_ROOT, path=os.path.abspath(os.path.join(cwd, path)), root=''))
    local = os.path.normpath(os.path.join(cwd, path))
    if path.endswith("...") and not local.endswith("..."):
        local = os.path.join(local, "...")
    client_path = view.client_of_local(local)
    if client_path is None:
        raise CommandError(M.msg(M.NOT_UNDER_ROOT, path=local, root=view.root))
    return _client_matcher(client_path, view, arg.raw)


def _depot_matcher(pattern: str, view: ClientView | None, display: str) -> Matcher:
    if _WILDCARD.search(pattern):
        pmap = _p4.Map(pattern)
        pred = pmap.includes
        if view is not None:
            pred = lambda d, _p=pmap.includes, _v=view: _p(d) and _v.to_client(d) is not None
        return Matcher([literal_prefix(pattern)], None, pred, display)
    if view is not None:
        return Matcher([pattern], pattern, lambda d: d == pattern and view.to_client(d) is not None, display)
    return Matcher([pattern], pattern, lambda d: d == pattern, display)


def _client_matcher(client_pattern: str, view: ClientView, display: str) -> Matcher:
    if not _WILDCARD.search(client_pattern):
        depot = view.to_depot(client_pattern)
        if depot is None:
            return Matcher([], None, lambda d: False, display)
        return Matcher([depot], depot, lambda d: d == depot, display)
    cmap = _p4.Map(client_pattern)

    def pred(d: str) -> bool:
        c = view.to_client(d)
        return c is not None and cmap.includes(c)

    return Matcher(list(view.depot_prefixes), None, pred, display)
