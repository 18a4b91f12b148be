"""Streaming scoring of a landing folder: each complete file scored exactly once.

Each input file is scored by ``score_file`` (the same ``Scorer`` and input
policy as ``churnctl score``) into one output and one rejects file with
deterministic names (input name + content hash), published atomically. The
commit order makes a crash at any moment harmless:

1. claim the file in the manifest (name + content SHA-256, one attempt more);
2. write and publish the output and rejects files;
3. commit the manifest row as ``done``;
4. only then keep, archive or delete the input.

On restart the watcher locks the output folder, removes temporary files, marks
claimed rows whose files are published as done and redoes the others. A file
that fails ``max_attempts`` times, or is refused as a whole, is quarantined.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from churnctl.arrivals import (
    Events,
    Hint,
    NameRules,
    Pending,
    Readiness,
    list_inputs,
    marker_readiness,
    readiness,
)  # fmt: skip
from churnctl.disposal import ARCHIVE_FOLDER, check_after, dispose, quarantine
from churnctl.errors import ChurnctlError, OutputError, UsageError
from churnctl.faults import checkpoint
from churnctl.file_scoring import ScoreRequest, score_file
from churnctl.manifest import Counts, Entry, Manifest, ManifestError, open_manifest
from churnctl.paths import derived_names, file_sha256
from churnctl.rejects import DEFAULT_LIMIT, RejectLimit
from churnctl.scorer import Scorer
from churnctl.sinks import output_format
from churnctl.sources import ReadOptions

PENDING_CHECK = 0.05  # seconds between looks at files not yet complete
RETRY_DELAY = 1.0  # seconds before an unexpected failure is retried


@dataclass
class WatchSettings:
    """Everything one watcher needs; times in seconds."""

    in_dir: Path
    out_dir: Path
    scorer: Scorer
    format: str = "csv"
    max_rejects: RejectLimit = DEFAULT_LIMIT
    read_options: ReadOptions = field(default_factory=ReadOptions)
    rules: NameRules = field(default_factory=NameRules)
    settle: float = 1.0
    rescan: float = 30.0
    poll: float | None = None
    after: str = "keep"
    archive_dir: Path | None = None
    retain_days: float | None = None
    max_attempts: int = 3
    reprocess_changed: bool = False
    once: bool = False

    def __post_init__(self) -> None:
        self.in_dir, self.out_dir = Path(self.in_dir), Path(self.out_dir)
        check_after(self.after)
        output_format(f"output.{self.format}", self.format)
        for name, least in (("settle", 0), ("rescan", 0.01), ("poll", 0.01), ("retain_days", 0)):
            value = getattr(self, name)
            if value is not None and not value >= least:
                raise UsageError(f"{name} must be >= {least}, got {value}")
        if self.max_attempts < 1:
            raise UsageError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not self.in_dir.is_dir():
            raise UsageError(f"{self.in_dir}: not a folder; name the folder files land in")
        if self.out_dir.resolve() == self.in_dir.resolve():
            raise UsageError(
                f"{self.out_dir}: the output folder is the input folder: outputs would be "
                "scored again as inputs; choose another output folder"
            )

    @property
    def archive(self) -> Path:
        return self.archive_dir or self.in_dir / ARCHIVE_FOLDER


@dataclass
class WatchEvent:
    """What happened to one file (or to the watcher): for logs and live status."""

    kind: str  # started | scored | failed | changed | retry | overflow | reconciled
    input: str
    output: str | None = None
    rejects: str | None = None
    counts: Counts | None = None
    latency_ms: float | None = None
    message: str = ""
    at: float = field(default_factory=time.time)


@dataclass
class WatchReport:
    """What one run did: files scored and failed, rows, files left incomplete (``once``)."""

    scored: int = 0
    failed: int = 0
    rows: Counts = field(default_factory=lambda: Counts(0, 0, 0))
    left: list[str] = field(default_factory=list)


EventSink = Callable[[WatchEvent], None]


class Watcher:
    """Scores the complete files of ``settings.in_dir``, exactly once, until stopped."""

    def __init__(self, settings: WatchSettings, on_event: EventSink | None = None) -> None:
        self.settings = settings
        self.on_event = on_event or (lambda event: None)
        self.report = WatchReport()
        self.pending: dict[str, Pending] = {}
        self._stopping = False
        self._changed: dict[str, tuple[int, int]] = {}  # logged as changed: (size, mtime_ns)
        self._redo: set[str] = set()
        self._removed: set[str] = set()  # deleted or moved away since: a file there now is new
        self._manifest: Manifest | None = None

    def stop(self) -> None:
        """Finish the current file, commit, and return from ``run`` (signal-safe)."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    def run(self) -> WatchReport:
        """Watch until ``stop`` (or, with ``once``, until no complete file is left)."""
        s = self.settings
        with open_manifest(s.out_dir) as manifest:
            self._manifest = manifest
            manifest.check_identity(scoring_identity(s))
            remove_temporaries(s.out_dir)
            self._reconcile()
            events = None if s.once or s.poll is not None else Events(s.in_dir, s.rules)
            if events is not None:
                events.start()  # before the first listing: nothing arriving meanwhile is missed
            self.on_event(WatchEvent("started", str(s.in_dir), str(s.out_dir)))
            try:
                self._loop(events)
            finally:
                if events is not None:
                    events.stop()
        return self.report

    def _loop(self, events: Events | None) -> None:
        interval = self.settings.poll if self.settings.poll is not None else self.settings.rescan
        next_scan = 0.0
        while not self._stopping:
            if time.monotonic() >= next_scan:
                self._scan()
                next_scan = time.monotonic() + interval
            self._process_ready()
            if self.settings.once and self._nothing_to_wait_for():
                self.report.left = sorted(self.pending)
                return
            self._wait(events, next_scan)

    def _wait(self, events: Events | None, next_scan: float) -> None:
        """Sleep until a hint arrives, a pending file is due for a look, or the next scan."""
        timeout = next_scan - time.monotonic()
        if self.pending:
            timeout = min(timeout, PENDING_CHECK)
        timeout = max(min(timeout, 0.2), 0.0)  # wake often enough to notice stop()
        if events is None:
            time.sleep(timeout)
            return
        hint = events.get(timeout)
        if hint is not None:
            self._take(hint)
            for more in events.drain():
                self._take(more)
        if events.overflowed.is_set():
            events.overflowed.clear()
            self.on_event(WatchEvent("overflow", str(self.settings.in_dir),
                                     message="event queue overflowed; rescanning"))  # fmt: skip
            self._scan()

    def _take(self, hint: Hint) -> None:
        if hint.kind == "gone":
            self.pending.pop(hint.name, None)
            self._removed.add(hint.name)
        elif hint.kind in ("renamed-in", "marker"):
            self.pending[hint.name] = Pending(renamed_in=True, seen_at=hint.at)
        else:
            pending = self.pending.setdefault(hint.name, Pending(seen_at=hint.at))
            pending.writing = hint.kind == "writing"

    def _nothing_to_wait_for(self) -> bool:
        """With ``once``: every file left is waiting for something that waiting will not bring.

        That is the verdict of the last look at each file (``_complete``), never a new
        reading of the clock: on a slow machine a file found not yet quiet must be
        looked at again, not given up on.
        """
        settle, now = self.settings.settle, time.monotonic()
        marked = self.settings.rules.done_marker is not None
        return all(p.status is Readiness.INCOMPLETE
                   or (marked and p.status is Readiness.WAITING and now - p.seen_at >= settle)
                   for p in self.pending.values())  # fmt: skip

    def _scan(self) -> None:
        """List the folder: the truth that events only hint at."""
        s, manifest = self.settings, self._checked_manifest()
        listed = list_inputs(s.in_dir, s.rules)
        known = manifest.done_names()
        for name, stat in listed.items():
            seen = (stat.st_size, stat.st_mtime_ns)
            if name in self.pending or self._changed.get(name) == seen:
                continue
            unchanged = known.get(name) == (*seen, stat.st_ino)
            if unchanged and s.after == "keep":
                continue
            self.pending[name] = Pending(renamed_in=name in self._redo or unchanged)
        for name in [n for n in self.pending if n not in listed]:
            del self.pending[name]
        self._changed = {n: v for n, v in self._changed.items() if n in listed}
        self._removed &= set(listed)  # the done rows of the others are pruned or forgotten
        if s.after == "keep":
            manifest.forget_done(name for name in known if name not in listed)
        if s.retain_days is not None:
            manifest.prune_older(s.retain_days)

    def _process_ready(self) -> None:
        ready = []
        for name, pending in list(self.pending.items()):
            path = self.settings.in_dir / name
            try:
                stat = path.stat()
            except FileNotFoundError:
                del self.pending[name]
                continue
            if time.monotonic() >= pending.not_before and self._complete(name, pending, stat):
                ready.append((stat.st_mtime_ns, name))
        for _, name in sorted(ready):
            if self._stopping:
                return
            pending = self.pending.pop(name)
            self._process(name, pending)

    def _complete(self, name: str, pending: Pending, stat: os.stat_result) -> bool:
        path, marker = self.settings.in_dir / name, self.settings.rules.done_marker
        if marker is not None:
            status = marker_readiness(path.with_name(name + marker), stat)
        else:
            status = readiness(pending, stat, path, self.settings.settle)
        pending.status = status
        if status is Readiness.INCOMPLETE and not pending.reported:
            pending.reported = True
            self.on_event(WatchEvent("incomplete", name, message=(
                f"unchanged for {self.settings.settle:g} s but its content is cut short "
                "(a CSV must end with a newline); waiting for the rest"
            )))  # fmt: skip
        return status is Readiness.READY

    def _process(self, name: str, pending: Pending) -> None:
        """Score one complete file, in the commit order; see the module docstring."""
        s, manifest = self.settings, self._checked_manifest()
        path = s.in_dir / name
        try:
            stat, sha = path.stat(), file_sha256(path)
        except FileNotFoundError:
            return
        entry = manifest.lookup(name, sha)
        if entry is not None and entry.state != "claimed":
            self._finish_earlier(path, entry, stat)
            return
        if not self._may_score(name, sha, stat):
            return
        output, rejects = derived_names(name, sha, s.format)
        claim = Entry(name, sha, stat.st_size, stat.st_mtime_ns, stat.st_ino, "claimed",
                      output, rejects)  # fmt: skip
        attempts = manifest.claim(claim)
        self._redo.discard(name)
        self._removed.discard(name)
        if attempts > s.max_attempts:
            reason = f"the watcher stopped while scoring it {attempts - 1} times"
            self._fail(path, sha, reason, attempts)
            return
        self._score(path, claim, attempts, pending)

    def _score(self, path: Path, claim: Entry, attempts: int, pending: Pending) -> None:
        s, manifest = self.settings, self._checked_manifest()
        output, rejects = s.out_dir / str(claim.output), s.out_dir / str(claim.rejects)
        request = ScoreRequest(
            input=str(path), output=str(output), scorer=s.scorer, format=s.format,
            rejects=str(rejects), max_rejects=s.max_rejects, read_options=s.read_options,
        )  # fmt: skip
        try:
            summary = score_file(request)
        except (OutputError, ManifestError, UsageError):
            raise  # the output folder, the manifest or the settings are wrong: stop, loudly
        except ChurnctlError as exc:  # the file as a whole is refused
            self._fail(path, claim.sha256, str(exc), attempts)
            return
        except Exception as exc:  # unexpected: retried, then quarantined
            self._retry(path, claim.sha256, f"{type(exc).__name__}: {exc}", attempts)
            return
        if _changed_since(path, claim):
            self._discard(path, claim, output, rejects)
            return
        counts = Counts(summary.rows_read, summary.rows_scored, summary.rows_rejected)
        latency = (time.monotonic() - pending.seen_at) * 1000
        manifest.done(claim.name, claim.sha256, counts, latency)
        checkpoint("after-commit")
        self._dispose(path, claim.sha256)
        self.report.scored += 1
        for total, value in zip(("read", "scored", "rejected"), vars(counts).values(), strict=True):
            setattr(self.report.rows, total, getattr(self.report.rows, total) + value)
        self.on_event(WatchEvent("scored", claim.name, str(output), str(rejects), counts, latency))

    def _finish_earlier(self, path: Path, entry: Entry, stat: os.stat_result) -> None:
        """A file already done or failed: finish what a crash interrupted, or note a touch."""
        if entry.state == "failed":
            self._quarantine(path, entry.sha256, entry.error or "failed", entry.attempts)
            return
        self._checked_manifest().restat(entry.name, entry.sha256, stat)
        self._dispose(path, entry.sha256)

    def _may_score(self, name: str, sha: str, stat: os.stat_result) -> bool:
        """New content under a done name: a re-upload is scored, an edit is not.

        An edit is new content in the scored file itself: kept (not archived or deleted by
        the watcher), not deleted or moved away since, same inode. A file deleted and
        written again may get the old inode number back: it is a re-upload all the same.
        """
        latest = self._checked_manifest().latest(name)
        edited = (
            self.settings.after == "keep" and name not in self._removed
            and latest is not None and latest.state == "done" and latest.inode == stat.st_ino
        )  # fmt: skip
        if not edited or self.settings.reprocess_changed:
            return True
        self._changed[name] = (stat.st_size, stat.st_mtime_ns)
        self.on_event(WatchEvent(
            "changed", name, message="changed in place after it was scored; left alone "
            "(set reprocess_changed to score it again)",
        ))  # fmt: skip
        return False

    def _discard(self, path: Path, claim: Entry, output: Path, rejects: Path) -> None:
        """The input changed while it was scored: drop the outputs, look at it again later."""
        for published in (output, rejects):
            published.unlink(missing_ok=True)
        self._checked_manifest().release(claim.name, claim.sha256)
        self.pending[claim.name] = Pending()
        self.on_event(WatchEvent("retry", claim.name, message="changed while it was scored"))

    def _retry(self, path: Path, sha: str, reason: str, attempts: int) -> None:
        if attempts >= self.settings.max_attempts:
            self._fail(path, sha, reason, attempts)
            return
        self.pending[path.name] = Pending(renamed_in=True,
                                          not_before=time.monotonic() + RETRY_DELAY)  # fmt: skip
        self.on_event(WatchEvent("retry", path.name, message=f"attempt {attempts}: {reason}"))

    def _fail(self, path: Path, sha: str, reason: str, attempts: int) -> None:
        self._checked_manifest().failed(path.name, sha, reason)
        target = self._quarantine(path, sha, reason, attempts)
        self.report.failed += 1
        self.on_event(WatchEvent("failed", path.name, output=str(target), message=reason))

    def _quarantine(self, path: Path, sha: str, reason: str, attempts: int) -> Path:
        try:
            return quarantine(path, sha, reason, attempts)
        except OSError as exc:
            raise OutputError(f"{path}: cannot move it into quarantine ({exc})") from None

    def _dispose(self, path: Path, sha: str) -> None:
        s = self.settings
        marker = path.with_name(path.name + s.rules.done_marker) if s.rules.done_marker else None
        dispose(path, s.after, s.archive, sha, marker)
        if s.after != "keep":
            checkpoint("after-archive")

    def _reconcile(self) -> None:
        """Claimed rows left by a crash: published ones become done, the others are redone."""
        s, manifest = self.settings, self._checked_manifest()
        for entry in manifest.claimed():
            output, rejects = s.out_dir / str(entry.output), s.out_dir / str(entry.rejects)
            if output.exists() and rejects.exists():  # rejects is renamed last
                manifest.done(entry.name, entry.sha256, published_counts(output, rejects), None)
                self.on_event(WatchEvent("reconciled", entry.name, str(output), str(rejects)))
            elif (s.in_dir / entry.name).exists():
                self._redo.add(entry.name)
            else:
                manifest.release(entry.name, entry.sha256)

    def _checked_manifest(self) -> Manifest:
        if self._manifest is None:
            raise ManifestError("the watcher is not running; call run()")
        return self._manifest


