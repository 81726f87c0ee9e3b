"""Three-way merge the way Helix reports it.

``p4 resolve`` compares *base* (the common ancestor), *theirs* (the source
revision) and *yours* (the workspace file), counts the changed chunks as
"yours + theirs + both + conflicting", and writes conflicts between Helix's
markers. ``merge3`` gives the regions; this module does Helix's accounting.
"""
from __future__ import annotations

from dataclasses import dataclass

import merge3


@dataclass(frozen=True)
class MergeResult:
    text: bytes
    yours: int
    theirs: int
    both: int
    conflicting: int

    @property
    def hint(self) -> str:
        """P4Python's merge hint: what ``-am`` would do with this file."""
        if self.conflicting:
            return "e"
        if self.theirs and not self.yours and not self.both:
            return "at"
        if not self.theirs and not self.both:
            return "ay"
        return "am"


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def _ensure_eol(out: list[bytes]) -> None:
    if out and not out[-1].endswith(b"\n"):
        out[-1] = out[-1] + b"\n"


def merge_text(base: bytes, theirs: bytes, yours: bytes, *, base_label: str,
               theirs_label: str, yours_label: str) -> MergeResult:
    b, t, y = _lines(base), _lines(theirs), _lines(yours)
    m = merge3.Merge3(b, y, t)  # a = yours, b = theirs
    out: list[bytes] = []
    counts = {"yours": 0, "theirs": 0, "both": 0, "conflicting": 0}
    for region in m.merge_regions():
        kind = region[0]
        if kind == "unchanged":
            out.extend(b[region[1]:region[2]])
        elif kind == "a":
            counts["yours"] += 1
            out.extend(y[region[1]:region[2]])
        elif kind == "b":
            counts["theirs"] += 1
            out.extend(t[region[1]:region[2]])
        elif kind == "same":
            counts["both"] += 1
            out.extend(y[region[1]:region[2]])
        elif kind == "conflict":
            _, zs, ze, ys, ye, ts, te = region
            counts["conflicting"] += 1
            _ensure_eol(out)
            out.append(f">>>> ORIGINAL {base_label}\n".encode())
            out.extend(b[zs:ze])
            _ensure_eol(out)
            out.append(f"==== THEIRS {theirs_label}\n".encode())
            out.extend(t[ts:te])
            _ensure_eol(out)
            out.append(f"==== YOURS {yours_label}\n".encode())
            out.extend(y[ys:ye])
            _ensure_eol(out)
            out.append(b"<<<<\n")
    return MergeResult(b"".join(out), **counts)


def merge_binary(base: bytes, theirs: bytes, yours: bytes) -> MergeResult:
    """Binary files are never merged: one side changed is taken, both is a conflict."""
    t_changed, y_changed = theirs != base, yours != base
    if t_changed and y_changed and theirs != yours:
        return MergeResult(yours, 1, 1, 0, 1)
    if t_changed and not y_changed:
        return MergeResult(theirs, 0, 1, 0, 0)
    return MergeResult(yours, 1 if y_changed else 0, 0, 0, 0)


def has_markers(data: bytes) -> bool:
    return b"\n>>>> ORIGINAL " in b"\n" + data and b"\n<<<<" in b"\n" + data
