"""Synthetic churn rows as CSV text, shared by the tests that write messy files."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from churnctl.samples.generate import COLUMNS, generate_table


def text_rows(n: int, seed: int) -> list[list[str]]:
    """Synthetic rows, every value as the text a CSV file would hold."""
    table = generate_table(n, seed=seed)
    columns = [
        [str(v) if not isinstance(v, float) else repr(v) for v in table.column(c).to_pylist()]
        for c in COLUMNS
    ]
    return [list(row) for row in zip(*columns, strict=True)]


def csv_bytes(rows: Sequence[Sequence[str]]) -> bytes:
    """A CSV file: the churn header, then the rows (quoted where needed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")
