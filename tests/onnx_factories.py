"""Tiny, real ONNX binary classifiers for testing the scorer.

Every factory writes one model to ``path`` and returns an :class:`OnnxFixture` whose
``predict(x)`` is a pure-numpy reference giving the expected positive-class probability
(float64, shape ``[N]``) for a float32 input ``x`` of shape ``[N, k]``.

The output forms mirror what real exporters produce:

* ``logistic_n1``       Keras / tf2onnx style, probability column ``[N, 1]``
* ``logistic_flat``     PyTorch style, flat probability vector ``[N]``
* ``softmax_two``       two-column class probabilities ``[N, 2]``
* ``sklearn_zipmap``    skl2onnx default: ``seq(map(int64, float))`` probabilities
* ``sklearn_no_zipmap`` skl2onnx with ``zipmap=False``: ``probabilities`` ``[N, 2]`` tensor
* ``sklearn_mlp``       skl2onnx ``MLPClassifier`` with ``zipmap=False``

Negative / edge cases for the scorer's error handling: ``multiclass_three``, ``int_input``,
``two_inputs`` and ``double_input``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "OnnxFixture",
    "double_input",
    "int_input",
    "logistic_flat",
    "logistic_n1",
    "multiclass_three",
    "sklearn_mlp",
    "sklearn_no_zipmap",
    "sklearn_zipmap",
    "softmax_two",
    "two_inputs",
]

Predict = Callable[[np.ndarray], np.ndarray]
PathLike = str | os.PathLike[str]

BATCH_DIM = "N"
DEFAULT_OPSET = 17


class OnnxFixture(NamedTuple):
    """A model written to disk plus its numpy reference.

    ``input_name`` is the (first) graph input; ``output_name`` is the graph output that
    carries the class probabilities.
    """

    path: Path
    predict: Predict
    input_name: str
    output_name: str


# --------------------------------------------------------------------------- helpers


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _params(k: int, n_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded float32 weights ``[k, n_out]`` and bias ``[n_out]`` with O(1) logits."""
    rng = np.random.default_rng(seed)
    w = (rng.normal(size=(k, n_out)) / np.sqrt(max(k, 1))).astype(np.float32)
    b = (rng.normal(size=(n_out,)) * 0.5).astype(np.float32)
    return w, b


def _logits(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Float64 reference for ``x @ w + b`` (weights are the exact float32 initializers)."""
    return np.asarray(x, dtype=np.float64) @ w.astype(np.float64) + b.astype(np.float64)


def _vi(name: str, elem_type: int, shape: list[int | str | None]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, shape)


def _save(
    path: PathLike,
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    outputs: list[onnx.ValueInfoProto],
    initializers: list[onnx.TensorProto],
    *,
    name: str,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Build, check and save an ``onnx.helper`` model with an ORT-friendly IR version."""
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    opset_ids = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph,
        opset_imports=opset_ids,
        producer_name="churnctl-tests",
        ir_version=helper.find_min_ir_version_for(opset_ids),
    )
    onnx.checker.check_model(model, full_check=True)
    out = Path(path)
    onnx.save_model(model, str(out))
    return out


