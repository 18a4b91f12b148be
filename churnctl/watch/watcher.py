"""Streaming scoring of a landing folder: each complete file scored exactly once.

The ``Watcher`` lists the input folder (and, unless polling, hears its events as
hints), keeps each file pending until it is complete, then hands it to ``Intake``
(``intake``), which claims, scores, commits and disposes of it in an order that makes
a crash at any moment harmless. On start the watcher locks the output folder,
removes temporary files, writes the folder's lineage record (``_lineage.json``), and
finishes what a crash interrupted. A watcher that consumes its input folder (archive,
delete) holds an exclusive lock on it; watchers that keep the files share it.
"""

from __future__ import annotations

import os
import stat as st
import time
from typing import Any

from churnctl.arguments import check_callable, check_type
from churnctl.batch.lineage_files import write_folder_lineage
from churnctl.io.completeness import (
    Pending,
    Readiness,
    ending_description,
    marker_readiness,
    readiness,
)
from churnctl.io.held import kind_of
from churnctl.io.listing import scan_folder
from churnctl.names import name_max
from churnctl.scoring.lineage import Lineage
from churnctl.watch.arrivals import Events, Hint
from churnctl.watch.intake import (
    REPROCESS_FIX,
    EventSink,
    Intake,
    WatchEvent,
    WatchReport,
    identity,
)
from churnctl.watch.manifest import open_manifest
from churnctl.watch.published import published_counts, remove_temporaries
from churnctl.watch.settings import WatchSettings, input_folder_lock

__all__ = [
    "REPROCESS_FIX",
    "WatchEvent",
    "WatchReport",
    "WatchSettings",
    "Watcher",
    "published_counts",
    "remove_temporaries",
    "scoring_identity",
]

LOCK_LOST = (
    "so another watcher could now archive or delete the same files; find what deletes "
    "files in the input folder, then start the watcher again"
)
PENDING_CHECK = 0.05  # seconds between looks at files not yet complete


