"""Reading input files as a stream of Arrow record batches, in constant memory.

CSV (optionally compressed, e.g. ``.csv.gz``), Parquet, or ``-`` for CSV on
stdin; a pipe or FIFO (``<(zcat x.gz)``) is read as a stream, like stdin. The
header is read first and checked, so that only the needed columns are
converted, as text, whatever other columns the file carries. Each batch comes
with the malformed lines (wrong number of fields) set aside while it was read,
instead of failing the file; the bytes pass ``records.QuoteGuard`` first, so an
unbalanced quote costs one line, not the rest of the file. A field longer than
a read block makes the reader start over with larger blocks, skipping what it
already handed out. CSV input can be read again (``reread``) to locate rejected
records, from a record boundary noted in ``index`` as the batches were read;
stdin and pipes are spooled to a temporary file for that as they are read.
Unreadable input is an ``InputError`` naming the file.
"""

from __future__ import annotations

import codecs
import io
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import churnctl.interrupts as interrupts
from churnctl.errors import Fix, InputError, UsageError
from churnctl.faults import checkpoint
from churnctl.features.columns import MAX_FIELD_CHARS
from churnctl.features.schema_check import check_header
from churnctl.io.csv.records import (
    CHUNK_SIZE,
    RUNAWAY_MARKER,
    QuoteGuard,
    RecordIndex,
    runaway_reason,
    split_records,
)
from churnctl.io.formats import is_parquet

STDIN = "-"
HEADER_LIMIT = 1 << 20
MAX_BLOCK_SIZE = 1 << 30  # the largest single field a CSV file may hold
ENCODING_FIX = Fix("encoding", "latin-1", "if the file uses another encoding")
LINE_BREAK = re.compile(rb"[\r\n]")
GZIP_MAGIC = b"\x1f\x8b"
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


@dataclass
class BatchSource:
    """An open input: its name, header, batches, and how to read its bytes again."""

    name: str
    columns: list[str]
    batches: Iterator[SourceBatch]
    reread: Callable[[], BinaryIO] | None = None  # the same bytes from the start (CSV only)
    index: RecordIndex | None = None  # record boundaries seen so far in those bytes (CSV only)
    spool: Path | None = field(default=None, repr=False)
    # the share of the file read, given the records handed out so far; None for a stream
    read_share: Callable[[int], float] | None = field(default=None, repr=False)

    def close(self) -> None:
        """Release what the source holds (the stdin spool file)."""
        if self.spool is not None:
            with interrupts.cleaning():
                self.spool.unlink(missing_ok=True)


def open_source(
    source: str | Path,
    required: Sequence[str],
    options: ReadOptions = ReadOptions(),
    *,
    read_from: str | Path | None = None,
    columns: Columns = Columns(),
) -> BatchSource:
    """Open ``source`` and check its header; batches carry only ``required`` columns.

    A pipe, FIFO or device (``<(zcat x.gz)``) is read once, as a stream, like stdin.
    ``read_from`` is where the bytes are read when not ``source`` itself (a held
    descriptor's ``/proc/self/fd/N``): the format and the compression still come from
    ``source``'s name, and every message names ``source``. ``columns`` says which of
    the required columns are only kept, and whether batches carry every column.
    """
    name = "<stdin>" if str(source) == STDIN else str(source)
    where = source if read_from is None else read_from
    streamed = str(source) == STDIN or is_stream(where)
    if is_parquet(source):
        return _open_parquet(Path(source), required, columns, streamed=streamed, where=Path(where))
    check_read_options(name, options)
    return _open_csv(source, name, required, options, columns, streamed=streamed, where=where)


def read_columns(source: str | Path, options: ReadOptions = ReadOptions()) -> list[str]:
    """The columns of an input file's header (a regular file: it is read again later)."""
    if str(source) == STDIN or is_stream(source):
        raise InputError(
            f"{source}: not a regular file: its header is read first, and a pipe can be read "
            "only once"
        )
    opened = open_source(source, (), options)
    opened.close()
    return opened.columns


def is_stream(source: str | Path) -> bool:
    """Whether an existing input is a pipe, FIFO or device rather than a regular file."""
    name = str(source)
    try:
        mode = Path(source).stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{name}: input file not found") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot open: {exc.strerror or exc}") from None
    except (UnicodeError, ValueError):  # a lone surrogate, a NUL: no file can have that name
        raise InputError(
            f"the input {name} is not a valid file name here (it cannot be encoded as "
            f"{sys.getfilesystemencoding()}); use another name"
        ) from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{name}: is a directory, not a CSV or Parquet file")
    return not stat.S_ISREG(mode)


