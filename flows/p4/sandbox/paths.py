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
import shlex
from dataclasses import dataclass
from typing import Any, Callable

import P4 as _p4

from ..pathnames import unescape
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


def check_relative(path: str) -> None:
    """Refuse "." and ".." after a fixed path component, as Helix does: in depot and
    client syntax every component is fixed; a local path may only start with them.
    Without this, ``//ws/../x`` would name a file outside the client root."""
    parts = path.split("/")
    if path.startswith("//"):
        fixed = parts[2:]
    else:
        lead = 0
        while lead < len(parts) and parts[lead] in (".", ".."):
            lead += 1
        fixed = parts[lead:]
    if any(p in (".", "..") for p in fixed):
        raise CommandError(M.msg(M.REL_PATH, id=path))


def parse_file_arg(raw: str) -> FileArg:
    m = re.search(r"[#@]", raw)
    if not m:
        check_relative(raw)
        return FileArg(raw, raw)
    path, revs = raw[: m.start()], raw[m.start():]
    check_relative(path)
    if "," in revs:
        a, b = revs.split(",", 1)
        lo = _rev_point(a)
        return FileArg(raw, path, lo=lo, hi=_rev_point(b))
    return FileArg(raw, path, hi=_rev_point(revs))


def split_view_line(line: str) -> list[str]:
    """The paths of a view line, quotes removed: ``"//depot/my dir/..." //ws/...``
    (or ``"-//depot/a b/..." ...``) keeps the spaces inside a path."""
    lex = shlex.shlex(line, posix=True)
    lex.whitespace_split, lex.escape, lex.commenters = True, "", ""
    try:
        return list(lex)
    except ValueError:
        raise CommandError(M.msg(M.NO_END_QUOTE, value=line)) from None


def map_line(sides: list[str]) -> str:
    """A view line as P4.Map reads it: the mapping flag outside the quotes, a path
    with a space quoted."""
    flag = sides[0][0] if sides and sides[0][:1] in ("-", "+") else ""
    paths = [s.lstrip("-+") for s in sides]
    return flag + " ".join(f'"{p}"' if " " in p else p for p in paths)


def validate_view(lines: list[str], client: str | None, spec: str) -> None:
    """Refuse view lines Helix would refuse, naming the line."""
    for line in lines:
        parts = split_view_line(line)
        if len(parts) != 2 if client is not None else len(parts) not in (1, 2):
            other = "client" if client else "target"
            raise CommandError(M.msg(M.BAD_VIEW, spec=spec,
                                     detail=f"Bad view line '{line}': expected '<depot-path> <{other}-path>'."))
        for side in parts:
            side = side.lstrip("-+")
            if not side.startswith("//"):
                raise CommandError(M.msg(M.BAD_VIEW, spec=spec,
                                         detail=f"Mapping '{side}' is not under '//'."))
            check_relative(side)
        if client is not None and not parts[1].lstrip("-+").startswith(f"//{client}/"):
            raise CommandError(M.msg(M.BAD_VIEW, spec=spec,
                                     detail=f"Mapping '{parts[1]}' is not under '//{client}/...'."))
        if len(parts) == 2 and _WILDCARD.findall(parts[0]) != _WILDCARD.findall(parts[1]):
            raise CommandError(M.msg(M.BAD_VIEW, spec=spec,
                                     detail=f"Wildcards in view line '{line}' must match on both sides."))


class ClientView:
    """A client spec's view and root: depot <-> //client/... <-> local path.

    Depot and client paths keep Helix's escapes (``%40`` for ``@`` ...); a local
    path is the file's real name on disk. With ``fold`` (a case-insensitive server)
    paths match the view whatever their case."""

    def __init__(self, name: str, root: str, view: list[str], *, fold: bool = False) -> None:
        self.name = name
        self.root = os.path.normpath(root)
        sides = [split_view_line(line) for line in view]
        self.map = _p4.Map([map_line(s) for s in sides])
        self.fold = fold
        self.depot_prefixes = [literal_prefix(s[0].lstrip("+")) for s in sides if not s[0].startswith("-")]
        if fold:
            # SQL prefix ranges compare case-sensitively: scan, and let the predicate decide.
            self.depot_prefixes = [""]

    def to_client(self, depot_file: str) -> str | None:
        return self._map_for(depot_file, forward=True).translate(depot_file)

    def to_depot(self, client_file: str) -> str | None:
        return self._map_for(client_file, forward=False).translate(client_file, 0)

    def _map_for(self, path: str, *, forward: bool) -> Any:
        return recased(self.map, path, forward=forward) if self.fold else self.map

    def local(self, client_file: str) -> str:
        rel = unescape(client_file[len(self.name) + 3:])
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


