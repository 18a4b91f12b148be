"""Reading input files as a stream of Arrow record batches, in constant memory.

CSV (optionally compressed, e.g. ``.csv.gz``), Parquet, or ``-`` for CSV on
stdin. The header is read first and checked, so that only the needed columns
are converted, as text, whatever other columns the file carries; malformed rows
(wrong number of fields) are collected instead of failing the file. CSV input
can be read a second time (``reopen``) to locate rejected records; stdin is
spooled to a temporary file for that as it is read.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from churnctl.errors import InputError, SchemaError

STDIN = "-"
PARQUET_SUFFIXES = (".parquet", ".pq")
HEADER_LIMIT = 1 << 20


@dataclass(frozen=True)
class ReadOptions:
    """How to read CSV input."""

    delimiter: str = ","
    encoding: str = "utf-8"
    block_size: int = 1 << 20


@dataclass(frozen=True)
class BadLine:
    """A line the CSV parser could not split into the header's fields."""

    line: int | None
    reason: str
    text: str


@dataclass
class BatchSource:
    """An open input: its name, header, batches, the lines it set aside, and a re-reader."""

    name: str
    columns: list[str]
    batches: Iterator[pa.RecordBatch]
    bad_lines: list[BadLine] = field(default_factory=list)
    reopen: Callable[[], BinaryIO] | None = None  # the same bytes again (CSV only)
    _spool: Path | None = None

    def close(self) -> None:
        """Release what the source holds (the stdin spool file)."""
        if self._spool is not None:
            self._spool.unlink(missing_ok=True)


def is_parquet(name: str | Path) -> bool:
    return str(name).lower().endswith(PARQUET_SUFFIXES)


def open_source(
    source: str | Path, required: Sequence[str], options: ReadOptions = ReadOptions()
) -> BatchSource:
    """Open ``source`` and check its header; batches carry only ``required`` columns."""
    name = "<stdin>" if str(source) == STDIN else str(source)
    if str(source) != STDIN and not Path(source).is_file():
        raise InputError(f"{name}: input file not found")
    if is_parquet(source):
        return _open_parquet(Path(source), required)
    return _open_csv(source, name, required, options)


def _open_parquet(path: Path, required: Sequence[str]) -> BatchSource:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from None
    columns = list(parquet.schema_arrow.names)
    check_header(str(path), columns, required)
    batches = parquet.iter_batches(batch_size=65_536, columns=list(required))
    return BatchSource(str(path), columns, batches)


def _open_csv(
    source: str | Path, name: str, required: Sequence[str], options: ReadOptions
) -> BatchSource:
    stream = _raw_stream(source)
    prefix = _read_header_bytes(stream, name)
    columns = parse_header(prefix, name, options)
    check_header(name, columns, required)
    bad_lines: list[BadLine] = []
    spool = _spool_path() if str(source) == STDIN else None
    replay = _Replay(prefix, stream, tee=spool)
    try:
        reader = _csv_reader(replay, required, options, bad_lines)
    except pa.ArrowInvalid as exc:
        if spool is not None:
            spool.unlink(missing_ok=True)
        raise InputError(f"{name}: {_explain(str(exc), options)}") from None
    reread = spool or source
    return BatchSource(
        name, columns, _guarded(reader, name, options), bad_lines,
        reopen=lambda: _raw_stream(reread), _spool=spool,
    )  # fmt: skip


def _spool_path() -> Path:
    fd, name = tempfile.mkstemp(prefix="churnctl-stdin-", suffix=".csv")
    os.close(fd)
    return Path(name)


def _raw_stream(source: str | Path) -> BinaryIO:
    if str(source) == STDIN:
        return sys.stdin.buffer
    try:
        return pa.input_stream(str(source), compression="detect")  # type: ignore[return-value]
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{source}: cannot open: {exc}") from None


def _read_header_bytes(stream: BinaryIO, name: str) -> bytes:
    """Read until the first non-blank line is complete (or end of input)."""
    prefix = b""
    while not _has_complete_line(prefix) and len(prefix) < HEADER_LIMIT:
        try:
            chunk = stream.read(1 << 16)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{name}: cannot read: {exc}") from None
        if not chunk:
            break
        prefix += chunk
    return prefix


