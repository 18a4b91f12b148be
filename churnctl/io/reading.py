"""What reading an input takes and gives: options, batches, malformed lines, progress.

The shared vocabulary of the readers (``sources`` opens inputs with it, ``stream``,
``parquet`` and ``csv.reader`` produce it, ``rejects`` consumes it), and the
read errors they all raise, so that each names the input and its fix alike.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import pyarrow as pa

from churnctl.errors import Fix, InputError, UsageError
from churnctl.io.csv.records import RecordIndex

STDIN = "-"
ENCODING_FIX = Fix("encoding", "latin-1", "if the file uses another encoding")
ASCII_PROBE = '\n\r,;|\t"azAZ09'  # an encoding must spell these as ASCII does


@dataclass(frozen=True)
class ReadOptions:
    """How to read CSV input."""

    delimiter: str = ","
    encoding: str = "utf-8"
    block_size: int = 1 << 20


@dataclass(frozen=True)
class Columns:
    """Which columns an input gives: ``kept`` (only copied out), and ``every`` column or not."""

    kept: Sequence[str] = ()
    every: bool = False


@dataclass(frozen=True)
class BadLine:
    """A line the CSV parser could not split into the header's fields."""

    line: int | None
    reason: str
    text: str


@dataclass(frozen=True)
class SourceBatch:
    """One batch of rows, and the malformed lines set aside since the previous batch."""

    rows: pa.RecordBatch
    bad_lines: tuple[BadLine, ...] = ()


@dataclass(frozen=True)
class Progress:
    """How far a run got: rows so far, and the share of the input read (None for a stream).

    ``fraction`` counts the file as stored (compressed bytes of a ``.csv.gz``, row
    groups' rows of Parquet); a fit reads its file once per pass: ``pass_number`` of
    ``passes``, ``fraction`` within that pass.
    """

    rows: int
    fraction: float | None = None
    pass_number: int = 1
    passes: int = 1


@dataclass(frozen=True)
class Rereading:
    """How to read a CSV input's bytes again, to locate its rejected records.

    ``open`` gives the same bytes from the start (the spool, for stdin or a pipe);
    ``index`` holds the record boundaries noted so far as the batches were read, and
    ``width`` the header's number of fields, so that a second pass may start at a
    boundary instead of the start; ``options`` are those the input is read with.
    """

    open: Callable[[], BinaryIO]
    options: ReadOptions
    index: RecordIndex | None = None
    width: int = 0


@dataclass
class BatchSource:
    """An open input: its name, header and batches; ``close`` releases what it holds.

    ``rereading`` (CSV only) is for ``RejectLog.for_source``, which locates rejects with it.
    """

    name: str
    columns: list[str]
    batches: Iterator[SourceBatch]
    rereading: Rereading | None = field(default=None, repr=False)
    # the share of the file read, given the records handed out so far; None for a stream
    read_share: Callable[[int], float] | None = field(default=None, repr=False)
    release: Callable[[], None] | None = field(default=None, repr=False)

    def close(self) -> None:
        """Release what the source holds (the stdin spool file)."""
        if self.release is not None:
            self.release()


def check_read_options(name: str, options: ReadOptions) -> None:
    """Refuse an unknown or not ASCII-compatible encoding, and an unusable delimiter."""
    try:
        probe = ASCII_PROBE.encode(codecs.lookup(options.encoding).name)
    except UnicodeError:
        probe = b""
    except LookupError:
        raise UsageError(
            f"{name}: unknown text encoding {options.encoding!r}", fix=Fix("encoding", "utf-8")
        ) from None
    if probe != ASCII_PROBE.encode("ascii"):
        raise UsageError(
            f"{name}: CSV is read in an ASCII-compatible encoding (utf-8, latin-1, cp1252, ...), "
            f"not {options.encoding}; convert the file to utf-8 first"
        )
    delimiter = options.delimiter
    if len(delimiter) != 1 or not delimiter.isascii() or delimiter in '"\r\n':
        raise UsageError(
            f"{name}: the delimiter must be one ASCII character other than a quote or a line "
            f"break, got {delimiter!r}",
            fix=Fix("delimiter", ","),
        )


def parse_error(name: str, message: str, options: ReadOptions) -> InputError:
    """Arrow's parse error as an actionable input error (never Arrow's internal wording)."""
    if "UTF8" in message or "UTF-8" in message:
        return InputError(f"{name}: content is not valid {options.encoding} text", fix=ENCODING_FIX)
    return InputError(f"{name}: cannot parse CSV: {message.splitlines()[0]}")


def read_error(name: str, exc: BaseException) -> InputError:
    """A failure to read the input's bytes (a truncated or corrupt compressed file, ...)."""
    return InputError(f"{name}: cannot read: {first_line(exc)} (truncated or corrupt file?)")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (Arrow's run on), or its type's name."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