def _linear_nodes(
    x: str, w: np.ndarray, b: np.ndarray, out: str, prefix: str = ""
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """``out = x @ W + B`` as MatMul + Add with named initializers."""
    w_name, b_name, mm = f"{prefix}W", f"{prefix}B", f"{prefix}matmul_out"
    nodes = [
        helper.make_node("MatMul", [x, w_name], [mm], name=f"{prefix}MatMul"),
        helper.make_node("Add", [mm, b_name], [out], name=f"{prefix}Add"),
    ]
    inits = [numpy_helper.from_array(w, w_name), numpy_helper.from_array(b, b_name)]
    return nodes, inits


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


# ------------------------------------------------------------------ positive models


def logistic_n1(
    path: PathLike,
    k: int,
    *,
    seed: int = 0,
    input_name: str = "dense_input",
    opset: int = DEFAULT_OPSET,
    batch: int | str = BATCH_DIM,
) -> OnnxFixture:
    """Keras/tf2onnx style: ``sigmoid(x @ W[k,1] + b)`` -> ``dense_out`` float ``[N, 1]``.

    ``batch``: the batch dimension, symbolic (default) or fixed (a static-shape export).
    """
    _check_k(k)
    w, b = _params(k, 1, seed)
    nodes, inits = _linear_nodes(input_name, w, b, "logit")
    nodes.append(helper.make_node("Sigmoid", ["logit"], ["dense_out"], name="Sigmoid"))
    out = _save(
        path,
        nodes,
        [_vi(input_name, TensorProto.FLOAT, [batch, k])],
        [_vi("dense_out", TensorProto.FLOAT, [batch, 1])],
        inits,
        name="logistic_n1",
        opset=opset,
    )
    return OnnxFixture(out, lambda x: _sigmoid(_logits(x, w, b))[:, 0], input_name, "dense_out")


def logistic_flat(
    path: PathLike,
    k: int,
    *,
    seed: int = 0,
    input_name: str = "input",
    method: Literal["squeeze", "reshape"] = "squeeze",
) -> OnnxFixture:
    """PyTorch style: ``sigmoid(x @ W + b)`` flattened -> ``output`` float ``[N]``.

    ``method`` selects ``Squeeze(axes=[1])`` or ``Reshape(shape=[-1])``; both take their
    axes/shape as an int64 initializer input, as required from opset 13 on.
    """
    _check_k(k)
    w, b = _params(k, 1, seed)
    nodes, inits = _linear_nodes(input_name, w, b, "logit")
    nodes.append(helper.make_node("Sigmoid", ["logit"], ["prob_col"], name="Sigmoid"))
    if method == "squeeze":
        inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "squeeze_axes"))
        nodes.append(
            helper.make_node("Squeeze", ["prob_col", "squeeze_axes"], ["output"], name="Squeeze")
        )
    elif method == "reshape":
        inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat_shape"))
        nodes.append(
            helper.make_node("Reshape", ["prob_col", "flat_shape"], ["output"], name="Reshape")
        )
    else:
        raise ValueError(f"unknown method {method!r}")
    out = _save(
        path,
        nodes,
        [_vi(input_name, TensorProto.FLOAT, [BATCH_DIM, k])],
        [_vi("output", TensorProto.FLOAT, [BATCH_DIM])],
        inits,
        name="logistic_flat",
    )
    return OnnxFixture(out, lambda x: _sigmoid(_logits(x, w, b))[:, 0], input_name, "output")


def _softmax_model(path: PathLike, k: int, classes: int, seed: int, name: str) -> OnnxFixture:
    """``softmax(x @ W[k,classes] + b, axis=-1)`` -> ``probabilities`` float ``[N, classes]``.

    ``predict`` returns the full ``[N, classes]`` probability matrix.
    """
    _check_k(k)
    w, b = _params(k, classes, seed)
    nodes, inits = _linear_nodes("input", w, b, "logits")
    nodes.append(
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="Softmax", axis=-1)
    )
    out = _save(
        path,
        nodes,
        [_vi("input", TensorProto.FLOAT, [BATCH_DIM, k])],
        [_vi("probabilities", TensorProto.FLOAT, [BATCH_DIM, classes])],
        inits,
        name=name,
    )
    return OnnxFixture(out, lambda x: _softmax(_logits(x, w, b)), "input", "probabilities")


def softmax_two(path: PathLike, k: int, *, seed: int = 0) -> OnnxFixture:
    """Two-class softmax -> ``probabilities`` float ``[N, 2]``; the positive class is column 1."""
    fixture = _softmax_model(path, k, 2, seed, "softmax_two")
    return fixture._replace(predict=lambda x: fixture.predict(x)[:, 1])


def _train_data(k: int, seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, roughly balanced binary data with a linear-ish signal (both classes present)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, k)).astype(np.float32)
    coef = rng.normal(size=k)
    score = x.astype(np.float64) @ coef + rng.normal(scale=0.5, size=n)
    y = (score > np.median(score)).astype(np.int64)
    return x, y


def _export_sklearn(
    path: PathLike, model: object, k: int, *, zipmap: bool, batch: int | None = None
) -> tuple[Path, str]:
    """Export with skl2onnx; return the path and the name of the probability output.

    skl2onnx names the outputs ``output_label``/``output_probability`` with ZipMap and
    ``label``/``probabilities`` without it.
    """
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    options = None if zipmap else {id(model): {"zipmap": False}}
    onx = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([batch, k]))],
        options=options,
        target_opset={"": DEFAULT_OPSET, "ai.onnx.ml": 3},
    )
    onnx.checker.check_model(onx, full_check=True)
    out = Path(path)
    onnx.save_model(onx, str(out))
    return out, onx.graph.output[1].name


def _proba_predict(model: object) -> Predict:
    def predict(x: np.ndarray) -> np.ndarray:
        proba = model.predict_proba(np.asarray(x, dtype=np.float32))  # type: ignore[attr-defined]
        return np.asarray(proba[:, 1], dtype=np.float64)

    return predict


def _fit_logreg(k: int, seed: int) -> object:
    from sklearn.linear_model import LogisticRegression

    x, y = _train_data(k, seed)
    return LogisticRegression(max_iter=200).fit(x, y)


