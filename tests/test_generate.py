"""Tests for the synthetic bank-churn generator."""

from __future__ import annotations

import gzip
import itertools
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from churnctl.errors import UsageError
from churnctl.samples import generate
from churnctl.samples.generate import COLUMNS, generate_files, generate_table

N = 50_000

EXPECTED_TYPES = {
    "RowNumber": pa.int64(),
    "CustomerId": pa.int64(),
    "Surname": pa.string(),
    "CreditScore": pa.int64(),
    "Geography": pa.string(),
    "Gender": pa.string(),
    "Age": pa.int64(),
    "Tenure": pa.int64(),
    "Balance": pa.float64(),
    "NumOfProducts": pa.int64(),
    "HasCrCard": pa.int64(),
    "IsActiveMember": pa.int64(),
    "EstimatedSalary": pa.float64(),
    "Exited": pa.int64(),
}


@pytest.fixture(scope="module")
def frame() -> dict[str, np.ndarray]:
    table = generate_table(N, seed=7)
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in COLUMNS}


def read_csv(path: Path) -> pa.Table:
    options = pacsv.ConvertOptions(column_types=generate.SCHEMA)
    return pacsv.read_csv(path, convert_options=options)


def test_columns_and_types() -> None:
    table = generate_table(10)
    assert tuple(EXPECTED_TYPES) == COLUMNS
    assert tuple(table.column_names) == COLUMNS
    assert {f.name: f.type for f in table.schema} == EXPECTED_TYPES
    assert table.num_rows == 10
    assert generate_table(0).num_rows == 0
    assert generate_table(0).schema == table.schema


def test_deterministic_per_seed() -> None:
    assert generate_table(2_000, seed=3).equals(generate_table(2_000, seed=3))
    a, b = generate_table(2_000, seed=3), generate_table(2_000, seed=4)
    assert not a.equals(b)
    assert a.column("CustomerId") != b.column("CustomerId")
    assert a.column("Age") != b.column("Age")


def test_rows_depend_only_on_row_number() -> None:
    """Pieces with advancing start_row (crossing draw blocks) concatenate to one table."""
    whole = generate_table(40_000, seed=5)
    cuts = [0, 1, 16_383, 16_385, 33_000, 40_000]
    pieces = [
        generate_table(hi - lo, seed=5, start_row=lo + 1) for lo, hi in itertools.pairwise(cuts)
    ]
    assert pa.concat_tables(pieces).equals(whole)
    assert generate_table(5, seed=5, start_row=101).equals(whole.slice(100, 5))


def test_row_numbers_and_customer_ids(frame: dict[str, np.ndarray]) -> None:
    assert np.array_equal(frame["RowNumber"], np.arange(1, N + 1))
    ids = frame["CustomerId"]
    assert len(np.unique(ids)) == N
    assert ids.min() >= 15_565_701 and ids.max() <= 15_815_690


def test_customer_ids_unique_beyond_public_range() -> None:
    rows = np.arange(1, 2_000_001)
    ids = generate._customer_ids(rows, 11)
    assert len(np.unique(ids)) == len(rows)
    assert ids.min() == 15_565_701
    assert ids.max() < 100_000_000
    far = generate._customer_ids(np.arange(9_000_001, 10_000_001), 11)
    assert len(np.unique(np.concatenate([ids, far]))) == len(rows) + len(far)
    assert far.max() < 100_000_000
    assert not np.array_equal(ids[:1000], generate._customer_ids(rows[:1000], 12))


def test_value_ranges(frame: dict[str, np.ndarray]) -> None:
    assert frame["CreditScore"].min() >= 350 and frame["CreditScore"].max() <= 850
    assert frame["Age"].min() >= 18 and frame["Age"].max() <= 92
    assert set(np.unique(frame["Tenure"])) == set(range(11))
    assert set(np.unique(frame["NumOfProducts"])) == {1, 2, 3, 4}
    for flag in ("HasCrCard", "IsActiveMember", "Exited"):
        assert set(np.unique(frame[flag])) == {0, 1}
    assert frame["Balance"].min() == 0.0
    salary = frame["EstimatedSalary"]
    assert salary.min() >= 11.58 and salary.max() <= 199_992.48
    for name in ("Balance", "EstimatedSalary"):
        assert np.array_equal(np.round(frame[name], 2), frame[name])
    assert all(isinstance(s, str) and s[:1].isupper() for s in frame["Surname"][:1000])
    assert 1_000 < len(set(frame["Surname"])) < 10_000


def test_rows_are_not_repeated(frame: dict[str, np.ndarray]) -> None:
    """Every row is a fresh draw: no (salary, balance, score, age) repeats across draw blocks."""
    keys = np.column_stack(
        [frame[name] for name in ("EstimatedSalary", "Balance", "CreditScore", "Age")]
    )
    assert len(np.unique(keys, axis=0)) == N


