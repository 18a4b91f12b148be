"""One ONNX emitter per stage type, each computing what the stage's ``transform`` does.

``EMITTERS`` is the registry, keyed by the stage's ``TYPE``: a stage type without an
emitter is refused by name (``emitter_for``). An emitter reads its input columns from
the ``FeatureGraph``, writes its output columns (float64 [N, width]) and adds the
rows it rejects to the graph's validity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from churnctl.errors import PipelineSpecError
from churnctl.features.stages import OneHotEncoder, StandardScaler, StringIndexer, VectorAssembler
from churnctl.fused.builder import DOUBLE, ML, GraphBuilder
from churnctl.fused.columns import FeatureGraph
from churnctl.fused.text import label_pattern, matches_after

TRIM_OPSET = 20  # RegexFullMatch


def string_indexer(stage: StringIndexer, graph: FeatureGraph) -> None:
    """Each category → its label's position; unseen or empty → len(labels) (``keep``) or invalid."""
    b = graph.builder
    columns = zip(stage.input_cols, stage.output_cols, stage.labels_, stage.normalize, strict=True)
    for col, out, labels, mode in columns:
        index = _label_index(b, graph.text(col), labels, mode, out)
        found = b.op("GreaterOrEqual", [index, b.const(0, f"{out}-zero", np.int64)], f"{out}-found")
        if stage.handle_invalid != "keep":
            graph.require(found)
        unseen = b.const(len(labels), f"{out}-unseen", np.int64)
        filled = b.op("Where", [found, index, unseen], f"{out}-filled")
        graph.set_column(out, graph.as_column(b.cast(filled, DOUBLE, f"{out}-double"), out), 1)


def _label_index(b: GraphBuilder, text: str, labels: list[str], mode: str, out: str) -> str:
    """int64 [N]: the position of the label the normalized value equals, or -1."""
    if mode == "exact":
        keys = [(label, i) for i, label in enumerate(labels) if label != ""] or [("", -1)]
        return _encoded(b, text, keys, out)
    b.needs(TRIM_OPSET)
    index = _encoded(b, text, [("", -1)], f"{out}-none")  # -1 for every row
    for position, label in enumerate(labels):
        if matches_after(label, mode):
            pattern = label_pattern(label, mode)
            hit = b.op("RegexFullMatch", [text], f"{out}-is-{position}", pattern=pattern)
            at = b.const(position, f"{out}-at-{position}", np.int64)
            index = b.op("Where", [hit, at, index], f"{out}-index")
    return index


def _encoded(b: GraphBuilder, text: str, keys: list[tuple[str, int]], out: str) -> str:
    return b.op(
        "LabelEncoder",
        [text],
        f"{out}-label",
        domain=ML,
        keys_strings=[key for key, _ in keys],
        values_int64s=[value for _, value in keys],
        default_int64=-1,
    )


def one_hot_encoder(stage: OneHotEncoder, graph: FeatureGraph) -> None:
    """Each index → a one-hot row over the kept categories; a bad index is invalid (``error``)."""
    b = graph.builder
    fitted = zip(
        stage.input_cols, stage.output_cols, stage.category_sizes_, stage.drop_index, strict=True
    )
    for col, out, size, dropped in fitted:
        index = graph.column(col)
        if stage.handle_invalid == "error":
            graph.require(graph.flat(_whole_below(b, index, size, out), f"{out}-in-range"))
        width = size - 1 if stage.drop_last or dropped is not None else size
        kept = [k for k in range(size) if k != dropped][:width]
        categories = b.const(np.asarray([kept], dtype=np.float64).reshape(1, -1), f"{out}-kept")
        hot = b.op("Equal", [index, categories], f"{out}-hot")
        graph.set_column(out, b.cast(hot, DOUBLE, out), len(kept))


def _whole_below(b: GraphBuilder, index: str, size: int, out: str) -> str:
    """True where ``index`` is a whole number in [0, size)."""
    low = b.op("GreaterOrEqual", [index, b.const(0.0, f"{out}-low")], f"{out}-not-negative")
    high = b.op("Less", [index, b.const(float(size), f"{out}-size")], f"{out}-below-size")
    whole = b.op("Equal", [index, b.op("Floor", [index], f"{out}-floor")], f"{out}-whole")
    return b.op("And", [b.op("And", [low, high], f"{out}-bounded"), whole], f"{out}-valid")


def vector_assembler(stage: VectorAssembler, graph: FeatureGraph) -> None:
    """The input columns side by side, in order."""
    parts = [
        (graph.column(col), size)
        for col, size in zip(stage.input_cols, stage.input_sizes_, strict=True)
        if size > 0
    ]
    if not parts:
        raise PipelineSpecError(
            f"VectorAssembler {stage.output_col}: assembles no feature, which the fused export "
            "cannot write as an ONNX tensor; leave the stage out of the pipeline"
        )
    joined = graph.builder.op("Concat", [name for name, _ in parts], stage.output_col, axis=1)
    graph.set_column(stage.output_col, joined, sum(size for _, size in parts))


def standard_scaler(stage: StandardScaler, graph: FeatureGraph) -> None:
    """``(x - mean) / std`` as configured; a feature whose std is 0 (or denormal) becomes 0."""
    b, out = graph.builder, stage.output_col
    result = graph.column(stage.input_col)
    mean, std = np.asarray(stage.mean_), np.asarray(stage.std_)
    if stage.with_mean:
        result = b.op(
            "Sub", [result, b.const(mean.reshape(1, -1), f"{out}-mean")], f"{out}-centred"
        )
    if stage.with_std:
        zero = ~(std >= np.finfo(np.float64).tiny)
        divisor = b.const(np.where(zero, 1.0, std).reshape(1, -1), f"{out}-std")
        result = b.op("Div", [result, divisor], f"{out}-scaled")
        if zero.any():
            mask = b.const(zero.reshape(1, -1), f"{out}-zero-std")
            result = b.op("Where", [mask, b.const(0.0, f"{out}-zeros"), result], out)
    graph.set_column(out, result, len(mean))


Emitter = Callable[[Any, FeatureGraph], None]
EMITTERS: dict[str, Emitter] = {
    StringIndexer.TYPE: string_indexer,
    OneHotEncoder.TYPE: one_hot_encoder,
    VectorAssembler.TYPE: vector_assembler,
    StandardScaler.TYPE: standard_scaler,
}


def emitter_for(stage: Any) -> Emitter:
    """The stage's emitter; a stage type the fused export does not know is refused by name."""
    emitter = EMITTERS.get(stage.TYPE)
    if emitter is None:
        raise PipelineSpecError(
            f"the fused ONNX export has no ONNX form for stage type {stage.TYPE} (it knows "
            f"{', '.join(EMITTERS)}); score such a state with churnctl's own runtimes"
        )
    return emitter
