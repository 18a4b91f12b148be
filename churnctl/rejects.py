"""Rejected rows: where they came from, why, and how many are tolerated.

Every input row is either scored or written here, one CSV line per rejected
row: ``source, line, column, reason, text``. For CSV input ``line`` is the
record's first physical line and ``text`` its original text (found by a lazy
second pass, see ``locate``); for Parquet input ``line`` is the 1-based row
number and ``text`` the row's needed values as CSV.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import pyarrow as pa

from churnctl.errors import TooManyRejectsError, UsageError
from churnctl.locate import RecordLocator
from churnctl.sinks import TableWriter
from churnctl.sources import BadLine, BatchSource, ReadOptions

REJECTS_SCHEMA = pa.schema(
    [("source", pa.string()), ("line", pa.int64()), ("column", pa.string()),
     ("reason", pa.string()), ("text", pa.string())]
)  # fmt: skip
DEFAULT_MAX_REJECTS = "5%"


@dataclass(frozen=True)
class RejectLimit:
    """``--max-rejects``: an absolute count or a percentage of rows read."""

    spec: str
    count: int | None = None
    fraction: float | None = None

    def exceeded(self, rejected: int, read: int, *, final: bool) -> bool:
        if self.count is not None:
            return rejected > self.count
        return final and self.fraction is not None and rejected > self.fraction * read


def parse_max_rejects(spec: str) -> RejectLimit:
    """Parse ``N`` or ``P%`` (0 ≤ P ≤ 100)."""
    match = re.fullmatch(r"\s*(\d+)\s*", spec) or re.fullmatch(r"\s*(\d+(\.\d*)?)\s*%\s*", spec)
    if match is None or (spec.strip().endswith("%") and float(match.group(1)) > 100):
        raise UsageError(
            f"--max-rejects must be a count (e.g. 100) or a percentage (e.g. 5%), got {spec!r}"
        )
    if spec.strip().endswith("%"):
        return RejectLimit(spec.strip(), fraction=float(match.group(1)) / 100)
    return RejectLimit(spec.strip(), count=int(match.group(1)))


class RejectLog:
    """Writes rejected rows with their location and original text, and counts them."""

    def __init__(self, writer: TableWriter, source: BatchSource, options: ReadOptions) -> None:
        self._writer = writer
        self._source = source
        self._options = options
        self._locator: RecordLocator | None = None
        self._valid_before = 0
        self._pending: list[BadLine] = []
        self.count = 0
        self.examples: list[str] = []

    def record_batch(self, batch: pa.RecordBatch, rejects: pa.Table) -> None:
        """Log one batch's rejected rows and the malformed lines read with it, in input order."""
        self._pending.extend(self._source.bad_lines)
        self._source.bad_lines.clear()
        rows = rejects.column("row").to_pylist()
        if rows or self._pending:
            self._advance(self._valid_before + batch.num_rows, rows)
        columns = rejects.column("column").to_pylist()
        reasons = rejects.column("reason").to_pylist()
        entries = [
            (*self._where(batch, row), column, reason)
            for row, column, reason in zip(rows, columns, reasons, strict=True)
        ]
        self._write(sorted(entries + self._located_bad_lines(), key=_by_line))
        self._valid_before += batch.num_rows

    def finish(self) -> None:
        """Log malformed lines still pending at the end of the input."""
        self._pending.extend(self._source.bad_lines)
        self._source.bad_lines.clear()
        if self._pending and self._get_locator() is not None:
            self._locator.drain()
        self._write(self._located_bad_lines(final=True))

    def _get_locator(self) -> RecordLocator | None:
        if self._locator is None and self._source.reopen is not None:
            self._locator = RecordLocator(
                self._source.reopen(), delimiter=self._options.delimiter,
                encoding=self._options.encoding,
            )  # fmt: skip
        return self._locator

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
            [pa.array([self._source.name] * len(entries), pa.string()),
             pa.array(lines, pa.int64()), pa.array(columns, pa.string()),
             pa.array(reasons, pa.string()), pa.array(texts, pa.string())],
            schema=REJECTS_SCHEMA,
        )  # fmt: skip
        self._writer.write_table(table)
        self.count += len(entries)
        for line, _, column, reason in entries[: max(0, 3 - len(self.examples))]:
            where = f"line {line}" + (f", column {column}" if column else "")
            self.examples.append(f"{where}: {reason}")


Entry = tuple[int | None, str, str | None, str]  # line, text, column, reason


def _by_line(entry: Entry) -> tuple[bool, int]:
    return (entry[0] is None, entry[0] or 0)


def _row_as_csv(batch: pa.RecordBatch, row: int) -> str:
    values = [batch.column(i)[row].as_py() for i in range(batch.num_columns)]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def check_limit(limit: RejectLimit, log: RejectLog, read: int, *, final: bool, name: str) -> None:
    """Fail the run (nothing is published) when the rejects exceed the limit."""
    if limit.exceeded(log.count, read, final=final):
        raise TooManyRejectsError(
            f"{name}: {log.count:,} of {read:,} rows rejected, over --max-rejects {limit.spec}; "
            f"nothing was written (first: {'; '.join(log.examples)}). Fix the input or raise "
            "--max-rejects (e.g. --max-rejects 100%)"
        )
