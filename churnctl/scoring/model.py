"""ONNX binary classifiers: discover the input, find the positive-class probability.

Accepted outputs, as real exporters produce them: a probability of shape [N] or
[N, 1] (Keras via tf2onnx, PyTorch), class probabilities [N, 2], and
scikit-learn/skl2onnx label + probabilities, including the ZipMap
``seq(map)`` form. A model that outputs logits (log-odds) is read with
``logits=True``: the sigmoid (or, for two class logits, the softmax) turns them
into probabilities. Inference runs per chunk, on float32 (or float64) input.
A model is loaded from a file or from its bytes, and keeps those bytes so that
a copy can be opened in another process. A model file that keeps tensors in
external data files (``onnx.save_model(..., save_as_external_data=True)``) is
read with them from the model's own folder, whatever the working folder, and
its bytes then hold that data inline: a copy needs no other file.

Whatever the model computes, what comes out is a probability or NaN: a
non-finite output is NaN (the scorer quarantines that row), a finite output
outside [0, 1] is a ``ModelError``. ONNX Runtime's own logging is silenced; its
failures become one-line ``ModelError`` messages.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from churnctl.arguments import PATH, check_type
from churnctl.errors import CompatibilityError, Fix, FixedBatchWarning, ModelError, UsageError

INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}
FLOAT_OUTPUTS = ("tensor(float)", "tensor(double)")
# ONNX Runtime log severity: 4 = fatal only. Its errors reach the user as ModelError lines.
ORT_QUIET = 4
# float32 rounding can put a probability a hair outside [0, 1]; beyond this it is not one.
PROBABILITY_TOLERANCE = 1e-6
SHOWN_ROWS = 5
MAX_THREADS = 2**31 - 1  # ONNX Runtime takes a 32-bit int
MAX_INLINE_BYTES = 2**31 - 1  # protobuf's limit: a model with its data inline must fit
EXTERNAL_DATA_KEY = b"location"  # what an external data reference always spells
FUSED_KEY = "churnctl.fused"  # metadata of a fused graph (raw columns in), not a scorer's model

SOURCE_TAKES = f"{PATH} to an ONNX model, or the model's bytes"


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
        check_type("ChurnModel", "source", source, (str, os.PathLike, bytes), SOURCE_TAKES)
        if name is not None:
            check_type("ChurnModel", "name", name, str, "a str")
        self.path = None if isinstance(source, bytes) else Path(source)
        self.name = name or (str(self.path) if self.path is not None else "<model bytes>")
        self.threads = check_threads(threads)
        self.data = source if isinstance(source, bytes) else read_model_file(Path(source))
        self._session = _open_session(self.data, self.name, threads)
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = ORT_QUIET
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        self.inputs = [_info(node) for node in self._session.get_inputs()]
        self.outputs = [_info(node) for node in self._session.get_outputs()]
        self.input = self._check_input()
        self.choice = choose_output(self.outputs, source=self.name)
        self._dtype = INPUT_DTYPES[self.input.type]
        if self.fixed_batch_note is not None:
            warnings.warn(self.fixed_batch_note, FixedBatchWarning, stacklevel=2)

    @property
    def fixed_batch(self) -> int | None:
        """The model's fixed batch size (its input's first dimension), or None when dynamic.

        Such a model is fed in chunks of that size, the last one padded with zeros and
        the padding's outputs dropped: every row is scored, at the cost of one
        inference call per chunk.
        """
        n = self.input.shape[0]
        return n if isinstance(n, int) and n > 0 else None

    @property
    def fixed_batch_note(self) -> str | None:
        """The one-line note about a fixed batch size (its cost, the remedy), or None."""
        n = self.fixed_batch
        if n is None:
            return None
        return (
            f"{self.name}: input '{self.input.name}' has a fixed batch size of {n}: it is "
            f"scored in chunks of {n} rows, one inference call each, which is slower than one "
            "call per batch; export the model with a dynamic batch axis (torch.onnx.export "
            "dynamic_axes={'input': {0: 'N'}}, tf2onnx input_signature shape [None, k], "
            "skl2onnx initial_types [None, k])"
        )

    @property
    def n_features(self) -> int | None:
        """The model's feature count k, or None when the dimension is symbolic."""
        k = self.input.shape[1]
        return k if isinstance(k, int) else None

    def _check_input(self) -> TensorInfo:
        if FUSED_KEY in self.metadata:
            raise ModelError(
                f"{self.name}: a fused graph (raw columns in, raw and valid out), not a model "
                "of features; use the model it was exported from, or run it with ONNX Runtime"
            )
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

    def predict_proba(
        self, features: np.ndarray, *, logits: bool = False, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Positive-class probability (float64, shape [N]) for a feature matrix [N, k].

        NaN where the model's output is not finite (NaN or infinite); a finite
        output outside [0, 1] is a ``ModelError`` naming the values and the
        ``rows`` they come from (default: positions 0..N-1). ``logits``: the
        model outputs log-odds, turned into probabilities here.
        """
        if len(features) == 0:
            return np.zeros(0, dtype=np.float64)
        if logits:
            self.check_logits()
            output = self._run(features)
            return logit_probability(output, self.choice, source=self.name, n_rows=len(features))
        values = positive_probability(self._run(features), self.choice, source=self.name)
        _check_length(values, len(features), self.name)
        return checked_probability(values, self.choice.name, source=self.name, rows=rows)

    def check_logits(self) -> None:
        """Refuse ``logits=True`` for an output that can only hold probabilities (ZipMap)."""
        if self.choice.form == "zipmap":
            raise ModelError(
                f"{self.name}: output '{self.choice.name}' is a ZipMap of class probabilities, "
                "not logits; score this model without logits"
            )

    def _run(self, features: np.ndarray) -> Any:
        """The chosen output for ``features``; a fixed-size model's fed in chunks of its size."""
        n = self.fixed_batch
        if n is None or len(features) == n:
            return self._run_once(features)
        outputs = [self._run_once(chunk) for chunk in _chunks(features, n)]
        if isinstance(outputs[0], list):  # ZipMap: one dict per row
            return [row for output in outputs for row in output][: len(features)]
        return np.concatenate([np.asarray(output) for output in outputs])[: len(features)]

    def _run_once(self, features: np.ndarray) -> Any:
        feed = {self.input.name: np.ascontiguousarray(features, dtype=self._dtype)}
        try:
            (output,) = self._session.run([self.choice.name], feed, self._run_options)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            shape = "x".join(str(n) for n in np.shape(features))
            raise ModelError(
                f"{self.name}: inference failed on a {shape} feature matrix: {ort_message(exc)}"
            ) from None
        return output


def _chunks(features: np.ndarray, size: int) -> list[np.ndarray]:
    """``features`` in chunks of ``size`` rows, the last one padded with rows of zeros."""
    padding = -len(features) % size
    if padding:
        zeros = np.zeros((padding, *features.shape[1:]), dtype=features.dtype)
        features = np.concatenate([features, zeros])
    return [features[start : start + size] for start in range(0, len(features), size)]


def check_threads(threads: Any) -> int:
    """An intra-op thread count ONNX Runtime accepts: a whole number >= 0 (0: its choice)."""
    whole = isinstance(threads, int) and not isinstance(threads, bool)
    if not (whole and 0 <= threads <= MAX_THREADS):
        raise UsageError(
            f"threads must be a whole number from 0 to {MAX_THREADS:,}, got {threads!r}"
        )
    return threads


def read_model_file(path: Path) -> bytes:
    """The bytes of an ONNX model file, its external data inline; or a ``ModelError``."""
    if not path.is_file():
        raise ModelError(f"{path}: model file not found", fix=Fix("model", "PATH.onnx"))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the model: {exc.strerror or exc}") from None
    # only a model that refers to external data holds this key: the others skip the onnx import
    return with_external_data(path, data) if EXTERNAL_DATA_KEY in data else data


def with_external_data(path: Path, data: bytes) -> bytes:
    """The model's bytes with the external data it refers to read in, from its own folder.

    onnx resolves each tensor's ``location`` against the model's folder and refuses one
    that leaves it (``../x``, an absolute path, a symbolic link). A model without
    external data is returned as it is, byte for byte.
    """
    import onnx  # a dependency; imported only for the rare model that needs it
    from onnx.external_data_helper import load_external_data_for_model

    try:
        proto = onnx.load_model_from_string(data)
    except Exception:  # not an ONNX model: ONNX Runtime says what is wrong with it
        return data
    size = proto.ByteSize()
    try:
        load_external_data_for_model(proto, str(path.parent))
    except (onnx.checker.ValidationError, OSError, ValueError) as exc:
        raise ModelError(
            f"{path}: cannot read its external data: {' '.join(str(exc).split())}; keep each "
            "data file in the model's folder, named as the model names it"
        ) from None
    if proto.ByteSize() == size:  # no tensor was external: nothing changed
        return data
    if proto.ByteSize() > MAX_INLINE_BYTES:
        raise ModelError(
            f"{path}: the model and its external data make {proto.ByteSize() / 2**30:.1f} GiB, "
            "over the 2 GiB that one ONNX model can hold inline; churnctl carries a model "
            "whole (to pool workers and Flink tasks): use a model under 2 GiB"
        )
    return proto.SerializeToString()


def _open_session(data: bytes, name: str, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    if threads:
        options.inter_op_num_threads = 1
    options.log_severity_level = ORT_QUIET
    # no busy-waiting between runs: batches come one at a time, with reading and writing
    # between them, and spinning threads would burn a core doing nothing meanwhile
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        hint = ""
        if EXTERNAL_DATA_KEY in data and "xternal data" in str(exc):
            hint = "; load the model from its file, which reads its data files beside it"
        raise ModelError(f"{name}: not a loadable ONNX model: {ort_message(exc)}{hint}") from None


_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
_ORT_NODE = re.compile(
    r"Non-zero status code returned while running (\w+) node\. Name:'([^']*)' Status Message: "
)
# A C++ source location and the function it names; a failed internal assertion.
_ORT_SOURCE = re.compile(r"(\S*/)?[\w.]+\.(h|cc|cpp):\d+ (\S+\([^)]*\)( const)? )?")
_ORT_ASSERTION = re.compile(r"(: )[^:]*? was false\. ")


def ort_message(exc: BaseException) -> str:
    """ONNX Runtime's error as one line, without its error code, source paths or assertions."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = _ORT_PREFIX.sub("", text)
    text = _ORT_NODE.sub(lambda m: f"node '{m.group(2)}' ({m.group(1)}): ", text)
    return _ORT_ASSERTION.sub(r"\1", _ORT_SOURCE.sub("", text)).strip()


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


def _check_length(values: np.ndarray, n_rows: int, source: str) -> None:
    if len(values) != n_rows:
        raise ModelError(
            f"{source}: the model returned {len(values):,} probabilities for {n_rows:,} rows; "
            "it must return one per row (a fixed batch size or a reshape in the graph?)"
        )


def checked_probability(
    values: np.ndarray, output: str, *, source: str, rows: np.ndarray | None = None
) -> np.ndarray:
    """Probabilities as float64: non-finite → NaN; finite outside [0, 1] → ``ModelError``."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    low, high = -PROBABILITY_TOLERANCE, 1 + PROBABILITY_TOLERANCE
    outside = finite & ((values < low) | (values > high))
    if outside.any():
        raise _out_of_range(values, outside, output, source, rows)
    return np.clip(np.where(finite, values, np.nan), 0.0, 1.0)


def _out_of_range(
    values: np.ndarray, outside: np.ndarray, output: str, source: str, rows: np.ndarray | None
) -> ModelError:
    positions = np.flatnonzero(outside)
    numbers = positions if rows is None else np.asarray(rows)[positions]
    shown = ", ".join(str(n) for n in numbers[:SHOWN_ROWS]) + (
        ", ..." if len(numbers) > SHOWN_ROWS else ""
    )
    seen = values[outside]
    message = (
        f"{source}: output '{output}' is not a probability: {len(seen):,} of {len(values):,} "
        f"values outside [0, 1] (min {seen.min():.6g}, max {seen.max():.6g}; batch rows {shown})"
    )
    if seen.min() < 0:  # negative: log-odds, not a percentage or a score
        note = "if the model outputs logits (log-odds) rather than probabilities"
        return ModelError(message, fix=Fix("logits", True, note))
    return ModelError(f"{message}; the model must output the positive class's probability")


def logit_probability(output: Any, choice: OutputChoice, *, source: str, n_rows: int) -> np.ndarray:
    """Probabilities from logits: sigmoid of one logit, softmax of two class logits.

    NaN where the model's output is not finite.
    """
    values = np.asarray(output, dtype=np.float64)
    two_logits = choice.form == "class-probabilities" and values.ndim == 2 and values.shape[1] == 2
    with np.errstate(over="ignore", invalid="ignore"):
        if two_logits:
            finite = np.isfinite(values).all(axis=1)
            logit = values[:, 1] - values[:, 0]  # softmax over two classes = sigmoid of this
        else:
            logit = positive_probability(values, choice, source=source)
            finite = np.isfinite(logit)
        _check_length(logit, n_rows, source)
        probability = np.exp(-np.logaddexp(0.0, -logit))
    return np.where(finite, probability, np.nan)


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
