"""Issue 19, item 2: the pandas-first API a notebook expects: ``Scorer.predict_proba`` and
``Scorer.predict``, ``extract_features(as_frame=True)``, ``fit_state`` of a DataFrame, and
the ``repr`` of a ``Scorer`` and a ``FeatureState``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score

from churnctl import Scorer, extract_features
from churnctl.features.state import load_state
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled

# rows made bad on purpose, and how: (column, value)
BAD = {3: ("Age", "old"), 7: ("Geography", "Atlantis"), 8: ("Balance", None)}


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(bundled(STATE), bundled(MODEL), keep=["CustomerId", "Exited"])


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(bundled(SAMPLE))


def _with_bad_rows(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.head(40).astype({"Age": object, "Geography": object, "Balance": object})
    for row, (column, value) in BAD.items():
        frame.loc[frame.index[row], column] = value
    return frame


INDEXES = {
    "range": lambda n: pd.RangeIndex(n),
    "shifted": lambda n: pd.RangeIndex(1000, 1000 + 3 * n, 3),
    "labels": lambda n: pd.Index([f"c{i}" for i in reversed(range(n))]),
    "repeated": lambda n: pd.Index([i // 2 for i in range(n)]),
    "datetime": lambda n: pd.date_range("2026-01-01", periods=n, freq="h"),
}


def test_predict_proba_feeds_scikit_learns_metrics(scorer: Scorer, sample: pd.DataFrame) -> None:
    proba = scorer.predict_proba(sample)
    assert proba.shape == (len(sample), 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    auc = roc_auc_score(sample["Exited"], proba[:, 1])
    assert 0.5 < auc <= 1.0
    truth, predicted = calibration_curve(sample["Exited"], proba[:, 1], n_bins=5)
    assert len(truth) == len(predicted) > 0
    raw = scorer.score_aligned(sample).column("raw").to_numpy()
    np.testing.assert_array_equal(proba[:, 1], raw.astype(np.float64))  # the same number


@pytest.mark.parametrize("kind", ["DataFrame", "Table", "RecordBatch"])
def test_predict_proba_has_nan_rows_where_rows_were_rejected(
    scorer: Scorer, sample: pd.DataFrame, kind: str
) -> None:
    frame = _with_bad_rows(sample)
    batch = frame if kind == "DataFrame" else pa.Table.from_pandas(frame.astype(str))
    if kind == "RecordBatch":
        batch = batch.to_batches()[0]
    proba = scorer.predict_proba(batch)
    rejected = np.isnan(proba).all(axis=1)
    assert np.flatnonzero(rejected).tolist() == sorted(BAD)
    assert not np.isnan(proba[~rejected]).any()
    labels = frame["Exited"].to_numpy()[~rejected]
    assert 0 <= roc_auc_score(labels, proba[~rejected, 1]) <= 1  # taken as it is


@pytest.mark.parametrize("index", INDEXES)
def test_predict_is_aligned_on_the_input_index(
    scorer: Scorer, sample: pd.DataFrame, index: str
) -> None:
    frame = _with_bad_rows(sample)
    frame.index = INDEXES[index](len(frame))
    out = scorer.predict(frame)
    assert out.index is frame.index
    assert list(out.columns) == [
        "CustomerId",
        "Exited",
        "raw",
        "exited",
        "reject_column",
        "reject_reason",
    ]
    for row, (column, _) in BAD.items():
        assert out["reject_column"].iloc[row] == column
        assert pd.isna(out["raw"].iloc[row]) and pd.isna(out["exited"].iloc[row])
    good = out["reject_column"].isna().to_numpy()
    assert good.sum() == len(frame) - len(BAD)
    np.testing.assert_array_equal(out["CustomerId"].to_numpy(), frame["CustomerId"].to_numpy())
    assert out["CustomerId"].dtype == frame["CustomerId"].dtype == np.int64
    assert out["Exited"].dtype == np.int64
    assert out["exited"].dtype == "boolean"
    proba = scorer.predict_proba(frame)
    np.testing.assert_array_equal(out["raw"].to_numpy(np.float64)[good], proba[good, 1])
    assert (out["exited"][good] == (proba[good, 1] > scorer.threshold)).all()


def test_predict_of_arrow_input_has_a_range_index(scorer: Scorer, sample: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(sample.head(10), preserve_index=False)
    out = scorer.predict(table)
    assert out.index.equals(pd.RangeIndex(10))
    assert out["CustomerId"].tolist() == sample["CustomerId"].head(10).tolist()


def test_an_empty_frame_predicts_an_empty_frame(scorer: Scorer, sample: pd.DataFrame) -> None:
    empty = sample.head(0)
    assert scorer.predict_proba(empty).shape == (0, 2)
    out = scorer.predict(empty)
    assert len(out) == 0 and out.index is empty.index


def test_the_reprs_say_what_they_hold(scorer: Scorer) -> None:
    state = load_state(bundled(STATE))
    fingerprint = state.fingerprint.removeprefix("sha256:")[:12]
    text = repr(state)
    assert text.startswith("<FeatureState 12 features, 4 stages (StringIndexer,")
    assert fingerprint in text and "fitted on sample.csv" in text
    text = repr(scorer)
    for part in ("12 features", "4 stages", fingerprint, MODEL.split("/")[-1], "(bound)"):
        assert part in text, (part, text)
    assert "keep CustomerId, Exited" in text and "threshold 0.5" in text


def test_the_scorer_repr_says_unbound(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from onnx_factories import logistic_n1

    model = logistic_n1(tmp_path / "m.onnx", 12).path
    text = repr(Scorer(bundled(STATE), model, keep=()))
    assert "(unbound)" in text and "keep none" in text


@pytest.mark.parametrize("index", INDEXES)
def test_extract_features_as_a_named_frame(sample: pd.DataFrame, index: str) -> None:
    state = load_state(bundled(STATE))
    frame = _with_bad_rows(sample)
    frame.index = INDEXES[index](len(frame))
    features = extract_features(state, frame)
    named = extract_features(state, frame, as_frame=True)
    assert named.index is frame.index
    assert list(named.columns) == state.feature_names
    assert (named.dtypes == np.float32).all()
    valid = features.valid
    np.testing.assert_array_equal(named.to_numpy()[valid], features.matrix[valid])
    assert np.isnan(named.to_numpy()[~valid]).all()
    assert np.flatnonzero(~valid).tolist() == sorted(BAD)


def test_extract_features_as_a_frame_of_arrow_input(sample: pd.DataFrame) -> None:
    state = load_state(bundled(STATE))
    table = pa.Table.from_pandas(sample.head(25), preserve_index=False)
    named = extract_features(state, table, as_frame=True)
    assert named.index.equals(pd.RangeIndex(25))
    np.testing.assert_array_equal(named.to_numpy(), extract_features(state, table).matrix)