@pytest.mark.parametrize(
    ("column", "value", "expected", "tol"),
    [
        ("Geography", "France", 0.501, 0.015),
        ("Geography", "Germany", 0.251, 0.015),
        ("Geography", "Spain", 0.248, 0.015),
        ("Gender", "Male", 0.546, 0.015),
        ("NumOfProducts", 1, 0.508, 0.015),
        ("NumOfProducts", 2, 0.459, 0.015),
        ("NumOfProducts", 3, 0.027, 0.005),
        ("NumOfProducts", 4, 0.006, 0.003),
        ("HasCrCard", 1, 0.7055, 0.015),
        ("IsActiveMember", 1, 0.515, 0.015),
        ("Tenure", 0, 0.041, 0.008),
        ("Tenure", 10, 0.049, 0.008),
    ],
)
def test_category_frequencies(
    frame: dict[str, np.ndarray], column: str, value: object, expected: float, tol: float
) -> None:
    assert np.mean(frame[column] == value) == pytest.approx(expected, abs=tol)


def test_numeric_distributions(frame: dict[str, np.ndarray]) -> None:
    score, age, salary = frame["CreditScore"], frame["Age"], frame["EstimatedSalary"]
    assert score.mean() == pytest.approx(650, abs=5)
    assert score.std() == pytest.approx(97, abs=5)
    assert age.mean() == pytest.approx(39, abs=1.5)
    assert np.median(age) < age.mean()  # right-skewed
    assert salary.mean() == pytest.approx(100_000, rel=0.03)
    balance, germany = frame["Balance"], frame["Geography"] == "Germany"
    assert np.mean(balance == 0) == pytest.approx(0.36, abs=0.02)
    assert np.mean(balance[germany] == 0) < 0.01
    assert balance[balance > 0].mean() == pytest.approx(120_000, rel=0.03)
    assert balance[balance > 0].std() == pytest.approx(30_000, rel=0.1)


def test_exited_rate_and_drivers(frame: dict[str, np.ndarray]) -> None:
    exited = frame["Exited"] == 1
    assert 0.15 <= exited.mean() <= 0.25

    def rate(mask: np.ndarray) -> float:
        return float(exited[mask].mean())

    assert frame["Age"][exited].mean() > frame["Age"][~exited].mean() + 3
    assert np.corrcoef(frame["Age"], exited)[0, 1] > 0.15
    assert rate(frame["IsActiveMember"] == 0) > rate(frame["IsActiveMember"] == 1) + 0.05
    assert rate(frame["Geography"] == "Germany") > rate(frame["Geography"] == "France") + 0.05
    assert rate(frame["Gender"] == "Female") > rate(frame["Gender"] == "Male")
    assert rate(frame["NumOfProducts"] >= 3) > rate(frame["NumOfProducts"] <= 2) + 0.3
    assert rate(frame["Balance"] > 0) > rate(frame["Balance"] == 0)


