"""Issue 19, item 2: kept columns keep their type in Parquet, JSON Lines and the Python API;
CSV output stays byte for byte what it was (every kept column as text); an output joined
from several inputs keeps a type all its inputs agree on, else text."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from churnctl import FilesRequest, Scorer, ScoreRequest, score_file, score_files
from churnctl.features.columns import as_text
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.scoring.kept import agreed_types, kept_type

ROWS = 60
KEEP = ["CustomerId", "Surname", "Balance", "Exited", "Flag", "Tiny", "Since", "Code"]
# each kept column's type in the output, read from a Parquet input
TYPED = {
    "CustomerId": pa.int64(),
    "Surname": pa.string(),
    "Balance": pa.float64(),
    "Exited": pa.int64(),
    "Flag": pa.bool_(),
    "Tiny": pa.float64(),
    "Since": pa.string(),  # a date: written as text
    "Code": pa.string(),  # a dictionary of text: decoded
}


def typed_table() -> pa.Table:
    table = pacsv.read_csv(bundled(SAMPLE)).slice(0, ROWS)
    extra = {
        "Flag": pa.array([i % 3 == 0 for i in range(ROWS)]),
        # floats whose text Arrow spells with an exponent: CSV must keep as_text's spelling
        "Tiny": pa.array([[1e-05, 1e20, 0.5, -2.5e-7][i % 4] for i in range(ROWS)]),
        "Since": pa.array([datetime.date(2020, 1, 1 + i % 28) for i in range(ROWS)]),
        "Code": pa.array([["a", "b"][i % 2] for i in range(ROWS)]).dictionary_encode(),
    }
    for name, values in extra.items():
        table = table.append_column(name, values)
    return table


def as_text_table(table: pa.Table) -> pa.Table:
    """The table as CSV input gives it: every column text."""
    return pa.table({name: as_text(table.column(name)) for name in table.column_names})


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(bundled(STATE), bundled(MODEL), keep=KEEP)


def _score(
    scorer: Scorer, table: pa.Table, folder: Path, name: str, suffix: str, *, csv: bool = False
) -> Path:
    """Score ``table``, written as a Parquet (or ``csv``) input file, into a ``suffix`` file."""
    source = folder / f"{name}-input.{'csv' if csv else 'parquet'}"
    if csv:
        pacsv.write_csv(table, source)
    else:
        pq.write_table(table, source)
    out = folder / f"{name}.{suffix}"
    score_file(ScoreRequest(str(source), str(out), scorer))
    return out


def test_parquet_output_keeps_the_inputs_types(scorer: Scorer, tmp_path: Path) -> None:
    table = typed_table()
    out = pq.read_table(_score(scorer, table, tmp_path, "typed", "parquet"))
    assert {name: out.schema.field(name).type for name in KEEP} == TYPED
    assert out.column("CustomerId").equals(table.column("CustomerId"))
    assert out.column("Tiny").equals(table.column("Tiny"))
    assert out.column("Since").to_pylist()[0] == "2020-01-01"


def test_json_lines_output_keeps_numbers_as_numbers(scorer: Scorer, tmp_path: Path) -> None:
    table = typed_table()
    lines = _score(scorer, table, tmp_path, "typed", "jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["CustomerId"] == table.column("CustomerId")[0].as_py()
    assert isinstance(first["CustomerId"], int) and isinstance(first["Exited"], int)
    assert isinstance(first["Balance"], float) and first["Flag"] is True
    assert first["Since"] == "2020-01-01" and first["Code"] == "a"
    assert [json.loads(line)["Tiny"] for line in lines[:4]] == [1e-05, 1e20, 0.5, -2.5e-7]
    balances = [json.loads(line)["Balance"] for line in lines]
    assert balances == table.column("Balance").to_pylist()  # every float64 digit


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet"])
def test_csv_input_keeps_text_and_csv_output_is_what_it_was(
    scorer: Scorer, tmp_path: Path, suffix: str
) -> None:
    """CSV is read as text, so its kept columns stay text in every format; and a typed
    input's CSV output is byte for byte that of the same values as text (the old output)."""
    typed = _score(scorer, typed_table(), tmp_path, "typed", suffix)
    text = _score(scorer, as_text_table(typed_table()), tmp_path, "text", suffix, csv=True)
    if suffix == "csv":
        assert typed.read_bytes() == text.read_bytes()
        assert "1e-05" not in typed.read_text() and ",0.00001," in typed.read_text()
    elif suffix == "parquet":
        kinds = pq.read_schema(text)
        assert all(kinds.field(name).type == pa.string() for name in KEEP)
    else:
        assert json.loads(text.read_text().splitlines()[0])["CustomerId"] == str(
            typed_table().column("CustomerId")[0].as_py()
        )


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ("typed", TYPED),  # both typed alike: the types stay
        ("text", dict.fromkeys(KEEP, pa.string())),  # typed and text: text
        ("csv", dict.fromkeys(KEEP, pa.string())),  # a CSV input is text
    ],
)
@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_a_joined_output_keeps_the_types_its_inputs_agree_on(
    scorer: Scorer, tmp_path: Path, second: str, expected: dict[str, pa.DataType], suffix: str
) -> None:
    first = tmp_path / "a.parquet"
    pq.write_table(typed_table(), first)
    other = tmp_path / ("b.csv" if second == "csv" else "b.parquet")
    if second == "csv":
        pacsv.write_csv(as_text_table(typed_table()), other)
    else:
        data = typed_table() if second == "typed" else as_text_table(typed_table())
        pq.write_table(data, other)
    out = tmp_path / f"joined.{suffix}"
    request = FilesRequest([str(first), str(other)], scorer, output=str(out), workers=1)
    summary = score_files(request)
    assert summary.rows.scored == 2 * ROWS
    if suffix == "parquet":
        written = pq.read_table(out)
        assert {name: written.schema.field(name).type for name in KEEP} == expected
    else:
        values = [json.loads(line)["CustomerId"] for line in out.read_text().splitlines()]
        kind = int if expected["CustomerId"] == pa.int64() else str
        assert len(values) == 2 * ROWS and all(isinstance(v, kind) for v in values)


