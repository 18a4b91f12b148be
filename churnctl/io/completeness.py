"""When a file is complete: renamed in, or written in place and quiet, ending as its format does.

A file *renamed into* a folder is complete at once (the producer convention: write
elsewhere, then rename), and so is a new hard link to an existing file. A file
*written in place* is complete once its writer has closed it, its size and mtime
have not changed for the settle time, and its content ends as a complete file does
(a CSV with a newline, a Parquet file with its footer). A created or modified event
that no close follows counts only until the file has been quiet for the ``lapse``
time. With a done marker, a file is complete when ``<name><marker>`` exists. Only
regular files can be complete: nothing is opened but through ``held.open_regular``.
Used by ``watch`` and by the Flink job alike.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from churnctl.io.formats import complete_ending
from churnctl.io.held import open_regular


class Readiness(Enum):
    """Where a pending file stands."""

    READY = "ready"
    WAITING = "waiting"  # being written, or not quiet for the settle time yet
    INCOMPLETE = "incomplete"  # quiet, but its content does not end as a complete file does


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


def ending_description(name: str) -> str:
    """What a complete file named ``name`` ends with, for the ``incomplete`` message."""
    return complete_ending(name)[1]


def has_complete_ending(path: Path) -> bool:
    """A CSV ends with a newline, a Parquet file with its footer magic; others cannot tell.

    Only a regular file can be complete: the file is opened with ``open_regular``.
    """
    tail = complete_ending(path.name)[0]
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