def sklearn_zipmap(
    path: PathLike, k: int, *, seed: int = 0, batch: int | None = None
) -> OnnxFixture:
    """skl2onnx LogisticRegression with ZipMap (default).

    Outputs ``output_label`` int64 ``[N]`` and ``output_probability``
    ``seq(map(int64, tensor(float)))``; the positive class is key ``1``. ``batch``: a
    fixed batch size (a static-shape export), else a dynamic axis.
    """
    _check_k(k)
    model = _fit_logreg(k, seed)
    out, prob_name = _export_sklearn(path, model, k, zipmap=True, batch=batch)
    return OnnxFixture(out, _proba_predict(model), "input", prob_name)


def sklearn_no_zipmap(path: PathLike, k: int, *, seed: int = 0) -> OnnxFixture:
    """skl2onnx LogisticRegression with ``zipmap=False``.

    Outputs ``label`` int64 ``[N]`` and ``probabilities`` float ``[N, 2]`` (column 1 = positive).
    """
    _check_k(k)
    model = _fit_logreg(k, seed)
    out, prob_name = _export_sklearn(path, model, k, zipmap=False)
    return OnnxFixture(out, _proba_predict(model), "input", prob_name)


def sklearn_mlp(path: PathLike, k: int, *, seed: int = 0) -> OnnxFixture:
    """skl2onnx MLPClassifier (hidden ``(8,)``), no ZipMap: ``probabilities`` float ``[N, 2]``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    _check_k(k)
    x, y = _train_data(k, seed)
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    out, prob_name = _export_sklearn(path, model, k, zipmap=False)
    return OnnxFixture(out, _proba_predict(model), "input", prob_name)


# ------------------------------------------------------------- negative / edge cases


def multiclass_three(path: PathLike, k: int, *, seed: int = 0) -> OnnxFixture:
    """Three-class softmax -> ``probabilities`` float ``[N, 3]`` (not binary: refuse).

    Unlike the other factories, ``predict`` returns the full ``[N, 3]`` probability matrix.
    """
    return _softmax_model(path, k, 3, seed, "multiclass_three")


def _cast_input(path: PathLike, k: int, seed: int, dtype: int, name: str) -> OnnxFixture:
    """Input ``input`` of ``dtype`` ``[N, k]``, Cast to float -> ``output`` float ``[N, 1]``.

    ``predict`` mirrors the graph: ``x`` is cast to float32 before the linear layer.
    """
    _check_k(k)
    w, b = _params(k, 1, seed)
    nodes = [helper.make_node("Cast", ["input"], ["input_f"], name="Cast", to=TensorProto.FLOAT)]
    lin, inits = _linear_nodes("input_f", w, b, "logit")
    nodes += lin
    nodes.append(helper.make_node("Sigmoid", ["logit"], ["output"], name="Sigmoid"))
    out = _save(
        path,
        nodes,
        [_vi("input", dtype, [BATCH_DIM, k])],
        [_vi("output", TensorProto.FLOAT, [BATCH_DIM, 1])],
        inits,
        name=name,
    )

    def predict(x: np.ndarray) -> np.ndarray:
        return _sigmoid(_logits(np.asarray(x).astype(np.float32), w, b))[:, 0]

    return OnnxFixture(out, predict, "input", "output")


def int_input(path: PathLike, k: int, *, seed: int = 0) -> OnnxFixture:
    """Input ``input`` is int64 ``[N, k]`` (Cast to float inside): the scorer must refuse it."""
    return _cast_input(path, k, seed, TensorProto.INT64, "int_input")


def two_inputs(path: PathLike, k: int, *, seed: int = 0) -> OnnxFixture:
    """Two float inputs: ``input`` ``[N, k]`` and ``offset`` ``[N, 1]`` (refuse).

    ``output = sigmoid(input @ W + b + offset)`` float ``[N, 1]``; ``predict`` assumes
    ``offset == 0``.
    """
    _check_k(k)
    w, b = _params(k, 1, seed)
    nodes, inits = _linear_nodes("input", w, b, "logit0")
    nodes += [
        helper.make_node("Add", ["logit0", "offset"], ["logit"], name="AddOffset"),
        helper.make_node("Sigmoid", ["logit"], ["output"], name="Sigmoid"),
    ]
    out = _save(
        path,
        nodes,
        [
            _vi("input", TensorProto.FLOAT, [BATCH_DIM, k]),
            _vi("offset", TensorProto.FLOAT, [BATCH_DIM, 1]),
        ],
        [_vi("output", TensorProto.FLOAT, [BATCH_DIM, 1])],
        inits,
        name="two_inputs",
    )
    return OnnxFixture(out, lambda x: _sigmoid(_logits(x, w, b))[:, 0], "input", "output")


def double_input(path: PathLike, k: int, *, seed: int = 0) -> OnnxFixture:
    """Input ``input`` is double ``[N, k]`` (Cast to float inside)."""
    return _cast_input(path, k, seed, TensorProto.DOUBLE, "double_input")
