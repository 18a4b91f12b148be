"""The sample as a Java, C++ or JavaScript caller of the fused ONNX graph would feed it.

Such a caller reads each CSV record with a plain CSV reader and hands the graph every
category as its text (``""`` when empty) and every number as a double parsed the way
``Double.parseDouble`` does (``parse_number``): trimmed of ASCII spaces and controls,
decimal or exponent notation, ``NaN`` and ``Infinity``, a ``d`` or ``f`` suffix; with the
``,`` decimal mark, the comma becomes a point first. A field it cannot parse (empty,
``1 000``, ``1.5`` under ``,``) is NaN, which the graph marks not valid. Where churnctl
reads a value otherwise (``1d``, a no-break space around a number), ``verify`` shows the
difference: nothing is hidden. A record whose field count is not the header's is
one the caller cannot feed: it counts as rejected, on its line.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from churnctl.features.columns import as_text
from churnctl.features.input_policy import InputSchema
from churnctl.io.formats import is_parquet
from churnctl.io.reading import ReadOptions

# Double.parseDouble's grammar: trimmed of characters <= U+0020, an optional sign, NaN,
# Infinity, or decimal digits with an optional exponent and float/double suffix.
JAVA_NUMBER = re.compile(
    r"([+-]?)(NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?)"
)
JAVA_TRIMMED = "".join(chr(c) for c in range(0x21))


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
    """A number as Java's ``Double.parseDouble`` reads it (hex floats aside); NaN where it fails.

    With another decimal mark, that mark becomes a point first (a text holding a point
    then fails, as in churnctl).
    """
    if decimal != ".":
        text = "?" if "." in text else text.replace(decimal, ".")
    found = JAVA_NUMBER.fullmatch(text.strip(JAVA_TRIMMED))
    if found is None:
        return math.nan
    sign, body = found.group(1), found.group(2)
    if body in ("NaN", "Infinity"):
        return math.nan if body == "NaN" else float(f"{sign}inf")
    return float(sign + body.rstrip("fFdD"))
