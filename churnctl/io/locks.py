"""Advisory locks (``flock``) on lock files that name their holder.

Each process that takes a lock writes its pid into the lock file, so that a
process refused can name the holder (for a shared lock, the last one to take it).
A lock is released when its descriptor is closed, or when its process dies.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


class LockHeld(Exception):
    """Another process holds the lock in a conflicting mode."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path}: locked by pid {holder}")
        self.holder = holder


def take_lock(path: Path, *, shared: bool = False) -> int:
    """Lock ``path`` (created if need be) without waiting; the descriptor holding it.

    ``LockHeld`` when another process holds it in a conflicting mode; ``OSError`` when
    it can be neither created nor opened. A shared lock may be taken on an existing
    lock file that cannot be written (its holder's pid is then not recorded).
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if not shared or exc.errno not in _READ_ONLY:
            raise
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise LockHeld(path, holder) from None
    except BaseException:
        os.close(fd)
        raise
    _record_holder(fd)
    return fd


def _record_holder(fd: int) -> None:
    pid = f"{os.getpid()}\n".encode()
    try:
        os.pwrite(fd, pid, 0)
        os.ftruncate(fd, len(pid))
    except OSError:  # opened read-only: the lock holds all the same
        pass