def check_input(source: str | Path) -> None:
    """Refuse an input that is missing, unreadable or a folder: before anything is created.

    Every run checks each of its inputs with this first, so that a wrong name never
    leaves an output folder, a temporary file or a state behind. Stdin always exists.
    """
    if str(source) != STDIN:
        is_stream(source)


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


def _open_parquet(
    path: Path, required: Sequence[str], columns: Columns, *, streamed: bool, where: Path
) -> BatchSource:
    spool = None
    try:
        with interrupts.deferred():  # created and held for removal, or neither
            spool = _spool_path(".parquet") if streamed else None
        if spool is not None:
            _copy_into(where, path, spool)
        try:
            parquet = pq.ParquetFile(spool or where)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: not a readable Parquet file: {_first_line(exc)}") from None
        schema = parquet.schema_arrow
        check_header(str(path), schema, required, kept=columns.kept)
        if columns.every:
            check_header(str(path), schema, schema.names)  # nested columns cannot be kept
            required = schema.names
        meter = _Meter(parquet.metadata.num_rows)
        batches = _parquet_batches(parquet, str(path), required)
        return BatchSource(str(path), parquet.schema_arrow.names, batches, spool=spool,
                           read_share=None if streamed else meter.share)  # fmt: skip
    except BaseException:
        if spool is not None:
            with interrupts.cleaning():
                spool.unlink(missing_ok=True)
        raise


def _parquet_batches(
    parquet: pq.ParquetFile, name: str, required: Sequence[str]
) -> Iterator[SourceBatch]:
    batches = parquet.iter_batches(batch_size=65_536, columns=list(required))
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{name}: corrupt Parquet data: {_first_line(exc)}") from None
        yield SourceBatch(batch)


class _Meter:
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


def _open_csv(
    source: str | Path,
    name: str,
    required: Sequence[str],
    options: ReadOptions,
    wanted: Columns,
    *,
    streamed: bool,
    where: str | Path,
) -> BatchSource:
    meter = None if streamed else _Meter(Path(where).stat().st_size)
    stream = _raw_stream(source, streamed=streamed, meter=meter, where=where)
    prefix, whole = _read_header_bytes(stream, name)
    columns = parse_header(prefix, name, options, whole=whole)
    check_header(name, columns, required, kept=wanted.kept)
    required = columns if wanted.every else required
    spool = None
    try:  # a bad file, or a signal while the first block is read: the spool is removed
        with interrupts.deferred():  # created and held for removal, or neither
            spool = _spool_path() if streamed else None
        replay = _Replay(prefix, stream, tee=spool)
        reread = (
            (lambda: _raw_stream(spool))
            if spool is not None
            else lambda: _raw_stream(source, where=where)
        )
        start_over = (
            (lambda: _restart_stdin(spool, replay))
            if spool is not None
            else lambda: _raw_stream(source, meter=meter, where=where)
        )
        reader = _CsvBatches(
            name, required, options, width=len(columns), first=replay, start_over=start_over
        )
        if meter is not None:
            meter.index = reader.index
        reader.open()
        return BatchSource(
            name, columns, iter(reader), reread=reread, index=reader.index, spool=spool,
            read_share=meter.share if meter is not None else None,
        )  # fmt: skip
    except BaseException:
        if spool is not None:
            with interrupts.cleaning():
                spool.unlink(missing_ok=True)
        raise


def _spool_path(suffix: str = ".csv") -> Path:
    fd, name = tempfile.mkstemp(prefix="churnctl-stdin-", suffix=suffix)
    os.close(fd)
    checkpoint("spool-created")
    return Path(name)


