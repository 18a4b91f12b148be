"""CSV record boundaries, with a cap on quoted fields that run on over line breaks.

One unbalanced quote (``5,"Smith,...``) makes any CSV reader take the rest of the
file, or everything up to the next quote, as one field. churnctl caps that: the
lines a record continues onto (a quoted field holding line breaks) may hold at
most ``cap`` characters, and such a record must have the header's number of
fields. Otherwise the record's first line is set aside as a *runaway* and
reading resumes on the next line, a record of its own again.

``split_records`` is that rule on text lines, with Python's csv module (the same
dialect as Arrow's reader); the rejects pipeline locates records with it.
``QuoteGuard`` applies the same rule to the bytes Arrow's fast reader parses: it
replaces each runaway line by a marker line (the wrong number of fields, so
Arrow hands it to its invalid-row handler, in order). It looks only at chunks
holding a quote, with NumPy, and runs ``split_records`` only on the records
that span lines or hold a quote that does not start or end a field. Given a
``RecordIndex``, it also notes, at each record boundary it passes, how many
lines and records came before (counted with ``bytes.count`` or NumPy), so that
a rejected record can be located by rereading from there instead of the start.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import io
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import BinaryIO, NamedTuple

import numpy as np

FIELD_SIZE_LIMIT = 1 << 30
RUNAWAY_MARKER = "\x00churnctl-runaway-line-at-byte-"
CHUNK_SIZE = 1 << 20
RESYNC = 64  # plain records in a row after which the exact reading hands back to NumPy
QUOTE, CR, LF = ord('"'), ord("\r"), ord("\n")


class Split(NamedTuple):
    """One record's physical lines (with their line breaks) and fields.

    ``runaway``: the record ran on past the cap; ``lines`` is then its first
    line alone and ``fields`` is empty. ``cut``: the input ended inside it.
    """

    lines: list[str]
    fields: list[str]
    runaway: bool = False
    cut: bool = False


class _RunOn(Exception):
    """A record's continuation lines went past the cap."""


class _Record:
    """The physical lines of the record being read, and what the input said about them."""

    __slots__ = ("continuation", "cut", "lines")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.continuation = 0  # characters on the lines after the first
        self.cut = False  # the input ended inside the record

    def take(self) -> tuple[list[str], bool]:
        """The record's lines and whether the input ended inside it; start the next one."""
        taken = self.lines, self.cut
        self.lines, self.continuation, self.cut = [], 0, False
        return taken


def _feed(source: Iterator[str], replay: deque[str], record: _Record, cap: int) -> Iterator[str]:
    """The lines csv.reader reads (replayed ones first), kept in ``record``; stops a runaway."""
    while True:
        if replay:
            line = replay.popleft()
        elif (line := next(source, None)) is None:
            record.cut = bool(record.lines)
            return
        if record.lines:
            record.continuation += len(line)
            if record.continuation > cap:
                record.lines.append(line)
                raise _RunOn
        record.lines.append(line)
        yield line


def split_records(
    lines: Iterable[str], *, delimiter: str, cap: int, width: int | None = None
) -> Iterator[Split]:
    """CSV records of text lines (blank lines included, with no fields), runaways cut.

    A record that continues onto other lines is a runaway when those lines hold
    more than ``cap`` characters, or when it does not have ``width`` fields (by
    default, the first record's count: the header's). A runaway is its first
    line alone; reading resumes on the next line.
    """
    csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
    source, replay, record = iter(lines), deque[str](), _Record()
    while True:
        try:
            for fields in csv.reader(_feed(source, replay, record, cap), delimiter=delimiter):
                taken, cut = record.take()
                if len(taken) > 1 and len(fields) != (width or len(fields)):
                    replay.extendleft(reversed(taken[1:]))
                    yield Split(taken[:1], [], True, cut)
                    break
                if width is None and fields:
                    width = len(fields)
                yield Split(taken, fields, False, cut)
            else:
                return
        except _RunOn:
            taken, _ = record.take()
            replay.extendleft(reversed(taken[1:]))
            yield Split(taken[:1], [], runaway=True)


def runaway_reason(cap: int) -> str:
    """The reject reason of a runaway record's first line."""
    return (
        f"unbalanced quote: a quoted field ran over line breaks (past {cap:,} characters or "
        "the header's field count); reading resumed on the next line"
    )


class Checkpoint(NamedTuple):
    """A record boundary in the input: its byte offset, and the physical lines and
    non-blank records (the header included) before it."""

    offset: int
    lines: int
    records: int


class RecordIndex:
    """Checkpoints in input order, noted by ``QuoteGuard`` as it passes bytes on.

    A reader that starts over from the first byte notes the same checkpoints
    again: only those past the last one are kept.
    """

    def __init__(self) -> None:
        self._points: list[Checkpoint] = []
        self._lock = threading.Lock()  # Arrow may read ahead on another thread

    def add(self, point: Checkpoint) -> None:
        with self._lock:
            if not self._points or point.offset > self._points[-1].offset:
                self._points.append(point)

    def points(self) -> tuple[Checkpoint, ...]:
        with self._lock:
            return tuple(self._points)

    def before(self, records: int) -> Checkpoint | None:
        """The last checkpoint with at most ``records`` records before it."""
        with self._lock:
            i = bisect.bisect_right(self._points, records, key=lambda point: point.records)
            return self._points[i - 1] if i else None


