"""The sandbox depot on disk: metadata in SQLite, file contents in a content store.

Several processes (a worker, the UI, the tests) use one depot at once. SQLite in WAL
mode gives each command one ``BEGIN IMMEDIATE`` transaction, so commands from
different processes serialise like Helix's table locks and a crash mid-command
leaves the metadata as it was. Contents are written once under their digest
(temp file + rename), so a reader never sees half a file.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS config(name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys(name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users(
    user TEXT PRIMARY KEY, email TEXT, fullname TEXT, password TEXT,
    update_time INTEGER, access INTEGER);
CREATE TABLE IF NOT EXISTS tickets(
    ticket TEXT PRIMARY KEY, user TEXT NOT NULL, host TEXT, expires INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS clients(name TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS branches(name TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS changes(
    change INTEGER PRIMARY KEY, client TEXT, user TEXT, status TEXT NOT NULL,
    desc TEXT NOT NULL, time INTEGER NOT NULL, shelved INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS revs(
    depotFile TEXT NOT NULL, rev INTEGER NOT NULL, change INTEGER NOT NULL,
    action TEXT NOT NULL, type TEXT NOT NULL, digest TEXT, size INTEGER, time INTEGER,
    PRIMARY KEY(depotFile, rev));
CREATE INDEX IF NOT EXISTS revs_change ON revs(change);
CREATE TABLE IF NOT EXISTS integed(
    toFile TEXT NOT NULL, fromFile TEXT NOT NULL, startFromRev INTEGER NOT NULL,
    endFromRev INTEGER NOT NULL, startToRev INTEGER NOT NULL, endToRev INTEGER NOT NULL,
    how TEXT NOT NULL, change INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS integed_to ON integed(toFile);
CREATE INDEX IF NOT EXISTS integed_from ON integed(fromFile);
CREATE TABLE IF NOT EXISTS have(
    client TEXT NOT NULL, depotFile TEXT NOT NULL, rev INTEGER NOT NULL,
    PRIMARY KEY(client, depotFile));
CREATE TABLE IF NOT EXISTS working(
    client TEXT NOT NULL, depotFile TEXT NOT NULL, change INTEGER NOT NULL,
    action TEXT NOT NULL, type TEXT NOT NULL, user TEXT NOT NULL,
    haveRev INTEGER NOT NULL, locked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(client, depotFile));
CREATE INDEX IF NOT EXISTS working_file ON working(depotFile);
CREATE INDEX IF NOT EXISTS working_change ON working(change);
CREATE TABLE IF NOT EXISTS resolves(
    client TEXT NOT NULL, toFile TEXT NOT NULL, fromFile TEXT NOT NULL,
    startFromRev INTEGER NOT NULL, endFromRev INTEGER NOT NULL,
    baseFile TEXT, baseRev INTEGER NOT NULL, resolved INTEGER NOT NULL DEFAULT 0,
    how TEXT, PRIMARY KEY(client, toFile, fromFile));
CREATE TABLE IF NOT EXISTS action_resolves(
    client TEXT NOT NULL, toFile TEXT NOT NULL, kind TEXT NOT NULL, fromFile TEXT NOT NULL,
    startFromRev INTEGER NOT NULL, endFromRev INTEGER NOT NULL, baseFile TEXT, baseRev INTEGER NOT NULL,
    theirs TEXT NOT NULL, yours TEXT NOT NULL, base TEXT, resolved INTEGER NOT NULL DEFAULT 0, how TEXT,
    PRIMARY KEY(client, toFile, kind));
CREATE TABLE IF NOT EXISTS moved(
    client TEXT NOT NULL, depotFile TEXT NOT NULL, movedFile TEXT NOT NULL,
    PRIMARY KEY(client, depotFile));
CREATE TABLE IF NOT EXISTS shelved_moves(
    change INTEGER NOT NULL, depotFile TEXT NOT NULL, movedFile TEXT NOT NULL,
    PRIMARY KEY(change, depotFile));
CREATE TABLE IF NOT EXISTS shelved(
    change INTEGER NOT NULL, depotFile TEXT NOT NULL, action TEXT NOT NULL,
    type TEXT NOT NULL, digest TEXT, size INTEGER, rev INTEGER NOT NULL,
    PRIMARY KEY(change, depotFile));
CREATE TABLE IF NOT EXISTS shelved_resolves(
    change INTEGER NOT NULL, toFile TEXT NOT NULL, fromFile TEXT NOT NULL,
    startFromRev INTEGER NOT NULL, endFromRev INTEGER NOT NULL,
    baseFile TEXT, baseRev INTEGER NOT NULL, resolved INTEGER NOT NULL, how TEXT,
    PRIMARY KEY(change, toFile, fromFile));
CREATE TABLE IF NOT EXISTS limits(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS groups(name TEXT PRIMARY KEY, spec TEXT NOT NULL);
"""

