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

from churnctl import Scorer, extract_features, fit_state
from churnctl.errors import NoValidRowsError, SchemaError, TooManyRejectsError
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


class _Collect:
    """A rejects writer that keeps what it is given."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []

    def write_table(self, table: pa.Table) -> None:
        self.tables.append(table)

    def close(self) -> None:
        pass


DATA_KINDS = {
    "DataFrame": lambda frame: frame,
    "Table": lambda frame: pa.Table.from_pandas(frame, preserve_index=False),
    "RecordBatch": lambda frame: pa.RecordBatch.from_pandas(frame, preserve_index=False),
}


@pytest.mark.parametrize("kind", DATA_KINDS)
def test_fit_state_of_data_in_memory_equals_the_fit_of_its_file(
    sample: pd.DataFrame, kind: str
) -> None:
    from_file = fit_state(bundled(SAMPLE))
    progress: list[float | None] = []
    in_memory = fit_state(
        DATA_KINDS[kind](sample), on_progress=lambda p: progress.append(p.fraction)
    )
    assert in_memory.fingerprint == from_file.fingerprint
    assert in_memory.dumps() != from_file.dumps()  # the provenance says where it came from
    provenance = in_memory.provenance
    assert provenance["training_file"] == ("<DataFrame>" if kind == "DataFrame" else "<Table>")
    assert (provenance["rows"], provenance["rows_rejected"]) == (len(sample), 0)
    assert progress[-1] == 1.0 and all(0 <= f <= 1 for f in progress if f is not None)
    # the digest is of the training data, whatever holds it
    assert provenance["training_sha256"] == fit_state(sample).provenance["training_sha256"]


def test_fit_state_digest_follows_the_training_columns(sample: pd.DataFrame) -> None:
    digest = fit_state(sample).provenance["training_sha256"]
    assert fit_state(sample.drop(columns=["Surname"])).provenance["training_sha256"] == digest
    changed = sample.copy()
    changed.loc[0, "Age"] += 1
    assert fit_state(changed).provenance["training_sha256"] != digest


def test_fit_state_of_a_frame_logs_its_rejected_rows(sample: pd.DataFrame) -> None:
    frame = _with_bad_rows(sample)
    frame.loc[frame.index[11], "Age"] = True  # a stray value in an object column
    rejects = _Collect()
    state = fit_state(frame, rejects=rejects, max_rejects=10)
    logged = pa.concat_tables(rejects.tables)
    # the rows' 1-based positions; a new category (Atlantis) is learnt, not rejected
    assert logged.column("line").to_pylist() == [4, 9, 12]
    assert logged.column("column").to_pylist() == ["Age", "Balance", "Age"]
    assert set(logged.column("source").to_pylist()) == {"the training DataFrame"}
    assert state.provenance["rows_rejected"] == 3
    assert "Geography=Atlantis" in state.feature_names
    with pytest.raises(TooManyRejectsError, match="no state was written"):
        fit_state(frame, max_rejects=2)


def test_fit_state_of_a_frame_without_a_column_names_it(sample: pd.DataFrame) -> None:
    with pytest.raises(SchemaError, match=r"missing required column.*Age"):
        fit_state(sample.drop(columns=["Age"]))
    with pytest.raises(NoValidRowsError, match="the training DataFrame: no valid training rows"):
        fit_state(sample.head(0))
