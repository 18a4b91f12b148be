"""The sample every runtime scores: the input's first rows, each numbered.

A CSV input is copied record by record, byte for byte, with one field put in front of
each record: the row's number (``ROW``), which every runtime keeps, so that scored
rows pair up whatever order a runtime writes them in. Line numbers stay those of the
input; the records are cut at quotes' ends (a quoted line break stays inside its
record). A Parquet input gets the column too. The sample is written as two part files,
so that two workers each score one; ``Part.offset`` maps a part's lines back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from churnctl.errors import InputError, UsageError
from churnctl.io.formats import compression_suffix, is_parquet
from churnctl.io.sources import STDIN, ReadOptions, check_input, read_columns

ROW = "churnctl_verify_row"  # the column that numbers the sample's rows
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Part:
    """One part file of the sample; its line ``n`` is the sample's line ``n + offset``."""

    path: Path
    offset: int


@dataclass(frozen=True)
class Sample:
    """The sample's part files and its number of rows."""

    parts: tuple[Part, ...]
    rows: int

    def line(self, part: str, line: int | None) -> int | None:
        """The sample's line of a part's line (by the part's file name)."""
        offsets = {p.path.name: p.offset for p in self.parts}
        return None if line is None else line + offsets[Path(part).name]


def write_sample(data: str | Path, folder: Path, rows: int | None, options: ReadOptions) -> Sample:
    """The first ``rows`` rows of ``data`` (all of them: None) as numbered parts in ``folder``."""
    if str(data) == STDIN:
        raise UsageError("name a file to verify: every runtime reads it, and stdin is read once")
    check_input(data)
    if ROW in read_columns(data, options):
        raise InputError(f"{data}: has a column {ROW!r}, the name the sample's row numbers take")
    if is_parquet(data):
        return _parquet_sample(Path(data), folder, rows)
    return _csv_sample(Path(data), folder, rows, options)


def _parquet_sample(data: Path, folder: Path, rows: int | None) -> Sample:
    table = pq.read_table(data)
    table = table if rows is None else table.slice(0, rows)
    numbers = pa.array(range(1, table.num_rows + 1), pa.int64())
    table = table.add_column(0, ROW, numbers)
    half = (table.num_rows + 1) // 2
    parts = []
    for index, (start, offset) in enumerate(((0, 0), (half, half)), 1):
        path = folder / f"part-{index}.parquet"
        pq.write_table(table.slice(start, half), path)
        parts.append(Part(path, offset))
    return Sample(tuple(parts), table.num_rows)


def _csv_sample(data: Path, folder: Path, rows: int | None, options: ReadOptions) -> Sample:
    delimiter = options.delimiter.encode(options.encoding)
    records = list(_records(data, rows))
    if not records:
        raise InputError(f"{data}: no header")
    header, body = records[0], records[1:]
    half = (len(body) + 1) // 2
    heads = [_numbered(header, ROW.encode(options.encoding), delimiter)]
    numbered = [_numbered(r, str(i).encode(), delimiter) for i, r in enumerate(body, 1)]
    first, second = numbered[:half], numbered[half:]
    offset = sum(r.count(b"\n") for r in [header, *body[:half]]) - header.count(b"\n")
    parts = [Part(folder / "part-1.csv", 0), Part(folder / "part-2.csv", offset)]
    for part, chunk in zip(parts, (first, second), strict=True):
        part.path.write_bytes(b"".join([*heads, *chunk]))
    return Sample(tuple(parts), len(body))


def _numbered(record: bytes, number: bytes, delimiter: bytes) -> bytes:
    """The record with ``number`` as its first field (a blank line stays blank)."""
    if not record.strip(b"\r\n"):
        return record
    if record.startswith(BOM):
        return BOM + number + delimiter + record[len(BOM) :]
    return number + delimiter + record


def _records(data: Path, rows: int | None) -> Iterator[bytes]:
    """The header, then up to ``rows`` records (or every one), as bytes with their endings.

    A record ends at a line break outside quotes (an even count of quotes so far)."""
    taken, pending, quotes = -1, b"", 0
    with pa.input_stream(str(data), compression=compression_suffix(data.name)) as stream:
        for line in _lines(stream):
            pending += line
            quotes += line.count(b'"')
            if quotes % 2:
                continue
            if rows is not None and taken >= rows:
                return
            yield pending
            taken += 1 if pending.strip(b"\r\n") else 0
            pending, quotes = b"", 0
    if pending:
        yield pending  # an open quote at the end: the reader says what it makes of it


def _lines(stream: pa.NativeFile) -> Iterator[bytes]:
    rest = b""
    while chunk := stream.read(1 << 20):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from (line + b"\n" for line in lines)
    if rest:
        yield rest
