"""The watcher's manifest: one SQLite row per input file, under an exclusive lock.

``OUT_DIR/.churnctl/manifest.db`` (WAL, ``synchronous=FULL``) holds one row per
input, keyed by its name and the SHA-256 of its content (never its inode or its
first line): ``claimed`` while it is scored, then ``done`` with its outputs and
counts, or ``failed`` with the reason. Every statement runs in its own checked
transaction: a failed commit raises ``ManifestError``, it is never ignored, and
so does a manifest or lock file removed or replaced since it was opened (checked
before and after each transaction): a commit into a deleted file would be lost.
``OUT_DIR/.churnctl/lock`` is held (``flock``) by the one watcher writing there.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnctl.batch.counts import RowCounts
from churnctl.errors import ChurnctlError, Fix
from churnctl.io.locks import LockHeld, take_lock

MANIFEST_FOLDER = ".churnctl"
SCHEMA_VERSION = "1"
STATES = ("claimed", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inputs (
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('claimed', 'done', 'failed')),
    output TEXT,
    rejects TEXT,
    rows_read INTEGER,
    rows_scored INTEGER,
    rows_rejected INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    claimed_at REAL,
    finished_at REAL,
    latency_ms REAL,
    PRIMARY KEY (name, sha256)
);
CREATE INDEX IF NOT EXISTS inputs_by_state ON inputs (state, finished_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


RECORD_LOST = (
    "so its record of the files done is lost; find what deletes files in the output folder, "
    "then start the watcher again (files still in the input folder are scored again, under "
    "the same output names)"
)


class ManifestError(ChurnctlError):
    """The manifest cannot be opened, locked or committed: the watcher must stop."""

    exit_code = 1


@dataclass
class Entry:
    """One input file's row."""

    name: str
    sha256: str
    size: int
    mtime_ns: int
    inode: int
    state: str
    output: str | None = None
    rejects: str | None = None
    rows_read: int | None = None
    rows_scored: int | None = None
    rows_rejected: int | None = None
    attempts: int = 0
    error: str | None = None
    claimed_at: float | None = None
    finished_at: float | None = None
    latency_ms: float | None = None


@dataclass
class ManifestSummary:
    """What ``watch-status`` shows: counts by state, the last files and the failures."""

    by_state: dict[str, int] = field(default_factory=dict)
    last: list[Entry] = field(default_factory=list)
    failures: list[Entry] = field(default_factory=list)
    rows: RowCounts = field(default_factory=RowCounts)
    size_bytes: int = 0


def manifest_folder(out_dir: Path) -> Path:
    return Path(out_dir) / MANIFEST_FOLDER