def _copy_into(where: Path, path: Path, spool: Path) -> None:
    """A streamed Parquet input (``path``, read at ``where``) copied to a temporary file.

    Parquet needs random access.
    """
    try:
        with where.open("rb") as stream, spool.open("wb") as copy:
            shutil.copyfileobj(stream, copy, 1 << 20)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _raw_stream(
    source: str | Path,
    *,
    streamed: bool = False,
    meter: _Meter | None = None,
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
        raise InputError(f"{source}: cannot open: {_first_line(exc)}") from None


def _sniffed(stream: BinaryIO, name: str, compression: str | None) -> BinaryIO:
    """A stream decompressed by ``compression``, or by its first bytes when that is None."""
    if compression is None:
        head = b""
        while len(head) < len(GZIP_MAGIC):
            try:
                chunk = stream.read(len(GZIP_MAGIC) - len(head))
            except (OSError, ValueError) as exc:
                raise InputError(f"{name}: cannot read: {_first_line(exc)}") from None
            if not chunk:
                break
            head += chunk
        compression = "gzip" if head == GZIP_MAGIC else None
        stream = _Replay(head, stream)  # type: ignore[assignment]
    if compression is None:
        return stream
    return pa.input_stream(stream, compression=compression)  # type: ignore[return-value]


def _compression(source: str | Path) -> str | None:
    try:
        return pa.Codec.detect(str(source)).name
    except (TypeError, ValueError):  # no compression extension
        return None


def _read_header_bytes(stream: BinaryIO, name: str) -> tuple[bytes, bool]:
    """The first bytes, up to a complete first non-blank line (or the end of input).

    Also says whether the header line is whole: False when it runs past HEADER_LIMIT.
    """
    chunks: list[bytes] = []
    size = 0
    read = getattr(stream, "read1", stream.read)  # a pipe: what has arrived, without waiting
    while True:
        prefix = b"".join(chunks)
        if _has_complete_line(prefix):
            return prefix, True
        if size > HEADER_LIMIT:
            return prefix, False
        try:
            chunk = read(1 << 16)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{name}: cannot read: {_first_line(exc)}") from None
        if not chunk:
            return prefix, True
        chunks.append(chunk)
        size += len(chunk)


def _has_complete_line(prefix: bytes) -> bool:
    """Whether a non-blank line ends (with a line break) within ``prefix``."""
    start = 0
    while (found := LINE_BREAK.search(prefix, start)) is not None:
        if prefix[start : found.start()].strip():
            return True
        start = found.end()
    return False


def parse_header(
    prefix: bytes, name: str, options: ReadOptions, *, whole: bool = True
) -> list[str]:
    """Column names from the first non-blank line of a CSV file."""
    if b"\x00" in prefix[:4096]:
        raise InputError(
            f"{name}: binary content (NUL bytes), not {options.encoding} CSV text; "
            "a Parquet file needs a .parquet name, a gzip file a .gz name"
        )
    if not whole:
        raise InputError(
            f"{name}: the header line is longer than {HEADER_LIMIT >> 20} MiB (no line break in "
            f"its first {HEADER_LIMIT:,} bytes); keep only the needed columns, or check that "
            "this is a CSV file"
        )
    encoding = "utf-8-sig" if codecs.lookup(options.encoding).name == "utf-8" else options.encoding
    first = next((line for line in prefix.splitlines() if line.strip()), None)
    if first is None:
        raise InputError(f"{name}: the file is empty (no header line, no rows)")
    try:
        text = first.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError:
        raise InputError(
            f"{name}: header is not valid {options.encoding} text", fix=ENCODING_FIX
        ) from None
    split = next(split_records([text], delimiter=options.delimiter, cap=0))
    if split.cut:
        raise InputError(f"{name}: the header line has an unbalanced quote; fix the header")
    return split.fields


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Replay(io.RawIOBase):
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


class _Collector:
    """Arrow's invalid-row handler: keeps malformed lines, dropping the first ``skip``.

    A runaway marker line (see ``records``) becomes the runaway line it replaced.
    """

    def __init__(self, runaways: dict[int, str], skip: int = 0) -> None:
        self.skip = skip
        self.pending: list[BadLine] = []
        self._runaways = runaways

    def __call__(self, row: pacsv.InvalidRow) -> str:
        if self.skip:
            self.skip -= 1
        elif row.text.startswith(RUNAWAY_MARKER):
            offset = re.match(r"\d*", row.text[len(RUNAWAY_MARKER) :]).group()
            text = self._runaways.get(int(offset or -1), "")
            self.pending.append(BadLine(None, runaway_reason(MAX_FIELD_CHARS), text))
        else:
            reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
            self.pending.append(BadLine(row.number, reason, row.text))
        return "skip"

    def take(self) -> tuple[BadLine, ...]:
        taken, self.pending = tuple(self.pending), []
        return taken


class _CsvBatches:
    """Arrow's streaming CSV reader, restarted with larger blocks when a field outgrows one."""

    def __init__(
        self,
        name: str,
        required: Sequence[str],
        options: ReadOptions,
        *,
        width: int,
        first: io.RawIOBase,
        start_over: Callable[[], BinaryIO],
    ) -> None:
        self._name, self._required, self._options = name, list(required), options
        self._width = width
        self._first: io.RawIOBase | None = first
        self._start_over = start_over
        self._block_size = options.block_size
        self._rows_out = self._bad_out = self._skip_rows = 0
        self._runaways: dict[int, str] = {}
        self._bad = _Collector(self._runaways)
        self.index = RecordIndex()

    def open(self) -> None:
        """Open the reader on the input; an over-long first field grows the block size."""
        while True:
            try:
                self._reader = self._open_reader()
                return
            except pa.ArrowInvalid as exc:
                self._grow_or_fail(exc)
            except (OSError, pa.ArrowException) as exc:
                raise read_error(self._name, exc) from None

    def _open_reader(self) -> pacsv.CSVStreamingReader:
        stream, self._first = self._first or _Replay(b"", self._start_over()), None
        guarded = QuoteGuard(
            stream,  # type: ignore[arg-type]
            delimiter=self._options.delimiter,
            encoding=self._options.encoding,
            width=self._width,
            cap=MAX_FIELD_CHARS,
            runaways=self._runaways,
            chunk_size=min(self._block_size, CHUNK_SIZE),
            index=self.index,
        )
        return pacsv.open_csv(
            io.BufferedReader(guarded, buffer_size=1 << 20),  # type: ignore[arg-type]
            read_options=pacsv.ReadOptions(
                block_size=self._block_size, encoding=self._options.encoding
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=self._options.delimiter,
                newlines_in_values=True,
                invalid_row_handler=self._bad,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in self._required},
                include_columns=self._required,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    def _grow_or_fail(self, exc: pa.ArrowInvalid) -> None:
        if "straddl" not in str(exc):
            raise parse_error(self._name, str(exc), self._options) from None
        if self._block_size >= MAX_BLOCK_SIZE:
            raise InputError(
                f"{self._name}: a field is longer than {MAX_BLOCK_SIZE >> 20:,} MiB; "
                "split or remove it"
            ) from None
        self._block_size = min(self._block_size * 16, MAX_BLOCK_SIZE)
        self._bad = _Collector(self._runaways, skip=self._bad_out)
        self._skip_rows = self._rows_out

    def __iter__(self) -> Iterator[SourceBatch]:
        while True:
            try:
                rows = self._reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                self._grow_or_fail(exc)
                self._reader.close()
                self.open()
                continue
            except (OSError, pa.ArrowException) as exc:
                raise read_error(self._name, exc) from None
            if self._skip_rows:
                skipped = min(self._skip_rows, rows.num_rows)
                rows, self._skip_rows = rows.slice(skipped), self._skip_rows - skipped
            yield self._hand_out(rows)
        if self._bad.pending:
            schema = self._reader.schema
            empty = [pa.array([], field.type) for field in schema]
            yield self._hand_out(pa.RecordBatch.from_arrays(empty, schema=schema))

    def _hand_out(self, rows: pa.RecordBatch) -> SourceBatch:
        bad = self._bad.take()
        self._rows_out += rows.num_rows
        self._bad_out += len(bad)
        return SourceBatch(rows, bad)


def _restart_stdin(spool: Path, replay: _Replay) -> BinaryIO:
    """Stdin from its start: the spooled bytes, pumping more of stdin into the spool."""
    return _SpoolReader(spool, replay)  # type: ignore[return-value]


class _SpoolReader(io.RawIOBase):
    """Reads the stdin spool from its start; at its end, pumps more stdin into it.

    Every byte comes from the spool, so bytes that an abandoned reader pulled
    from stdin (and so spooled) are read too, in their order.
    """

    def __init__(self, spool: Path, replay: _Replay) -> None:
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


def parse_error(name: str, message: str, options: ReadOptions) -> InputError:
    """Arrow's parse error as an actionable input error (never Arrow's internal wording)."""
    if "UTF8" in message or "UTF-8" in message:
        return InputError(f"{name}: content is not valid {options.encoding} text", fix=ENCODING_FIX)
    return InputError(f"{name}: cannot parse CSV: {message.splitlines()[0]}")


def read_error(name: str, exc: BaseException) -> InputError:
    """A failure to read the input's bytes (a truncated or corrupt compressed file, ...)."""
    return InputError(f"{name}: cannot read: {_first_line(exc)} (truncated or corrupt file?)")
