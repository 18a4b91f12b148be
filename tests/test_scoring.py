"""Scorer and score_file on the bundled state and model, checked independently."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from csv_rows import csv_bytes, text_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.features.extraction import ROW_REJECT_SCHEMA
from churnctl.features.input_policy import frame_from_batch
from churnctl.features.state import FeatureState, load_state
from churnctl.io.rejects import NO_LIMIT, REJECTS_SCHEMA
from churnctl.io.sources import Progress, ReadOptions, open_source
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.samples.generate import COLUMNS, generate_table
from churnctl.scoring.model import ChurnModel
from churnctl.scoring.scorer import ScoredBatch, Scorer, output_schema

PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# One bad value per kind: (column, text in the file, column blamed, reason).
BAD_VALUES: list[tuple[str, str, str]] = [
    ("CreditScore", "abc", "not a number"),
    ("CreditScore", "12x", "not a number"),
    ("Age", "", "empty value"),
    ("Age", "   ", "empty value"),
    ("Tenure", "--3", "not a number"),
    ("Balance", "NaN", "non-finite value"),
    ("Balance", "-inf", "non-finite value"),
    ("EstimatedSalary", "Infinity", "non-finite value"),
    ("NumOfProducts", "two", "not a number"),
    ("HasCrCard", "yes", "not a number"),
    ("Geography", "Atlantis", "unseen category 'Atlantis'"),
    ("Geography", "france", "unseen category 'france'"),
    ("Geography", "", "empty value"),
    ("Gender", "X", "unseen category 'X'"),
]


# ------------------------------------------------------------------ fixtures and helpers


@pytest.fixture(scope="module")
def state() -> FeatureState:
    return load_state(bundled(STATE))


@pytest.fixture(scope="module")
def model() -> ChurnModel:
    return ChurnModel(bundled(MODEL))


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return ort.InferenceSession(str(bundled(MODEL)), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def sample() -> pa.Table:
    """The bundled sample, every column as text, read the way the scorer reads files."""
    source = open_source(bundled(SAMPLE), list(COLUMNS))
    return pa.Table.from_batches([part.rows for part in source.batches])


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scoring")


def score_batch(
    state: FeatureState,
    model: ChurnModel,
    batch: pa.Table,
    *,
    keep: Sequence[str] = ("CustomerId",),
    threshold: float = 0.5,
) -> ScoredBatch:
    """One batch through a Scorer built from the state and model."""
    return Scorer(state, model, keep=keep, threshold=threshold).score(batch)


def _numpy_features(table: pa.Table, state_path: Path) -> np.ndarray:
    """The reference pipeline spelled out from the JSON: one-hot, index, assemble, scale."""
    doc = json.loads(state_path.read_text(encoding="utf-8"))
    vocab = {
        c["name"]: c["vocabulary"] for c in doc["input_schema"]["columns"] if "vocabulary" in c
    }
    stages = {s["type"]: s for s in doc["stages"]}
    assert list(stages) == ["StringIndexer", "OneHotEncoder", "VectorAssembler", "StandardScaler"]
    geography = table.column("Geography").to_pylist()
    gender = table.column("Gender").to_pylist()
    columns: list[np.ndarray] = [
        np.array([g == label for g in geography], dtype=np.float64) for label in vocab["Geography"]
    ]
    columns.append(np.array([vocab["Gender"].index(g) for g in gender], dtype=np.float64))
    for name in stages["VectorAssembler"]["params"]["input_cols"][2:]:
        columns.append(np.array([float(v) for v in table.column(name).to_pylist()]))
    raw = np.column_stack(columns)
    mean = np.array(stages["StandardScaler"]["fitted"]["mean"])
    std = np.array(stages["StandardScaler"]["fitted"]["std"])
    return (raw - mean) / std


def _direct_raw(state: FeatureState, session: ort.InferenceSession, table: pa.Table) -> np.ndarray:
    """The state's pipeline, then onnxruntime directly, then probabilities[:, 1]."""
    frame = frame_from_batch(table, state.pipeline.input_schema)
    assert frame.ok.all()
    features = state.pipeline.transform(frame)
    (name,) = [i.name for i in session.get_inputs()]
    (probabilities,) = session.run(["probabilities"], {name: features.astype(np.float32)})
    return np.asarray(probabilities, dtype=np.float64)[:, 1]


