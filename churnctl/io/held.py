"""An input held by its descriptor: the inode that was read, whatever its name becomes.

A file is opened once, read-only, without following a symbolic link and without
blocking (a FIFO does not wait for a writer), and ``fstat`` on that descriptor
says whether it is a regular file: nothing is ever read from anything else. Its
content is hashed from the descriptor and read again from the same inode (through
``/proc/self/fd/N``), so a file renamed over the name, or the name deleted,
meanwhile changes nothing of what is read. Where there is no ``/proc`` the name is
read, and ``read_intact`` then also asks that the name still holds the inode.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from types import TracebackType

OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
PROC_FDS = Path("/proc/self/fd")
_LINK_ERRORS = (errno.ELOOP, errno.EMLINK)  # O_NOFOLLOW on a link (EMLINK on FreeBSD)
_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotRegular(OSError):
    """The name is not a regular file (a link, a FIFO, a folder ...): it is never read."""

    def __init__(self, path: str | Path, kind: str) -> None:
        super().__init__(f"{path}: {kind}, not a regular file")
        self.kind = kind


def kind_of(mode: int) -> str:
    """``a FIFO``, ``a symbolic link`` ...: what a file of this mode is."""
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | Path) -> int:
    """A read-only descriptor on ``path``, a regular file; ``NotRegular`` for anything else.

    ``FileNotFoundError`` when it is gone. Never blocks, never follows a link.
    """
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        if exc.errno in _LINK_ERRORS:
            raise NotRegular(path, "a symbolic link") from None
        if exc.errno == errno.ENXIO:  # a socket (or a device with nothing behind it)
            raise NotRegular(path, _lstat_kind(path)) from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegular(path, kind_of(mode))
    return fd


def _lstat_kind(path: str | Path) -> str:
    try:
        return kind_of(os.lstat(path).st_mode)
    except OSError:
        return "not a regular file"


def same_inode(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class HeldFile:
    """A regular file taken by its descriptor (``take``); close it when done."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd
        self.stat = os.fstat(fd)
        proc = PROC_FDS / str(fd)
        self.by_descriptor = proc.exists()
        self.read_path = str(proc) if self.by_descriptor else str(path)

    @classmethod
    def take(cls, path: Path) -> HeldFile:
        """Open ``path`` (see ``open_regular``) and hold it."""
        return cls(path, open_regular(path))

    def sha256(self) -> str:
        """The SHA-256 of the held content, in hex."""
        with open(self.fd, "rb", buffering=0, closefd=False) as handle:
            handle.seek(0)
            return hashlib.file_digest(handle, "sha256").hexdigest()

    def read_intact(self) -> bool:
        """Whether what was read is what was taken: no change in place since the take."""
        now = os.fstat(self.fd)
        if (now.st_size, now.st_mtime_ns) != (self.stat.st_size, self.stat.st_mtime_ns):
            return False
        return self.by_descriptor or self.is_at(self.path)

    def is_at(self, path: Path) -> bool:
        """Whether ``path`` names the held inode (not a file renamed over it)."""
        try:
            return same_inode(os.lstat(path), self.stat)
        except FileNotFoundError:
            return False

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> HeldFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
