"""The ONNX test factories produce the models they describe, and their references agree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
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

K = 5
N = 257
ATOL = 1e-5

Shape = list[Any]
Spec = tuple[str, str, Shape]  # (name, ORT type string, ORT shape)
ZIPMAP_TYPE = "seq(map(int64,tensor(float)))"


def _x(n: int = N, k: int = K, seed: int = 123) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=1.5, size=(n, k)).astype(np.float32)


def _session(fx: OnnxFixture) -> ort.InferenceSession:
    return ort.InferenceSession(str(fx.path), providers=["CPUExecutionProvider"])


def _io(items: list[Any]) -> list[Spec]:
    return [(i.name, i.type, list(i.shape)) for i in items]


def _col1(out: Any) -> np.ndarray:
    return np.asarray(out)[:, 1]


def _flat(out: Any) -> np.ndarray:
    return np.asarray(out).reshape(-1)


def _zipmap(out: Any) -> np.ndarray:
    assert isinstance(out, list)
    assert all(isinstance(row, dict) and set(row) == {0, 1} for row in out)
    return np.array([row[1] for row in out], dtype=np.float64)


def _check_reference(pred: np.ndarray, n: int = N) -> None:
    assert pred.dtype == np.float64
    assert pred.shape == (n,)
    assert np.all((pred >= 0.0) & (pred <= 1.0))
    # Probabilities are spread out, so agreement with ORT is a meaningful check.
    assert pred.std() > 0.05


# factory, input spec, output specs, probability output, extractor of the positive class
POSITIVE: dict[str, tuple[Callable[..., OnnxFixture], Spec, list[Spec], str, Callable]] = {
    "logistic_n1": (
        logistic_n1,
        ("dense_input", "tensor(float)", ["N", K]),
        [("dense_out", "tensor(float)", ["N", 1])],
        "dense_out",
        _flat,
    ),
    "logistic_flat": (
        logistic_flat,
        ("input", "tensor(float)", ["N", K]),
        [("output", "tensor(float)", ["N"])],
        "output",
        _flat,
    ),
    "softmax_two": (
        softmax_two,
        ("input", "tensor(float)", ["N", K]),
        [("probabilities", "tensor(float)", ["N", 2])],
        "probabilities",
        _col1,
    ),
    "sklearn_zipmap": (
        sklearn_zipmap,
        ("input", "tensor(float)", [None, K]),
        [
            ("output_label", "tensor(int64)", [None]),
            ("output_probability", ZIPMAP_TYPE, []),
        ],
        "output_probability",
        _zipmap,
    ),
    # skl2onnx names the outputs label/probabilities once ZipMap is switched off.
    "sklearn_no_zipmap": (
        sklearn_no_zipmap,
        ("input", "tensor(float)", [None, K]),
        [("label", "tensor(int64)", [None]), ("probabilities", "tensor(float)", [None, 2])],
        "probabilities",
        _col1,
    ),
    "sklearn_mlp": (
        sklearn_mlp,
        ("input", "tensor(float)", [None, K]),
        [("label", "tensor(int64)", [None]), ("probabilities", "tensor(float)", [None, 2])],
        "probabilities",
        _col1,
    ),
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx_factories")


@pytest.fixture(scope="module")
def built(model_dir: Path) -> dict[str, OnnxFixture]:
    """Build every positive model once (the sklearn ones are the slow part)."""
    return {name: spec[0](model_dir / f"{name}.onnx", K) for name, spec in POSITIVE.items()}


@pytest.mark.parametrize("name", list(POSITIVE))
def test_positive_models_signature_and_reference(name: str, built: dict[str, OnnxFixture]) -> None:
    _, in_spec, out_specs, prob_name, extract = POSITIVE[name]
    fx = built[name]
    assert fx.path.is_file()
    onnx.checker.check_model(onnx.load(str(fx.path)), full_check=True)
    sess = _session(fx)
    assert _io(sess.get_inputs()) == [in_spec]
    assert _io(sess.get_outputs()) == out_specs
    assert fx.input_name == in_spec[0]
    assert fx.output_name == prob_name

    x = _x()
    (out,) = sess.run([prob_name], {fx.input_name: x})
    got = extract(out)
    expected = fx.predict(x)
    _check_reference(expected)
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)


def test_sklearn_labels_match_probabilities(built: dict[str, OnnxFixture]) -> None:
    x = _x()
    for name in ("sklearn_zipmap", "sklearn_no_zipmap", "sklearn_mlp"):
        fx = built[name]
        label_name = _io(_session(fx).get_outputs())[0][0]
        (labels,) = _session(fx).run([label_name], {"input": x})
        assert labels.dtype == np.int64
        p = fx.predict(x)
        decided = np.abs(p - 0.5) > 1e-4
        np.testing.assert_array_equal(labels[decided], (p[decided] > 0.5).astype(np.int64))


def test_sklearn_zipmap_ir_and_opsets(built: dict[str, OnnxFixture]) -> None:
    model = onnx.load(str(built["sklearn_zipmap"].path))
    domains = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    assert domains["ai.onnx"] == 17
    assert "ai.onnx.ml" in domains
    assert any(node.op_type == "ZipMap" for node in model.graph.node)
    no_zip = onnx.load(str(built["sklearn_no_zipmap"].path))
    assert not any(node.op_type == "ZipMap" for node in no_zip.graph.node)


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_logistic_n1_opsets_and_input_name(tmp_path: Path, opset: int) -> None:
    fx = logistic_n1(tmp_path / "m.onnx", 3, seed=7, input_name="features", opset=opset)
    model = onnx.load(str(fx.path))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [opset]
    assert model.ir_version <= 10
    sess = _session(fx)
    assert _io(sess.get_inputs()) == [("features", "tensor(float)", ["N", 3])]
    x = _x(k=3)
    (out,) = sess.run(None, {"features": x})
    assert out.shape == (N, 1)
    np.testing.assert_allclose(out[:, 0], fx.predict(x), rtol=0, atol=ATOL)


@pytest.mark.parametrize("method", ["squeeze", "reshape"])
def test_logistic_flat_methods(tmp_path: Path, method: str) -> None:
    fx = logistic_flat(tmp_path / "m.onnx", K, seed=3, input_name="x", method=method)
    sess = _session(fx)
    assert _io(sess.get_outputs()) == [("output", "tensor(float)", ["N"])]
    ops = [n.op_type for n in onnx.load(str(fx.path)).graph.node]
    assert ops[-1] == method.capitalize()
    x = _x()
    (out,) = sess.run(None, {"x": x})
    assert out.shape == (N,)
    np.testing.assert_allclose(out, fx.predict(x), rtol=0, atol=ATOL)


def test_single_row_batch(tmp_path: Path) -> None:
    x = _x(n=1)
    for factory, extract in ((logistic_n1, _flat), (logistic_flat, _flat), (softmax_two, _col1)):
        fx = factory(tmp_path / f"{factory.__name__}.onnx", K)
        (out,) = _session(fx).run([fx.output_name], {fx.input_name: x})
        np.testing.assert_allclose(extract(out), fx.predict(x), rtol=0, atol=ATOL)


def test_seed_changes_weights_deterministically(tmp_path: Path) -> None:
    x = _x()
    a = logistic_n1(tmp_path / "a.onnx", K, seed=1).predict(x)
    b = logistic_n1(tmp_path / "b.onnx", K, seed=1).predict(x)
    c = logistic_n1(tmp_path / "c.onnx", K, seed=2).predict(x)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def test_invalid_k_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="k must be"):
        logistic_n1(tmp_path / "m.onnx", 0)


# --------------------------------------------------------------------- negative cases


def test_multiclass_three(tmp_path: Path) -> None:
    fx = multiclass_three(tmp_path / "m.onnx", K)
    sess = _session(fx)
    assert _io(sess.get_inputs()) == [("input", "tensor(float)", ["N", K])]
    assert _io(sess.get_outputs()) == [("probabilities", "tensor(float)", ["N", 3])]
    x = _x()
    (out,) = sess.run(None, {"input": x})
    expected = fx.predict(x)
    assert expected.shape == (N, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=ATOL)
    np.testing.assert_allclose(out, expected, rtol=0, atol=ATOL)


def test_int_input(tmp_path: Path) -> None:
    fx = int_input(tmp_path / "m.onnx", K)
    sess = _session(fx)
    assert _io(sess.get_inputs()) == [("input", "tensor(int64)", ["N", K])]
    assert _io(sess.get_outputs()) == [("output", "tensor(float)", ["N", 1])]
    x = np.random.default_rng(5).integers(-3, 4, size=(N, K)).astype(np.int64)
    (out,) = sess.run(None, {"input": x})
    np.testing.assert_allclose(out[:, 0], fx.predict(x), rtol=0, atol=ATOL)
    with pytest.raises(Exception, match=r"(?i)type|int64|float"):
        sess.run(None, {"input": _x()})


def test_two_inputs(tmp_path: Path) -> None:
    fx = two_inputs(tmp_path / "m.onnx", K)
    sess = _session(fx)
    assert _io(sess.get_inputs()) == [
        ("input", "tensor(float)", ["N", K]),
        ("offset", "tensor(float)", ["N", 1]),
    ]
    assert _io(sess.get_outputs()) == [("output", "tensor(float)", ["N", 1])]
    x = _x()
    zeros = np.zeros((N, 1), dtype=np.float32)
    (out,) = sess.run(None, {"input": x, "offset": zeros})
    p = fx.predict(x)
    np.testing.assert_allclose(out[:, 0], p, rtol=0, atol=ATOL)
    # The offset really is added to the logit.
    ones = np.ones((N, 1), dtype=np.float32)
    (shifted,) = sess.run(None, {"input": x, "offset": ones})
    expected = 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + 1.0)))
    np.testing.assert_allclose(shifted[:, 0], expected, rtol=0, atol=ATOL)


def test_double_input(tmp_path: Path) -> None:
    fx = double_input(tmp_path / "m.onnx", K)
    sess = _session(fx)
    assert _io(sess.get_inputs()) == [("input", "tensor(double)", ["N", K])]
    assert _io(sess.get_outputs()) == [("output", "tensor(float)", ["N", 1])]
    x = _x().astype(np.float64) + 1e-9  # not exactly representable in float32
    (out,) = sess.run(None, {"input": x})
    expected = fx.predict(x)
    _check_reference(expected)
    np.testing.assert_allclose(out[:, 0], expected, rtol=0, atol=ATOL)
    # Predict also accepts the float32 input every factory documents.
    np.testing.assert_allclose(fx.predict(_x()), expected, rtol=0, atol=ATOL)
