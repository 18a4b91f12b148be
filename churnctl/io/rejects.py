"""Rejected rows: where they came from, why, and how many are tolerated.

Every input row is either scored or written here, one CSV line per rejected
row: ``source, line, column, reason, text``. For CSV input ``line`` is the
record's first physical line and ``text`` its original text (found by a lazy
second pass, see ``locate``, from the last record boundary the source noted
before the batch, as long as no malformed line comes before it; otherwise from
an earlier one, or the start); for Parquet input ``line`` is the 1-based row
number and ``text`` the row's needed values as CSV.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from churnctl.arguments import wrong
from churnctl.atomic import Publication
from churnctl.errors import Fix, TooManyRejectsError, UsageError
from churnctl.features.columns import MAX_FIELD_CHARS
from churnctl.features.input_policy import NOT_A_NUMBER
from churnctl.io.csv.locate import RecordLocator
from churnctl.io.csv.records import Checkpoint
from churnctl.io.reading import BadLine, BatchSource, Rereading, SourceBatch
from churnctl.io.sinks import STDOUT, CsvWriter, TableWriter, csv_line, open_sink
from churnctl.names import fit_name, name_max

REJECTS_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("line", pa.int64()),
        ("column", pa.string()),
        ("reason", pa.string()),
        ("text", pa.string()),
    ]
)


def file_reject(source: str, reason: str) -> list[object]:
    """A rejects record of a whole file (no line, column or text), in ``REJECTS_SCHEMA``'s
    order: why the file was not read (to its end)."""
    record: dict[str, object] = dict.fromkeys(REJECTS_SCHEMA.names)
    record.update(source=source, reason=reason)
    return list(record.values())


EARLY_ROWS = 1_000  # a fraction limit is checked early only from this many rows read on
# A value rejected as "not a number" that reads as one with a decimal comma: 101348,88
DECIMAL_COMMA = r"^\s*[+-]?[0-9]+,[0-9]+([eE][+-]?[0-9]+)?\s*$"
DECIMAL_FIX = Fix("decimal", ",", "to read the comma as the decimal mark")


def decimal_commas(reasons: pa.Array, values: pa.Array) -> tuple[int, str | None]:
    """How many rows were rejected as not a number for a number with a decimal comma only,
    and the first such value; ``reasons`` and ``values`` (text) are row by row."""
    suspect = pc.and_(
        pc.equal(reasons, NOT_A_NUMBER).fill_null(False),
        pc.match_substring_regex(values, DECIMAL_COMMA).fill_null(False),
    )
    found = pc.filter(values, suspect)
    return len(found), (found[0].as_py().strip() if len(found) else None)


@dataclass
class DecimalCommas:
    """Rows rejected as not a number for a decimal comma, and the first such number."""

    count: int = 0
    example: str | None = None

    def add(self, reasons: pa.Array, values: pa.Array) -> None:
        """Count those among rejected rows' ``reasons`` and ``values`` (text), row by row."""
        count, example = decimal_commas(reasons, values)
        self.count += count
        self.example = self.example or example

    def note(self, rejected: int) -> str | None:
        """What to say when most of ``rejected`` rows hold them (``DECIMAL_FIX`` helps then)."""
        if not self.count or 2 * self.count < rejected:
            return None
        return (
            f"{self.count:,} of the {rejected:,} rejected rows hold a number written with a "
            f"decimal comma, such as {self.example!r}"
        )


def as_reject_limit(function: str, value: Any) -> RejectLimit:
    """A ``RejectLimit`` as given, or one from a whole number of rows (``max_rejects=100``)."""
    if isinstance(value, RejectLimit):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return RejectLimit(count=value)
    raise wrong(function, "max_rejects", value, "a RejectLimit or a whole number >= 0")


@dataclass(frozen=True)
class RejectLimit:
    """How many rejected rows a run tolerates: a count, or a fraction of the rows read."""

    count: int | None = None
    fraction: float | None = None

    def __post_init__(self) -> None:
        if (self.count is None) == (self.fraction is None):
            raise UsageError("a reject limit is either a count or a fraction, not both")
        if self.count is not None and self.count < 0:
            raise UsageError(f"a reject count limit must be >= 0, got {self.count}")
        if self.fraction is not None and not 0 <= self.fraction <= 1:
            raise UsageError(f"a reject fraction must be within [0, 1], got {self.fraction}")

    def exceeded(self, rejected: int, read: int, *, final: bool) -> bool:
        """Whether the run must fail now.

        A count fails as soon as it is passed. A fraction is judged on all rows
        once they are read (``final``), and earlier, from ``EARLY_ROWS`` rows on,
        when the share rejected so far is over twice the limit: a file that is
        systematically wrong fails in its first batches, while one whose bad rows
        merely cluster near the start is still judged on the whole.
        """
        if self.count is not None:
            return rejected > self.count
        fraction = self.fraction or 0.0
        if final:
            return rejected > fraction * read
        return read >= EARLY_ROWS and rejected > 2 * fraction * read

    def __str__(self) -> str:
        if self.count is not None:
            return f"{self.count:,} rows"
        return f"{100 * (self.fraction or 0):g}% of rows"


