"""An input's raw bytes: decompressed by its name or its magic bytes, and metered.

A regular file is read through Arrow (which decompresses by the name's suffix); a
stream (stdin, a pipe, a FIFO) cannot seek, so it is opened here and gzip is
recognised by its first bytes. ``Meter`` follows how much of an input was read.
"""

from __future__ import annotations

import io
import sys
import threading
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from churnctl.errors import InputError
from churnctl.io.csv.records import RecordIndex
from churnctl.io.reading import STDIN, first_line

GZIP_MAGIC = b"\x1f\x8b"


class Meter:
    """How much of an input was read: its rows (Parquet) or its bytes as stored (CSV).

    Arrow reads a CSV file well ahead of the batches it hands out: the share of the file
    read is the file's position scaled by the records handed out over those the reader
    has passed (``index``), which follows the batches, compressed or not. Never decreases.
    """

    def __init__(self, total: int, index: RecordIndex | None = None) -> None:
        self.total = total
        self.index = index
        self.file: pa.NativeFile | None = None  # the file read (its position), for CSV
        self._shown = 0.0

    def share(self, records: int) -> float:
        if self.total <= 0:
            return 1.0
        if self.file is None:  # Parquet: rows of all row groups
            share = records / self.total
        else:
            points = self.index.points() if self.index is not None else ()
            passed = points[-1].records - 1 if points else 0  # the header is a record
            share = self._position() / self.total * (records / passed if passed > 0 else 0.0)
        self._shown = max(self._shown, min(1.0, share))
        return self._shown

    def _position(self) -> int:
        try:
            return self.file.tell() if self.file is not None and not self.file.closed else 0
        except (OSError, ValueError, pa.ArrowException):
            return 0


def raw_stream(
    source: str | Path,
    *,
    streamed: bool = False,
    meter: Meter | None = None,
    where: str | Path | None = None,
) -> BinaryIO:
    """The input's bytes (read from ``where``, default ``source``), decompressed by its name.

    A stream (stdin, a pipe) has no telling name: gzip is recognised by its magic bytes.
    ``meter`` follows the position in the file as stored (its compressed bytes).
    """
    if str(source) == STDIN:
        if sys.stdin is None:
            raise InputError("<stdin>: standard input is closed; pipe CSV into it or name a file")
        return _sniffed(sys.stdin.buffer, "<stdin>", None)
    where = source if where is None else where
    try:
        if streamed:  # a pipe cannot seek: open it here, let Arrow only decompress
            return _sniffed(Path(where).open("rb"), str(source), _compression(source))
        codec = _compression(source)
        if meter is None:
            return pa.input_stream(str(where), compression=codec)  # type: ignore[return-value]
        meter.file = pa.OSFile(str(where))
        if codec is None:
            return meter.file  # type: ignore[return-value]
        return pa.CompressedInputStream(meter.file, codec)  # type: ignore[return-value]
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{source}: cannot open: {first_line(exc)}") from None


def _sniffed(stream: BinaryIO, name: str, compression: str | None) -> BinaryIO:
    """A stream decompressed by ``compression``, or by its first bytes when that is None."""
    if compression is None:
        head = b""
        while len(head) < len(GZIP_MAGIC):
            try:
                chunk = stream.read(len(GZIP_MAGIC) - len(head))
            except (OSError, ValueError) as exc:
                raise InputError(f"{name}: cannot read: {first_line(exc)}") from None
            if not chunk:
                break
            head += chunk
        compression = "gzip" if head == GZIP_MAGIC else None
        stream = Replay(head, stream)  # type: ignore[assignment]
    if compression is None:
        return stream
    return pa.input_stream(stream, compression=compression)  # type: ignore[return-value]


def _compression(source: str | Path) -> str | None:
    try:
        return pa.Codec.detect(str(source)).name
    except (TypeError, ValueError):  # no compression extension
        return None


class Replay(io.RawIOBase):
    """A byte stream that replays an already-read prefix, then reads the rest.

    With ``tee``, every byte read is also appended to that file, in order, even
    when two readers (an abandoned Arrow read-ahead and its replacement) race.
    """

    def __init__(self, prefix: bytes, rest: BinaryIO, *, tee: Path | None = None) -> None:
        self._prefix = memoryview(prefix)
        self._rest = rest
        self._read = getattr(rest, "read1", rest.read)  # a pipe: what has arrived, no waiting
        self._lock = threading.Lock()
        self._tee = tee.open("wb", buffering=0) if tee is not None else None
        if self._tee is not None:
            self._tee.write(prefix)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        with self._lock:
            if self._prefix:
                n = min(len(buffer), len(self._prefix))
                buffer[:n] = self._prefix[:n]
                self._prefix = self._prefix[n:]
                return n
            data = self._read(len(buffer))
            buffer[: len(data)] = data
            if self._tee is not None:
                self._tee.write(data)
            return len(data)