EMPTY_DIGEST = hashlib.md5(b"").hexdigest().upper()


class Store:
    """One open depot. Cheap to create; one per P4 connection."""

    def __init__(self, root: str | os.PathLike[str], create: bool = True) -> None:
        self.root = Path(root).resolve()
        db_path = self.root / "db.sqlite"
        if not db_path.exists() and not create:
            raise FileNotFoundError(f"no sandbox depot at {self.root} (db.sqlite missing)")
        (self.root / "archive").mkdir(parents=True, exist_ok=True)
        # A depot shared by several users (directory writable by group/others) gives
        # what it creates the directory's own rights, so every user can add to it.
        self._dir_mode = stat.S_IMODE(self.root.stat().st_mode)
        self.db = sqlite3.connect(db_path, timeout=60, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=OFF")
        self._depth = 0
        self._settings: dict[str, str] | None = None
        # CREATE ... IF NOT EXISTS is safe to race: the loser waits on the busy timeout.
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # --- server modes --------------------------------------------------------------
    # Set once when the depot is made, like 'p4d -xi' (the 'unicode' configurable) and
    # 'p4d -C1' (case handling); read once per connection.
    @property
    def unicode(self) -> bool:
        return self._config().get("unicode") == "1"

    @property
    def case_insensitive(self) -> bool:
        return self._config().get("caseHandling") == "insensitive"

    def set_config(self, name: str, value: str) -> None:
        self.db.execute("INSERT INTO config(name, value) VALUES(?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET value=excluded.value", (name, value))
        self._settings = None

    def _config(self) -> dict[str, str]:
        if self._settings is None:
            self._settings = {r["name"]: r["value"] for r in self.db.execute("SELECT name, value FROM config")}
        return self._settings

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One command = one write transaction, taken up front so two processes
        never deadlock upgrading read locks."""
        if self._depth:
            self._depth += 1
            try:
                yield self.db
            finally:
                self._depth -= 1
            return
        self._depth = 1
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")
        finally:
            self._depth = 0

    # --- counters --------------------------------------------------------------
    def next_change(self) -> int:
        row = self.db.execute("SELECT value FROM counters WHERE name='change'").fetchone()
        value = (row["value"] if row else 0) + 1
        self.db.execute(
            "INSERT INTO counters(name, value) VALUES('change', ?) "
            "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
            (value,),
        )
        return value

    def change_counter(self) -> int:
        row = self.db.execute("SELECT value FROM counters WHERE name='change'").fetchone()
        return row["value"] if row else 0

    # --- content store -----------------------------------------------------------
    def put(self, data: bytes) -> tuple[str, int]:
        """Store bytes once; return (digest, size). Digest is MD5 like Helix's."""
        digest = hashlib.md5(data).hexdigest().upper()
        path = self._blob_path(digest)
        if not path.exists():
            if not path.parent.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                if self._dir_mode & 0o022:
                    try:
                        os.chmod(path.parent, self._dir_mode)
                    except PermissionError:  # another user made it first; its rights are set
                        pass
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)  # contents are write-once: readable by every depot user
            os.replace(tmp, path)
        return digest, len(data)

    def get(self, digest: str | None) -> bytes:
        if not digest or digest == EMPTY_DIGEST:
            return b""
        return self._blob_path(digest).read_bytes()

    def _blob_path(self, digest: str) -> Path:
        return self.root / "archive" / digest[:2] / digest


def now() -> int:
    return int(time.time())
