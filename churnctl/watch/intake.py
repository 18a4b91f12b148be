"""One complete file of the landing folder: taken, claimed, scored, committed, disposed of.

Each input file is scored by ``score_file`` (the same ``Scorer`` and input
policy as ``churnctl score``) into one output and one rejects file with
deterministic names (input name + content hash), published atomically. The
commit order makes a crash at any moment harmless:

1. claim the file in the manifest (name + content SHA-256, one attempt more);
2. write and publish the output and rejects files;
3. commit the manifest row as ``done``;
4. only then keep, archive or delete the input.

On restart (``reconcile``, ``recover_asides``) claimed rows whose files are
published are marked done and the others are redone. A file that fails
``max_attempts`` times, or is refused as a whole, is quarantined; one that cannot
even be quarantined is recorded as failed and skipped.

A file is taken by its descriptor (``held.HeldFile``): only a regular file is
read, and the inode read is the one hashed, scored, committed and disposed of,
whatever happens to its name meanwhile. An input that vanishes before an action
is logged (``vanished``), never fatal.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from churnctl.atomic import probe_writable
from churnctl.batch.counts import RowCounts
from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.errors import ChurnctlError, Fix, OutputError, UsageError
from churnctl.faults import checkpoint
from churnctl.features.drift import DriftReport
from churnctl.io.completeness import Pending
from churnctl.io.held import HeldFile, NotRegular
from churnctl.io.naming import derived_names
from churnctl.names import NAME_MAX, name_max
from churnctl.watch.disposal import (
    ASIDE_PREFIX,
    Aside,
    Refusal,
    aside_name,
    aside_original,
    dispose,
    dispose_marker,
    finish,
    put_back,
    quarantine,
)
from churnctl.watch.manifest import Entry, Manifest, ManifestError
from churnctl.watch.published import published_counts
from churnctl.watch.settings import WatchSettings, reason_of

RETRY_DELAY = 1.0  # seconds before an unexpected failure is retried
REPROCESS_FIX = Fix("reprocess_changed", True)


@dataclass
class WatchEvent:
    """What happened to one file (or to the watcher): for logs and live status.

    ``kind``: started, scored, failed, changed, retry, overflow, reconciled, incomplete,
    skipped (not a regular file, or a name that is not text), vanished (gone before an
    action), put-back (a file renamed over an input was left in its place), stuck
    (scored, but could not be archived or deleted). ``fix`` is a remedy, if any.
    """

    kind: str
    input: str
    output: str | None = None
    rejects: str | None = None
    counts: RowCounts | None = None
    latency_ms: float | None = None
    message: str = ""
    at: float = field(default_factory=time.time)
    fix: Fix | None = None
    drift: DriftReport | None = None  # a scored file's drift (None: not checked)


@dataclass
class WatchReport:
    """What one run did: files scored and failed, rows, files left incomplete (``once``)."""

    scored: int = 0
    failed: int = 0
    rows: RowCounts = field(default_factory=RowCounts)
    left: list[str] = field(default_factory=list)


EventSink = Callable[[WatchEvent], None]
Identity = tuple[int, int, int, int]  # (inode, mode, size, mtime_ns) of an entry, by lstat


class Intake:
    """What the watcher knows of each name, and the handling of one complete file.

    The ``Watcher`` finds the files that are complete; this takes each one through the
    commit order (see the module docstring) and remembers what it left alone.
    """

    def __init__(self, settings: WatchSettings, on_event: EventSink | None = None) -> None:
        self.settings = settings
        self.on_event = on_event or (lambda event: None)
        self.report = WatchReport()
        self.pending: dict[str, Pending] = {}
        self._changed: dict[str, tuple[int, int]] = {}  # logged as changed: (size, mtime_ns)
        self._skipped: dict[str, Identity] = {}  # logged as skipped, or failed for good
        self._redo: set[str] = set()
        self._removed: set[str] = set()  # deleted or moved away since: a file there now is new
        self._returned: dict[str, int] = {}  # name → inode of a file put back there
        self._manifest: Manifest | None = None
        self._limit = NAME_MAX  # of the output folder, once it exists (run)

    def process(self, name: str, pending: Pending) -> None:
        """Take one complete file by its descriptor, and go on with what was taken."""
        path = self.settings.in_dir / name
        checkpoint("before-take")
        try:
            held = HeldFile.take(path)
        except FileNotFoundError:
            self._vanished(name, "deleted or moved away before it was read")
            return
        except NotRegular as exc:
            with contextlib.suppress(OSError):
                self.skip(name, os.lstat(path), f"{exc.kind}, not a regular file")
            return
        except OSError as exc:
            self._unreadable(name, exc)
            return
        with held:
            try:
                sha = held.sha256()
            except OSError as exc:
                self._unreadable(name, exc, held.stat)
                return
            self._process_held(held, sha, pending)

    def _process_held(self, held: HeldFile, sha: str, pending: Pending) -> None:
        """Score one taken file, in the commit order; see the module docstring."""
        s, manifest, name = self.settings, self.checked_manifest(), held.path.name
        entry = manifest.lookup(name, sha)
        if entry is not None and entry.state != "claimed":
            self._finish_earlier(held, entry)
            return
        if not self._may_score(name, sha, held.stat):
            return
        output, rejects = derived_names(name, sha, s.format, self._limit)
        claim = Entry(
            name,
            sha,
            held.stat.st_size,
            held.stat.st_mtime_ns,
            held.stat.st_ino,
            "claimed",
            output,
            rejects,
        )
        attempts = manifest.claim(claim)
        self._redo.discard(name)
        self._removed.discard(name)
        if attempts > s.max_attempts:
            reason = f"the watcher stopped while scoring it {attempts - 1} times"
            self._fail(held, sha, Refusal(reason, attempts))
            return
        self._score(held, claim, attempts, pending)

    def _score(self, held: HeldFile, claim: Entry, attempts: int, pending: Pending) -> None:
        s, manifest = self.settings, self.checked_manifest()
        output, rejects = s.out_dir / str(claim.output), s.out_dir / str(claim.rejects)
        request = ScoreRequest(
            input=str(held.path),
            output=str(output),
            scorer=s.scorer,
            format=s.format,
            rejects=str(rejects),
            max_rejects=s.max_rejects,
            read_options=s.read_options,
            read_from=held.read_path,
            sidecar=False,  # the folder's _lineage.json records every output in it
            drift=s.drift,
        )
        try:
            summary = score_file(request)
        except (ManifestError, UsageError):
            raise  # the manifest or the settings are wrong: stop, loudly
        except OutputError as exc:
            probe_writable(s.out_dir)  # the output folder itself is at fault: stop, loudly
            self._retry(held, claim.sha256, exc.message, attempts, exc.fix)
            return
        except ChurnctlError as exc:  # the file as a whole is refused
            self._fail(held, claim.sha256, Refusal(exc.message, attempts, exc.fix))
            return
        except Exception as exc:  # unexpected: retried, then quarantined
            self._retry(held, claim.sha256, f"{type(exc).__name__}: {exc}", attempts)
            return
        if not held.read_intact():
            self._discard(claim, output, rejects)
            return
        counts = summary.rows
        latency = (time.monotonic() - pending.seen_at) * 1000
        manifest.done(claim.name, claim.sha256, counts, latency)
        checkpoint("after-commit")
        self.report.scored += 1
        self.report.rows += counts
        where = (str(output), str(rejects))
        drift = summary.drift
        self.on_event(WatchEvent("scored", claim.name, *where, counts, latency, drift=drift))
        self._dispose(held, claim.sha256)

    def _finish_earlier(self, held: HeldFile, entry: Entry) -> None:
        """A file already done or failed: finish what a crash interrupted, or note a touch."""
        if entry.state == "failed":
            refusal = Refusal(entry.error or "failed", entry.attempts)
            if self._quarantine(held, entry.sha256, refusal) is None:
                self.report.failed += 1
            return
        self.checked_manifest().restat(entry.name, entry.sha256, held.stat)
        self._dispose(held, entry.sha256)

    def _may_score(self, name: str, sha: str, stat: os.stat_result) -> bool:
        """New content under a done name: a re-upload is scored, an edit is not.

        An edit is new content in the scored file itself: kept (not archived or deleted by
        the watcher), not deleted or moved away since, same inode. A file deleted and
        written again may get the old inode number back: it is a re-upload all the same.
        """
        latest = self.checked_manifest().latest(name)
        edited = (
            self.settings.after == "keep"
            and name not in self._removed
            and latest is not None
            and latest.state == "done"
            and latest.inode == stat.st_ino
        )
        if not edited or self.settings.reprocess_changed:
            return True
        self._changed[name] = (stat.st_size, stat.st_mtime_ns)
        message = "changed in place after it was scored; left alone"
        self.on_event(WatchEvent("changed", name, message=message, fix=REPROCESS_FIX))
        return False

    def _discard(self, claim: Entry, output: Path, rejects: Path) -> None:
        """The input changed in place while it was scored: drop the outputs, look again later."""
        for published in (output, rejects):
            published.unlink(missing_ok=True)
        self.checked_manifest().release(claim.name, claim.sha256)
        self.pending[claim.name] = Pending()
        self.on_event(WatchEvent("retry", claim.name, message="changed while it was scored"))

    def _retry(
        self, held: HeldFile, sha: str, reason: str, attempts: int, fix: Fix | None = None
    ) -> None:
        if attempts >= self.settings.max_attempts:
            self._fail(held, sha, Refusal(reason, attempts, fix))
            return
        again = time.monotonic() + RETRY_DELAY
        self.pending[held.path.name] = Pending(renamed_in=True, not_before=again)
        message = f"attempt {attempts}: {reason}"
        self.on_event(WatchEvent("retry", held.path.name, message=message, fix=fix))

    def _fail(self, held: HeldFile, sha: str, refusal: Refusal) -> None:
        self.checked_manifest().failed(held.path.name, sha, refusal.reason)
        self.report.failed += 1
        self._quarantine(held, sha, refusal)

    def _quarantine(self, held: HeldFile, sha: str, refusal: Refusal) -> Path | None:
        """Move a refused file into ``.failed/`` and log it; where it went (None: it did not)."""
        name, message = held.path.name, refusal.reason
        try:
            taken = quarantine(held.path, sha, refusal, held.stat)
        except FileNotFoundError:
            taken = Aside()
            self._vanished(name, "deleted or moved away before it could be quarantined")
        except (OSError, ChurnctlError) as exc:
            self._skipped[name] = identity(held.stat)
            taken, message = (
                Aside(),
                (
                    f"{message}; cannot move it into quarantine ({reason_of(exc)}): left in place, "
                    "skipped until it changes or the watcher starts again"
                ),
            )
        self._moved_meanwhile(name, taken, "quarantined")
        where = None if taken.path is None else str(taken.path)
        self.on_event(WatchEvent("failed", name, output=where, message=message, fix=refusal.fix))
        return taken.path

    def _dispose(self, held: HeldFile, sha: str) -> None:
        """Keep, archive or delete a scored input: only the inode that was scored."""
        s, name = self.settings, held.path.name
        try:
            taken = dispose(held.path, s.after, s.archive, sha, held.stat)
            if s.rules.done_marker and taken.path is not None:  # a new file keeps its marker
                dispose_marker(
                    held.path.with_name(name + s.rules.done_marker), s.after, s.archive, sha
                )
        except FileNotFoundError:
            self._vanished(
                name, f"deleted or moved away before it could be {s.after}d; its outputs stand"
            )
            return
        except OSError as exc:
            for folder in {s.in_dir, s.archive} if s.after == "archive" else {s.in_dir}:
                probe_writable(folder)  # a folder at fault: stop, loudly
            self._skipped[name] = identity(held.stat)
            self.on_event(
                WatchEvent(
                    "stuck",
                    name,
                    message=(
                        f"scored, but cannot {s.after} it ({reason_of(exc)}); left in place until "
                        "the watcher starts again"
                    ),
                )
            )
            return
        self._moved_meanwhile(name, taken, f"{s.after}d")
        if s.after != "keep":
            checkpoint("after-archive")

    def _moved_meanwhile(self, name: str, taken: Aside, action: str) -> None:
        """Log a file renamed over an input before it was moved: that file is a new input."""
        if taken.replaced:
            self._vanished(
                name,
                f"replaced by another file before it could be {action}; that file is a new input",
            )
        if taken.stranger is None:
            return
        self.pending[taken.stranger.name] = Pending(renamed_in=True)
        with contextlib.suppress(OSError):
            self._returned[taken.stranger.name] = os.lstat(taken.stranger).st_ino
        self.on_event(
            WatchEvent(
                "put-back",
                name,
                output=str(taken.stranger),
                message=(
                    f"another file was renamed over it as it was being {action}; that file was put "
                    f"back in the input folder as {taken.stranger.name}"
                ),
            )
        )

    def skip(self, name: str, stat: os.stat_result, reason: str) -> None:
        """Leave an entry alone, logged once (until its name holds something else)."""
        self.pending.pop(name, None)
        if not self._first_time(name, stat):
            return
        self.on_event(WatchEvent("skipped", _printable(name), message=f"{reason}; never read"))

    def _unreadable(self, name: str, exc: OSError, stat: os.stat_result | None = None) -> None:
        """A regular file that cannot be opened or read: a failure, logged once, left in place."""
        try:
            stat = stat or os.lstat(self.settings.in_dir / name)
        except OSError:
            return
        if not self._first_time(name, stat):
            return
        self.report.failed += 1
        self.on_event(
            WatchEvent(
                "failed",
                name,
                message=(
                    f"cannot read it ({reason_of(exc)}); left in place, skipped until it "
                    "changes or the watcher starts again"
                ),
            )
        )

    def _first_time(self, name: str, stat: os.stat_result) -> bool:
        """Whether this entry is left alone for the first time (its name held other content)."""
        if self._skipped.get(name) == identity(stat):
            return False
        self._skipped[name] = identity(stat)
        return True

    def _vanished(self, name: str, message: str) -> None:
        self.on_event(WatchEvent("vanished", name, message=message))

    def reconcile(self) -> None:
        """Claimed rows left by a crash: published ones become done, the others are redone."""
        s, manifest = self.settings, self.checked_manifest()
        for entry in manifest.claimed():
            output, rejects = s.out_dir / str(entry.output), s.out_dir / str(entry.rejects)
            if output.exists() and rejects.exists():  # rejects is renamed last
                manifest.done(entry.name, entry.sha256, published_counts(output, rejects), None)
                self.on_event(WatchEvent("reconciled", entry.name, str(output), str(rejects)))
            elif (s.in_dir / entry.name).exists():
                self._redo.add(entry.name)
            else:
                manifest.release(entry.name, entry.sha256)

    def recover_asides(self) -> None:
        """Files a crash left at their private names: finish archiving or deleting, or put back."""
        s = self.settings
        for aside in sorted(s.in_dir.glob(ASIDE_PREFIX + "*")):
            try:
                with HeldFile.take(aside) as held:
                    sha = held.sha256()
            except OSError:
                continue  # not a regular file, or gone: not ours to move
            entry = self._aside_entry(aside.name, sha)
            if entry is not None and entry.state == "done" and s.after != "keep":
                finish(aside, entry.name, s.after, s.archive, sha)
                message = f"{s.after}d after a crash"
            else:
                name = entry.name if entry is not None else aside_original(aside)
                message = f"put back as {put_back(aside, s.in_dir / name).name} after a crash"
            self.on_event(WatchEvent("reconciled", aside.name, message=message))

    def _aside_entry(self, aside: str, sha: str) -> Entry | None:
        limit = name_max(self.settings.in_dir)
        return next(
            (
                e
                for e in self.checked_manifest().with_content(sha)
                if aside_name(e.name, limit) == aside
            ),
            None,
        )

    def checked_manifest(self) -> Manifest:
        if self._manifest is None:
            raise ManifestError("the watcher is not running; call run()")
        return self._manifest


def identity(stat: os.stat_result) -> Identity:
    return stat.st_ino, stat.st_mode, stat.st_size, stat.st_mtime_ns


def _printable(name: str) -> str:
    """A name as text: bytes that are not UTF-8 shown as ``\\xff`` escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")
