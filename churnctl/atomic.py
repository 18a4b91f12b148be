"""Atomic file publication: write under a temporary sibling name, fsync, then rename.

A reader sees either the old file or the complete new one, never a partial
file, and a crash after the rename cannot leave the new name with lost data.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from churnctl.errors import OutputError


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place only on success."""
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    except OSError as exc:
        raise OutputError(
            f"{final}: cannot write here ({exc.strerror or exc}); choose another path"
        ) from None
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~_umask())
    try:
        yield tmp
        _publish(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _publish(tmp: Path, final: Path) -> None:
    try:
        _fsync(tmp)
        os.replace(tmp, final)
        _fsync(final.parent)
    except OSError as exc:
        raise OutputError(f"{final}: cannot publish the output ({exc.strerror or exc})") from None


def atomic_write_text(final: Path, text: str) -> None:
    """Write text to ``final`` atomically."""
    atomic_write_bytes(final, text.encode("utf-8"))


def atomic_write_bytes(final: Path, data: bytes) -> None:
    """Write bytes to ``final`` atomically."""
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def _fsync(path: Path) -> None:
    """Flush a file's data (or a folder's entries) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
