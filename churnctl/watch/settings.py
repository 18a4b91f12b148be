"""What one watcher is given, and the neighbours it refuses.

``WatchSettings`` checks the settings and the layout of the folders: a folder the
watcher writes may not be one it reads, nor feed back into it (``check_layout``).
``input_folder_lock`` holds the input folder: a watcher that consumes it (archive,
delete) alone, watchers that keep its files together.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from churnctl.arguments import (
    PATH,
    PATH_TYPES,
    check_bool,
    check_number,
    check_optional,
    check_path,
    check_type,
)
from churnctl.errors import ChurnctlError, UsageError
from churnctl.io.listing import NameRules
from churnctl.io.locks import LockHeld, take_lock
from churnctl.io.rejects import DEFAULT_LIMIT, RejectLimit, as_reject_limit
from churnctl.io.sinks import output_format
from churnctl.io.sources import ReadOptions
from churnctl.scoring.scorer import Scorer
from churnctl.watch.disposal import ARCHIVE_FOLDER, FAILED_FOLDER, check_after
from churnctl.watch.manifest import MANIFEST_FOLDER

FOLDER_LOCK = ".churnctl-watch.lock"  # in IN_DIR: exclusive to consume, shared to keep


class FolderBusyError(ChurnctlError):
    """Another watcher holds the input folder in a way this one cannot share."""

    exit_code = 1


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
    drift: bool = True  # compare each file with the state's training profile (features.drift)

    def __post_init__(self) -> None:
        self._check_types()
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
        check_layout(self)

    def _check_types(self) -> None:
        """Each field checked: a wrong type is one line naming it."""
        for name in ("in_dir", "out_dir"):
            check_path("WatchSettings", name, getattr(self, name))
        check_type("WatchSettings", "scorer", self.scorer, Scorer, "a Scorer")
        for name, (types, takes) in {
            "format": (str, "a format name (csv, jsonl, parquet)"),
            "after": (str, "a policy name"),
            "read_options": (ReadOptions, "a ReadOptions"),
            "rules": (NameRules, "a NameRules"),
            "max_attempts": (int, "a whole number"),
        }.items():
            check_type("WatchSettings", name, getattr(self, name), types, takes)
        self.max_rejects = as_reject_limit("WatchSettings", self.max_rejects)
        for name in ("settle", "rescan"):
            check_number("WatchSettings", name, getattr(self, name))
        for name in ("poll", "retain_days"):
            check_optional("WatchSettings", name, getattr(self, name), (int, float), "a number")
        check_optional("WatchSettings", "archive_dir", self.archive_dir, PATH_TYPES, PATH)
        for name in ("reprocess_changed", "once", "drift"):
            check_bool("WatchSettings", name, getattr(self, name))

    @property
    def archive(self) -> Path:
        return self.archive_dir or self.in_dir / ARCHIVE_FOLDER

    def written_folders(self) -> dict[str, Path]:
        """The folders this watcher writes, by role."""
        written = {
            "output folder": self.out_dir,
            "state folder": self.out_dir / MANIFEST_FOLDER,
            "quarantine folder": self.in_dir / FAILED_FOLDER,
        }
        return written | ({"archive folder": self.archive} if self.after == "archive" else {})


def check_layout(settings: WatchSettings) -> None:
    """Refuse folders that feed back: a folder written where the watcher reads, or around it.

    Compared resolved (symbolic links followed). A folder the watcher writes may not be
    the input folder, nor lie inside it but in a hidden sub-folder (a name starting with
    ``.``, never listed: ``.processed``, ``.failed``); the input folder may not lie in
    the output folder's state folder.
    """
    read = settings.in_dir.resolve()
    for role, folder in settings.written_folders().items():
        where = folder.resolve()
        if where == read:
            raise UsageError(
                f"the {role} {where} is the input folder: what the watcher writes there "
                f"would be scored again as inputs; choose another {role}"
            )
        if where.is_relative_to(read) and not where.relative_to(read).parts[0].startswith("."):
            raise UsageError(
                f"the {role} {where} lies inside the input folder {read}: a folder the "
                f"watcher writes must be outside the one it reads, or a hidden sub-folder "
                f"of it (a name starting with '.'); choose another {role}"
            )
    state = (settings.out_dir / MANIFEST_FOLDER).resolve()
    if read.is_relative_to(state):
        raise UsageError(
            f"the input folder {read} lies inside the output folder's state folder {state}: "
            "the watcher's own files would be scored; choose another input or output folder"
        )
    archive = settings.archive.resolve()
    if settings.after == "archive" and archive.is_relative_to(state):
        raise UsageError(
            f"the archive folder {archive} lies inside the output folder's state folder "
            f"{state}, which holds the watcher's own files; choose another archive folder"
        )


@contextlib.contextmanager
def input_folder_lock(settings: WatchSettings) -> Iterator[Path | None]:
    """Hold ``IN_DIR/.churnctl-watch.lock``: exclusive to archive or delete, shared to keep.

    A watcher that keeps its files but cannot create the lock file (a read-only folder,
    which nobody can consume anyway) goes on without it. Yields the lock file, or None.
    """
    consuming, folder = settings.after != "keep", settings.in_dir
    try:
        fd = take_lock(folder / FOLDER_LOCK, shared=not consuming)
    except LockHeld as held:
        holder = "another watcher" if consuming else "a watcher that archives or deletes its files"
        raise FolderBusyError(
            f"{folder}: {holder} (pid {held.holder}) already watches this folder; a watcher that "
            "archives or deletes files must be the only one on its folder: stop the other first"
        ) from None
    except OSError as exc:
        if consuming:
            raise UsageError(
                f"{folder}: cannot lock the input folder ({reason_of(exc)}); a watcher that "
                "archives or deletes its files must be able to write there"
            ) from None
        yield None
        return
    try:
        yield folder / FOLDER_LOCK
    finally:
        os.close(fd)


def reason_of(exc: BaseException) -> str:
    """An exception in a few words: a ChurnctlError's message, an OSError's file and reason."""
    if isinstance(exc, ChurnctlError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__
