"""The spool: a temporary copy of a streamed input (stdin, a pipe), to read it again.

A stream can be read only once, yet its rejected records are located by a second
pass, a CSV reader that outgrows its block size starts over, and Parquet needs
random access: the bytes are spooled to a temporary file as they are read (CSV)
or before (Parquet), and the file is removed when the source is closed.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import churnctl.interrupts as interrupts
from churnctl.errors import InputError
from churnctl.faults import checkpoint
from churnctl.io.stream import Replay


@contextlib.contextmanager
def held_spool(wanted: bool, suffix: str = ".csv") -> Iterator[Path | None]:
    """A new, empty spool file when ``wanted`` (else None), removed if the block fails.

    Created and held for removal, or neither, whatever signal comes; once the block
    succeeds the caller owns the file (and removes it with ``remove_spool``).
    """
    spool = None
    try:
        with interrupts.deferred():
            spool = _new_spool(suffix) if wanted else None
        yield spool
    except BaseException:
        if spool is not None:
            remove_spool(spool)
        raise


def _new_spool(suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="churnctl-stdin-", suffix=suffix)
    os.close(fd)
    checkpoint("spool-created")
    return Path(name)


def remove_spool(spool: Path) -> None:
    """Remove a spool file, even while a signal is being handled."""
    with interrupts.cleaning():
        spool.unlink(missing_ok=True)


def copy_into(where: Path, path: Path, spool: Path) -> None:
    """A streamed Parquet input (``path``, read at ``where``) copied to a temporary file.

    Parquet needs random access.
    """
    try:
        with where.open("rb") as stream, spool.open("wb") as copy:
            shutil.copyfileobj(stream, copy, 1 << 20)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def restart_stdin(spool: Path, replay: Replay) -> BinaryIO:
    """Stdin from its start: the spooled bytes, pumping more of stdin into the spool."""
    return SpoolReader(spool, replay)  # type: ignore[return-value]


class SpoolReader(io.RawIOBase):
    """Reads the stdin spool from its start; at its end, pumps more stdin into it.

    Every byte comes from the spool, so bytes that an abandoned reader pulled
    from stdin (and so spooled) are read too, in their order.
    """

    def __init__(self, spool: Path, replay: Replay) -> None:
        self._file = spool.open("rb", buffering=0)
        self._replay = replay

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while True:
            n = self._file.readinto(buffer)
            if n:
                return n
            if not self._replay.readinto(bytearray(len(buffer))):  # stdin is at its end:
                return self._file.readinto(buffer) or 0  # what a racing reader spooled last

    def close(self) -> None:
        self._file.close()
        super().close()