class Manifest:
    """The SQLite manifest of one output folder (open it with ``open_manifest``)."""

    def __init__(
        self, path: Path, *, readonly: bool = False, guarded: tuple[Path, ...] = ()
    ) -> None:
        self.path = path
        self._guarded: dict[Path, tuple[tuple[int, int] | None, str]] = {}
        with _checked(path, "cannot open the manifest"):
            uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=10)
            self._db.row_factory = sqlite3.Row
            if not readonly:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
                for guarded_path in (path, *guarded):
                    self.guard(guarded_path, RECORD_LOST)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One checked, durable transaction: any failure, the commit's included, raises."""
        self._check_in_place()
        with _checked(self.path, "cannot commit to the manifest"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        self._check_in_place()

    def guard(self, path: Path, consequence: str) -> None:
        """Stop at the next commit if ``path`` is removed or replaced (``consequence`` says why)."""
        self._guarded[path] = (_identity(path), consequence)

    def _check_in_place(self) -> None:
        """Refuse to go on when a guarded file (the manifest, a lock) was removed or replaced."""
        for path, (opened, consequence) in self._guarded.items():
            now = _identity(path)
            if now != opened:
                what = "removed" if now is None else "replaced by another file"
                raise ManifestError(f"{path}: {what} while the watcher ran, {consequence}")

    def _rows(self, sql: str, *args: Any) -> list[Entry]:
        with _checked(self.path, "cannot read the manifest"):
            return [Entry(**dict(row)) for row in self._db.execute(sql, args)]

    def check_identity(self, identity: dict[str, Any]) -> None:
        """Refuse an output folder already written by another scoring configuration."""
        text = json.dumps(identity, sort_keys=True)
        with _checked(self.path, "cannot read the manifest"):
            row = self._db.execute("SELECT value FROM meta WHERE key = 'scoring'").fetchone()
        if row is None:
            with self._transaction() as db:
                db.execute("INSERT INTO meta VALUES ('scoring', ?)", (text,))
            return
        recorded = json.loads(row["value"])
        differs = sorted(
            key
            for key in identity.keys() | recorded.keys()
            if identity.get(key) != recorded.get(key)
        )
        if differs:
            raise ManifestError(
                f"{self.path.parent.parent}: its outputs were scored with another "
                f"{', '.join(differs)}; mixing them would make the folder inconsistent",
                fix=Fix("out", "a new folder", "for the new configuration"),
            )

    def lookup(self, name: str, sha256: str) -> Entry | None:
        rows = self._rows("SELECT * FROM inputs WHERE name = ? AND sha256 = ?", name, sha256)
        return rows[0] if rows else None

    def with_content(self, sha256: str) -> list[Entry]:
        """Every row of this content, whatever its name."""
        return self._rows("SELECT * FROM inputs WHERE sha256 = ?", sha256)

    def latest(self, name: str) -> Entry | None:
        """The most recently claimed row of ``name``, whatever its content."""
        rows = self._rows(
            "SELECT * FROM inputs WHERE name = ? ORDER BY claimed_at DESC LIMIT 1", name
        )
        return rows[0] if rows else None

    def claim(self, entry: Entry) -> int:
        """Mark ``entry`` claimed (inserting it or counting one more attempt); the attempts."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO inputs (name, sha256, size, mtime_ns, inode, state, output, rejects,"
                " attempts, claimed_at) VALUES (?, ?, ?, ?, ?, 'claimed', ?, ?, 1, ?)"
                " ON CONFLICT (name, sha256) DO UPDATE SET state = 'claimed',"
                " attempts = attempts + 1, claimed_at = excluded.claimed_at,"
                " size = excluded.size, mtime_ns = excluded.mtime_ns, inode = excluded.inode",
                (
                    entry.name,
                    entry.sha256,
                    entry.size,
                    entry.mtime_ns,
                    entry.inode,
                    entry.output,
                    entry.rejects,
                    time.time(),
                ),
            )
            row = db.execute(
                "SELECT attempts FROM inputs WHERE name = ? AND sha256 = ?",
                (entry.name, entry.sha256),
            ).fetchone()
        return int(row["attempts"])

    def done(self, name: str, sha256: str, counts: RowCounts, latency_ms: float | None) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE inputs SET state = 'done', rows_read = ?, rows_scored = ?,"
                " rows_rejected = ?, finished_at = ?, latency_ms = ?, error = NULL"
                " WHERE name = ? AND sha256 = ?",
                (
                    counts.read,
                    counts.scored,
                    counts.rejected,
                    time.time(),
                    latency_ms,
                    name,
                    sha256,
                ),
            )

    def failed(self, name: str, sha256: str, reason: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE inputs SET state = 'failed', error = ?, finished_at = ?"
                " WHERE name = ? AND sha256 = ?",
                (reason, time.time(), name, sha256),
            )

    def restat(self, name: str, sha256: str, stat: os.stat_result) -> None:
        """Record a new size, mtime and inode for unchanged content (a touch, a copy)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE inputs SET size = ?, mtime_ns = ?, inode = ? WHERE name = ? AND sha256 = ?",
                (stat.st_size, stat.st_mtime_ns, stat.st_ino, name, sha256),
            )

    def release(self, name: str, sha256: str) -> None:
        """Forget a claim whose input changed while it was scored."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM inputs WHERE name = ? AND sha256 = ? AND state = 'claimed'",
                (name, sha256),
            )

    def claimed(self) -> list[Entry]:
        return self._rows("SELECT * FROM inputs WHERE state = 'claimed'")

    def done_names(self) -> dict[str, tuple[int, int, int]]:
        """Each name whose latest row is done: its (size, mtime_ns, inode) when it was claimed."""
        latest: dict[str, tuple[int, int, int] | None] = {}
        with _checked(self.path, "cannot read the manifest"):
            rows = self._db.execute(
                "SELECT name, size, mtime_ns, inode, state FROM inputs ORDER BY claimed_at"
            )
            for name, size, mtime_ns, inode, state in rows:
                latest[name] = (size, mtime_ns, inode) if state == "done" else None
        return {name: stat for name, stat in latest.items() if stat is not None}

    def forget_done(self, names: Iterable[str]) -> int:
        """Drop the done rows of ``names`` (inputs that left the folder); how many names."""
        gone = [(name,) for name in names]
        if gone:
            with self._transaction() as db:
                db.executemany("DELETE FROM inputs WHERE name = ? AND state = 'done'", gone)
        return len(gone)

    def prune_older(self, days: float) -> int:
        """Drop the done and failed rows finished more than ``days`` ago; how many."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM inputs WHERE state != 'claimed' AND finished_at < ?",
                (time.time() - days * 86_400,),
            )
        return cursor.rowcount

    def summary(self, last: int = 10) -> ManifestSummary:
        with _checked(self.path, "cannot read the manifest"):
            states = self._db.execute("SELECT state, count(*) FROM inputs GROUP BY state")
            by_state = {state: 0 for state in STATES} | {row[0]: row[1] for row in states}
            scored, rejected = self._db.execute(
                "SELECT coalesce(sum(rows_scored), 0), coalesce(sum(rows_rejected), 0)"
                " FROM inputs WHERE state = 'done'"
            ).fetchone()
        return ManifestSummary(
            by_state=by_state,
            last=self._rows(
                "SELECT * FROM inputs WHERE state = 'done' ORDER BY finished_at DESC LIMIT ?",
                last,
            ),
            failures=self._rows("SELECT * FROM inputs WHERE state = 'failed' ORDER BY name"),
            rows=RowCounts.of(scored, rejected),
            size_bytes=sum(p.stat().st_size for p in self.path.parent.glob("manifest.db*")),
        )


