"""Which files of a landing folder are there to score, and when each is complete.

Kernel events (watchdog: inotify on Linux) are hints that arrive in
milliseconds; a listing of the folder is the truth, taken at start-up, after an
event overflow and every few seconds. A file *renamed into* the folder is
complete at once (the producer convention: write elsewhere, then rename), and so
is a new hard link to an existing file (``ln``: a created event on an inode with
more than one link). A file *written in place* is complete once its writer has
closed it, its size and mtime have not changed for the settle time, and its
content ends as a complete file does (a CSV with a newline, a Parquet file with
its footer). A created or modified event that no close follows (a link whose
other name was removed, a lost event) counts only until the file has been quiet
for the ``lapse`` time. With a done marker, a file is complete when
``<name><marker>`` exists. Only regular files are inputs: a listing reports the
other entries with input names (links, FIFOs, folders ...) apart, and nothing is
opened but through ``held.open_regular``.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from churnctl.errors import InputError, UsageError
from churnctl.held import open_regular

DEFAULT_PATTERNS = ("*.csv", "*.csv.gz", "*.csv.bz2", "*.csv.zst", "*.parquet", "*.pq")
TEMPORARY_SUFFIXES = (".tmp", ".part", ".crdownload")
EVENT_QUEUE_SIZE = 10_000


@dataclass(frozen=True)
class NameRules:
    """Which names are inputs: the patterns, never hidden or temporary names, never markers."""

    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    done_marker: str | None = None

    def __post_init__(self) -> None:
        if self.done_marker is not None and not self.done_marker.strip(". "):
            raise UsageError(
                f"a done marker needs a suffix such as '.done', got {self.done_marker!r}"
            )

    def is_input(self, name: str) -> bool:
        if name.startswith((".", "_")) or name.lower().endswith(TEMPORARY_SUFFIXES):
            return False
        if self.done_marker is not None and name.endswith(self.done_marker):
            return False
        return _matcher(self.patterns)(name.lower()) is not None

    def input_of_marker(self, name: str) -> str | None:
        """For a done-marker name, the input it marks."""
        if self.done_marker is None or not name.endswith(self.done_marker):
            return None
        return name[: -len(self.done_marker)] or None


class Readiness(Enum):
    """Where a pending file stands."""

    READY = "ready"
    WAITING = "waiting"  # being written, or not quiet for the settle time yet
    INCOMPLETE = "incomplete"  # quiet, but its content does not end as a complete file does


@functools.cache
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], re.Match[str] | None]:
    """One compiled regular expression for all the patterns, case-insensitive."""
    return re.compile("|".join(fnmatch.translate(p.lower()) for p in patterns)).match


@dataclass
class Pending:
    """A file seen but not yet scored: what is known of its completeness."""

    renamed_in: bool = False  # arrived by a rename: complete at once
    writing: bool = False  # created or modified in place and not yet closed
    stat: tuple[int, int] | None = None  # (size, mtime_ns) when last looked at
    stable_since: float = field(default_factory=time.monotonic)
    seen_at: float = field(default_factory=time.monotonic)
    not_before: float = 0.0  # a retry waits until then (monotonic)
    reported: bool = False  # its incomplete ending was reported (until it changes)
    status: Readiness | None = None  # the verdict of the last look at it


def _ending(name: str) -> tuple[bytes, str]:
    """The bytes a complete file of this format ends with, and how to say so."""
    name = name.lower()
    if name.endswith(".csv"):
        return b"\n", "a CSV file ends with a line break"
    if name.endswith((".parquet", ".pq")):
        return b"PAR1", "a Parquet file ends with its footer"
    return b"", "its end cannot be checked"


def ending_description(name: str) -> str:
    """What a complete file named ``name`` ends with, for the ``incomplete`` message."""
    return _ending(name)[1]


def has_complete_ending(path: Path) -> bool:
    """A CSV ends with a newline, a Parquet file with its footer magic; others cannot tell.

    Only a regular file can be complete: the file is opened with ``open_regular``.
    """
    tail = _ending(path.name)[0]
    try:
        fd = open_regular(path)
    except OSError:
        return False
    try:
        if not tail:
            return True
        size = os.fstat(fd).st_size
        if size < len(tail):
            return size == 0 and tail == b"\n"
        return os.pread(fd, len(tail), size - len(tail)) == tail
    except OSError:
        return False
    finally:
        os.close(fd)


@dataclass
class Listing:
    """One look at a folder: its input files, and the other entries with input names."""

    inputs: dict[str, os.stat_result] = field(default_factory=dict)
    others: dict[str, os.stat_result] = field(default_factory=dict)  # links, FIFOs, folders ...


def scan_folder(folder: Path, rules: NameRules) -> Listing:
    """What ``folder`` holds under input names (no sub-folders' content), by ``lstat``."""
    found = Listing()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not rules.is_input(entry.name):
                    continue
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone between the listing and the stat
                regular = entry.is_file(follow_symlinks=False)
                (found.inputs if regular else found.others)[entry.name] = stat
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    return found


def list_inputs(folder: Path, rules: NameRules) -> dict[str, os.stat_result]:
    """The input files now in ``folder`` (regular files only, no sub-folders), with their stat."""
    return scan_folder(folder, rules).inputs


def list_markers(folder: Path, rules: NameRules) -> set[str]:
    """The inputs whose done marker is in ``folder``."""
    if rules.done_marker is None:
        return set()
    with os.scandir(folder) as entries:
        return {n for e in entries if (n := rules.input_of_marker(e.name) or "")}


@dataclass(frozen=True)
class Hint:
    """One event, reduced to what matters: a name and what happened to it."""

    kind: str  # "renamed-in", "created", "writing", "closed", "gone", "marker"
    name: str
    at: float = field(default_factory=time.monotonic)  # when the event arrived


class Events:
    """Kernel events of one folder as hints on a bounded queue; an overflow asks for a rescan."""

    def __init__(self, folder: Path, rules: NameRules, size: int = EVENT_QUEUE_SIZE) -> None:
        self.folder = Path(folder).resolve()
        self.rules = rules
        self.queue: queue.Queue[Hint] = queue.Queue(maxsize=size)
        self.overflowed = threading.Event()
        self._observer: Any = None
        self._writing: set[str] = set()  # names with a "writing" hint queued since their close

    def start(self) -> None:
        """Start watching (before the first listing, so nothing arriving meanwhile is missed)."""
        from watchdog.events import (
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
        )  # fmt: skip

        self._observer = _observer()
        kinds = [FileMovedEvent, FileCreatedEvent, FileDeletedEvent, FileModifiedEvent,
                 FileClosedEvent]  # fmt: skip
        self._observer.schedule(
            _Handler(self), str(self.folder), recursive=False, event_filter=kinds
        )
        self._observer.start()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def put(self, kind: str, path: str) -> None:
        """Queue a hint for a name in the folder; a full queue is noted, not blocked on."""
        where = Path(path)
        if not path or where.parent != self.folder:
            return
        name = where.name
        marked = self.rules.input_of_marker(name)
        if marked is not None and kind in ("renamed-in", "closed"):
            kind, name = "marker", marked
        elif not self.rules.is_input(name):
            return
        if kind == "writing":
            if name in self._writing:
                return  # one hint per write, not one per write() call
            self._writing.add(name)
        else:
            self._writing.discard(name)
        try:
            self.queue.put_nowait(Hint(kind, name))
        except queue.Full:
            self.overflowed.set()

    def get(self, timeout: float) -> Hint | None:
        try:
            return self.queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    def drain(self) -> Iterable[Hint]:
        while True:
            try:
                yield self.queue.get_nowait()
            except queue.Empty:
                return


def _observer() -> Any:
    """inotify with unmatched moves reported as moves, where there is inotify."""
    try:
        from watchdog.observers.inotify import InotifyObserver

        return InotifyObserver(generate_full_events=True)
    except (ImportError, OSError):
        from watchdog.observers import Observer

        return Observer()


class _Handler:
    """A watchdog handler that turns events into hints."""

    def __init__(self, events: Events) -> None:
        self.events = events

    def dispatch(self, event: Any) -> None:
        kind = type(event).__name__
        if kind == "FileMovedEvent":
            self.events.put("gone", event.src_path)
            self.events.put("renamed-in", event.dest_path)
        elif kind == "FileCreatedEvent":
            self.events.put("created", event.src_path)
        elif kind == "FileModifiedEvent":
            self.events.put("writing", event.src_path)
        elif kind == "FileClosedEvent":
            self.events.put("closed", event.src_path)
        elif kind == "FileDeletedEvent":
            self.events.put("gone", event.src_path)


def readiness(
    pending: Pending, stat: os.stat_result, path: Path, settle: float, lapse: float = math.inf
) -> Readiness:
    """Whether a pending file is complete now (updating what is known of its stability).

    The quiet time is what the watcher itself saw, never the file's mtime against
    this machine's clock: a network file system's clock may be behind. A writing
    hint that no close followed lapses once the file has been quiet for ``lapse``.
    """
    now = time.monotonic()
    current = (stat.st_size, stat.st_mtime_ns)
    if current != pending.stat:
        pending.stat, pending.stable_since, pending.reported = current, now, False
    if pending.renamed_in:
        return Readiness.READY
    quiet = now - pending.stable_since
    if pending.writing and quiet >= max(settle, lapse):
        pending.writing = False
    if pending.writing or quiet < settle:
        return Readiness.WAITING
    return Readiness.READY if has_complete_ending(path) else Readiness.INCOMPLETE


def marker_readiness(marker: Path, stat: os.stat_result) -> Readiness:
    """With done markers: ready once a marker at least as new as the file exists."""
    try:
        marked = marker.stat().st_mtime_ns >= stat.st_mtime_ns
    except FileNotFoundError:
        marked = False
    return Readiness.READY if marked else Readiness.WAITING
