"""The columnar JSON Lines writer writes exactly the bytes of the former row-by-row one."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnctl.io.sinks import CsvWriter, JsonLinesWriter, jsonl_bytes
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.samples.generate import COLUMNS, generate_files
from churnctl.scoring.scorer import Scorer


def row_by_row(table: pa.Table) -> bytes:
    """The writer as it was before it went columnar: the reference. Floats of a float32
    column (``raw``) in their shortest float32 form, of a float64 one (a kept column) in
    their own shortest form (issue 19: a kept float keeps every digit)."""
    kinds = {field.name: field.type for field in table.schema}  # a repeated name: the last

    def jsonable(row: dict[str, Any]) -> dict[str, Any]:
        return {k: _single(v) if _is_single(kinds[k], v) else v for k, v in row.items()}

    with np.errstate(over="ignore"):
        lines = [json.dumps(jsonable(row), ensure_ascii=False) for row in table.to_pylist()]
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _is_single(kind: pa.DataType, value: Any) -> bool:
    return isinstance(value, float) and not pa.types.is_float64(kind)


def _single(value: float) -> float:
    return float(str(np.float32(value)))


TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ['"', "\\", "\n", "\r\n", "\t", "\x00", "\x1f", "\x7f", "é", "\u2028", "😀", "", " "]
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 1e-4, 9.999e-5, 1e15, 1e16, 123456789.0, 0.99999994, 1e-45, 3.4e38, 1e39]
)
KINDS = {
    "string": (pa.string(), TEXT),
    "large_string": (pa.large_string(), TEXT),
    "float32": (pa.float32(), FLOATS),
    "float64": (pa.float64(), FLOATS),
    "bool": (pa.bool_(), st.booleans()),
    "int64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
}


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    n_rows = draw(st.integers(0, 20))
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=4))
    names = draw(st.lists(TEXT, min_size=len(kinds), max_size=len(kinds), unique=True))
    columns = []
    for kind in kinds:
        arrow_type, values = KINDS[kind]
        drawn = draw(st.lists(st.none() | values, min_size=n_rows, max_size=n_rows))
        columns.append(pa.array(drawn, arrow_type))
    table = pa.Table.from_arrays(columns, names=names)
    split = draw(st.integers(0, n_rows))  # several chunks, some sliced
    return pa.concat_tables([table.slice(0, split), table.slice(split)])


@settings(max_examples=300, deadline=None)
@given(tables())
def test_columnar_writer_equals_the_row_by_row_one(table: pa.Table) -> None:
    assert jsonl_bytes(table) == row_by_row(table)


def test_scored_rows_are_written_as_before(tmp_path: Path) -> None:
    path = generate_files(tmp_path / "in.csv", n_rows=3_000, seed=3)[0]
    scorer = Scorer(bundled(STATE), bundled(MODEL), keep=["CustomerId", "Surname"])
    as_text = pacsv.ConvertOptions(column_types=dict.fromkeys(COLUMNS, pa.string()))
    scored = scorer.score(pacsv.read_csv(path, convert_options=as_text)).scored
    assert scored.num_rows > 2_000
    out = io.BytesIO()
    writer = JsonLinesWriter(out)
    writer.write_table(scored)
    writer.write_table(scored.slice(0, 0))
    assert out.getvalue() == row_by_row(scored)
    assert json.loads(out.getvalue().splitlines()[0]).keys() == {
        "CustomerId",
        "Surname",
        "raw",
        "exited",
    }


def test_a_float64_column_keeps_every_digit_and_a_float32_one_its_own() -> None:
    values = [0.1, 15580685.123456789, 1e-05, 1e20, 2.5e-300, float("nan")]
    table = pa.table({"kept": pa.array(values), "raw": pa.array(values, pa.float32())})
    rows = [json.loads(line) for line in jsonl_bytes(table).splitlines()]
    np.testing.assert_array_equal([row["kept"] for row in rows], values)
    single = [float(str(np.float32(v))) for v in values]
    np.testing.assert_array_equal([row["raw"] for row in rows], single)


def test_a_repeated_column_name_keeps_its_first_place_and_last_value() -> None:
    table = pa.Table.from_arrays(
        [pa.array(["a"]), pa.array([True]), pa.array(["b"])], ["x", "y", "x"]
    )
    assert jsonl_bytes(table) == row_by_row(table) == b'{"x": "b", "y": true}\n'


class _Trickle(io.BytesIO):
    """A file that takes at most 1,000 bytes per ``write``, as a pipe may."""

    def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
        return super().write(bytes(memoryview(data).cast("B")[:1000]))


@pytest.mark.parametrize("writer", [CsvWriter, JsonLinesWriter], ids=["csv", "jsonl"])
def test_a_write_that_takes_part_of_the_bytes_is_carried_on(writer: type) -> None:
    table = pa.table({"CustomerId": [str(i) for i in range(5_000)], "raw": [0.25] * 5_000})
    whole, trickle = io.BytesIO(), _Trickle()
    for handle in (whole, trickle):
        out = writer(handle, table.schema) if writer is CsvWriter else writer(handle)
        out.write_table(table)
    assert len(whole.getvalue()) > 40_000
    assert trickle.getvalue() == whole.getvalue()
