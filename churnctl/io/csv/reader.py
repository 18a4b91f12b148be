"""A CSV input as a source of batches: Arrow's streaming reader, guarded and restartable.

The header is read first and checked, so that only the needed columns are converted,
as text, whatever other columns the file carries. Each batch comes with the malformed
lines (wrong number of fields) set aside while it was read, instead of failing the
file; the bytes pass ``records.QuoteGuard`` first, so an unbalanced quote costs one
line, not the rest of the file. A field longer than a read block makes the reader
start over with larger blocks, skipping what it already handed out. The input can be
read again (``Rereading``) to locate rejected records, from a record boundary noted
in ``index`` as the batches were read; a streamed input is spooled for that.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv

from churnctl.errors import InputError
from churnctl.features.columns import MAX_FIELD_CHARS
from churnctl.features.schema_check import check_header
from churnctl.io.csv.header import parse_header, read_header_bytes
from churnctl.io.csv.records import (
    CHUNK_SIZE,
    RUNAWAY_MARKER,
    QuoteGuard,
    RecordIndex,
    runaway_reason,
)
from churnctl.io.reading import (
    BadLine,
    BatchSource,
    Columns,
    ReadOptions,
    Rereading,
    SourceBatch,
    parse_error,
    read_error,
)
from churnctl.io.spool import held_spool, remove_spool, restart_stdin
from churnctl.io.stream import Meter, Replay, raw_stream

MAX_BLOCK_SIZE = 1 << 30  # the largest single field a CSV file may hold


def open_csv(
    source: str | Path,
    name: str,
    required: Sequence[str],
    options: ReadOptions,
    wanted: Columns,
    *,
    streamed: bool,
    where: str | Path,
) -> BatchSource:
    """Open the CSV input ``source`` (read at ``where``, named ``name``), its header checked."""
    meter = None if streamed else Meter(Path(where).stat().st_size)
    stream = raw_stream(source, streamed=streamed, meter=meter, where=where)
    prefix, whole = read_header_bytes(stream, name)
    columns = parse_header(prefix, name, options, whole=whole)
    check_header(name, columns, required, kept=wanted.kept)
    required = columns if wanted.every else required
    # a bad file, or a signal while the first block is read: the spool is removed
    with held_spool(streamed) as spool:
        replay = Replay(prefix, stream, tee=spool)
        reread, start_over = _rereads(source, where, spool, replay, meter)
        reader = _CsvBatches(
            name, required, options, width=len(columns), first=replay, start_over=start_over
        )
        if meter is not None:
            meter.index = reader.index
        reader.open()
        return BatchSource(
            name,
            columns,
            iter(reader),
            rereading=Rereading(reread, options, reader.index, width=len(columns)),
            read_share=meter.share if meter is not None else None,
            release=None if spool is None else functools.partial(remove_spool, spool),
        )


def _rereads(
    source: str | Path, where: str | Path, spool: Path | None, replay: Replay, meter: Meter | None
) -> tuple[Callable[[], BinaryIO], Callable[[], BinaryIO]]:
    """How to read the input again: from its start, to locate rejects, and to start over
    (metered); a streamed input from its spool, which the reader keeps filling."""
    if spool is not None:
        return (lambda: raw_stream(spool)), (lambda: restart_stdin(spool, replay))
    return (
        (lambda: raw_stream(source, where=where)),
        (lambda: raw_stream(source, meter=meter, where=where)),
    )


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
        stream, self._first = self._first or Replay(b"", self._start_over()), None
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
