"""File names with Helix's reserved characters ``@ # % *``.

Helix keeps these four escaped in depot and client paths (``%40 %23 %25 %2A``) and
reads every file argument in that form: a bare ``@`` or ``#`` starts a revision
specifier and a bare ``*`` is a wildcard (Command Reference, "Limitations on
characters in filenames and entities"). Local paths printed by the server
(``clientFile`` of ``fstat``, ``resolve -n``, ``add``) are the real names on disk,
so they must be escaped again before they go back as arguments; escaped paths are
unescaped only where a person reads them.
"""
from __future__ import annotations

import re

# '%' first, so the '%' of an escape just made is never escaped again.
_ESCAPES = (("%", "%25"), ("@", "%40"), ("#", "%23"), ("*", "%2A"))
_UNESCAPE = re.compile(r"%(25|40|23|2[Aa])")
_CHARS = {"25": "%", "40": "@", "23": "#", "2A": "*", "2a": "*"}
RESERVED = frozenset("@#%*")


def escape(path: str) -> str:
    """A literal file name in the form Helix reads as that one file."""
    for char, code in _ESCAPES:
        path = path.replace(char, code)
    return path


def unescape(path: str) -> str:
    """The name on disk (and for people) of an escaped depot, client or local path."""
    return _UNESCAPE.sub(lambda m: _CHARS[m.group(1)], path)


def has_reserved(name: str) -> bool:
    return any(c in RESERVED for c in name)


def as_argument(path: str) -> str:
    """A path a person typed, in the form Helix reads: a name with a bare ``@ # *`` or a
    ``%`` that starts no escape is literal and gets escaped; otherwise it is taken as
    already escaped (as Helix prints depot paths)."""
    if any(c in path for c in "@#*") or re.search(r"%(?!25|40|23|2[Aa])", path):
        return escape(path)
    return path