DEFAULT_LIMIT = RejectLimit(fraction=0.05)
NO_LIMIT = RejectLimit(fraction=1.0)


STDERR = "-"  # rejects as CSV on stderr
SPECIAL_FOLDERS = (Path("/dev"), Path("/proc"))  # no file of ours is ever made there


def rejects_path(output: str) -> str:
    """Where rejects go without a ``rejects`` setting: beside a regular output file, or stderr.

    ``a.csv`` → ``a.rejects.csv``, any other name (``a.parquet``, ``a.csv.gz``) →
    ``<name>.rejects.csv``, so no two outputs share one. Only a regular output file has
    a beside: a path that does not exist yet, an existing regular file, or a symbolic
    link to one, outside ``/dev`` and ``/proc``. Any other output (stdout, a device such
    as ``/dev/null``, a FIFO, ``/dev/fd/N``, a link to one) sends the rejects to stderr
    (``STDERR``): no file is ever made in ``/dev`` or beside a pipe.
    """
    if output == STDOUT or not _is_regular_output(Path(output)):
        return STDERR
    out = Path(output)
    return str(out.with_name(_rejects_name(out.name, name_max(out.parent))))


def _is_regular_output(output: Path) -> bool:
    try:
        folder = output.parent.resolve()
        if any(folder == special or special in folder.parents for special in SPECIAL_FOLDERS):
            return False
        return stat.S_ISREG(output.stat().st_mode)
    except FileNotFoundError:
        return not os.path.lexists(output)  # a new file, not a dangling link
    except (OSError, RuntimeError, ValueError):  # unreadable, a link loop, a bad name
        return False


@contextlib.contextmanager
def open_rejects(target: str, publication: Publication) -> Iterator[TableWriter]:
    """The rejects CSV writer: a file published with ``publication``, or stderr for ``-``.

    On stderr the header comes with the first rejected row: a clean run prints none.
    """
    if target == STDERR:
        writer = HeaderWithFirstRow(sys.stderr.buffer)
        yield writer
        writer.close()
        return
    with open_sink(target, REJECTS_SCHEMA, "csv", publication) as writer:
        yield writer