def scoring_identity(settings: WatchSettings) -> dict[str, Any]:
    """What decides the outputs' content: one output folder holds one configuration's.

    The decimal mark is recorded only when it is not ``.``: a folder written before
    the setting existed keeps its identity.
    """
    scorer, options = settings.scorer, settings.read_options
    identity = {
        "state": scorer.state.fingerprint, "model": scorer.model_digest,
        "threshold": scorer.threshold, "keep": list(scorer.keep), "logits": scorer.logits,
        "format": settings.format, "delimiter": options.delimiter, "encoding": options.encoding,
    }  # fmt: skip
    return identity if scorer.decimal == "." else {**identity, "decimal": scorer.decimal}


def remove_temporaries(out_dir: Path) -> int:
    """Remove the temporary files a killed run left in ``out_dir``; how many."""
    removed = 0
    for leftover in Path(out_dir).glob(".*.tmp"):
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


def published_counts(output: Path, rejects: Path) -> Counts:
    """The row counts of a published output and rejects file, read back from them."""
    if output.suffix == ".parquet":
        scored = pq.ParquetFile(output).metadata.num_rows
    elif output.suffix == ".jsonl":
        with output.open("rb") as handle:
            scored = sum(1 for _ in handle)
    else:
        scored = _csv_rows(output)
    rejected = _csv_rows(rejects)
    return Counts(scored + rejected, scored, rejected)


def _csv_rows(path: Path) -> int:
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    return pa_csv.read_csv(path, parse_options=parse).num_rows


def _changed_since(path: Path, claim: Entry) -> bool:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False  # gone after it was read whole: its outputs stand
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino) != (
        claim.size,
        claim.mtime_ns,
        claim.inode,
    )
