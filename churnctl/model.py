"""ONNX binary classifiers: discover the input, find the positive-class probability.

Accepted outputs, as real exporters produce them: a probability of shape [N] or
[N, 1] (Keras via tf2onnx, PyTorch), class probabilities [N, 2], and
scikit-learn/skl2onnx label + probabilities, including the ZipMap
``seq(map)`` form. Inference runs per chunk, on float32 (or float64) input.
A model is loaded from a file or from its bytes, and keeps those bytes so that
a copy can be opened in another process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from churnctl.errors import CompatibilityError, Fix, ModelError

INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}
FLOAT_OUTPUTS = ("tensor(float)", "tensor(double)")


@dataclass(frozen=True)
class TensorInfo:
    """Name, ONNX type string and shape (ints, or names for symbolic dimensions)."""

    name: str
    type: str
    shape: tuple[int | str | None, ...]

    def describe(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.type} [{dims}]"


@dataclass(frozen=True)
class OutputChoice:
    """Which output holds the probability, and how to read the positive class from it."""

    name: str
    form: str  # "probability", "column-1", "class-probabilities", "zipmap"


class ChurnModel:
    """A loaded ONNX binary classifier returning positive-class probabilities."""

    def __init__(
        self, source: Path | str | bytes, *, threads: int = 0, name: str | None = None
    ) -> None:
        """Load from a path or from the model's bytes; ``threads`` 0 lets ONNX Runtime choose."""
        self.path = None if isinstance(source, bytes) else Path(source)
        self.name = name or (str(self.path) if self.path is not None else "<model bytes>")
        self.data = source if isinstance(source, bytes) else read_model_file(Path(source))
        self.threads = threads
        self._session = _open_session(self.data, self.name, threads)
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        self.inputs = [_info(node) for node in self._session.get_inputs()]
        self.outputs = [_info(node) for node in self._session.get_outputs()]
        self.input = self._check_input()
        self.choice = choose_output(self.outputs, source=self.name)
        self._dtype = INPUT_DTYPES[self.input.type]

    @property
    def n_features(self) -> int | None:
        """The model's feature count k, or None when the dimension is symbolic."""
        k = self.input.shape[1]
        return k if isinstance(k, int) else None

    def _check_input(self) -> TensorInfo:
        if len(self.inputs) != 1:
            names = ", ".join(i.name for i in self.inputs)
            raise ModelError(f"{self.name}: expected one input tensor [N, k], found {names}")
        node = self.inputs[0]
        if node.type not in INPUT_DTYPES or len(node.shape) != 2:
            raise ModelError(
                f"{self.name}: input {node.describe()} must be a float tensor [N, k]; "
                "re-export the model with a float32 input"
            )
        return node

    def check_compatible(self, n_features: int, *, state_source: str = "the state") -> None:
        """Refuse a state whose feature count differs from the model's input width."""
        k = self.n_features
        if k is not None and k != n_features:
            raise CompatibilityError(
                f"model {self.name} expects {k} features (input '{self.input.name}' "
                f"[N, {k}]) but {state_source} produces {n_features}: use the state the model "
                "was trained with, or refit the state with the matching pipeline",
                fix=Fix("state", note="(the state the model was trained with)"),
            )

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Positive-class probability (float64, shape [N]) for a feature matrix [N, k]."""
        if len(features) == 0:
            return np.zeros(0, dtype=np.float64)
        feed = {self.input.name: np.ascontiguousarray(features, dtype=self._dtype)}
        try:
            (output,) = self._session.run([self.choice.name], feed)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{self.name}: inference failed: {exc}") from None
        return positive_probability(output, self.choice, source=self.name)


def read_model_file(path: Path) -> bytes:
    """The bytes of an ONNX model file, or a ``ModelError`` saying what is wrong."""
    if not path.is_file():
        raise ModelError(f"{path}: model file not found", fix=Fix("model", "PATH.onnx"))
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the model: {exc.strerror or exc}") from None


def _open_session(data: bytes, name: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if threads:
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{name}: not a loadable ONNX model: {first_line}") from None


def _info(node: Any) -> TensorInfo:
    shape = tuple(node.shape) if isinstance(node.shape, list | tuple) else ()
    return TensorInfo(node.name, node.type, shape)


def choose_output(outputs: list[TensorInfo], *, source: str) -> OutputChoice:
    """Pick the probability output: a float tensor named like 'prob', a ZipMap, or any float."""
    floats = [o for o in outputs if o.type in FLOAT_OUTPUTS]
    zipmaps = [o for o in outputs if o.type.startswith("seq(map(")]
    named = [o for o in floats if "prob" in o.name.lower()]
    for candidate in named or floats:
        return OutputChoice(candidate.name, _tensor_form(candidate, source))
    if zipmaps:
        return OutputChoice(zipmaps[0].name, "zipmap")
    found = ", ".join(o.describe() for o in outputs)
    raise ModelError(f"{source}: no probability output found (outputs: {found})")


def _tensor_form(output: TensorInfo, source: str) -> str:
    if len(output.shape) == 1:
        return "probability"
    width = output.shape[-1] if len(output.shape) == 2 else "bad"
    if width == 1:
        return "column-1"
    if width == 2 or (len(output.shape) == 2 and not isinstance(width, int)):
        return "class-probabilities"
    raise ModelError(
        f"{source}: output {output.describe()} is not a binary classifier's probability "
        "([N], [N, 1] or [N, 2] expected)"
    )


def positive_probability(output: Any, choice: OutputChoice, *, source: str) -> np.ndarray:
    """Read the positive-class probability out of one inference result."""
    if choice.form == "zipmap":
        return _zipmap_positive(output)
    values = np.asarray(output, dtype=np.float64)
    if choice.form == "class-probabilities" and values.ndim == 2 and values.shape[1] == 1:
        return values[:, 0]
    if choice.form == "class-probabilities":
        if values.ndim != 2 or values.shape[1] != 2:
            raise ModelError(f"{source}: expected 2 class probabilities, got {values.shape}")
        return values[:, 1]
    return values.reshape(-1) if values.ndim > 1 else values


def _zipmap_positive(rows: list[dict[Any, float]]) -> np.ndarray:
    if not rows:
        return np.zeros(0, dtype=np.float64)
    keys = sorted(rows[0])
    positive = 1 if 1 in rows[0] else keys[-1]
    return np.fromiter((row[positive] for row in rows), dtype=np.float64, count=len(rows))
