"""Kernel events of a landing folder, as hints: which names were renamed in, written, closed.

Events (watchdog: inotify on Linux) are hints that arrive in milliseconds; a
listing of the folder (``io.listing``) is the truth, taken at start-up, after an
event overflow and every few seconds. When a file is complete is
``io.completeness``'s question.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from churnctl.io.listing import NameRules

EVENT_QUEUE_SIZE = 10_000


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
        )

        self._observer = _observer()
        kinds = [
            FileMovedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileClosedEvent,
        ]
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
