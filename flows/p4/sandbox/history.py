"""Integration history: which source revisions a target already has, and the base.

Helix records every integration as a pair of records (``how`` from the target's
side, e.g. "copy from", and its mirror on the source, "copy into"); ranges are
``(startFromRev, endFromRev]`` with an exclusive start, 0 meaning ``#none``.

Credit rules followed here (Helix's documented behaviour):
- a source revision inside any recorded range for (target <- source) is integrated;
- so is one pending in the client (opened and scheduled, resolved or not);
- a source revision that itself *came from* the target (target -> source) is
  skipped, so changes never bounce back;
- the base for a merge is the most recent source revision already integrated, or
  for a first merge the revision the target (or the source) was branched from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .core import Context


@dataclass(frozen=True)
class Base:
    file: str | None
    rev: int

    @property
    def baseless(self) -> bool:
        return self.file is None


def credited_revs(ctx: Context, source: str, target: str) -> set[int]:
    revs: set[int] = set()
    for r in ctx.db.execute("SELECT startFromRev, endFromRev FROM integed WHERE toFile=? AND fromFile=?",
                            (target, source)):
        revs.update(range(r["startFromRev"] + 1, r["endFromRev"] + 1))
    for r in ctx.db.execute("SELECT startFromRev, endFromRev FROM resolves WHERE client=? AND toFile=? AND fromFile=?",
                            (ctx.client, target, source)):
        revs.update(range(r["startFromRev"] + 1, r["endFromRev"] + 1))
    # Source revisions made by integrating from the target carry nothing new.
    for r in ctx.db.execute("SELECT endToRev FROM integed WHERE toFile=? AND fromFile=?", (source, target)):
        revs.add(r["endToRev"])
    return revs


def pending_credit(ctx: Context, source: str, target: str) -> bool:
    return ctx.db.execute("SELECT 1 FROM resolves WHERE client=? AND toFile=? AND fromFile=?",
                          (ctx.client, target, source)).fetchone() is not None


def find_base(ctx: Context, source: str, target: str, target_rev: int) -> Base:
    """The closest common ancestor revision, searched through the integration graph."""
    # 1. The last source revision already integrated into the target.
    row = ctx.db.execute("SELECT MAX(endFromRev) m FROM integed WHERE toFile=? AND fromFile=? AND how != 'ignored'",
                         (target, source)).fetchone()
    if row and row["m"]:
        return Base(source, row["m"])
    row = ctx.db.execute("SELECT MAX(endFromRev) m FROM integed WHERE toFile=? AND fromFile=?",
                         (target, source)).fetchone()
    if row and row["m"]:
        return Base(source, row["m"])
    # 2. The source came from the target: the target revision it was taken from.
    row = ctx.db.execute("SELECT MAX(endFromRev) m FROM integed WHERE toFile=? AND fromFile=?",
                         (source, target)).fetchone()
    if row and row["m"]:
        return Base(target, row["m"])
    # 3. Both came from a common third file (siblings branched from one parent).
    parents_t = _origins(ctx, target)
    for parent, rev in _origins(ctx, source).items():
        if parent in parents_t:
            return Base(parent, min(rev, parents_t[parent]))
    return Base(None, 0)


def _origins(ctx: Context, depot_file: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in ctx.db.execute("SELECT fromFile, MAX(endFromRev) m FROM integed WHERE toFile=? GROUP BY fromFile",
                            (depot_file,)):
        out[r["fromFile"]] = r["m"]
    return out


def rev_label(n: int) -> str:
    return "none" if n <= 0 else str(n)


def range_label(start_exclusive: int, end: int) -> str:
    first = start_exclusive + 1
    return f"#{end}" if first == end else f"#{first},#{end}"


def source_revs(ctx: Context, source: str, upto: int) -> list[Any]:
    return ctx.db.execute("SELECT * FROM revs WHERE depotFile=? AND rev<=? ORDER BY rev",
                          (source, upto)).fetchall()


def last_delete_before(ctx: Context, source: str, rev: int) -> int:
    """The source's last deleted revision below ``rev`` (0: none). Helix's integrate
    considers only the revisions after it (a re-added file is a new file) unless -Di."""
    row = ctx.db.execute("SELECT MAX(rev) m FROM revs WHERE depotFile=? AND rev<? AND action IN "
                         "('delete', 'move/delete', 'purge', 'archive')", (source, rev)).fetchone()
    return row["m"] or 0


def changed_since_integrated(ctx: Context, source: str, target: str, target_rev: int) -> bool:
    """Whether the target has revisions of its own that neither came from ``source`` nor
    were integrated back into it (Helix's test before deleting a target or re-branching
    onto a deleted one)."""
    row = ctx.db.execute("SELECT MAX(endToRev) m FROM integed WHERE toFile=? AND fromFile=?",
                         (target, source)).fetchone()
    back = ctx.db.execute("SELECT MAX(endFromRev) m FROM integed WHERE toFile=? AND fromFile=?",
                          (source, target)).fetchone()
    return target_rev > max(row["m"] or 0, back["m"] or 0)
