"""Writing scored rows and rejects: CSV, JSON Lines or Parquet, published atomically.

CSV and JSON Lines are compressed by the name's last suffix (``.gz``, ``.bz2``,
``.zst``). Files are published through ``atomic.Publication``: pass one to
publish several files together (an output and its rejects).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from churnctl.atomic import Publication, publishing
from churnctl.errors import Fix, UsageError

STDOUT = "-"
FORMATS = ("csv", "jsonl", "parquet")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}


class TableWriter(Protocol):
    def write_table(self, table: pa.Table) -> None: ...

    def close(self) -> None: ...


def compression_of(target: str) -> str | None:
    """The codec named by the target's last suffix (``.gz`` → gzip), or None."""
    return None if target == STDOUT else COMPRESSIONS.get(Path(target).suffix.lower())


def output_format(target: str, explicit: str | None) -> str:
    """The output format: ``--format`` if given, else from the extension (CSV for stdout)."""
    fmt = _explicit_format(explicit) if explicit is not None else _format_of_name(target)
    if fmt == "parquet" and compression_of(target):
        raise UsageError(
            f"{target}: Parquet compresses its own pages; drop the {Path(target).suffix} suffix"
        )
    return fmt


def _explicit_format(explicit: str) -> str:
    if explicit not in FORMATS:
        raise UsageError(
            f"output format must be one of {', '.join(FORMATS)}, got {explicit!r}",
            fix=Fix("format", "csv"),
        )
    return explicit


def _format_of_name(target: str) -> str:
    if target == STDOUT:
        return "csv"
    name = Path(target)
    suffix = (name.with_suffix("") if compression_of(target) else name).suffix.lower()
    if suffix not in _SUFFIXES:
        raise UsageError(
            f"cannot tell the output format of {target}: use a .csv, .jsonl or .parquet name "
            "(optionally followed by .gz, .bz2 or .zst)",
            fix=Fix("format", "csv", "to name it"),
        )
    return _SUFFIXES[suffix]


@contextlib.contextmanager
def open_sink(
    target: str,
    schema: pa.Schema,
    fmt: str,
    publication: Publication | None = None,
    *,
    dash: BinaryIO | None = None,
) -> Iterator[TableWriter]:
    """A writer for ``target`` (``-``: ``dash``, default stdout), published with ``publication``.

    Without a publication the file is published alone when the block succeeds.
    """
    with open_stream(target, fmt, publication, dash=dash) as handle:
        writer = _writer(handle, schema, fmt)
        yield writer
        writer.close()


@contextlib.contextmanager
def open_stream(
    target: str, fmt: str, publication: Publication | None = None, *, dash: BinaryIO | None = None
) -> Iterator[BinaryIO]:
    """The byte stream under ``open_sink``'s writer: compressed by the name, flushed at the end."""
    if target == STDOUT:
        if fmt == "parquet":
            raise UsageError(
                "Parquet cannot be written to stdout", fix=Fix("output", "FILE.parquet")
            )
        stream = dash or sys.stdout.buffer
        yield stream
        stream.flush()
        return
    with contextlib.ExitStack() as stack:
        owned = publication or stack.enter_context(publishing())
        handle = stack.enter_context(stack.enter_context(owned.file(Path(target))).open("wb"))
        codec = compression_of(target)
        if codec is not None:
            handle = stack.enter_context(pa.CompressedOutputStream(handle, codec))
        yield handle


def _writer(handle: BinaryIO, schema: pa.Schema, fmt: str) -> TableWriter:
    if fmt == "parquet":
        return pq.ParquetWriter(handle, schema)
    if fmt == "jsonl":
        return JsonLinesWriter(handle)
    return CsvWriter(handle, schema)


class CsvWriter:
    """CSV that quotes a value only where needed, as pandas and the csv module do.

    Arrow's own "needed" style quotes every text value (``"15580685"``). A table
    whose text holds no comma, quote or line break is written by Arrow unquoted;
    any other table goes through the csv module, from Arrow's own text of each
    value, so numbers read the same either way.
    """

    def __init__(self, handle: BinaryIO, schema: pa.Schema) -> None:
        self._handle = handle
        self._schema = schema
        self._handle.write(_csv_rows([schema.names]))

    def write_table(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if not any(_needs_quotes(column) for column in table.columns):
            options = pacsv.WriteOptions(include_header=False, quoting_style="none")
            pacsv.write_csv(table, self._handle, write_options=options)
            return
        texts = [pc.cast(column, pa.string()).to_pylist() for column in table.columns]
        rows = zip(*([("" if v is None else v) for v in text] for text in texts), strict=True)
        self._handle.write(_csv_rows(rows))

    def close(self) -> None:
        self._handle.flush()


def _needs_quotes(column: pa.ChunkedArray) -> bool:
    if not pa.types.is_string(column.type) or column.null_count == len(column):
        return False
    return bool(pc.any(pc.match_substring_regex(column, r'[",\r\n]')).as_py())


def _csv_rows(rows: Iterable[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


class JsonLinesWriter:
    """One JSON object per line; floats keep their shortest float32 form."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    def write_table(self, table: pa.Table) -> None:
        lines = (json.dumps(_jsonable(row), ensure_ascii=False) for row in table.to_pylist())
        self._handle.write("".join(line + "\n" for line in lines).encode("utf-8"))

    def close(self) -> None:
        self._handle.flush()


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: float(str(np.float32(v))) if isinstance(v, float) else v for k, v in row.items()}