def test_an_input_without_rows_writes_text_columns(scorer: Scorer, tmp_path: Path) -> None:
    out = pq.read_table(_score(scorer, typed_table().slice(0, 0), tmp_path, "empty", "parquet"))
    assert out.num_rows == 0
    assert all(out.schema.field(name).type == pa.string() for name in KEEP)


@pytest.mark.parametrize(
    ("kind", "kept"),
    [
        (pa.int8(), pa.int8()),
        (pa.uint64(), pa.uint64()),
        (pa.float16(), pa.float32()),
        (pa.float32(), pa.float32()),
        (pa.bool_(), pa.bool_()),
        (pa.string(), pa.string()),
        (pa.large_string(), pa.string()),
        (pa.dictionary(pa.int32(), pa.int64()), pa.int64()),
        (pa.decimal128(10, 2), pa.string()),
        (pa.timestamp("s"), pa.string()),
        (pa.null(), pa.string()),
        (pa.list_(pa.int64()), pa.string()),
        (pa.binary(), pa.string()),
    ],
)
def test_the_kept_type_of_each_arrow_type(kind: pa.DataType, kept: pa.DataType) -> None:
    assert kept_type(kind) == kept


def test_agreed_types_fall_back_to_text_on_disagreement() -> None:
    inputs = [
        {"a": pa.int64(), "b": pa.float64(), "c": pa.string()},
        {"a": pa.int64(), "b": pa.int64(), "c": pa.string()},
        {"a": pa.int64(), "b": pa.float64(), "c": pa.string()},
    ]
    assert agreed_types(inputs) == {"a": pa.int64(), "b": pa.string(), "c": pa.string()}
