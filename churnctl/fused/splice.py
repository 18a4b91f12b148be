"""The model's side of the fused graph: its nodes renamed and pruned, its probability read.

The model keeps only the nodes its probability needs (a ZipMap is read at the tensor
that feeds it), its names take the prefix ``model/``, and the positive-class
probability is read from it exactly as ``ChurnModel.predict_proba`` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import compose, version_converter

from churnctl.errors import ModelError
from churnctl.fused.builder import DOUBLE, GraphBuilder
from churnctl.scoring.model import PROBABILITY_TOLERANCE, ChurnModel

PREFIX = "model/"


@dataclass(frozen=True)
class Probability:
    """Where the model's probability (or logit) is, and how to read its positive class."""

    tensor: str  # in the renamed model
    form: str  # "flat", "last-column", or "column" (a ZipMap's, at ``column``)
    column: int = 0


def model_graph(model: ChurnModel, opset: int) -> tuple[onnx.ModelProto, Probability]:
    """The model renamed (``model/``), pruned to its probability, at ``opset`` or above."""
    proto = onnx.load_model_from_string(model.data)
    probability = _probability(model, proto)
    _prune(proto.graph, probability.tensor)
    proto = compose.add_prefix(proto, PREFIX)
    current = _onnx_opset(proto)
    if current < opset:
        try:
            proto = version_converter.convert_version(proto, opset)
        except Exception as exc:  # the converter raises its own untyped errors
            raise ModelError(
                f"{model.name}: cannot convert its ONNX opset {current} to {opset}, which the "
                f"fused graph needs (RegexFullMatch for trimmed categories): "
                f"{' '.join(str(exc).split())[:200]}; export the model with opset {opset}"
            ) from None
    tensor = PREFIX + probability.tensor
    return proto, Probability(tensor, probability.form, probability.column)


def _probability(model: ChurnModel, proto: onnx.ModelProto) -> Probability:
    choice = model.choice
    if choice.form == "zipmap":
        node = next(n for n in proto.graph.node if choice.name in n.output)
        if node.op_type != "ZipMap":
            raise ModelError(f"{model.name}: output '{choice.name}' is not written by a ZipMap")
        return Probability(node.input[0], "column", _zipmap_column(node))
    if choice.form == "class-probabilities":
        return Probability(choice.name, "last-column")
    return Probability(choice.name, "flat")


def _zipmap_column(node: Any) -> int:
    """The column of the positive class: label 1 if there is one, else the largest label."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    labels = list(attrs.get("classlabels_int64s") or attrs.get("classlabels_strings") or [])
    labels = [label.decode() if isinstance(label, bytes) else label for label in labels]
    positive = 1 if 1 in labels else sorted(labels)[-1]
    return labels.index(positive)


def _prune(graph: onnx.GraphProto, tensor: str) -> None:
    """Keep only the nodes ``tensor`` depends on; the graph's outputs become that tensor."""
    needed, kept = {tensor}, []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(node.input)
            needed.update(_subgraph_inputs(node))
    del graph.node[:]
    graph.node.extend(reversed(kept))
    unused = [t for t in graph.initializer if t.name not in needed]
    for tensor_proto in unused:
        graph.initializer.remove(tensor_proto)
    del graph.output[:]
    graph.output.append(onnx.helper.make_empty_tensor_value_info(tensor))


def _subgraph_inputs(node: Any) -> set[str]:
    """The outer tensors an If/Loop/Scan body reads (all names, to be safe)."""
    names: set[str] = set()
    for attr in node.attribute:
        for body in [attr.g] if attr.HasField("g") else list(attr.graphs):
            for inner in body.node:
                names.update(inner.input)
                names.update(_subgraph_inputs(inner))
    return names


def _onnx_opset(proto: onnx.ModelProto) -> int:
    """The model's version of the default (``ai.onnx``) operator set."""
    return max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)


def positive_class(b: GraphBuilder, probability: Probability, *, logits: bool) -> tuple[str, str]:
    """float64 [N]: the positive-class probability, and bool [N]: whether churnctl reads it.

    Not read: a non-finite output, or (without ``logits``) a value outside [0, 1] beyond
    churnctl's tolerance, which churnctl refuses; the value is clipped to [0, 1].
    """
    values = b.cast(probability.tensor, DOUBLE, "model-output")
    if logits and probability.form == "last-column":
        value = _two_logits(b, values)
    else:
        value = _read(b, values, probability)
    ok = b.finite(value, "model-output-finite")
    if logits:
        return b.op("Sigmoid", [value], "probability"), ok
    low = b.const(-PROBABILITY_TOLERANCE, "low", np.float64)
    high = b.const(1 + PROBABILITY_TOLERANCE, "high", np.float64)
    inside = b.op(
        "And",
        [
            b.op("GreaterOrEqual", [value, low], "above"),
            b.op("LessOrEqual", [value, high], "below"),
        ],
        "in-range",
    )
    clipped = b.op(
        "Clip",
        [value, b.const(0.0, "zero", np.float64), b.const(1.0, "one", np.float64)],
        "probability",
    )
    return clipped, b.op("And", [ok, inside], "model-output-ok")


def _read(b: GraphBuilder, values: str, probability: Probability) -> str:
    if probability.form == "flat":
        return b.op("Reshape", [values, b.const(np.array([-1], np.int64), "flat")], "positive")
    start = -1 if probability.form == "last-column" else probability.column
    return _column(b, values, start)


def _column(b: GraphBuilder, values: str, start: int) -> str:
    """Column ``start`` (-1: the last) of a [N, C] tensor, as [N]."""
    starts = b.const(np.array([start], np.int64), "column-start")
    ends = b.const(np.array([start + 1 if start != -1 else 2**62], np.int64), "column-end")
    axes = b.const(np.array([1], np.int64), "column-axis")
    column = b.op("Slice", [values, starts, ends, axes], "column")
    return b.op("Reshape", [column, b.const(np.array([-1], np.int64), "flat")], "positive")


def _two_logits(b: GraphBuilder, values: str) -> str:
    """The log-odds of [N, C] logits: the last minus the first when C is 2, else the last."""
    last, first = _column(b, values, -1), _column(b, values, 0)
    width = b.op(
        "Gather", [b.op("Shape", [values], "shape"), b.const(1, "one-index", np.int64)], "width"
    )
    two = b.op("Equal", [width, b.const(2, "two", np.int64)], "two-classes")
    other = b.op("Where", [two, first, b.const(0.0, "no-logit", np.float64)], "other-logit")
    return b.op("Sub", [last, other], "logit")
