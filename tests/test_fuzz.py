"""Random bytes, random CSV and random Parquet schemas through `score` and `fit`.

Whatever the input: no traceback, a documented exit code, one `Error:` line on
failure, counts that add up on success, the input unchanged, no temporary file.
Every example is checked, failures included.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from cli_helpers import run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import Result

from churnctl.features.state import load_state
from churnctl.samples.generate import COLUMNS

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SUMMARY = re.compile(r"read ([\d,]+) rows: ([\d,]+) scored, ([\d,]+) rejected")
FITTED = re.compile(r"fitted \d+ features on ([\d,]+) rows \(([\d,]+) rejected\)")
CELL = st.text(alphabet='0123456789.-+eE ,"\n\r\tabcFrGmyS\x00é', max_size=8)
EXIT_CODES = {0, 2, 3}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _count(text: str) -> int:
    return int(text.replace(",", ""))


def _check_failure(result: Result) -> None:
    assert result.exit_code in EXIT_CODES - {0}, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stderr.startswith("Error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output


def _rows_in(path: Path) -> int:
    if path.suffix == ".parquet":
        return pq.read_table(path).num_rows
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
    return table.num_rows


def _score_and_check(source: Path) -> None:
    work = source.parent
    before = _digest(source)
    result = run(
        ["score", source, "-o", work / "out.csv", "--max-rejects", "100%", "--allow-state-mismatch"]
    )
    assert _digest(source) == before
    assert list(work.glob(".*.tmp")) == []
    if result.exit_code != 0:
        _check_failure(result)
        assert not (work / "out.csv").exists()
        return
    match = SUMMARY.search(result.stderr)
    assert match is not None, result.stderr
    read, scored, rejected = (_count(g) for g in match.groups())
    assert read == scored + rejected
    assert _rows_in(work / "out.csv") == scored
    assert _rows_in(work / "out.rejects.csv") == rejected


def _fit_and_check(source: Path) -> None:
    work = source.parent
    before = _digest(source)
    result = run(["fit", source, "-o", work / "s.json"])
    assert _digest(source) == before
    assert list(work.glob(".*.tmp")) == []
    if result.exit_code != 0:
        _check_failure(result)
        assert not (work / "s.json").exists()
        return
    match = FITTED.search(result.stderr)
    assert match is not None, result.stderr
    provenance = load_state(work / "s.json").provenance
    assert (provenance["rows"], provenance["rows_rejected"]) == tuple(
        _count(g) for g in match.groups()
    )
    assert _rows_in(work / "s.json.rejects.csv") == provenance["rows_rejected"]


def _score_and_fit(name: str, content: bytes) -> None:
    """Both commands on the content, each in a fresh folder of its own."""
    for check in (_score_and_check, _fit_and_check):
        with tempfile.TemporaryDirectory(prefix="churnctl-fuzz-") as folder:
            path = Path(folder) / name
            path.write_bytes(content)
            check(path)


@FUZZ
@given(content=st.binary(max_size=400))
def test_random_bytes(content: bytes) -> None:
    _score_and_fit("in.csv", content)


@st.composite
def csv_documents(draw: st.DrawFn) -> bytes:
    header = list(COLUMNS)
    if draw(st.booleans()):
        header = draw(st.permutations(header))
    rows = draw(st.lists(st.lists(CELL, min_size=12, max_size=15), max_size=12))
    lines = [",".join(header)] + [",".join(row) for row in rows]
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    return ending.join(lines).encode("utf-8") + draw(st.sampled_from([b"", b"\n", b'"']))


@FUZZ
@given(content=csv_documents())
def test_random_csv(content: bytes) -> None:
    _score_and_fit("in.csv", content)


ARROW_TYPES = [
    pa.int8(),
    pa.int64(),
    pa.uint64(),
    pa.float32(),
    pa.float64(),
    pa.bool_(),
    pa.string(),
    pa.large_string(),
    pa.binary(),
    pa.date32(),
    pa.timestamp("ms"),
    pa.null(),
    pa.list_(pa.int32()),
    pa.struct([("a", pa.int32())]),
    pa.dictionary(pa.int8(), pa.string()),
]


def _values(kind: pa.DataType, draw: st.DrawFn, n: int) -> pa.Array:
    if pa.types.is_null(kind):
        return pa.nulls(n)
    if pa.types.is_dictionary(kind):
        labels = draw(
            st.lists(st.sampled_from(["France", "Spain", "Male", "x"]), min_size=n, max_size=n)
        )
        return pa.array(labels).dictionary_encode().cast(kind)
    if pa.types.is_struct(kind):
        return pa.array([{"a": i} for i in range(n)], kind)
    if pa.types.is_list(kind):
        return pa.array([[i] for i in range(n)], kind)
    strategy = {
        "int8": st.integers(-128, 127),
        "int64": st.integers(-(2**63), 2**63 - 1),
        "uint64": st.integers(0, 2**64 - 1),
        "float": st.floats(width=32),
        "double": st.floats(),
        "bool": st.booleans(),
        "string": CELL,
        "large_string": CELL,
        "binary": st.binary(max_size=6),
        "date32[day]": st.dates(),
        "timestamp[ms]": st.datetimes(),
    }[str(kind)]
    values = draw(st.lists(st.one_of(st.none(), strategy), min_size=n, max_size=n))
    return pa.array(values, kind)


@st.composite
def parquet_tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 8))
    names = [c for c in COLUMNS if draw(st.integers(0, 9)) > 0]  # now and then a column is gone
    arrays = [_values(draw(st.sampled_from(ARROW_TYPES)), draw, n) for _ in names]
    return pa.Table.from_arrays(arrays, names=names)


@FUZZ
@given(table=parquet_tables())
def test_random_parquet_schemas(table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    content = sink.getvalue().to_pybytes()
    _score_and_fit("in.parquet", content)
