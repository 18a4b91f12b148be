"""The sample as a Java, C++ or JavaScript caller of the fused ONNX graph would feed it.

Such a caller reads each CSV record with a plain CSV reader and hands the graph every
category as its text (``""`` when empty) and every number as a double parsed the way
``Double.parseDouble`` or ``strtod`` would: the field without surrounding whitespace,
in decimal or exponent notation, ``nan`` and ``inf`` spellings included (Python's
``float``, which also reads ``1_000``); with the ``,`` decimal mark, the comma becomes a
point first. A field it cannot parse (empty, ``1 000``, ``1.5`` under ``,``) is NaN, which
the graph marks not valid. Where churnctl reads a value otherwise, ``verify`` shows
the difference: nothing is hidden. A record whose field count is not the header's is
one the caller cannot feed: it counts as rejected, on its line.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from churnctl.features.columns import as_text
from churnctl.features.input_policy import InputSchema
from churnctl.io.formats import is_parquet
from churnctl.io.reading import ReadOptions


@dataclass(frozen=True)
class CallerRows:
    """A part's records: each row's first line, its fields by column (text), the unfed lines."""

    lines: list[int]
    fields: dict[str, list[str]]
    unfed: list[int]  # lines of records the caller could not split into the header's fields


def read_part(path: Path, columns: list[str], options: ReadOptions) -> CallerRows:
    """The part's rows as text; Parquet rows are numbered from 1, as churnctl's rejects are."""
    if is_parquet(path):
        table = pq.read_table(path, columns=columns)
        fields = {name: _texts(table.column(name)) for name in columns}
        return CallerRows(list(range(1, table.num_rows + 1)), fields, [])
    encoding = "utf-8-sig" if options.encoding.lower() in ("utf-8", "utf8") else options.encoding
    with path.open(encoding=encoding, newline="") as handle:
        return _csv_rows(csv.reader(handle, delimiter=options.delimiter), columns)


def _csv_rows(reader: csv._reader, columns: list[str]) -> CallerRows:
    header = next(reader)
    positions = [header.index(name) for name in columns]
    lines, unfed, rows = [], [], []
    start = reader.line_num + 1
    for record in reader:
        if record and len(record) == len(header):
            lines.append(start)
            rows.append([record[p] for p in positions])
        elif record:
            unfed.append(start)
        start = reader.line_num + 1
    fields = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
    return CallerRows(lines, fields, unfed)


def _texts(column: object) -> list[str]:
    return ["" if value is None else value for value in as_text(column).to_pylist()]


def graph_feed(rows: CallerRows, schema: InputSchema, decimal: str) -> dict[str, np.ndarray]:
    """The fused graph's inputs: categories as strings [N, 1], numbers as doubles [N, 1]."""
    feed = {name: np.array(rows.fields[name], dtype=object)[:, None] for name in schema.categorical}
    for name in schema.numeric:
        numbers = [parse_number(text, decimal) for text in rows.fields[name]]
        feed[name] = np.array(numbers, dtype=np.float64)[:, None]
    return feed


def parse_number(text: str, decimal: str = ".") -> float:
    """A number as a Java/C++ caller parses it; NaN where it cannot."""
    if decimal != ".":
        text = text.replace(decimal, ".") if "." not in text else "?"
    try:
        return float(text.strip())
    except ValueError:
        return math.nan