def _has_complete_line(prefix: bytes) -> bool:
    return any(line.strip() for line in prefix.split(b"\n")[:-1])


def parse_header(prefix: bytes, name: str, options: ReadOptions) -> list[str]:
    """Column names from the first non-blank line of a CSV file."""
    if b"\x00" in prefix[:4096]:
        raise InputError(
            f"{name}: binary content (NUL bytes), not {options.encoding} CSV text; "
            "a Parquet file needs a .parquet name, a gzip file a .gz name"
        )
    encoding = "utf-8-sig" if codecs.lookup(options.encoding).name == "utf-8" else options.encoding
    lines = [line.rstrip(b"\r") for line in prefix.split(b"\n")]
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise InputError(f"{name}: the file is empty (no header line, no rows)")
    try:
        text = first.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError:
        raise InputError(
            f"{name}: header is not valid {options.encoding} text; pass --encoding "
            "(e.g. --encoding latin-1) if the file uses another encoding"
        ) from None
    return next(csv.reader([text], delimiter=options.delimiter))


def check_header(name: str, columns: Sequence[str], required: Sequence[str]) -> None:
    """Refuse a missing header, a wrong delimiter, duplicate names or missing columns."""
    missing = [c for c in required if c not in columns]
    if len(missing) == len(required) and any(_looks_numeric(c) for c in columns):
        raise SchemaError(
            f"{name}: no header row: the first line looks like data; add a header line "
            f"naming the columns ({', '.join(required)})"
        )
    delimiter = _likely_delimiter(columns) if missing else None
    if delimiter is not None:
        raise SchemaError(
            f"{name}: the header has one column but looks {delimiter!r}-delimited; "
            f"pass --delimiter {delimiter!r}"
        )
    duplicates = sorted({c for c in columns if list(columns).count(c) > 1})
    if duplicates:
        raise SchemaError(f"{name}: duplicate column name(s) {', '.join(duplicates)} in the header")
    if missing:
        raise SchemaError(
            f"{name}: missing required column(s) {', '.join(missing)}; found: {', '.join(columns)}"
        )


def _likely_delimiter(columns: Sequence[str]) -> str | None:
    if len(columns) != 1:
        return None
    counts = {d: columns[0].count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else None


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Replay(io.RawIOBase):
    """A byte stream that replays an already-read prefix, then reads the rest."""

    def __init__(self, prefix: bytes, rest: BinaryIO, *, tee: Path | None = None) -> None:
        self._prefix = memoryview(prefix)
        self._rest = rest
        self._tee = tee.open("wb", buffering=0) if tee is not None else None
        if self._tee is not None:
            self._tee.write(prefix)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        if self._tee is not None:
            self._tee.write(data)
        return len(data)


def _csv_reader(
    stream: io.RawIOBase, required: Sequence[str], options: ReadOptions, bad: list[BadLine]
) -> pacsv.CSVStreamingReader:
    def on_invalid(row: pacsv.InvalidRow) -> str:
        reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        bad.append(BadLine(row.number, reason, row.text))
        return "skip"

    return pacsv.open_csv(
        io.BufferedReader(stream, buffer_size=1 << 20),
        read_options=pacsv.ReadOptions(block_size=options.block_size, encoding=options.encoding),
        parse_options=pacsv.ParseOptions(
            delimiter=options.delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in required},
            include_columns=list(required),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _guarded(
    reader: pacsv.CSVStreamingReader, name: str, options: ReadOptions
) -> Iterator[pa.RecordBatch]:
    """Yield batches, turning Arrow's parse errors into actionable input errors."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise InputError(f"{name}: {_explain(str(exc), options)}") from None
        yield batch


def _explain(message: str, options: ReadOptions) -> str:
    if "UTF8" in message or "UTF-8" in message:
        return (
            f"content is not valid {options.encoding} text; pass --encoding "
            "(e.g. --encoding latin-1) if the file uses another encoding"
        )
    return f"cannot parse CSV: {message.splitlines()[0]}"
