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
from typing import Any, BinaryIO, Protocol, runtime_checkable

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from churnctl.atomic import Publication, publishing
from churnctl.errors import Fix, UsageError
from churnctl.io.formats import OUTPUT_FORMATS, OUTPUT_SUFFIXES, compression_suffix

STDOUT = "-"


class TableWriter(Protocol):
    def write_table(self, table: pa.Table) -> None: ...

    def close(self) -> None: ...


Encoded = bytes | memoryview | pa.Buffer  # a table's bytes in a writer's format


@runtime_checkable
class EncodingWriter(TableWriter, Protocol):
    """A writer whose bytes can be made apart from writing them: ``encode`` is pure (any
    thread may run it) and ``write_encoded(encode(table))`` is ``write_table(table)``."""

    def encode(self, table: pa.Table) -> Encoded: ...

    def write_encoded(self, data: Encoded) -> None: ...


def write_all(handle: BinaryIO, data: Encoded) -> None:
    """Write every byte of ``data``. A buffered file's ``write`` of more than its buffer
    may write only part (a pipe whose reader left: the rest is lost, and no error says
    so); the next write then raises the error (``BrokenPipeError``)."""
    view = memoryview(data).cast("B")
    while len(view):
        written = handle.write(view)
        view = view[len(view) if written is None else written :]


def compression_of(target: str) -> str | None:
    """The codec named by the target's last suffix (``.gz`` → gzip), or None."""
    return None if target == STDOUT else compression_suffix(target)


def output_format(target: str, explicit: str | None) -> str:
    """The output format: ``--format`` if given, else from the extension (CSV for stdout)."""
    fmt = _explicit_format(explicit) if explicit is not None else _format_of_name(target)
    if fmt == "parquet" and compression_of(target):
        raise UsageError(
            f"{target}: Parquet compresses its own pages; drop the {Path(target).suffix} suffix"
        )
    return fmt


def _explicit_format(explicit: str) -> str:
    if explicit not in OUTPUT_FORMATS:
        raise UsageError(
            f"output format must be one of {', '.join(OUTPUT_FORMATS)}, got {explicit!r}",
            fix=Fix("format", "csv"),
        )
    return explicit


def _format_of_name(target: str) -> str:
    if target == STDOUT:
        return "csv"
    name = Path(target)
    suffix = (name.with_suffix("") if compression_of(target) else name).suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise UsageError(
            f"cannot tell the output format of {target}: use a .csv, .jsonl or .parquet name "
            "(optionally followed by .gz, .bz2 or .zst)",
            fix=Fix("format", "csv", "to name it"),
        )
    return OUTPUT_SUFFIXES[suffix]


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
        import pyarrow.parquet as pq  # here: 10-40 ms that a CSV run need not pay

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
        write_all(self._handle, csv_text([schema.names]).encode("utf-8"))

    def write_table(self, table: pa.Table) -> None:
        self.write_encoded(self.encode(table))

    def encode(self, table: pa.Table) -> Encoded:
        """The table's rows as this writer writes them (no header)."""
        if table.num_rows == 0:
            return b""
        if not any(_needs_quotes(column) for column in table.columns):
            options = pacsv.WriteOptions(include_header=False, quoting_style="none")
            buffer = pa.BufferOutputStream()
            pacsv.write_csv(table, buffer, write_options=options)
            return buffer.getvalue()
        texts = [pc.cast(column, pa.string()).to_pylist() for column in table.columns]
        rows = zip(*([("" if v is None else v) for v in text] for text in texts), strict=True)
        return csv_text(rows).encode("utf-8")

    def write_encoded(self, data: Encoded) -> None:
        write_all(self._handle, data)

    def close(self) -> None:
        self._handle.flush()


def _needs_quotes(column: pa.ChunkedArray) -> bool:
    if not pa.types.is_string(column.type) or column.null_count == len(column):
        return False
    return bool(pc.any(pc.match_substring_regex(column, r'[",\r\n]')).as_py())


def csv_text(rows: Iterable[Sequence[object]], *, end: str = "\n") -> str:
    """Rows as CSV text, each line ended by ``end``: a value quoted only where needed (a
    delimiter, a quote, a line break or a carriage return; with ``end`` empty, the csv
    module's rule: no quotes for line breaks), None an empty field. The one spelling of
    rows as CSV here."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=end)
    if not end:
        writer.writerows(rows)
        return buffer.getvalue()
    for row in rows:
        if any(isinstance(value, str) and "\r" in value for value in row):
            buffer.write(_with_carriage_returns_quoted(row) + end)
        else:
            writer.writerow(row)
    return buffer.getvalue()


def _with_carriage_returns_quoted(row: Sequence[object]) -> str:
    """A row holding a lone ``\r``, quoted for it (Python 3.11's csv quotes only the
    characters of its line terminator): written with ``\r\n``, which is cut off."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(row)
    return buffer.getvalue()[:-2]


def csv_line(values: Sequence[object]) -> str:
    """One row as a CSV line without a line break (a reject's text, a ``files`` record).

    As ``end`` is empty, a value holding a line break is not quoted for it.
    """
    return csv_text([values], end="")


