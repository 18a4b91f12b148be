"""Physical line numbers and original text of CSV records, for the rejects file.

Arrow's fast reader does not report where a record came from. When a batch has
rejected rows, a second, lazy pass over the same bytes with Python's ``csv``
module (same dialect, same cap on runaway quoted fields, see ``records``) finds
each record's first line number and its original text. It only ever reads as
far as the last rejected record, so files without rejects are never read twice,
and it may start at a ``Checkpoint`` (a record boundary noted while the batches
were read) instead of the first byte: a seekable input is read from there only.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from churnctl.io.csv.records import Checkpoint, split_records

SKIP_BLOCK = 1 << 20


class Record(NamedTuple):
    """One CSV record: first physical line (1-based), fields and original text.

    A runaway record (see ``records``) is its first line alone, with no fields.
    """

    line: int
    fields: list[str]
    text: str
    runaway: bool = False


def iter_records(
    stream: BinaryIO,
    *,
    delimiter: str,
    encoding: str,
    cap: int,
    start: Checkpoint | None = None,
    width: int | None = None,
) -> Iterator[Record]:
    """Non-blank records of a CSV byte stream, header included, with their lines and text.

    From ``start`` (the stream positioned there), the records after it; ``width`` is
    then the header's field count.
    """
    if codecs.lookup(encoding).name == "utf-8" and start is None:
        encoding = "utf-8-sig"
    text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
    line_no = start.lines if start is not None else 0
    for split in split_records(text, delimiter=delimiter, cap=cap, width=width):
        start_line, line_no = line_no + 1, line_no + len(split.lines)
        if split.fields or split.runaway:
            yield Record(
                start_line, split.fields, "".join(split.lines).rstrip("\r\n"), split.runaway
            )


def skip_to(stream: BinaryIO, offset: int) -> int:
    """Position ``stream`` at ``offset``: seek, or read and drop; returns the bytes read."""
    if stream.seekable():
        stream.seek(offset)
        return 0
    dropped = 0
    while dropped < offset and (chunk := stream.read(min(SKIP_BLOCK, offset - dropped))):
        dropped += len(chunk)
    return dropped


class RecordLocator:
    """Maps data-record positions to (line, text), reading lazily and only forward.

    A record is *valid* when it has as many fields as the header (and is not a
    runaway); Arrow returns exactly those as rows, and hands the others to its
    invalid-row handler.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        delimiter: str,
        encoding: str,
        cap: int,
        start: Checkpoint | None = None,
        width: int = 0,
    ) -> None:
        """Read ``stream`` from its start, or from ``start`` (with the header's ``width``).

        A checkpoint is only a valid start when no invalid record comes before it.
        """
        self._stream, self._counted = stream, _Counted(stream)
        self.seekable = stream.seekable()
        if start is not None:
            self._counted.read_bytes += skip_to(stream, start.offset)
        self._records = iter_records(
            self._counted,
            delimiter=delimiter,
            encoding=encoding,
            cap=cap,
            start=start,
            width=width if start is not None else None,
        )
        header = None if start is not None else next(self._records, None)
        self._width = width if start is not None else len(header.fields) if header else 0
        self._valid_seen = start.records - 1 if start is not None else 0
        self._located: dict[int, Record] = {}
        self.invalid: list[Record] = []

    @property
    def valid_seen(self) -> int:
        """Valid records read so far (the input's first ones included when started later)."""
        return self._valid_seen

    @property
    def read_bytes(self) -> int:
        """Bytes read from the stream so far, dropped ones included."""
        return self._counted.read_bytes

    def advance(self, n_valid: int, wanted: set[int] | None = None) -> None:
        """Read until ``n_valid`` valid records are seen, keeping the ``wanted`` ones."""
        while self._valid_seen < n_valid:
            record = next(self._records, None)
            if record is None:
                return
            if record.runaway or len(record.fields) != self._width:
                self.invalid.append(record)
                continue
            if wanted is None or self._valid_seen in wanted:
                self._located[self._valid_seen] = record
            self._valid_seen += 1

    def drain(self) -> None:
        """Read to the end of the input, collecting the remaining invalid records."""
        self.advance(1 << 62, wanted=set())

    def close(self) -> None:
        """Close the stream (a locator given up for one that starts later)."""
        self._stream.close()

    def pop(self, valid_index: int) -> Record | None:
        """The located record at ``valid_index`` (0-based among valid records), once."""
        return self._located.pop(valid_index, None)


class _Counted(io.RawIOBase):
    """A byte stream that counts what is read through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        self.read_bytes += len(data)
        return len(data)
