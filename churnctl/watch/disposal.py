"""What becomes of an input file once it is scored or refused.

A scored input is kept, archived (moved into an archive folder) or deleted; a
refused one is moved into the quarantine folder beside ``<name>.error.json``
that says why. A move never replaces another file: a name already taken gets
the content hash in it. The folder is fsynced after each move.

Only the inode that was scored is ever moved or deleted, never a file renamed
over its name meanwhile (with ``delete`` that would destroy an unscored file).
POSIX has no "unlink if this inode": the name is first renamed to a private
hidden name in the same folder (``take_aside``), and the file found there is
checked; a stranger is put back under its name (or a free tagged one) and left
alone. A crash while a file is aside leaves it under that hidden name: the
watcher finishes the job or puts it back when it starts (``aside_original``).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from churnctl.atomic import atomic_write_text, fsync_folder
from churnctl.errors import Fix, UsageError
from churnctl.faults import checkpoint
from churnctl.io.held import same_inode
from churnctl.io.naming import error_record_name, fitting_name, tagged_name
from churnctl.names import name_max

AFTER_ACTIONS = ("keep", "archive", "delete")
ARCHIVE_FOLDER = ".processed"
FAILED_FOLDER = ".failed"
ASIDE_PREFIX = ".churnctl-aside."
PUT_BACK_TRIES = 20


def check_after(after: str) -> str:
    if after not in AFTER_ACTIONS:
        raise UsageError(f"after must be one of {', '.join(AFTER_ACTIONS)}, got {after!r}")
    return after


@dataclass
class Aside:
    """What ``take_aside`` found: the scored file at its private name, or a stranger."""

    path: Path | None = None  # the scored file, now at a private name (None: not at the name)
    stranger: Path | None = None  # another file found at the name, put back here
    replaced: bool = False  # the name held another file: left untouched


def aside_name(name: str, limit: int) -> str:
    """The private hidden name of ``name`` while it is disposed of."""
    return ASIDE_PREFIX + fitting_name(name, limit - len(ASIDE_PREFIX))


def aside_original(aside: Path) -> str:
    """The name a file aside had (cut when it was too long to fit beside the prefix)."""
    return aside.name[len(ASIDE_PREFIX) :]


def take_aside(path: Path, scored: os.stat_result) -> Aside:
    """Move ``path`` to its private name if it is still the inode ``scored``.

    ``FileNotFoundError`` when the name is gone. A file renamed over the name before
    the check is left untouched; one renamed over it between the check and the move
    is put back (``Aside.stranger`` says where).
    """
    if not same_inode(os.lstat(path), scored):
        return Aside(replaced=True)
    checkpoint("before-aside")
    aside = path.with_name(aside_name(path.name, name_max(path.parent)))
    os.rename(path, aside)
    if same_inode(os.lstat(aside), scored):
        return Aside(path=aside)
    return Aside(stranger=put_back(aside, path))


def put_back(aside: Path, name: Path) -> Path:
    """Give a file taken aside its name back, or a free tagged one if taken; where it is."""
    limit = name_max(name.parent)
    for attempt in range(PUT_BACK_TRIES):
        tag = os.urandom(8).hex()
        target = name if attempt == 0 else name.with_name(tagged_name(name.name, tag, limit))
        if _link_or_rename(aside, target):
            fsync_folder(name.parent)
            return target
    raise FileExistsError(errno.EEXIST, "no free name to put the file back under", str(name))


def _link_or_rename(source: Path, target: Path) -> bool:
    """Move ``source`` to ``target`` unless ``target`` exists (atomically where links exist)."""
    try:
        os.link(source, target, follow_symlinks=False)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(target):  # no hard links on this file system: check, then rename
            return False
        os.rename(source, target)
        return True
    os.unlink(source)
    return True


def free_name(name: str, folder: Path, sha256: str) -> Path:
    """Where ``name`` goes in ``folder``: that name (cut to fit), or with its content hash."""
    limit = name_max(folder)
    target = folder / fitting_name(name, limit)
    return folder / tagged_name(name, sha256, limit) if os.path.lexists(target) else target


def move_aside(path: Path, folder: Path, sha256: str, target: Path | None = None) -> Path:
    """Move ``path`` into ``folder`` without replacing anything there; the new path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = target or free_name(path.name, folder, sha256)
    try:
        os.rename(path, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:  # another file system: copy then delete
            raise
        shutil.move(path, target)
    fsync_folder(folder)
    fsync_folder(path.parent)
    return target


def finish(aside: Path, name: str, after: str, archive: Path, sha256: str) -> None:
    """Archive or delete a scored file taken aside (``name``: the name it had)."""
    checkpoint("after-aside")
    if after == "delete":
        aside.unlink()
        fsync_folder(aside.parent)
    else:
        move_aside(aside, archive, sha256, free_name(name, archive, sha256))


def dispose(path: Path, after: str, archive: Path, sha256: str, scored: os.stat_result) -> Aside:
    """Apply the after-action to a scored input, if its name still holds it (see module doc).

    ``FileNotFoundError`` when the name is gone; other ``OSError`` as they come.
    """
    if after == "keep":
        return Aside()
    taken = take_aside(path, scored)
    if taken.path is not None:
        finish(taken.path, path.name, after, archive, sha256)
    return taken


def dispose_marker(marker: Path, after: str, archive: Path, sha256: str) -> None:
    """Delete or archive a done marker (an empty file: whatever is at its name)."""
    if after == "keep" or not os.path.lexists(marker):
        return
    if after == "delete":
        marker.unlink(missing_ok=True)
        fsync_folder(marker.parent)
    else:
        move_aside(marker, archive, sha256)


@dataclass(frozen=True)
class Refusal:
    """Why a file is quarantined: the reason, how many attempts, and a remedy if any."""

    reason: str
    attempts: int
    fix: Fix | None = None


def quarantine(path: Path, sha256: str, refusal: Refusal, scored: os.stat_result) -> Aside:
    """Move a refused input into ``.failed/`` beside ``<name>.error.json``, if still at its name.

    ``Aside.path`` is where it went (None: its name now holds another file, untouched).
    ``OSError`` when it cannot be done: the file is then left at its name.
    """
    folder = path.parent / FAILED_FOLDER
    folder.mkdir(exist_ok=True)
    target = free_name(path.name, folder, sha256)
    record = folder / error_record_name(target.name, name_max(folder))
    atomic_write_text(record, _record(path.name, sha256, refusal))
    try:
        taken = take_aside(path, scored)
        if taken.path is not None:
            taken.path = quarantine_aside(taken.path, path, target)
    except BaseException:
        record.unlink(missing_ok=True)
        raise
    if taken.path is None:
        record.unlink(missing_ok=True)
    return taken


def quarantine_aside(aside: Path, name: Path, target: Path) -> Path:
    """Move a refused file from its private name to ``target``; put back at ``name`` if not."""
    try:
        return move_aside(aside, target.parent, "", target)
    except OSError:
        put_back(aside, name)
        raise


def _record(name: str, sha256: str, refusal: Refusal) -> str:
    record = {
        "input": name,
        "sha256": sha256,
        "reason": refusal.reason,
        "attempts": refusal.attempts,
        "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if refusal.fix is not None:
        record["fix"] = asdict(refusal.fix)
    return json.dumps(record, indent=2) + "\n"