def recased(view: Any, path: str, *, forward: bool) -> Any:
    """``view`` with each line's literal prefix spelled as ``path`` spells it, where
    they differ only in case: P4Python's ``Map`` compares case-sensitively (it has
    no case switch), a case-insensitive server does not."""
    out = _p4.Map()
    for lhs, rhs in zip(view.lhs(), view.rhs()):
        sign = lhs[0] if lhs[:1] in ("-", "+", "&") else ""
        sides = [lhs[len(sign):].strip('"'), rhs.strip('"')]
        i = 0 if forward else 1
        lit = literal_prefix(sides[i])
        if path[:len(lit)].lower() == lit.lower():
            sides[i] = path[:len(lit)] + sides[i][len(lit):]
        out.insert(sign + sides[0], sides[1])
    return out


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


def matcher_for(arg: FileArg, view: ClientView | None, cwd: str, *, need_client: bool = False,
                fold: bool = False) -> Matcher:
    """Resolve an argument to depot space.

    Local and client syntax need a client; local paths must lie under its root.
    ``fold``: the server is case-insensitive, so names match whatever their case.
    """
    path = arg.path
    fold = view.fold if view is not None else fold
    if path.startswith("//"):
        first = path[2:].split("/", 1)[0]
        if view is not None and (first.lower() == view.name.lower() if fold else first == view.name):
            return _client_matcher(f"//{view.name}/" + path[3 + len(first):], view, arg.raw)
        return _depot_matcher(path, view if need_client else None, arg.raw, fold)
    if view is None:
        raise CommandError(M.msg(M.NOT_UNDER_ROOT, path=os.path.abspath(os.path.join(cwd, path)), root=''))
    local = os.path.normpath(os.path.join(cwd, path))
    if path.endswith("...") and not local.endswith("..."):
        local = os.path.join(local, "...")
    client_path = view.client_of_local(local)
    if client_path is None:
        raise CommandError(M.msg(M.NOT_UNDER_ROOT, path=local, root=view.root))
    return _client_matcher(client_path, view, arg.raw)


def _depot_matcher(pattern: str, view: ClientView | None, display: str, fold: bool = False) -> Matcher:
    if _WILDCARD.search(pattern):
        folded = pattern.lower() if fold else pattern
        pmap = _p4.Map(folded, folded)
        includes = (lambda d: pmap.includes(d.lower())) if fold else pmap.includes
        pred = includes
        if view is not None:
            def pred(d: str, _p: Any = includes, _v: Any = view) -> bool:
                return _p(d) and _v.to_client(d) is not None
        return Matcher(["" if fold else literal_prefix(pattern)], None, pred, display)
    if fold:
        # The stored spelling is unknown until a row is read: scan and compare folded.
        def same(d: str) -> bool:
            return d.lower() == pattern.lower()
        pred = same if view is None else (lambda d: same(d) and view.to_client(d) is not None)
        return Matcher([""], None, pred, display)
    if view is not None:
        return Matcher([pattern], pattern, lambda d: d == pattern and view.to_client(d) is not None, display)
    return Matcher([pattern], pattern, lambda d: d == pattern, display)


def _client_matcher(client_pattern: str, view: ClientView, display: str) -> Matcher:
    if not _WILDCARD.search(client_pattern):
        depot = view.to_depot(client_pattern)
        if depot is None:
            return Matcher([], None, lambda d: False, display)
        if view.fold:
            return Matcher([""], None, lambda d: d.lower() == depot.lower(), display)
        return Matcher([depot], depot, lambda d: d == depot, display)
    folded = client_pattern.lower() if view.fold else client_pattern
    cmap = _p4.Map(folded, folded)

    def pred(d: str) -> bool:
        c = view.to_client(d)
        return c is not None and cmap.includes(c.lower() if view.fold else c)

    return Matcher(list(view.depot_prefixes), None, pred, display)
