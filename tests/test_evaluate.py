"""``evaluate``: every figure equals scikit-learn's on the same predictions; the file, its
rejects and its labels as ``evaluate_file`` reads them; the command's table and JSON."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    confusion_matrix,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from churnctl.batch.evaluate_file import evaluate_file
from churnctl.errors import InputError, UsageError
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.scoring import metrics as m
from churnctl.scoring.scorer import Scorer
from tests.cli_helpers import ROOT, assert_clean_error, plain, run

SAMPLE = ROOT / "data" / "sample.csv"


def predictions(seed: int, n: int, levels: int | None, constant: bool) -> tuple:
    """Labels and float32 probabilities; ``levels``: raw rounded to so many values (ties)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    raw = rng.beta(0.7, 1.6, n) if levels is None else rng.integers(0, levels, n) / levels
    raw = np.full(n, raw[0]) if constant else raw
    raw[rng.random(n) < 0.02] = rng.choice([0.0, 1.0])  # exact 0 and 1: the clipped ends
    return labels, raw.astype(np.float32)


def assert_like_sklearn(labels: np.ndarray, raw: np.ndarray, threshold: float) -> None:
    got = m.metrics(labels, raw, threshold)
    predicted = raw > threshold
    two = len(set(labels.tolist())) == 2
    assert got.auc == (pytest.approx(roc_auc_score(labels, raw), abs=1e-12) if two else None)
    assert got.log_loss == pytest.approx(log_loss(labels, raw, labels=[0, 1]), rel=1e-5)
    wide = raw.astype(np.float64)  # the same formula, sklearn in float64 and so ε
    assert m.log_loss(labels, wide) == pytest.approx(log_loss(labels, wide, labels=[0, 1]), 1e-12)
    c = got.confusion
    assert [c.tn, c.fp, c.fn, c.tp] == confusion_matrix(
        labels, predicted, labels=[0, 1]
    ).ravel().tolist()
    assert got.precision == precision_score(labels, predicted, zero_division=0.0)
    assert got.recall == recall_score(labels, predicted, zero_division=0.0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    ("levels", "constant"),
    [(None, False), (7, False), (2, False), (None, True)],
    ids=["continuous", "ties", "two values", "constant"],
)
def test_every_figure_equals_sklearn_s(seed: int, levels: int | None, constant: bool) -> None:
    labels, raw = predictions(seed, 500 + 37 * seed, levels, constant)
    for threshold in (0.0, 0.5, float(raw[0]), 1.0):  # a threshold equal to a raw: not exited
        assert_like_sklearn(labels, raw, threshold)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]) | st.floats(0, 1)
        ),
        min_size=1,
        max_size=60,
    ),
    threshold=st.floats(0, 1),
)
def test_any_predictions_give_sklearn_s_figures(rows: list, threshold: float) -> None:
    labels = np.array([r[0] for r in rows])
    raw = np.array([r[1] for r in rows], dtype=np.float32)
    assert_like_sklearn(labels, raw, threshold)