def _corrupt(rows: list[list[str]], bad: dict[int, int]) -> list[list[str]]:
    """Copy of rows with BAD_VALUES[kind] written into row index -> kind."""
    out = [list(r) for r in rows]
    for index, kind in bad.items():
        column, text, _ = BAD_VALUES[kind]
        out[index][COLUMNS.index(column)] = text
    return out


def _string_table(rows: Sequence[Sequence[str]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(COLUMNS)
    return pa.table(
        {c: pa.array(list(v), pa.string()) for c, v in zip(COLUMNS, columns, strict=True)}
    )


def _score(
    state: FeatureState, model: ChurnModel, path: Path, out: Path, **options: object
) -> tuple[int, int, bytes, bytes]:
    request = ScoreRequest(
        input=str(path),
        output=str(out),
        scorer=Scorer(state, model, keep=("CustomerId", "Surname")),
        max_rejects=NO_LIMIT,
        read_options=ReadOptions(**options),  # type: ignore[arg-type]
    )
    summary = score_file(request)
    rejects = Path(summary.rejects or "")
    assert rejects == out.with_name(out.name.split(".")[0] + ".rejects.csv")
    assert summary.rows.read == summary.rows.scored + summary.rows.rejected
    return summary.rows.scored, summary.rows.rejected, out.read_bytes(), rejects.read_bytes()


def _read_rejects(data: bytes) -> pa.Table:
    types = {f.name: pa.string() for f in REJECTS_SCHEMA}
    options = pacsv.ConvertOptions(column_types=types, strings_can_be_null=False)
    table = pacsv.read_csv(io.BytesIO(data), convert_options=options)
    assert table.column_names == REJECTS_SCHEMA.names
    return table


def _csv_line(row: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return buffer.getvalue()


def _expected_rejects(rows: list[list[str]], bad: dict[int, int]) -> list[dict[str, str]]:
    """CSV rejects: the record's physical line (header is line 1) and its original text."""
    return [
        {
            "line": str(i + 2),
            "column": BAD_VALUES[k][0],
            "reason": BAD_VALUES[k][2],
            "text": _csv_line(rows[i]),
        }
        for i, k in sorted(bad.items())
    ]


# ------------------------------------------------------------------ score_batch


def test_every_row_is_scored_or_rejected(
    state: FeatureState, model: ChurnModel, sample: pa.Table
) -> None:
    result = score_batch(state, model, sample)
    assert result.scored.num_rows + result.rejects.num_rows == sample.num_rows
    assert result.n_read == sample.num_rows == 10_000
    assert result.rejects.num_rows == 0
    assert result.scored.schema == output_schema(["CustomerId"])
    assert result.rejects.schema == ROW_REJECT_SCHEMA


def test_pipeline_features_match_a_hand_written_reference(
    state: FeatureState, sample: pa.Table
) -> None:
    frame = frame_from_batch(sample, state.pipeline.input_schema)
    features = state.pipeline.transform(frame)
    assert features.shape == (10_000, 12)
    np.testing.assert_allclose(
        features, _numpy_features(sample, bundled(STATE)), rtol=1e-12, atol=1e-12
    )


def test_raw_matches_direct_onnxruntime(
    state: FeatureState, model: ChurnModel, session: ort.InferenceSession, sample: pa.Table
) -> None:
    result = score_batch(state, model, sample)
    raw = result.scored.column("raw").to_numpy()
    assert raw.dtype == np.float32
    expected = _direct_raw(state, session, sample)
    np.testing.assert_allclose(raw, expected, rtol=0, atol=1e-6)
    assert raw.std() > 0.05 and raw.min() >= 0.0 and raw.max() <= 1.0
    # and via the hand-written features, fully independent of churnctl's stages
    features = _numpy_features(sample, bundled(STATE)).astype(np.float32)
    (probabilities,) = session.run(["probabilities"], {"X": features})
    np.testing.assert_allclose(raw, probabilities[:, 1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_exited_is_raw_above_threshold(
    state: FeatureState, model: ChurnModel, sample: pa.Table, threshold: float
) -> None:
    result = score_batch(state, model, sample.slice(0, 3000), threshold=threshold)
    raw = result.scored.column("raw").to_numpy()
    exited = result.scored.column("exited").to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(exited, raw > threshold)
    if threshold == 0.5:
        assert 0 < exited.sum() < len(exited)


def test_keep_columns_pass_through_as_text(
    state: FeatureState, model: ChurnModel, sample: pa.Table
) -> None:
    keep = ["CustomerId", "Surname", "RowNumber", "Geography", "Balance"]
    result = score_batch(state, model, sample.slice(0, 500), keep=keep)
    assert result.scored.column_names == [*keep, "raw", "exited"]
    assert result.scored.schema == output_schema(keep)
    for name in keep:
        assert result.scored.column(name).type == pa.string()
        assert result.scored.column(name).to_pylist() == sample.column(name)[:500].to_pylist()


def test_typed_input_keeps_its_kept_column_types(
    state: FeatureState, model: ChurnModel, sample: pa.Table
) -> None:
    """A typed batch (as from Parquet) scores like the text one; kept ints stay ints, and
    are the text ones when the output asks for text (``with_kept_types({})``)."""
    typed = generate_table(700, seed=9)
    text = _string_table(text_rows(700, seed=9))
    by_type = score_batch(state, model, typed, keep=["CustomerId", "Age"])
    by_text = score_batch(state, model, text, keep=["CustomerId", "Age"])
    for name in ("CustomerId", "Age"):
        assert by_type.scored.column(name).equals(typed.column(name))
    as_text = Scorer(state, model, keep=["CustomerId", "Age"]).with_kept_types({})
    assert as_text.score(typed).scored.column("CustomerId").to_pylist() == [
        str(v) for v in typed.column("CustomerId").to_pylist()
    ]
    assert (
        as_text.score(typed).scored.column("CustomerId").equals(by_text.scored.column("CustomerId"))
    )
    np.testing.assert_array_equal(
        by_type.scored.column("raw").to_numpy(), by_text.scored.column("raw").to_numpy()
    )


def test_bad_values_are_rejected_and_the_rest_scored(
    state: FeatureState, model: ChurnModel, sample: pa.Table
) -> None:
    rows = [[str(v) for v in r.values()] for r in sample.slice(0, 40).to_pylist()]
    bad = {2: 0, 5: 2, 7: 10, 11: 5}  # CreditScore 'abc', Age '', Geography 'Atlantis', NaN
    table = _string_table(_corrupt(rows, bad))
    result = score_batch(state, model, table)

    assert result.n_read == 40
    assert result.rejects.to_pylist() == [
        {"row": 2, "column": "CreditScore", "reason": "not a number", "value": "abc"},
        {"row": 5, "column": "Age", "reason": "empty value", "value": ""},
        {
            "row": 7,
            "column": "Geography",
            "reason": "unseen category 'Atlantis'",
            "value": "Atlantis",
        },
        {"row": 11, "column": "Balance", "reason": "non-finite value", "value": "NaN"},
    ]
    good = [i for i in range(40) if i not in bad]
    assert result.scored.column("CustomerId").to_pylist() == [rows[i][1] for i in good]
    alone = score_batch(state, model, sample.take(good))
    np.testing.assert_allclose(
        result.scored.column("raw").to_numpy(), alone.scored.column("raw").to_numpy(), atol=1e-7
    )


@pytest.mark.parametrize("kind", range(len(BAD_VALUES)))
def test_each_kind_of_bad_value(
    state: FeatureState, model: ChurnModel, sample: pa.Table, kind: int
) -> None:
    rows = [[str(v) for v in r.values()] for r in sample.slice(0, 5).to_pylist()]
    result = score_batch(state, model, _string_table(_corrupt(rows, {3: kind})))
    column, text, reason = BAD_VALUES[kind]
    assert result.rejects.to_pylist() == [
        {"row": 3, "column": column, "reason": reason, "value": text}
    ]
    assert result.scored.num_rows == 4


def test_lenient_number_spellings_are_accepted(
    state: FeatureState, model: ChurnModel, sample: pa.Table
) -> None:
    rows = [[str(v) for v in r.values()] for r in sample.slice(0, 4).to_pylist()]
    spelled = [list(r) for r in rows]
    age, balance = COLUMNS.index("Age"), COLUMNS.index("Balance")
    spelled[0][age] = f" {rows[0][age]} "
    spelled[1][age] = f"{float(rows[1][age]) / 10}e1"
    spelled[2][balance] = f"+{rows[2][balance]}"
    spelled[3][age] = f"{rows[3][age]}.0"
    plain = score_batch(state, model, _string_table(rows))
    lenient = score_batch(state, model, _string_table(spelled))
    assert lenient.rejects.num_rows == 0
    np.testing.assert_array_equal(
        lenient.scored.column("raw").to_numpy(), plain.scored.column("raw").to_numpy()
    )


def test_typed_nan_and_null_are_rejected(state: FeatureState, model: ChurnModel) -> None:
    typed = generate_table(6, seed=4)
    balance = typed.column("Balance").to_pylist()
    balance[1] = float("nan")
    ages = typed.column("Age").to_pylist()
    ages[4] = None
    typed = typed.set_column(COLUMNS.index("Balance"), "Balance", pa.array(balance, pa.float64()))
    typed = typed.set_column(COLUMNS.index("Age"), "Age", pa.array(ages, pa.int64()))
    result = score_batch(state, model, typed)
    assert result.rejects.to_pylist() == [
        {"row": 1, "column": "Balance", "reason": "non-finite value", "value": "nan"},
        {"row": 4, "column": "Age", "reason": "empty value", "value": None},
    ]
    assert result.scored.num_rows == 4


def test_all_rows_rejected(state: FeatureState, model: ChurnModel, sample: pa.Table) -> None:
    rows = [[str(v) for v in r.values()] for r in sample.slice(0, 3).to_pylist()]
    result = score_batch(state, model, _string_table(_corrupt(rows, {0: 0, 1: 2, 2: 10})))
    assert result.scored.num_rows == 0
    assert result.scored.schema == output_schema(["CustomerId"])
    assert result.rejects.column("row").to_pylist() == [0, 1, 2]
    assert result.rejects.column("column").to_pylist() == ["CreditScore", "Age", "Geography"]


def test_empty_batch(state: FeatureState, model: ChurnModel, sample: pa.Table) -> None:
    """Library bug: a zero-row batch crashes in VectorAssembler.transform (reshape(0, -1))."""
    empty = score_batch(state, model, sample.slice(0, 0))
    assert empty.scored.num_rows == 0 and empty.rejects.num_rows == 0
    assert empty.scored.schema == output_schema(["CustomerId"])


# ------------------------------------------------------------------ score_file


@pytest.fixture(scope="module")
def base_rows() -> list[list[str]]:
    """About 75 kB of CSV: more than the largest block size drawn, many of the smallest."""
    return text_rows(800, seed=21)


bad_rows = st.dictionaries(st.integers(0, 799), st.integers(0, len(BAD_VALUES) - 1), max_size=12)


@PROPERTY
@given(block_size=st.integers(1024, 65_536), bad=bad_rows)
def test_chunked_scoring_equals_whole_file_scoring(
    state: FeatureState,
    model: ChurnModel,
    work: Path,
    base_rows: list[list[str]],
    block_size: int,
    bad: dict[int, int],
) -> None:
    rows = _corrupt(base_rows, bad)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        path = Path(tmp) / "in.csv"
        path.write_bytes(csv_bytes(rows))
        whole = _score(state, model, path, Path(tmp) / "whole.csv")
        chunked = _score(state, model, path, Path(tmp) / "chunked.csv", block_size=block_size)
    assert chunked[:2] == whole[:2] == (800 - len(bad), len(bad))
    assert chunked[2] == whole[2]
    assert chunked[3] == whole[3]
    rejects = _read_rejects(whole[3])
    assert rejects.drop_columns(["source"]).to_pylist() == _expected_rejects(rows, bad)
    assert set(rejects.column("source").to_pylist()) <= {str(path)}


@PROPERTY
@given(
    n=st.integers(1, 400),
    seed=st.integers(0, 10_000),
    bad=st.dictionaries(st.integers(0, 399), st.integers(0, len(BAD_VALUES) - 1), max_size=8),
)
def test_parquet_input_equals_csv_input(
    state: FeatureState, model: ChurnModel, work: Path, n: int, seed: int, bad: dict[int, int]
) -> None:
    rows = _corrupt(text_rows(n, seed), {i: k for i, k in bad.items() if i < n})
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        csv_path, pq_path = Path(tmp) / "in.csv", Path(tmp) / "in.parquet"
        csv_path.write_bytes(csv_bytes(rows))
        pq.write_table(_string_table(rows), pq_path)
        from_csv = _score(state, model, csv_path, Path(tmp) / "a.csv")
        from_parquet = _score(state, model, pq_path, Path(tmp) / "b.csv")
    assert from_parquet[:2] == from_csv[:2]
    assert from_parquet[0] + from_parquet[1] == n
    assert from_parquet[2] == from_csv[2]
    a, b = _read_rejects(from_csv[3]), _read_rejects(from_parquet[3])
    assert a.select(["column", "reason"]).equals(b.select(["column", "reason"]))
    # CSV counts physical lines (header = line 1); Parquet counts rows from 1
    assert [int(v) for v in a.column("line").to_pylist()] == [
        int(v) + 1 for v in b.column("line").to_pylist()
    ]
    assert set(b.column("source").to_pylist()) <= {str(pq_path)}


@PROPERTY
@given(n=st.integers(0, 300), seed=st.integers(0, 10_000))
def test_typed_parquet_input_equals_csv_input(
    state: FeatureState, model: ChurnModel, work: Path, n: int, seed: int
) -> None:
    """Parquet with real int/float columns (as generate writes it) scores like its CSV twin."""
    from churnctl.samples.generate import generate_files

    with tempfile.TemporaryDirectory(dir=work) as tmp:
        csv_path, pq_path = Path(tmp) / "in.csv", Path(tmp) / "in.parquet"
        generate_files(csv_path, n_rows=n, seed=seed)
        generate_files(pq_path, n_rows=n, seed=seed)
        from_csv = _score(state, model, csv_path, Path(tmp) / "a.csv")
        from_parquet = _score(state, model, pq_path, Path(tmp) / "b.csv")
    assert from_parquet[:2] == from_csv[:2] == (n, 0)
    assert from_parquet[2] == from_csv[2]


def test_gzipped_csv_equals_plain_csv(
    state: FeatureState, model: ChurnModel, tmp_path: Path, base_rows: list[list[str]]
) -> None:
    bad = {0: 0, 10: 2, 599: 5, 799: 10}
    data = csv_bytes(_corrupt(base_rows, bad))
    plain, packed = tmp_path / "in.csv", tmp_path / "in.csv.gz"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    a = _score(state, model, plain, tmp_path / "a.csv")
    b = _score(state, model, packed, tmp_path / "b.csv")
    assert a[:2] == b[:2] == (796, 4)
    assert a[2] == b[2]
    assert (
        _read_rejects(a[3])
        .drop_columns(["source"])
        .equals(_read_rejects(b[3]).drop_columns(["source"]))
    )
    b_small = _score(state, model, packed, tmp_path / "c.csv", block_size=2048)
    assert b_small[2] == a[2]


def test_score_file_values_equal_scorer_score(
    state: FeatureState, model: ChurnModel, tmp_path: Path, sample: pa.Table
) -> None:
    out = tmp_path / "scored.parquet"
    request = ScoreRequest(input=str(bundled(SAMPLE)), output=str(out), scorer=Scorer(state, model))
    summary = score_file(request)
    assert (summary.rows.scored, summary.rows.rejected, summary.rows.read) == (10_000, 0, 10_000)
    assert pq.read_table(out).equals(score_batch(state, model, sample).scored)


def test_rejects_keep_input_order_whatever_the_block_size(
    state: FeatureState, model: ChurnModel, tmp_path: Path, base_rows: list[list[str]]
) -> None:
    """A malformed line (too many fields) and a bad value: same rejects file for any chunking.

    Library bug: RejectLog writes a batch's value rejects before the malformed lines read
    with it, so with one big block the reject on line 151 comes before the one on line 4,
    while with small blocks they come in input order: the rejects files differ.
    """
    rows = _corrupt(base_rows, {149: 0})
    rows[2] = [*rows[2], "extra"]
    path = tmp_path / "in.csv"
    path.write_bytes(csv_bytes(rows))
    whole = _score(state, model, path, tmp_path / "whole.csv")
    chunked = _score(state, model, path, tmp_path / "chunked.csv", block_size=1024)
    assert whole[:2] == chunked[:2] == (798, 2)
    assert whole[2] == chunked[2]
    a, b = _read_rejects(whole[3]), _read_rejects(chunked[3])
    by_line = sorted(a.to_pylist(), key=lambda r: int(r["line"]))
    assert by_line == sorted(b.to_pylist(), key=lambda r: int(r["line"]))
    assert [(r["line"], r["column"], r["text"]) for r in by_line] == [
        ("4", "", _csv_line(rows[2])),
        ("151", "CreditScore", _csv_line(rows[149])),
    ]
    assert by_line[0]["reason"] == "expected 14 fields, found 15"
    assert b.to_pylist() == by_line  # small blocks: input order
    assert a.to_pylist() == by_line  # one block: fails, value reject written first
    assert whole[3] == chunked[3]


def test_a_block_of_only_malformed_lines(
    state: FeatureState, model: ChurnModel, tmp_path: Path, base_rows: list[list[str]]
) -> None:
    """Library bug: a CSV block holding only malformed lines yields an empty batch, which
    crashes score_batch with a bare ValueError (see test_empty_batch)."""
    rows = [list(r) for r in base_rows[:300]]
    for i in range(40, 80):
        rows[i] = [*rows[i], "extra"]
    path = tmp_path / "in.csv"
    path.write_bytes(csv_bytes(rows))
    whole = _score(state, model, path, tmp_path / "whole.csv")
    assert whole[:2] == (260, 40)
    assert [int(r["line"]) for r in _read_rejects(whole[3]).to_pylist()] == list(range(42, 82))
    chunked = _score(state, model, path, tmp_path / "chunked.csv", block_size=1024)
    assert chunked[:3] == whole[:3]


def test_progress_reports_growing_row_counts_ending_at_rows_read(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    pacsv.write_csv(generate_table(3000, seed=5), source)
    reports: list[Progress] = []
    request = ScoreRequest(
        input=str(source),
        output=str(tmp_path / "out.csv"),
        scorer=Scorer(bundled(STATE), bundled(MODEL)),
        read_options=ReadOptions(block_size=16_384),
    )
    summary = score_file(request, on_progress=reports.append)
    seen = [report.rows for report in reports]
    assert len(seen) > 1 and seen == sorted(seen)
    assert seen[-1] == summary.rows.read == 3000
