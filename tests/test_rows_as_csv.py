"""One spelling of rows as CSV, one rejects schema: every output derives from them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
from hypothesis import given
from hypothesis import strategies as st

from churnctl.flink.job import output_columns
from churnctl.flink.outputs import count_outputs, record_changes
from churnctl.flink.scoring import FAILED, FILES, FILES_COLUMNS, REJECTS, SCORED, FileCounts
from churnctl.io.rejects import REJECTS_SCHEMA, file_reject
from churnctl.io.sinks import CsvWriter, csv_line, csv_text
from churnctl.scoring.scorer import output_schema

TEXT = st.text()  # a lone carriage return too: quoted, though Python 3.11's csv would not
VALUES = st.lists(st.one_of(st.none(), TEXT, st.integers(), st.floats(allow_nan=False)), max_size=6)


@given(rows=st.lists(VALUES, min_size=1, max_size=4))
def test_csv_text_reads_back_as_the_values(rows: list[list[object]]) -> None:
    text = csv_text(rows)
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    expected = [["" if v is None else str(v) for v in row] for row in rows]
    assert parsed == expected


@given(values=VALUES)
def test_a_line_is_the_text_of_one_row_without_its_break(values: list[object]) -> None:
    if not any(isinstance(v, str) and ("\n" in v or "\r" in v) for v in values):
        assert csv_line(values) + "\n" == csv_text([values])
    else:  # a line has no break to quote for: its values' line breaks stay as they are
        assert csv_line(values) == csv_text([values], end="")


def test_a_table_whose_text_holds_a_lone_carriage_return_reads_back_row_for_row() -> None:
    table = pa.table({"Note": ["a\rb", "c\r", "\r\n", "plain"], "raw": [0.5, 0.25, 1.0, 0.0]})
    buffer = io.BytesIO()
    CsvWriter(buffer, table.schema).write_table(table)
    parse = pacsv.ParseOptions(newlines_in_values=True)
    back = pacsv.read_csv(io.BytesIO(buffer.getvalue()), parse_options=parse)
    assert back.column("Note").to_pylist() == table.column("Note").to_pylist()


@given(source=TEXT.filter(bool), reason=TEXT.filter(bool))
def test_a_file_reject_fills_the_rejects_columns_by_name(source: str, reason: str) -> None:
    (record,) = csv.DictReader(
        io.StringIO(csv_text([REJECTS_SCHEMA.names, file_reject(source, reason)]), newline="")
    )
    assert record == {**dict.fromkeys(REJECTS_SCHEMA.names, ""), "source": source, "reason": reason}


def test_the_job_columns_are_those_of_the_schemas() -> None:
    keep = ("CustomerId", "Surname")
    columns = output_columns(keep)
    assert columns[SCORED] == output_schema(keep).names
    assert columns[REJECTS] == REJECTS_SCHEMA.names
    assert columns[FILES] == list(FILES_COLUMNS)


def test_files_records_and_changes_read_back(tmp_path: Path) -> None:
    written = [
        FileCounts("a, b.csv", 10, 7, 3, 1),
        FileCounts('say "x".csv', 5, 9, status=FAILED, detail="not read: gone, twice"),
    ]
    (tmp_path / FILES).mkdir()
    (tmp_path / FILES / "part-0.csv").write_text(
        "".join(counts.as_csv() + "\n" for counts in written), encoding="utf-8"
    )
    assert count_outputs(tmp_path).files == written
    path = record_changes(tmp_path, written)
    assert path is not None
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [[c.source, "", "", c.detail, ""] for c in written]