class JsonLinesWriter:
    """One JSON object per line; floats keep their shortest float32 form.

    Encoded column by column: each column becomes the JSON text of its values
    (vectorised; orjson for floats), and Arrow joins them into lines. The bytes
    are those of ``json.dumps(row, ensure_ascii=False)`` per row (``", "`` and
    ``": "`` separators, ``NaN``/``Infinity`` for non-finite floats, floats in
    Python's ``repr`` of their shortest float32 digits).
    """

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle

    def write_table(self, table: pa.Table) -> None:
        self.write_encoded(self.encode(table))

    def encode(self, table: pa.Table) -> Encoded:
        """The table's rows as this writer writes them."""
        return jsonl_bytes(table) if table.num_rows else b""

    def write_encoded(self, data: Encoded) -> None:
        write_all(self._handle, data)

    def close(self) -> None:
        self._handle.flush()


def jsonl_bytes(table: pa.Table) -> bytes:
    """The table as JSON Lines: one object per row, keys in column order, ``\\n`` after each."""
    last = {name: i for i, name in enumerate(table.column_names)}  # a repeated name: last wins
    if not last or not table.num_rows:
        return b"{}\n" * table.num_rows
    parts: list[Any] = []
    for n, (name, i) in enumerate(last.items()):
        key = ("{" if n == 0 else ", ") + json.dumps(name, ensure_ascii=False) + ": "
        parts += [_text(key), _json_texts(table.column(i))]
    lines = pc.binary_join_element_wise(*parts, _text("}\n"), _text(""))
    chunks = lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]
    return b"".join(_string_data(chunk) for chunk in chunks)


def _json_texts(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """Each value's JSON text (``null`` for a null), as a large string column."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        texts = _json_strings(column)
    elif pa.types.is_boolean(kind):
        texts = pc.if_else(column, "true", "false")
    elif pa.types.is_floating(kind):
        texts = _json_floats(column)
    elif pa.types.is_integer(kind):
        texts = pc.cast(column, pa.large_string())
    else:
        texts = pa.array([_json_value(v) for v in column.to_pylist()], pa.large_string())
    texts = pc.cast(texts, pa.large_string())
    if not column.null_count:
        return texts
    return pc.if_else(pc.is_valid(column), texts, _text("null"))


ESCAPED = r'[\x00-\x1f"\\]'  # what json.dumps escapes with ensure_ascii=False


def _json_strings(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Quoted strings; those holding a quote, backslash or control character via json.dumps."""
    column = pc.cast(column, pa.large_string())
    quoted = pc.binary_join_element_wise(_text('"'), column, _text('"'), _text(""))
    if not any(_may_escape(chunk) for chunk in column.chunks):
        return quoted
    escape = pc.fill_null(pc.match_substring_regex(column, ESCAPED), False)
    values = pc.filter(column, escape).to_pylist()
    texts = pa.array([json.dumps(v, ensure_ascii=False) for v in values], pa.large_string())
    return pc.replace_with_mask(quoted.combine_chunks(), escape.combine_chunks(), texts)


def _may_escape(chunk: pa.Array) -> bool:
    """Whether the chunk's bytes hold a quote, a backslash or a control character."""
    data = chunk.buffers()[2]
    if data is None:
        return False
    view = np.frombuffer(data, np.uint8)
    return bool(((view < 0x20) | (view == 0x22) | (view == 0x5C)).any())


def _json_floats(column: pa.ChunkedArray) -> pa.Array:
    """Shortest digits as Python's repr spells them (orjson, repr where they differ): of
    float32 for a float32 or half float column (``raw``), of float64 for a float64 one (a
    kept column, which keeps every digit)."""
    dtype = np.float64 if pa.types.is_float64(column.type) else np.float32
    with np.errstate(over="ignore"):
        values = column.to_numpy().astype(dtype)
    encoded = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].decode("ascii")
    texts = pc.list_flatten(pc.split_pattern(pa.array([encoded], pa.large_string()), ","))
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(values)
        positional = ((magnitude >= 1e-4) & (magnitude < 1e16)) | (magnitude == 0)
    repr_only = ~positional  # where Python's repr and orjson may spell a value apart
    if "e" in encoded:
        repr_only |= pc.match_substring(texts, "e").to_numpy(zero_copy_only=False)
    if not repr_only.any():
        return texts
    spelled = [_json_value(v) for v in values[repr_only]]
    return pc.replace_with_mask(texts, pa.array(repr_only), pa.array(spelled, pa.large_string()))


def _text(literal: str) -> pa.Scalar:
    return pa.scalar(literal, pa.large_string())


def _json_value(value: Any) -> str:
    """One value as JSON text, floats as their shortest float32 form (the row-wise rule); a
    NumPy float64 as its own shortest form."""
    if isinstance(value, np.float64):
        value = float(value)
    elif isinstance(value, float | np.floating):
        value = float(str(np.float32(value)))
    return json.dumps(value, ensure_ascii=False)


def _string_data(lines: pa.Array) -> memoryview:
    """The concatenated bytes of a large string array without nulls."""
    _, offsets, data = lines.buffers()
    bounds = np.frombuffer(offsets, np.int64)[[lines.offset, lines.offset + len(lines)]]
    return memoryview(data)[int(bounds[0]) : int(bounds[1])]
