"""The folders of a Flink run: where it may write, and its staging folders.

``check_layout`` refuses an output folder that feeds back into the input (Flink
would read the job's own output) or that holds the input. ``staging_folder`` is a
bounded run's private folder, locked while its run lives; ``remove_stale_staging``
removes those whose run is gone (killed before it could clean up).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from churnctl import interrupts
from churnctl.errors import UsageError
from churnctl.io.locks import LockHeld, take_lock

HIDDEN = (".", "_")  # Flink's default file filter skips these names, folders and files alike
STAGING = "staging-"  # OUT/.churnctl-flink/staging-PID-XXXXXX, and its lock beside it
LOCK_SUFFIX = ".lock"


def check_layout(source: Path, out_dir: Path) -> None:
    """Refuse an output folder that is the input, lies where Flink lists the input, or holds it.

    Compared resolved (symbolic links followed). Flink lists an input folder
    recursively, skipping names that start with ``.`` or ``_``: an output folder
    below such a name inside the input folder is never read, and is allowed. An
    input file is read alone: the output folder may be beside it, not be it.
    """
    read, out = Path(source).resolve(), Path(out_dir).resolve()
    kind = "folder" if read.is_dir() else "file"
    if out == read:
        raise UsageError(
            f"the output folder {out} is the input {kind}: Flink would read the "
            "job's own output as input; choose another output folder"
        )
    if kind == "folder" and out.is_relative_to(read) and not hidden_below(out, read):
        raise UsageError(
            f"the output folder {out} lies inside the input folder {read}: Flink would read "
            "the job's own output as input; choose an output folder outside it, or a hidden "
            f"sub-folder of it (a name starting with {' or '.join(map(repr, HIDDEN))})"
        )
    if read.is_relative_to(out):
        raise UsageError(
            f"the input {kind} {read} lies inside the output folder {out}: the "
            "job would write where it reads; choose an output folder that does "
            "not hold the input"
        )


def hidden_below(path: Path, folder: Path) -> bool:
    """Whether a name of ``path`` below ``folder`` is one Flink's listing skips."""
    return any(part.startswith(HIDDEN) for part in path.relative_to(folder).parts)


@contextlib.contextmanager
def staging_folder(work: Path) -> Iterator[Path]:
    """A new staging folder under ``work``, locked while in use, removed whatever happens.

    The lock (``flock`` on the file beside it, taken before the folder exists) tells a
    later run that this one lives; the kernel drops it when the process dies.
    """
    name = f"{STAGING}{os.getpid()}-{secrets.token_hex(3)}"
    lock, folder = work / f"{name}{LOCK_SUFFIX}", work / name
    descriptor = take_lock(lock)
    try:
        folder.mkdir()
        yield folder
    finally:
        with interrupts.cleaning():
            shutil.rmtree(folder, ignore_errors=True)
            lock.unlink(missing_ok=True)
            os.close(descriptor)


def remove_stale_staging(work: Path) -> list[Path]:
    """Remove the staging folders under ``work`` whose run is gone; those removed.

    A folder whose lock a live run holds is left alone, as is one this process
    cannot lock or remove (its reason is then not ours to judge).
    """
    if not work.is_dir():
        return []
    names = {p.name.removesuffix(LOCK_SUFFIX) for p in work.iterdir() if p.name.startswith(STAGING)}
    removed = []
    for name in sorted(names):
        folder, lock = work / name, work / f"{name}{LOCK_SUFFIX}"
        try:
            descriptor = take_lock(lock)
        except (LockHeld, OSError):
            continue
        try:
            with interrupts.cleaning():
                existed = folder.is_dir()
                shutil.rmtree(folder, ignore_errors=True)
                if existed and not folder.exists():
                    removed.append(folder)
                if not folder.exists():
                    lock.unlink(missing_ok=True)
        finally:
            os.close(descriptor)
    return removed