class Watcher(Intake):
    """Scores the complete files of ``settings.in_dir``, exactly once, until stopped."""

    def __init__(self, settings: WatchSettings, on_event: EventSink | None = None) -> None:
        check_type("Watcher", "settings", settings, WatchSettings, "a WatchSettings")
        check_callable("Watcher", "on_event", on_event, "None or a function of a WatchEvent")
        super().__init__(settings, on_event)
        self._stopping = False

    def stop(self) -> None:
        """Finish the current file, commit, and return from ``run`` (signal-safe)."""
        self._stopping = True

    @property
    def stopping(self) -> bool:
        return self._stopping

    def run(self) -> WatchReport:
        """Watch until ``stop`` (or, with ``once``, until no complete file is left)."""
        s = self.settings
        with open_manifest(s.out_dir) as manifest, input_folder_lock(s) as lock:
            if lock is not None:
                manifest.guard(lock, LOCK_LOST)
            self._manifest = manifest
            self._limit = name_max(s.out_dir)
            manifest.check_identity(scoring_identity(s))
            remove_temporaries(s.out_dir)
            # the folder's record: check_identity keeps every output in it to these settings
            write_folder_lineage(s.out_dir, Lineage.of(s.scorer))
            self.reconcile()
            self.recover_asides()
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
            self.on_event(
                WatchEvent(
                    "overflow",
                    str(self.settings.in_dir),
                    message="event queue overflowed; rescanning",
                )
            )
            for pending in self.pending.values():  # their close events may be lost
                pending.writing = False
            self._scan()

    def _take(self, hint: Hint) -> None:
        name = hint.name
        if hint.kind == "gone":
            self.pending.pop(name, None)
            self._removed.add(name)
            self._skipped.pop(name, None)
        elif hint.kind in ("renamed-in", "marker"):
            self.pending[name] = Pending(renamed_in=True, seen_at=hint.at)
        else:
            pending = self.pending.setdefault(name, Pending(seen_at=hint.at))
            if hint.kind == "created" and self._complete_at_once(name):
                pending.renamed_in = True
            else:
                pending.writing = hint.kind in ("created", "writing")

    def _complete_at_once(self, name: str) -> bool:
        """A created file that is a hard link to an existing file, or one put back by us."""
        try:
            stat = os.lstat(self.settings.in_dir / name)
        except OSError:
            return False
        returned = self._returned.pop(name, None) == stat.st_ino
        return st.S_ISREG(stat.st_mode) and (stat.st_nlink > 1 or returned)

    def _nothing_to_wait_for(self) -> bool:
        """With ``once``: every file left is waiting for something that waiting will not bring.

        That is the verdict of the last look at each file (``_complete``), never a new
        reading of the clock: on a slow machine a file found not yet quiet must be
        looked at again, not given up on.
        """
        settle, now = self.settings.settle, time.monotonic()
        marked = self.settings.rules.done_marker is not None
        return all(
            p.status is Readiness.INCOMPLETE
            or (marked and p.status is Readiness.WAITING and now - p.seen_at >= settle)
            for p in self.pending.values()
        )

    def _scan(self) -> None:
        """List the folder: the truth that events only hint at."""
        s, manifest = self.settings, self.checked_manifest()
        listing = scan_folder(s.in_dir, s.rules)
        for name, stat in listing.others.items():
            self.skip(name, stat, f"{kind_of(stat.st_mode)}, not a regular file")
        known = manifest.done_names()
        for name, stat in listing.inputs.items():
            seen = (stat.st_size, stat.st_mtime_ns)
            if name in self.pending or self._changed.get(name) == seen:
                continue
            if self._skipped.get(name) == identity(stat):
                continue
            unchanged = known.get(name) == (*seen, stat.st_ino)
            if unchanged and s.after == "keep":
                continue
            self.pending[name] = Pending(renamed_in=name in self._redo or unchanged)
        for name in [n for n in self.pending if n not in listing.inputs]:
            del self.pending[name]
        self._changed = {n: v for n, v in self._changed.items() if n in listing.inputs}
        self._skipped = {
            n: v for n, v in self._skipped.items() if n in listing.inputs or n in listing.others
        }
        self._removed &= set(listing.inputs)  # the done rows of the others are pruned or forgotten
        self._returned = {n: i for n, i in self._returned.items() if n in listing.inputs}
        if s.after == "keep":
            manifest.forget_done(name for name in known if name not in listing.inputs)
        if s.retain_days is not None:
            manifest.prune_older(s.retain_days)

    def _process_ready(self) -> None:
        ready = []
        for name, pending in list(self.pending.items()):
            try:
                stat = os.lstat(self.settings.in_dir / name)
            except FileNotFoundError:
                del self.pending[name]  # gone before it was taken: nothing to do
                continue
            if not _is_text(name):
                self.skip(name, stat, "its name is not valid UTF-8 text; rename it")
            elif not st.S_ISREG(stat.st_mode):
                self.skip(name, stat, f"{kind_of(stat.st_mode)}, not a regular file")
            elif time.monotonic() >= pending.not_before and self._complete(name, pending, stat):
                ready.append((stat.st_mtime_ns, name))
        for _, name in sorted(ready):
            if self._stopping:
                return
            pending = self.pending.pop(name)
            self.process(name, pending)

    def _complete(self, name: str, pending: Pending, stat: os.stat_result) -> bool:
        s = self.settings
        path, marker = s.in_dir / name, s.rules.done_marker
        if marker is not None:
            status = marker_readiness(path.with_name(name + marker), stat)
        else:
            status = readiness(pending, stat, path, s.settle, lapse=s.rescan)
        pending.status = status
        if status is Readiness.INCOMPLETE and not pending.reported:
            pending.reported = True
            self.on_event(
                WatchEvent(
                    "incomplete",
                    name,
                    message=(
                        f"unchanged for {s.settle:g} s but its content is cut short "
                        f"({ending_description(name)}); waiting for the rest"
                    ),
                )
            )
        return status is Readiness.READY


def _is_text(name: str) -> bool:
    """Whether a name is valid UTF-8 (bytes that are not decode to lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def scoring_identity(settings: WatchSettings) -> dict[str, Any]:
    """What decides the outputs' content: one output folder holds one configuration's.

    The decimal mark is recorded only when it is not ``.``: a folder written before
    the setting existed keeps its identity.
    """
    scorer, options = settings.scorer, settings.read_options
    identity = {
        "state": scorer.state.fingerprint,
        "model": scorer.model_digest,
        "threshold": scorer.threshold,
        "keep": list(scorer.keep),
        "logits": scorer.logits,
        "format": settings.format,
        "delimiter": options.delimiter,
        "encoding": options.encoding,
    }
    return identity if scorer.decimal == "." else {**identity, "decimal": scorer.decimal}
