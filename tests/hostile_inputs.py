"""A folder of input files that each have their own shape, shared by the Flink tests.

Every file holds synthetic churn rows with ids of its own (``first_id`` onwards), so that
a test can tell where each scored or rejected row came from. ``score`` and the Flink job
must read the same files, score the same rows and reject the same ones, with the same
lines and reasons.
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from churnctl.samples.generate import COLUMNS
from tests.csv_rows import text_rows

NOTE = "Note"  # a kept column whose values hold line breaks, commas and quotes


def rows_with_ids(n: int, seed: int, first_id: int) -> list[dict[str, str]]:
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in text_rows(n, seed)]
    for i, row in enumerate(rows):
        row["CustomerId"] = str(first_id + i)
        row[NOTE] = f"note {i}" if i % 3 else f'line one\nline "two", {i}'
    return rows


def csv_text(header: list[str], rows: list[list[str]], *, newline: str = "\n") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=newline).writerows([header, *rows])
    return buffer.getvalue()


def messy_rows(first_id: int) -> tuple[list[str], list[list[str]]]:
    """40 rows in their own column order, 3 bad values, and 3 records of the wrong width."""
    rows = rows_with_ids(40, 11, first_id)
    rows[3]["Geography"] = "Atlantis"
    rows[10]["CreditScore"] = "abc"
    rows[20]["Age"] = ""
    rows[5]["Surname"] = "Smith, Jr."
    header = ["CustomerId", NOTE, *(c for c in reversed(COLUMNS) if c != "CustomerId")]
    records = [[row[c] for c in header] for row in rows]
    records.insert(12, records[12][:-1])  # a field too few (RowNumber, not needed)
    records.insert(25, records[25][:-4])  # several fields too few
    records.insert(30, [*records[30], "extra"])  # a field too many
    return header, records


def swapped(header: list[str], a: str, b: str) -> list[str]:
    i, j = header.index(a), header.index(b)
    header = list(header)
    header[i], header[j] = header[j], header[i]
    return header


def write_hostile_folder(folder: Path, *, with_missing_column: bool = False) -> list[Path]:
    """The input files (as ``score`` names them, sorted), and beside them what both skip."""
    folder.mkdir(parents=True, exist_ok=True)
    header, records = messy_rows(100_000)
    (folder / "a.csv").write_bytes(
        b"\xef\xbb\xbf" + csv_text(header, records, newline="\r\n").encode("utf-8")
    )
    plain = [*COLUMNS, NOTE]
    rows = rows_with_ids(30, 12, 200_000)
    other = swapped(plain, "Balance", "EstimatedSalary")
    (folder / "b.csv").write_text(
        csv_text(other, [[r[c] for c in other] for r in rows]), encoding="utf-8"
    )
    rows = rows_with_ids(25, 13, 300_000)
    other = swapped(plain, "Geography", "CreditScore")
    (folder / "c.csv.gz").write_bytes(
        gzip.compress(csv_text(other, [[r[c] for c in other] for r in rows]).encode("utf-8"))
    )
    rows = rows_with_ids(20, 14, 400_000)
    pq.write_table(
        pa.table({c: [r[c] for r in rows] for c in reversed(plain)}), folder / "d.parquet"
    )
    if with_missing_column:
        rows = rows_with_ids(5, 15, 500_000)
        no_age = [c for c in plain if c != "Age"]
        (folder / "e.csv").write_text(
            csv_text(no_age, [[r[c] for c in no_age] for r in rows]), encoding="utf-8"
        )
    skipped(folder)
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name[0] not in "._" and not p.name.endswith(".txt")
    )


def skipped(folder: Path) -> None:
    """Entries neither ``score`` nor the job reads: other names, hidden ones, a sub-folder."""
    rows = rows_with_ids(3, 16, 900_000)
    text = csv_text([*COLUMNS, NOTE], [[r[c] for c in [*COLUMNS, NOTE]] for r in rows])
    (folder / "notes.txt").write_text(text, encoding="utf-8")
    (folder / ".hidden.csv").write_text(text, encoding="utf-8")
    (folder / "_meta.csv").write_text(text, encoding="utf-8")
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "f.csv").write_text(text, encoding="utf-8")
