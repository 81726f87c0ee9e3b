"""Three-way merge with Helix's chunk accounting and markers."""
from __future__ import annotations

from flows.p4.sandbox.merge import has_markers, merge_binary, merge_text

BASE = b"a\nb\nc\nd\ne\n"


def merge(theirs: bytes, yours: bytes):
    return merge_text(BASE, theirs, yours, base_label="//d/m#1", theirs_label="//d/m#2", yours_label="//ws/r")


def test_one_side_changes() -> None:
    t = merge(b"A\nb\nc\nd\ne\n", BASE)
    assert (t.yours, t.theirs, t.both, t.conflicting, t.hint) == (0, 1, 0, 0, "at")
    assert t.text == b"A\nb\nc\nd\ne\n"
    y = merge(BASE, b"a\nb\nc\nd\nE\n")
    assert (y.yours, y.theirs, y.hint) == (1, 0, "ay")


def test_clean_merge_and_same_change() -> None:
    m = merge(b"A\nb\nc\nd\ne\n", b"a\nb\nc\nd\nE\n")
    assert (m.yours, m.theirs, m.conflicting, m.hint) == (1, 1, 0, "am")
    assert m.text == b"A\nb\nc\nd\nE\n"
    same = merge(b"a\nB\nc\nd\ne\n", b"a\nB\nc\nd\ne\n")
    assert same.both == 1 and same.conflicting == 0


def test_conflict_markers() -> None:
    m = merge(b"a\nTHEIRS\nc\nd\ne\n", b"a\nYOURS\nc\nd\ne\n")
    assert (m.conflicting, m.hint) == (1, "e")
    assert m.text == (b"a\n>>>> ORIGINAL //d/m#1\nb\n==== THEIRS //d/m#2\nTHEIRS\n"
                      b"==== YOURS //ws/r\nYOURS\n<<<<\nc\nd\ne\n")
    assert has_markers(m.text) and not has_markers(BASE)


def test_missing_final_newline_keeps_markers_on_their_own_lines() -> None:
    m = merge_text(b"x", b"t", b"y", base_label="b", theirs_label="t", yours_label="y")
    assert m.text.splitlines() == [b">>>> ORIGINAL b", b"x", b"==== THEIRS t", b"t", b"==== YOURS y", b"y", b"<<<<"]


def test_binary_is_never_merged() -> None:
    assert merge_binary(b"\0a", b"\0b", b"\0a").hint == "at"
    assert merge_binary(b"\0a", b"\0a", b"\0c").hint == "ay"
    both = merge_binary(b"\0a", b"\0b", b"\0c")
    assert both.hint == "e" and both.text == b"\0c"