@contextlib.contextmanager
def open_manifest(out_dir: Path) -> Iterator[Manifest]:
    """The manifest of ``out_dir``, held exclusively: a second watcher there is refused."""
    folder = manifest_folder(out_dir)
    with _checked(folder, "cannot create the manifest folder"):
        folder.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(folder / "lock", out_dir):
        manifest = Manifest(folder / "manifest.db", guarded=(folder / "lock",))
        try:
            yield manifest
        finally:
            manifest.close()


def read_manifest(out_dir: Path) -> Manifest:
    """The manifest of ``out_dir``, read-only (a running watcher may hold it)."""
    path = manifest_folder(out_dir) / "manifest.db"
    if not path.is_file():
        raise ManifestError(
            f"{out_dir}: no watch manifest here ({path} does not exist)",
            fix=Fix("out", "the folder a watcher writes to"),
        )
    return Manifest(path, readonly=True)


@contextlib.contextmanager
def _exclusive_lock(path: Path, out_dir: Path) -> Iterator[None]:
    try:
        with _checked(path, "cannot open the lock file"):
            fd = take_lock(path)
    except LockHeld as held:
        raise ManifestError(
            f"{out_dir}: another watcher (pid {held.holder}) already writes here; "
            "stop it first, or give this one another output folder"
        ) from None
    try:
        yield
    finally:
        os.close(fd)


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of ``path``, None when it is gone."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


@contextlib.contextmanager
def _checked(path: Path, what: str) -> Iterator[None]:
    """SQLite and OS errors become one ``ManifestError`` naming the manifest."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise ManifestError(f"{path}: {what} ({exc})") from None
