"""``resolve``: settle scheduled merges, automatically or through a ``P4.Resolver``.

Modes follow Helix: ``-am`` takes the one changed side or a clean merge and skips
conflicts; ``-as`` takes only a one-sided change; ``-af`` writes the merge with
conflict markers; ``-at``/``-ay`` take theirs/yours; ``-n`` only lists. Without a
mode, each file's merge data goes to the resolver (``run_resolve(resolver=...)``),
which answers ``at``, ``ay``, ``am``, ``ae`` (the edited result file) or ``s``.
Binary files are never merged: one changed side is taken, otherwise skipped.
Action resolves (move, filetype, delete, branch: ``actions.py``) are visited before a
file's content merge and go to ``Resolver.actionResolve``; ``-A<flags>`` limits the
kinds visited, ``-c`` the changelist.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Iterator

import P4 as _p4

from . import actions
from . import messages as M
from .core import Context, command, int_opt, is_binary_type, parse_opts, read_local, write_local
from .errors import CommandError
from .history import range_label, rev_label
from .merge import MergeResult, merge_binary, merge_text

_MODES = ("-am", "-as", "-af", "-at", "-ay")


class SandboxMergeData:
    """What P4Python hands a ``Resolver``: names, temp file paths, the merge hint."""

    def __init__(self, workdir: str, your_name: str, their_name: str, base_name: str,
                 yours: bytes, theirs: bytes, base: bytes, merged: MergeResult) -> None:
        self.your_name, self.their_name, self.base_name = your_name, their_name, base_name
        self.your_path = os.path.join(workdir, "yours")
        self.their_path = os.path.join(workdir, "theirs")
        self.base_path = os.path.join(workdir, "base")
        self.result_path = os.path.join(workdir, "result")
        for path, data in ((self.your_path, yours), (self.their_path, theirs),
                           (self.base_path, base), (self.result_path, merged.text)):
            with open(path, "wb") as fh:
                fh.write(data)
        self.merge_hint = merged.hint
        self._merged = merged

    def run_merge(self) -> bool:
        """P4Python runs P4MERGE here; the sandbox has no GUI, so the result file stands."""
        return True

    def __str__(self) -> str:
        return (f"P4MergeData\n\tyour_name: {self.your_name}\n\ttheir_name: {self.their_name}\n"
                f"\tbase_name: {self.base_name}\n\tmerge_hint: {self.merge_hint}")


@command("resolve")
def cmd_resolve(ctx: Context, args: list[str]) -> Iterator[Any]:
    spec = {m: False for m in _MODES}
    spec.update({"-n": False, "-f": False, "-o": False, "-t": False, "-v": False, "-c": True,
                 "-N": False, "-db": False, "-dw": False, "-dl": False, "-A": True})
    opts, rest = parse_opts(args, spec, "resolve")
    modes = [m for m in _MODES if opts.get(m)]
    if len(modes) > 1:
        raise CommandError(M.msg(M.usage("resolve")))
    kinds = _kinds(opts.get("-A"))
    view = ctx.view()
    assert view is not None
    matchers = [ctx.matcher(r, need_client=True)[1] for r in rest] if rest else [None]
    change = (0 if opts["-c"] == "default" else int_opt(opts["-c"])) if opts.get("-c") else None
    items = _scheduled(ctx, bool(opts.get("-f")), change, kinds, matchers)
    if not items:
        if rest:
            for raw in rest:
                yield M.msg(M.NO_FILES_TO_RESOLVE, argc=raw)
        else:
            yield M.msg(M.NO_FILES_TO_RESOLVE)
        return
    mode, preview = (modes[0] if modes else None), bool(opts.get("-n"))
    try:
        for _, _, kind, rowid in items:
            if kind == "content":
                yield from _resolve_one(ctx, view, rowid, mode, preview)
            else:
                yield from actions.resolve_one(ctx, view, rowid, mode, preview)
    except actions.ResolveQuit:
        return


def _kinds(flags: str | None) -> set[str]:
    """``-A<flags>`` limits the kinds resolved (a: attributes, b: branch, c: content,
    d: delete, m: move, t: filetype); without it every kind is."""
    by_letter = {v: k for k, v in actions.FLAGS.items()}
    if flags is None:
        return set(actions.FLAGS)
    unknown = [ch for ch in flags if ch not in by_letter and ch != "a"]
    if unknown:
        raise CommandError(M.msg(M.INVALID_OPTION, option=f"A{flags}"), M.msg(M.usage("resolve")))
    return {by_letter[ch] for ch in flags if ch in by_letter}


def _scheduled(ctx: Context, include_resolved: bool, change: int | None, kinds: set[str],
               matchers: list[Any]) -> list[tuple[str, int, str, int]]:
    """Every scheduled resolve to visit, per target file: its name first, content last."""
    def wanted(target: str) -> bool:
        return any(m is None or m(target) for m in matchers)
    items: list[tuple[str, int, str, int]] = []
    if "content" in kinds:
        q = "SELECT r.rowid rid, r.* FROM resolves r JOIN working w ON w.client=r.client AND w.depotFile=r.toFile " \
            "WHERE r.client=?" + ("" if include_resolved else " AND r.resolved=0")
        params: list[Any] = [ctx.client]
        if change is not None:
            q += " AND w.change=?"
            params.append(change)
        for r in ctx.db.execute(q, params).fetchall():
            if r["how"] in ("branch from", "delete from") or not wanted(r["toFile"]):
                continue
            if actions.blocks_content(ctx, r["toFile"]):
                continue
            items.append((r["toFile"], actions.ORDER["content"], "content", r["rid"]))
    for a in actions.pending(ctx, include_resolved, change):
        if a["kind"] in kinds and wanted(a["toFile"]):
            items.append((a["toFile"], actions.ORDER[a["kind"]], a["kind"], a["rid"]))
    return sorted(items)


def _resolve_one(ctx: Context, view: Any, rowid: int, mode: str | None, preview: bool) -> Iterator[Any]:
    r = ctx.db.execute("SELECT r.*, w.type wtype FROM resolves r JOIN working w ON w.client=r.client AND "
                       "w.depotFile=r.toFile WHERE r.rowid=?", (rowid,)).fetchone()
    if r is None:
        return
    target, source = r["toFile"], r["fromFile"]
    local = view.local_of(target)
    client_file = view.to_client(target)
    src = ctx.db.execute("SELECT * FROM revs WHERE depotFile=? AND rev=?", (source, r["endFromRev"])).fetchone()
    binary = is_binary_type(r["wtype"]) or (src is not None and is_binary_type(src["type"]))
    baseless = r["baseFile"] is None
    kind = ("2way" if baseless else "3way") + ("raw" if binary else "text")
    yield {"clientFile": local, "fromFile": source, "startFromRev": rev_label(r["startFromRev"]),
           "endFromRev": str(r["endFromRev"]), "resolveType": "content", "resolveFlag": "c",
           "contentResolveType": kind}
    if preview:
        return
    theirs = ctx.store.get(src["digest"]) if src is not None else b""
    yours = read_local(local) or b""
    base = b""
    if not baseless:
        brow = ctx.db.execute("SELECT digest FROM revs WHERE depotFile=? AND rev=?",
                              (r["baseFile"], r["baseRev"])).fetchone()
        base = ctx.store.get(brow["digest"]) if brow else b""
    their_name = f"{source}{range_label(r['startFromRev'], r['endFromRev'])}"
    base_name = f"{r['baseFile']}#{r['baseRev']}" if not baseless else ""
    if binary:
        merged = merge_binary(base, theirs, yours)
    else:
        merged = merge_text(base, theirs, yours, base_label=base_name or "(none)",
                            theirs_label=f"{source}#{r['endFromRev']}", yours_label=client_file or local)
        yield M.msg(M.DIFF_CHUNKS, yours=merged.yours, theirs=merged.theirs, both=merged.both,
                    conflicting=merged.conflicting)
    answer, result = _decide(ctx, mode, merged, binary, local, client_file, their_name, base_name,
                             yours, theirs, base)
    if answer == "s":
        yield M.msg(M.RESOLVE_SKIPPED, toFile=client_file or local)
        return
    how = _how(answer, result, theirs, yours, merged)
    write_local(local, result, writable=True)
    ctx.db.execute("UPDATE resolves SET resolved=1, how=? WHERE rowid=?", (how, rowid))
    yield M.msg(M.RESOLVED_FILE, toFile=client_file or local, how=how, fromFile=source)


def _decide(ctx: Context, mode: str | None, merged: MergeResult, binary: bool, local: str,
            client_file: str | None, their_name: str, base_name: str, yours: bytes, theirs: bytes,
            base: bytes) -> tuple[str, bytes]:
    hint = merged.hint
    if mode == "-at":
        return "at", theirs
    if mode == "-ay":
        return "ay", yours
    if mode == "-am":
        if hint == "e" or (binary and hint == "am"):
            return "s", b""
        return hint, {"at": theirs, "ay": yours}.get(hint, merged.text)
    if mode == "-as":
        if hint in ("at", "ay"):
            return hint, theirs if hint == "at" else yours
        return "s", b""
    if mode == "-af":
        if binary:
            return "s", b""
        return "am", merged.text
    resolver = ctx.resolver if ctx.resolver is not None else _p4.Resolver()
    workdir = tempfile.mkdtemp(prefix="p4sandbox-resolve-")
    try:
        md = SandboxMergeData(workdir, client_file or local, their_name, base_name, yours, theirs, base, merged)
        answer = resolver.resolve(md)
        if answer not in ("at", "ay", "am", "ae", "s"):
            raise CommandError(M.msg(M.RESOLVE_BAD_ANSWER, answer=answer))
        if answer == "ae":
            with open(md.result_path, "rb") as fh:
                return "ae", fh.read()
        if answer == "am" and binary:
            return "s", b""
        return answer, {"at": theirs, "ay": yours, "am": merged.text, "s": b""}[answer]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _how(answer: str, result: bytes, theirs: bytes, yours: bytes, merged: MergeResult) -> str:
    """The integration record Helix writes for this outcome."""
    if answer == "at" or (answer in ("am", "ae") and result == theirs):
        return "copy from"
    if answer == "ay" or (answer in ("am", "ae") and result == yours):
        return "ignored"
    if answer == "am" and not merged.conflicting:
        return "merge from"
    return "edit from"