@pytest.mark.parametrize("seed", range(4))
def test_deciles_split_the_rows_by_raw_and_add_up(seed: int) -> None:
    labels, raw = predictions(seed, 1003 + seed, 13 if seed % 2 else None, False)
    deciles = m.deciles(labels, raw)
    assert [d.decile for d in deciles] == list(range(1, 11))
    assert {d.rows for d in deciles} <= {len(raw) // 10, len(raw) // 10 + 1}
    assert sum(d.rows for d in deciles) == len(raw)
    assert sum(d.exited for d in deciles) == labels.sum()
    assert sum(d.raw_mean * d.rows for d in deciles) == pytest.approx(raw.astype(float).sum())
    for high, low in itertools.pairwise(deciles):
        assert high.raw_min >= low.raw_max
    overall = labels.mean()
    for d in deciles:
        assert d.rate == pytest.approx(d.exited / d.rows)
        assert d.lift == pytest.approx(d.rate / overall)
    assert len(m.deciles(labels[:4], raw[:4])) == 4  # fewer rows than deciles: one group each


def scorer() -> Scorer:
    return Scorer(bundled(STATE), bundled(MODEL), keep=())


def test_the_file_s_figures_are_sklearn_s_on_the_scorer_s_predictions() -> None:
    frame = pd.read_csv(SAMPLE)
    raw = scorer().score_aligned(frame).column("raw").to_numpy()
    got = evaluate_file(str(SAMPLE), scorer())
    assert (got.metrics.rows, got.rejected) == (10_000, 0)
    assert got.metrics.auc == pytest.approx(roc_auc_score(frame["Exited"], raw), abs=1e-12)
    assert got.metrics.log_loss == pytest.approx(log_loss(frame["Exited"], raw), rel=1e-5)
    assert got.metrics.positives == frame["Exited"].sum()


def labelled_with_rejects(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    frame = pd.read_csv(SAMPLE, nrows=400)
    text = frame.astype(str)
    text.loc[[3, 50, 51], "Age"] = "old"  # rejected by the input policy
    text.loc[7, "Geography"] = "Atlantis"
    path = tmp_path / "labelled.csv"
    text.to_csv(path, index=False)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("1,2,3\n")  # a malformed line: rejected too
    return path, frame.drop(index=[3, 7, 50, 51])


def test_rejected_rows_are_counted_and_left_out(tmp_path: Path) -> None:
    path, kept = labelled_with_rejects(tmp_path)
    got = evaluate_file(str(path), scorer())
    assert (got.metrics.rows, got.rejected, got.read) == (396, 5, 401)
    raw = scorer().score_aligned(kept).column("raw").to_numpy()
    assert got.metrics.auc == pytest.approx(roc_auc_score(kept["Exited"], raw), abs=1e-12)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["0", "1", " 1 ", "1.0"], [0, 1, 1, 1]),
        (["true", "False", "TRUE", "0"], [1, 0, 1, 0]),
    ],
)
def test_text_labels_read_as_0_and_1(values: list[str], expected: list[int]) -> None:
    import pyarrow as pa

    from churnctl.batch.evaluate_file import binary_labels

    assert binary_labels(pa.array(values), "f", "Exited").tolist() == expected
    assert binary_labels(pa.array(expected, pa.int64()), "f", "Exited").tolist() == expected
    assert binary_labels(pa.array([bool(v) for v in expected]), "f", "x").tolist() == expected


@pytest.mark.parametrize(
    ("label", "fragment"),
    [
        ("Churned", "Churned"),  # missing
        ("Geography", "label column 'Geography' must hold 0 or 1"),  # text
        ("Age", "label column 'Age' must hold 0 or 1"),  # numbers other than 0 and 1
        ("NumOfProducts", "label column 'NumOfProducts' must hold 0 or 1"),
    ],
)
def test_a_missing_or_non_binary_label_column_is_one_error_naming_it(
    label: str, fragment: str
) -> None:
    with pytest.raises(InputError, match=fragment):
        evaluate_file(str(SAMPLE), scorer(), label=label)
    assert_clean_error(run(["evaluate", SAMPLE, "--label", label]), 2, fragment)


@pytest.mark.parametrize("value", ["", "2", "yes", "nan"])
def test_one_bad_label_value_names_its_row(tmp_path: Path, value: str) -> None:
    frame = pd.read_csv(SAMPLE, nrows=50).astype(str)
    frame.loc[20, "Exited"] = value
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InputError, match="data row 21 holds"):
        evaluate_file(str(path), scorer())


def test_arguments_are_checked() -> None:
    with pytest.raises(UsageError, match="label"):
        evaluate_file(str(SAMPLE), scorer(), label="")
    with pytest.raises(UsageError, match="scorer"):
        evaluate_file(str(SAMPLE), None)  # type: ignore[arg-type]


EVALUATE_KEYS = [
    "command",
    "input",
    "label",
    "rows_read",
    "rows",
    "rejected",
    "positives",
    "threshold",
    "auc",
    "log_loss",
    "confusion",
    "precision",
    "recall",
    "deciles",
    "model",
    "state",
]


def test_the_command_prints_the_figures_or_one_json_document(tmp_path: Path) -> None:
    path, _ = labelled_with_rejects(tmp_path)
    result = run(["evaluate", path, "--threshold", "0.3", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert list(document) == EVALUATE_KEYS
    got = evaluate_file(str(path), Scorer(bundled(STATE), bundled(MODEL), threshold=0.3))
    assert document["auc"] == got.metrics.auc and document["log_loss"] == got.metrics.log_loss
    assert (document["rows"], document["rejected"], document["rows_read"]) == (396, 5, 401)
    assert list(document["confusion"]) == ["tn", "fp", "fn", "tp"]
    assert sum(document["confusion"].values()) == 396
    assert len(document["deciles"]) == 10
    assert list(document["deciles"][0]) == [
        "decile",
        "rows",
        "raw_min",
        "raw_max",
        "raw_mean",
        "exited",
        "rate",
        "lift",
    ]
    table = run(["evaluate", path, "--threshold", "0.3"])
    assert table.exit_code == 0, table.output
    text = plain(table.stdout)
    assert f"AUC {got.metrics.auc:.4f}" in text and "Confusion matrix" in text
    assert "396 evaluated, 5 rejected and left out" in plain(table.stderr)