def line_counts(data: bytes, breaks: np.ndarray | None = None) -> tuple[int, int]:
    """Line ends in ``data`` (``\\n``, ``\\r\\n``, a lone ``\\r``), and how many end a
    non-blank line. ``data`` ends with a line end; a blank line holds nothing before it.
    ``breaks``: the offsets of every ``\\n`` and ``\\r`` in ``data``, when already known.
    """
    buffer = np.frombuffer(data, np.uint8)
    if b"\r" not in data:  # a blank line: a \n first, or right after another
        breaks = np.flatnonzero(buffer == LF) if breaks is None else breaks
        blank = np.count_nonzero(np.diff(breaks) == 1) + int(len(breaks) > 0 and breaks[0] == 0)
        return len(breaks), len(breaks) - blank
    if breaks is None:
        breaks = np.flatnonzero((buffer == LF) | (buffer == CR))
    after_cr = (breaks > 0) & (buffer[breaks] == LF) & (buffer[np.maximum(breaks - 1, 0)] == CR)
    starts = breaks[~after_cr]  # where each line end starts
    crlf = (buffer[starts] == CR) & (buffer[np.minimum(starts + 1, len(data) - 1)] == LF)
    crlf &= starts + 1 < len(data)
    ends = starts + 1 + crlf
    line_starts = np.concatenate(([0], ends[:-1]))
    return len(starts), int(np.count_nonzero(starts != line_starts))


class QuoteGuard(io.RawIOBase):
    """A CSV byte stream with each runaway record's first line replaced by a marker line.

    ``runaways`` receives, per marker, the byte offset of the line it replaces
    (the number in the marker) and that line's text.
    """

    def __init__(
        self,
        raw: BinaryIO,
        *,
        delimiter: str,
        encoding: str,
        width: int,
        cap: int,
        runaways: dict[int, str],
        chunk_size: int = CHUNK_SIZE,
        index: RecordIndex | None = None,
    ) -> None:
        self._raw, self._delimiter, self._cap = raw, delimiter, cap
        self._width, self._chunk_size = width, chunk_size
        self._codec = codecs.lookup(encoding).name
        self._delimiter_bytes = delimiter.encode(self._codec)
        self._marker_tail = delimiter if width == 1 else ""  # a marker never has `width` fields
        self._runaways = runaways
        self._held: list[bytes] = []  # an incomplete line, or a record not yet complete
        self._offset = 0  # stream offset of the first held byte
        self._out = memoryview(b"")
        self._eof = False
        self._index = index
        self._lines_before = self._records_before = 0  # before self._offset
        self._continued = 0  # non-blank continuation lines of multi-line records released

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._out and not self._eof:
            self._pull()
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _pull(self) -> None:
        """Read a chunk; pass on its complete lines, holding back the incomplete last one."""
        chunk = self._raw.read(self._chunk_size)
        if not chunk:
            self._eof = True
            self._release(b"".join(self._held), final=True)
            self._held = []
            return
        # a line ends after its \n, or after a \r whose next byte is known
        cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r", 0, len(chunk) - 1)) + 1
        if cut == 0:
            self._held.append(chunk)
            return
        # one copy of the chunk, whether or not something was held
        data = b"".join([*self._held, memoryview(chunk)[:cut]]) if self._held else chunk[:cut]
        held = self._release(data, final=False)
        self._held = [held, chunk[cut:]] if held else [chunk[cut:]]

    def _release(self, data: bytes, *, final: bool) -> bytes:
        """Pass on ``data``'s complete records, runaways replaced; return the rest to hold."""
        out: list[bytes] = []
        breaks = None  # of data's line breaks, when a scan found them
        if b'"' in data:
            scan = _QuoteScan(data, self._delimiter_bytes)
            held, breaks = self._records(data, scan, out, final=final), scan.breaks
        else:
            out, held = [data], b""
        self._out = memoryview(b"".join(out))
        if self._index is not None and not final:
            self._note(data[: len(data) - len(held)], breaks)
        self._offset += len(data) - len(held)
        return held

    def _note(self, released: bytes, breaks: np.ndarray | None) -> None:
        """Count the released complete records (``breaks``: the line breaks' offsets in
        the data ``released`` begins, if known); note the boundary after them."""
        end = self._offset + len(released)
        if self._offset == 0 and self._codec == "utf-8" and released.startswith(codecs.BOM_UTF8):
            released = released[len(codecs.BOM_UTF8) :]
            breaks = None if breaks is None else breaks - len(codecs.BOM_UTF8)
        if breaks is not None:
            breaks = breaks[: int(np.searchsorted(breaks, len(released)))]
        lines, non_blank = line_counts(released, breaks)
        self._lines_before += lines
        self._records_before += non_blank - self._continued
        self._continued = 0
        self._index.add(Checkpoint(end, self._lines_before, self._records_before))  # type: ignore[union-attr]

    def _records(self, data: bytes, scan: _QuoteScan, out: list[bytes], *, final: bool) -> bytes:
        """Pass clean stretches on as they are, read problem records exactly; return a hold."""
        pos = 0
        while pos < len(data):
            problem = scan.first_problem(pos)
            if problem is None:
                out.append(data[pos:])
                break
            start = scan.line_start(problem, pos)
            out.append(data[pos:start])
            pos, held = self._exact(data, start, scan, out, final=final)
            if held:
                return held
        return b""

    def _exact(
        self, data: bytes, start: int, scan: _QuoteScan, out: list[bytes], *, final: bool
    ) -> tuple[int, bytes]:
        """Read records with ``split_records`` from ``start`` until RESYNC plain ones in a row.

        Returns where it stopped, and the bytes of a record the data cut short (to hold).
        """
        ends = scan.line_ends(start, final=final)

        def lines() -> Iterator[str]:
            begin = start
            for end in ends:
                yield data[begin:end].decode(self._codec, errors="replace")
                begin = end

        begin, line, plain = start, 0, 0
        for split in split_records(
            lines(), delimiter=self._delimiter, cap=self._cap, width=self._width
        ):
            if split.cut and not final:
                return len(data), data[begin:]
            line += len(split.lines)
            if len(split.lines) > 1 and not split.runaway:
                self._continued += sum(1 for text in split.lines[1:] if text.rstrip("\r\n"))
            end = int(ends[line - 1])
            out.append(self._marker(begin, split) if split.runaway else data[begin:end])
            begin = end
            plain = plain + 1 if len(split.lines) == 1 and not split.runaway else 0
            if plain >= RESYNC:
                break
        return begin, b""

    def _marker(self, start: int, split: Split) -> bytes:
        offset = self._offset + start
        self._runaways[offset] = split.lines[0].rstrip("\r\n")
        return f"{RUNAWAY_MARKER}{offset}{self._marker_tail}\n".encode(self._codec)


