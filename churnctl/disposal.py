"""What becomes of an input file once it is scored or refused.

A scored input is kept, archived (moved into an archive folder) or deleted; a
refused one is moved into the quarantine folder beside ``<name>.error.json``
that says why. A move never replaces another file: a name already taken gets
the content hash in it. The folder is fsynced after each move.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from churnctl.atomic import atomic_write_text, fsync_folder
from churnctl.errors import InputError, UsageError
from churnctl.paths import tagged_name

AFTER_ACTIONS = ("keep", "archive", "delete")
ARCHIVE_FOLDER = ".processed"
FAILED_FOLDER = ".failed"


def check_after(after: str) -> str:
    if after not in AFTER_ACTIONS:
        raise UsageError(f"after must be one of {', '.join(AFTER_ACTIONS)}, got {after!r}")
    return after


def free_name(path: Path, folder: Path, sha256: str) -> Path:
    """Where ``path`` goes in ``folder``: its own name, or with its content hash if taken."""
    target = folder / path.name
    return folder / tagged_name(path.name, sha256) if target.exists() else target


def move_aside(path: Path, folder: Path, sha256: str, target: Path | None = None) -> Path:
    """Move ``path`` into ``folder`` without replacing anything there; the new path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = target or free_name(path, folder, sha256)
    try:
        os.rename(path, target)
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: another file system, copy then delete
            raise
        shutil.move(path, target)
    fsync_folder(folder)
    fsync_folder(path.parent)
    return target


def dispose(path: Path, after: str, archive: Path, sha256: str, marker: Path | None) -> None:
    """Apply the after-action to a scored input (and its done marker); a missing file is done."""
    if after == "keep":
        return
    for item in (path, marker):
        if item is None or not item.exists():
            continue
        try:
            if after == "delete":
                item.unlink()
                fsync_folder(item.parent)
            else:
                move_aside(item, archive, sha256)
        except OSError as exc:
            raise InputError(f"{item}: cannot {after} it ({exc.strerror or exc})") from None


def quarantine(path: Path, sha256: str, reason: str, attempts: int) -> Path:
    """Move a refused input into ``.failed/`` beside its ``<name>.error.json``; the new path."""
    folder = path.parent / FAILED_FOLDER
    folder.mkdir(exist_ok=True)
    record = {
        "input": path.name, "sha256": sha256, "reason": reason, "attempts": attempts,
        "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }  # fmt: skip
    target = free_name(path, folder, sha256)
    atomic_write_text(folder / f"{target.name}.error.json", json.dumps(record, indent=2) + "\n")
    return move_aside(path, folder, sha256, target)