class HeaderWithFirstRow:
    """A rejects CSV writer on a stream that writes the header only with the first row."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._writer: CsvWriter | None = None

    def write_table(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            self._writer = CsvWriter(self._stream, REJECTS_SCHEMA)
        self._writer.write_table(table)

    def close(self) -> None:
        self._stream.flush()


def _rejects_name(name: str, limit: int) -> str:
    """``a.csv`` → ``a.rejects.csv``, ``a.parquet`` → ``a.parquet.rejects.csv``, cut to fit."""
    return fit_name(name[:-4] if name.lower().endswith(".csv") else name, ".rejects.csv", limit)


class RejectLog:
    """Writes rejected rows with their location and original text, and counts them."""

    def __init__(
        self, writer: TableWriter, source_name: str, *, rereading: Rereading | None = None
    ) -> None:
        """``rereading`` reads the input's bytes again to find each reject's line and text;
        its ``index`` lets that pass start at a noted record boundary instead of the start.
        Without it, a reject is located by its row number and its needed values as CSV."""
        self._writer = writer
        self._name = source_name
        self._rereading = rereading
        self._locator: RecordLocator | None = None
        self._clean_until: int | None = None  # valid rows before the first malformed line
        self._done_bytes = 0  # read by locators given up for a later start
        self._valid_before = 0
        self._pending: list[BadLine] = []
        self.count = 0
        self.examples: list[str] = []
        self.decimal_commas = DecimalCommas()

    @classmethod
    def for_source(cls, writer: TableWriter, source: BatchSource) -> RejectLog:
        """The log of ``source``'s rejects, located as the source can be read again."""
        return cls(writer, source.name, rereading=source.rereading)

    @property
    def name(self) -> str:
        """The input the rejected rows come from."""
        return self._name

    def record_batch(self, source_batch: SourceBatch, rejects: pa.Table) -> None:
        """Log one batch's rejected rows and the malformed lines read with it, in input order."""
        batch = source_batch.rows
        if source_batch.bad_lines and self._clean_until is None:
            self._clean_until = self._valid_before
        self._pending.extend(source_batch.bad_lines)
        rows = rejects.column("row").to_pylist()
        if rows or self._pending:
            self._advance(self._valid_before + batch.num_rows, rows)
        columns = rejects.column("column").to_pylist()
        reasons = rejects.column("reason").to_pylist()
        self.decimal_commas.add(
            rejects.column("reason").combine_chunks(), rejects.column("value").combine_chunks()
        )
        entries = [
            (*self._where(batch, row), column, reason)
            for row, column, reason in zip(rows, columns, reasons, strict=True)
        ]
        self._write(sorted(entries + self._located_bad_lines(), key=_by_line))
        self._valid_before += batch.num_rows

    def finish(self) -> None:
        """Log malformed lines still pending at the end of the input."""
        if self._pending and self._get_locator() is not None:
            self._locator.drain()
        self._write(self._located_bad_lines(final=True))

    @property
    def reread_bytes(self) -> int:
        """Bytes read again from the input to locate rejects (dropped ones included)."""
        return self._done_bytes + (self._locator.read_bytes if self._locator else 0)

    def _get_locator(self) -> RecordLocator | None:
        """The locator, started (again) at the last boundary it may start at."""
        again = self._rereading
        if again is None:
            return None
        start = self._start()
        if self._locator is not None:
            ahead = start is not None and start.records - 1 > self._locator.valid_seen
            if not (ahead and self._clean_until is None and self._locator.seekable):
                return self._locator
            self._done_bytes += self._locator.read_bytes
            self._locator.close()
        self._locator = RecordLocator(
            again.open(),
            delimiter=again.options.delimiter,
            encoding=again.options.encoding,
            cap=MAX_FIELD_CHARS,
            start=start,
            width=again.width,
        )
        return self._locator

    def _start(self) -> Checkpoint | None:
        """The last noted boundary before the current batch and any malformed line."""
        limit = self._valid_before if self._clean_until is None else self._clean_until
        index = self._rereading.index if self._rereading is not None else None
        point = index.before(limit + 1) if index is not None else None
        return point if point is not None and point.records > 0 else None

    def _advance(self, n_valid: int, rows: list[int]) -> None:
        locator = self._get_locator()
        if locator is not None:
            locator.advance(n_valid, {self._valid_before + row for row in rows})

    def _where(self, batch: pa.RecordBatch, row: int) -> tuple[int | None, str]:
        record = self._locator.pop(self._valid_before + row) if self._locator else None
        if record is not None:
            return record.line, record.text
        return self._valid_before + row + 1, _row_as_csv(batch, row)

    def _located_bad_lines(self, *, final: bool = False) -> list[Entry]:
        """Pair Arrow's malformed lines with the located ones (all of them when final)."""
        located = self._locator.invalid if self._locator else []
        n = len(self._pending) if final else min(len(self._pending), len(located))
        entries: list[Entry] = []
        for i, bad in enumerate(self._pending[:n]):
            line, text = (
                (located[i].line, located[i].text) if i < len(located) else (None, bad.text)
            )
            entries.append((line, text, None, bad.reason))
        del self._pending[:n]
        del located[:n]
        return entries

    def _write(self, entries: list[Entry]) -> None:
        if not entries:
            return
        lines, texts, columns, reasons = (list(part) for part in zip(*entries, strict=True))
        table = pa.Table.from_arrays(
            [
                pa.array([self._name] * len(entries), pa.string()),
                pa.array(lines, pa.int64()),
                pa.array(columns, pa.string()),
                pa.array(reasons, pa.string()),
                pa.array(texts, pa.string()),
            ],
            schema=REJECTS_SCHEMA,
        )
        self._writer.write_table(table)
        self.count += len(entries)
        for line, _, column, reason in entries[: max(0, 3 - len(self.examples))]:
            where = f"line {line}" + (f", column {column}" if column else "")
            self.examples.append(f"{where}: {reason}")


Entry = tuple[int | None, str, str | None, str]  # line, text, column, reason


def _by_line(entry: Entry) -> tuple[bool, int]:
    return (entry[0] is None, entry[0] or 0)


def _row_as_csv(batch: pa.RecordBatch, row: int) -> str:
    return csv_line([batch.column(i)[row].as_py() for i in range(batch.num_columns)])


def check_limit(
    limit: RejectLimit,
    log: RejectLog,
    read: int,
    *,
    final: bool,
    written: str = "nothing was written",
) -> None:
    """Fail the run when the rejects exceed the limit; ``written`` says what already went out.

    When most rejected rows hold a number written with a decimal comma, the remedy is
    the ``decimal`` setting, not a higher limit.
    """
    if not limit.exceeded(log.count, read, final=final):
        return
    message = (
        f"{log.name}: {log.count:,} of {read:,} rows rejected, over the limit of {limit}; "
        f"{written} (first: {'; '.join(log.examples)})"
    )
    note = log.decimal_commas.note(log.count)
    if note is not None:
        raise TooManyRejectsError(f"{message}; {note}", fix=DECIMAL_FIX)
    raise TooManyRejectsError(
        f"{message}. Fix the input or raise the limit",
        fix=Fix("max_rejects", "100%", "to never fail on rejects"),
    )
