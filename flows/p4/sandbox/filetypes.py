"""Helix file types: ``base+modifiers``, partial ``-t +x`` specs, and the merge of two types.

``add``/``edit``/``reopen``/``move -t`` take a full type (``text+w``, ``binary``), a
partial one that only adds modifiers (``+x``: Command Reference, "File types"), or an
old-style name (``ktext``). A filetype resolve's "merged" result (``resolve -am`` on a
filetype resolve, P4Python's ``p4test.py`` testResolve: base ``text``, theirs ``text+x``,
yours ``text+w`` -> merged ``text+wx``) keeps each side's change against the base.
"""
from __future__ import annotations

# Old-style names (``p4 help filetypes``, "Old keyword") and what they mean today.
_OLD_NAMES = {
    "ctext": "text+C", "cxtext": "text+Cx", "ktext": "text+k", "kxtext": "text+kx",
    "ltext": "text+F", "tempobj": "binary+FSw", "ubinary": "binary+F", "uresource": "resource+F",
    "uxbinary": "binary+Fx", "xbinary": "binary+x", "xltext": "text+Fx", "xtempobj": "binary+Swx",
    "xtext": "text+x", "xunicode": "unicode+x", "xutf16": "utf16+x",
}
# The order Helix prints modifiers in (``text+kx``, ``text+wx``).
_ORDER = "kowxlmCDFSX"


def split(ftype: str) -> tuple[str, set[str]]:
    ftype = _OLD_NAMES.get(ftype, ftype)
    base, _, mods = ftype.partition("+")
    return base, set(mods)


def join(base: str, mods: set[str]) -> str:
    ordered = sorted(mods, key=lambda m: _ORDER.index(m) if m in _ORDER else len(_ORDER))
    return base + ("+" + "".join(ordered) if ordered else "")


def apply(current: str, spec: str) -> str:
    """The type ``-t spec`` gives a file now of type ``current``."""
    if spec.startswith("+"):
        base, mods = split(current)
        return join(base, mods | set(spec[1:]))
    base, mods = split(spec)
    return join(base or split(current)[0], mods)


def merge(base: str, theirs: str, yours: str) -> str:
    """Each side's change against the base kept: a modifier added by either side is
    added, one removed by either side is removed; a changed base type wins."""
    b_base, b_mods = split(base)
    t_base, t_mods = split(theirs)
    y_base, y_mods = split(yours)
    kind = t_base if t_base != b_base else y_base
    mods = (t_mods | y_mods) - ((b_mods - t_mods) | (b_mods - y_mods))
    return join(kind, mods)