class _QuoteScan:
    """Quote and line-break positions of a buffer that starts at a record's start.

    Counting quotes is exact as long as every quote that opens a field stands
    where a field starts (after a delimiter or line break, or right after the
    quote before it: an escaped ``""``). A line break after an odd number of
    quotes is inside a quoted field. A record with such a break, or with a quote
    elsewhere (a literal ``5'11"``), is a *problem*: it is read exactly.
    """

    def __init__(self, data: bytes, delimiter: bytes) -> None:
        self._data = data
        self._buffer = buffer = np.frombuffer(data, np.uint8)
        self._quotes = np.flatnonzero(buffer == QUOTE)
        newlines = buffer == LF
        if b"\r" in data:
            newlines |= buffer == CR
        self.breaks = np.flatnonzero(newlines)
        crlf = (buffer[self.breaks] == CR) & (
            buffer[np.minimum(self.breaks + 1, len(data) - 1)] == LF
        )
        self._line_ends = self.breaks[~crlf] + 1  # a line ends after \n, \r\n or a lone \r
        before = np.searchsorted(self._quotes, self.breaks) % 2
        self._breaks = (self.breaks[before == 0], self.breaks[before == 1])
        self._boundary = np.zeros(256, dtype=bool)  # bytes after which a quote opens a field
        self._boundary[[LF, CR, QUOTE, *delimiter[:1]]] = True
        self._strays: dict[int, np.ndarray] = {}

    def first_problem(self, pos: int) -> int | None:
        """Position of the first break inside quotes or stray opening quote from ``pos`` on."""
        parity = int(np.searchsorted(self._quotes, pos)) % 2
        found = [
            int(positions[i])
            for positions in (self._breaks[1 - parity], self._stray_quotes(parity))
            if (i := int(np.searchsorted(positions, pos))) < len(positions)
        ]
        return min(found) if found else None

    def _stray_quotes(self, parity: int) -> np.ndarray:
        """The quotes of this index parity that would open a field where none starts."""
        if parity not in self._strays:
            quotes = self._quotes[parity::2]
            opens = self._boundary[self._buffer[quotes - 1]]
            opens[quotes == 0] = True
            self._strays[parity] = quotes[~opens]
        return self._strays[parity]

    def line_start(self, position: int, pos: int) -> int:
        """Start of the line holding ``position`` (not before ``pos``)."""
        i = int(np.searchsorted(self.breaks, position))
        return max(pos, int(self.breaks[i - 1]) + 1) if i else pos

    def line_ends(self, start: int, *, final: bool) -> np.ndarray:
        """Offsets just past each line end from ``start`` on (and the end of data if final)."""
        ends = self._line_ends[int(np.searchsorted(self._line_ends, start, side="right")) :]
        last = int(ends[-1]) if len(ends) else start
        return np.append(ends, len(self._data)) if final and last < len(self._data) else ends