def test_exited_is_learnable(frame: dict[str, np.ndarray]) -> None:
    """A plain logistic regression on the features ranks churners well (AUC)."""
    age = (frame["Age"] - 45) / 10
    products = frame["NumOfProducts"]
    x = np.column_stack(
        [
            np.ones(N),
            age,
            age**2,
            frame["IsActiveMember"],
            frame["Geography"] == "Germany",
            frame["Gender"] == "Female",
            products == 2,
            products >= 3,
            frame["Balance"] > 0,
        ]
    ).astype(float)
    y = frame["Exited"].astype(float)
    train, test = slice(0, N // 2), slice(N // 2, N)
    w = np.zeros(x.shape[1])
    for _ in range(25):
        p = 1 / (1 + np.exp(-x[train] @ w))
        hessian = (x[train] * (p * (1 - p))[:, None]).T @ x[train] + 1e-6 * np.eye(len(w))
        w += np.linalg.solve(hessian, x[train].T @ (y[train] - p))
    score, truth = x[test] @ w, y[test] == 1
    ranks = np.argsort(np.argsort(score)) + 1
    auc = (ranks[truth].sum() - truth.sum() * (truth.sum() + 1) / 2) / (
        truth.sum() * (~truth).sum()
    )
    assert auc > 0.8


def test_single_csv_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "churn.csv"
    assert generate_files(target, n_rows=500, seed=2) == [target]
    assert read_csv(target).equals(generate_table(500, seed=2))
    text = target.read_text()
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert '"' not in text
    assert sorted(p.name for p in target.parent.iterdir()) == ["churn.csv"]  # no temp left
    for line in text.splitlines()[1:]:
        cells = line.split(",")
        for cell in (cells[8], cells[12]):  # Balance, EstimatedSalary
            assert len(cell.partition(".")[2]) <= 2


def test_formats_hold_same_rows(tmp_path: Path) -> None:
    expected = generate_table(1_234, seed=9)
    plain = generate_files(tmp_path / "a.csv", n_rows=1_234, seed=9)[0]
    gz = generate_files(tmp_path / "a.csv.gz", n_rows=1_234, seed=9)[0]
    parquet = generate_files(tmp_path / "a.parquet", n_rows=1_234, seed=9)[0]
    assert gzip.decompress(gz.read_bytes()) == plain.read_bytes()
    assert read_csv(gz).equals(expected)
    assert pq.read_table(parquet).equals(expected)
    assert read_csv(plain).equals(pq.read_table(parquet))


@pytest.mark.parametrize("name", ["a.csv", "a.csv.gz", "a.parquet"])
def test_output_bytes_deterministic(tmp_path: Path, name: str) -> None:
    first = generate_files(tmp_path / "one" / name, n_rows=3_000, seed=1, chunk_rows=1_000)[0]
    second = generate_files(tmp_path / "two" / name, n_rows=3_000, seed=1, chunk_rows=1_000)[0]
    other = generate_files(tmp_path / "three" / name, n_rows=3_000, seed=2, chunk_rows=1_000)[0]
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_chunked_writing_matches_single_chunk(tmp_path: Path) -> None:
    small = generate_files(tmp_path / "small.csv", n_rows=20_000, seed=4, chunk_rows=777)[0]
    whole = generate_files(tmp_path / "whole.csv", n_rows=20_000, seed=4)[0]
    assert small.read_bytes() == whole.read_bytes()
    pq_small = generate_files(tmp_path / "s.parquet", n_rows=5_000, seed=4, chunk_rows=999)[0]
    pq_whole = generate_files(tmp_path / "w.parquet", n_rows=5_000, seed=4)[0]
    assert pq.read_table(pq_small).equals(pq.read_table(pq_whole))


def test_multiple_files(tmp_path: Path) -> None:
    out = tmp_path / "parts"
    paths = generate_files(out, n_rows=1_000, files=3, seed=6, chunk_rows=100)
    assert paths == [out / f"part-{i:05d}.csv" for i in range(3)]
    assert sorted(out.iterdir()) == paths
    tables = [read_csv(p) for p in paths]
    assert [t.num_rows for t in tables] == [334, 333, 333]
    combined = pa.concat_tables(tables)
    assert combined.column("RowNumber").to_pylist() == list(range(1, 1_001))
    assert pc.count_distinct(combined.column("CustomerId")).as_py() == 1_000
    assert combined.equals(generate_table(1_000, seed=6))


def test_more_files_than_rows(tmp_path: Path) -> None:
    paths = generate_files(tmp_path / "d", n_rows=2, files=4)
    assert [read_csv(p).num_rows for p in paths] == [1, 1, 0, 0]
    assert paths[3].read_text() == ",".join(COLUMNS) + "\n"


def test_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="n_rows"):
        generate_table(-1)
    with pytest.raises(UsageError, match="start_row"):
        generate_table(1, start_row=0)
    with pytest.raises(UsageError, match="n_rows"):
        generate_files(tmp_path / "x.csv", n_rows=-5)
    with pytest.raises(UsageError, match="files"):
        generate_files(tmp_path / "x.csv", n_rows=5, files=0)
    with pytest.raises(UsageError, match="chunk_rows"):
        generate_files(tmp_path / "x.csv", n_rows=5, chunk_rows=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "files", "match"),
    [
        ("g.jsonl", 1, "g.jsonl"),
        ("g", 1, ".csv, .csv.gz or .parquet"),
        ("parts.csv", 2, "directory"),
        ("x.csv", 1, "seed"),
        ("parts", 10_001, "10,000"),
    ],
)
def test_bad_arguments_are_refused_before_writing(
    tmp_path: Path, name: str, files: int, match: str
) -> None:
    seed = -1 if match == "seed" else 0
    with pytest.raises(UsageError, match=re.escape(match)):
        generate_files(tmp_path / name, n_rows=5, files=files, seed=seed)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    calls = []
    real = generate.generate_table

    def failing(n_rows: int, **kwargs: int) -> pa.Table:
        calls.append(n_rows)
        if len(calls) > 2:
            raise RuntimeError("boom")
        return real(n_rows, **kwargs)

    monkeypatch.setattr(generate, "generate_table", failing)
    with pytest.raises(RuntimeError, match="boom"):
        generate_files(target, n_rows=100, chunk_rows=10)
    assert target.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [target]
