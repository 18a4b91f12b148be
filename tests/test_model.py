"""ChurnModel on real ONNX models of every output form (onnxruntime, no mocks)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from onnx_factories import (
    OnnxFixture,
    double_input,
    int_input,
    logistic_flat,
    logistic_n1,
    multiclass_three,
    sklearn_mlp,
    sklearn_no_zipmap,
    sklearn_zipmap,
    softmax_two,
    two_inputs,
)

from churnctl.errors import ChurnctlError, CompatibilityError, ModelError
from churnctl.features.input_policy import frame_from_batch
from churnctl.features.pipeline import FeaturePipeline
from churnctl.features.stages import StandardScaler, VectorAssembler
from churnctl.features.state import FeatureState, load_state
from churnctl.io.sources import open_source
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.scoring.model import ChurnModel
from churnctl.scoring.scorer import Scorer

K = 12
ATOL = 1e-5

Factory = Callable[..., OnnxFixture]

# Every accepted output form, with the probability output ChurnModel must pick and how.
POSITIVE: dict[str, tuple[Factory, str]] = {
    "logistic_n1": (logistic_n1, "column-1"),
    "logistic_flat": (logistic_flat, "probability"),
    "softmax_two": (softmax_two, "class-probabilities"),
    "sklearn_zipmap": (sklearn_zipmap, "zipmap"),
    "sklearn_no_zipmap": (sklearn_no_zipmap, "class-probabilities"),
    "sklearn_mlp": (sklearn_mlp, "class-probabilities"),
    "double_input": (double_input, "column-1"),
}


def _x(n: int, k: int = K, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=1.5, size=(n, k)).astype(np.float32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def built(model_dir: Path) -> dict[str, OnnxFixture]:
    """Each accepted model once (the scikit-learn exports are the slow part)."""
    return {name: factory(model_dir / f"{name}.onnx", K) for name, (factory, _) in POSITIVE.items()}


# ------------------------------------------------------------------ accepted models


@pytest.mark.parametrize("name", list(POSITIVE))
def test_predict_proba_matches_reference(name: str, built: dict[str, OnnxFixture]) -> None:
    fx = built[name]
    model = ChurnModel(fx.path)
    assert model.input.name == fx.input_name
    assert model.n_features == K
    assert model.choice.name == fx.output_name
    assert model.choice.form == POSITIVE[name][1]

    x = _x(513)
    got = model.predict_proba(x)
    expected = fx.predict(x)
    assert got.dtype == np.float64
    assert got.shape == (513,)
    assert expected.std() > 0.05  # spread out, so agreement means something
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("name", list(POSITIVE))
def test_empty_input_gives_empty_output(name: str, built: dict[str, OnnxFixture]) -> None:
    model = ChurnModel(built[name].path)
    out = model.predict_proba(np.zeros((0, K), dtype=np.float32))
    assert out.shape == (0,)
    assert out.dtype == np.float64


@pytest.mark.parametrize("name", ["logistic_n1", "sklearn_zipmap"])
def test_single_row(name: str, built: dict[str, OnnxFixture]) -> None:
    fx = built[name]
    x = _x(1, seed=3)
    np.testing.assert_allclose(ChurnModel(fx.path).predict_proba(x), fx.predict(x), atol=ATOL)


def test_float64_features_are_accepted_by_a_float_model(built: dict[str, OnnxFixture]) -> None:
    """The pipeline produces float64; a float32 model gets them cast, not refused."""
    fx = built["softmax_two"]
    x64 = _x(50).astype(np.float64)
    got = ChurnModel(fx.path).predict_proba(x64)
    np.testing.assert_allclose(got, fx.predict(x64.astype(np.float32)), atol=ATOL)


@pytest.mark.parametrize("input_name", ["dense_input", "serving_default_x:0", "features"])
def test_input_name_is_discovered(tmp_path: Path, input_name: str) -> None:
    fx = logistic_n1(tmp_path / "m.onnx", K, seed=5, input_name=input_name)
    model = ChurnModel(fx.path)
    assert model.input.name == input_name
    assert [i.name for i in model.inputs] == [input_name]
    x = _x(40)
    np.testing.assert_allclose(model.predict_proba(x), fx.predict(x), atol=ATOL)


@pytest.mark.parametrize("k", [1, 5, 12, 31])
def test_n_features_is_the_input_width(tmp_path: Path, k: int) -> None:
    fx = logistic_flat(tmp_path / "m.onnx", k)
    model = ChurnModel(str(fx.path))  # str paths work too
    assert model.n_features == k
    assert model.path == fx.path
    x = _x(7, k)
    np.testing.assert_allclose(model.predict_proba(x), fx.predict(x), atol=ATOL)


def test_reshape_flavoured_flat_output(tmp_path: Path) -> None:
    fx = logistic_flat(tmp_path / "m.onnx", K, seed=2, method="reshape")
    x = _x(100)
    np.testing.assert_allclose(ChurnModel(fx.path).predict_proba(x), fx.predict(x), atol=ATOL)


# ------------------------------------------------------------------ refusals


REFUSED: dict[str, tuple[Factory, str]] = {
    "multiclass_three": (multiclass_three, "binary"),
    "int_input": (int_input, "float"),
    "two_inputs": (two_inputs, "one input"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_unusable_models_are_refused(tmp_path: Path, name: str) -> None:
    factory, fragment = REFUSED[name]
    fx = factory(tmp_path / f"{name}.onnx", K)
    with pytest.raises(ModelError) as info:
        ChurnModel(fx.path)
    message = str(info.value)
    assert str(fx.path) in message
    assert fragment in message
    assert info.value.exit_code == 2
    assert isinstance(info.value, ChurnctlError)


def test_missing_model_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "model.onnx"
    with pytest.raises(ModelError) as info:
        ChurnModel(path)
    assert str(path) in str(info.value)
    assert "not found" in str(info.value)


def test_directory_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        ChurnModel(tmp_path)
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("size", [0, 1, 4096])
def test_random_bytes_are_not_a_model(tmp_path: Path, size: int) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(np.random.default_rng(size).bytes(size))
    with pytest.raises(ModelError) as info:
        ChurnModel(path)
    message = str(info.value)
    assert str(path) in message
    assert "not a loadable ONNX model" in message
    assert "\n" not in message  # one actionable line, not an onnxruntime dump


# ------------------------------------------------------------------ compatibility


def _numeric_state(columns: list[str]) -> FeatureState:
    """A state fitted on the bundled sample with len(columns) features."""
    pipeline = FeaturePipeline(
        stages=[
            VectorAssembler(input_cols=columns, output_col="raw"),
            StandardScaler(input_col="raw", output_col="features", with_mean=True),
        ]
    )
    source = open_source(bundled(SAMPLE), pipeline.input_schema.columns)
    table = pa.Table.from_batches([part.rows for part in source.batches])
    pipeline.fit(frame_from_batch(table, pipeline.input_schema))
    return FeatureState(pipeline, {})


def test_check_compatible_accepts_the_same_width(built: dict[str, OnnxFixture]) -> None:
    model = ChurnModel(built["logistic_n1"].path)
    model.check_compatible(K)
    model.check_compatible(load_state(bundled(STATE)).pipeline.n_features)
    ChurnModel(bundled(MODEL)).check_compatible(load_state(bundled(STATE)).pipeline.n_features)


def test_check_compatible_refuses_a_state_of_another_width(
    built: dict[str, OnnxFixture],
) -> None:
    state = _numeric_state(["CreditScore", "Age", "Tenure", "Balance", "EstimatedSalary"])
    assert state.pipeline.n_features == 5
    model = ChurnModel(built["logistic_n1"].path)
    with pytest.raises(CompatibilityError) as info:
        model.check_compatible(state.pipeline.n_features, state_source="state.json")
    message = str(info.value)
    assert "12" in message
    assert "5" in message
    assert "state.json" in message
    assert str(model.path) in message
    assert info.value.exit_code == 2


def test_check_compatible_with_a_narrow_model(tmp_path: Path) -> None:
    fx = logistic_n1(tmp_path / "k5.onnx", 5)
    model = ChurnModel(fx.path)
    n = load_state(bundled(STATE)).pipeline.n_features
    with pytest.raises(CompatibilityError, match=r"expects 5 features.*produces 12"):
        model.check_compatible(n)


def test_wrong_width_at_inference_is_a_model_error(built: dict[str, OnnxFixture]) -> None:
    model = ChurnModel(built["logistic_n1"].path)
    with pytest.raises(ModelError) as info:
        model.predict_proba(_x(3, k=K - 1))
    assert str(model.path) in str(info.value)


# ------------------------------------------------------------------ inference per chunk


def _count_runs(monkeypatch: pytest.MonkeyPatch, model: ChurnModel) -> list[int]:
    """Wrap the live session's run; record the batch size of each call."""
    calls: list[int] = []
    real_run = model._session.run

    def counting_run(output_names: Any, feed: dict[str, np.ndarray], *args: Any) -> Any:
        calls.append(len(next(iter(feed.values()))))
        return real_run(output_names, feed, *args)

    monkeypatch.setattr(model._session, "run", counting_run)
    return calls


@pytest.mark.parametrize("name", ["logistic_n1", "sklearn_zipmap", "sklearn_mlp"])
def test_one_inference_call_per_chunk(
    monkeypatch: pytest.MonkeyPatch, built: dict[str, OnnxFixture], name: str
) -> None:
    fx = built[name]
    model = ChurnModel(fx.path)
    calls = _count_runs(monkeypatch, model)
    x = _x(5000)
    got = model.predict_proba(x)
    assert calls == [5000]
    assert got.shape == (5000,)
    np.testing.assert_allclose(got, fx.predict(x), atol=ATOL)

    model.predict_proba(np.zeros((0, K), dtype=np.float32))
    assert calls == [5000]  # nothing to infer, no call


def test_scorer_runs_the_model_once_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    state = load_state(bundled(STATE))
    model = ChurnModel(bundled(MODEL))
    calls = _count_runs(monkeypatch, model)
    source = open_source(bundled(SAMPLE), [*state.pipeline.input_schema.columns, "CustomerId"])
    table = pa.Table.from_batches([part.rows for part in source.batches]).slice(0, 5000)
    result = Scorer(state, model).score(table)
    assert calls == [5000]
    assert result.scored.num_rows == 5000
