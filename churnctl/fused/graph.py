"""The feature subgraph: a state's raw input columns to its float32 feature matrix and validity.

Inputs are named as the raw columns, shape [N, 1]: ``tensor(string)`` for a category
(empty = missing), ``tensor(double)`` for a number (churnctl reads numbers as float64,
so a double holds every value it would read; a float32 caller casts up losslessly).
The stages run in the state's order, in float64; the features are then cast to
float32 as churnctl casts them before the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, helper

from churnctl.errors import PipelineSpecError
from churnctl.features.state import FeatureState
from churnctl.fused.builder import FLOAT, GraphBuilder
from churnctl.fused.stages import emitter_for


@dataclass(frozen=True)
class Features:
    """What the feature subgraph gives: float32 features [N, k] and validity [N] (bool)."""

    matrix: str
    valid: str
    inputs: list[object]  # the graph inputs (ValueInfoProto)


class FeatureGraph:
    """The columns written so far (float64 [N, width]) and the validity flags gathered."""

    def __init__(self, builder: GraphBuilder) -> None:
        self.builder = builder
        self.columns: dict[str, tuple[str, int]] = {}
        self.texts: dict[str, str] = {}
        self.flags: list[str] = []  # bool [N] each; a row is valid where all are true
        self._flat_shape = builder.const(np.array([-1], dtype=np.int64), "flat-shape")
        self._column_shape = builder.const(np.array([-1, 1], dtype=np.int64), "column-shape")

    def text(self, name: str) -> str:
        """A category column as strings [N]."""
        return self.texts[name]

    def column(self, name: str) -> str:
        """A numeric column as float64 [N, width]."""
        if name not in self.columns:
            raise PipelineSpecError(f"the fused export found no numeric column {name}")
        return self.columns[name][0]

    def set_column(self, name: str, tensor: str, width: int) -> None:
        self.columns[name] = (tensor, width)

    def require(self, flag: str) -> None:
        """Rows where ``flag`` (bool [N]) is false are invalid."""
        self.flags.append(flag)

    def flat(self, tensor: str, hint: str) -> str:
        return self.builder.op("Reshape", [tensor, self._flat_shape], hint)

    def as_column(self, tensor: str, hint: str) -> str:
        return self.builder.op("Reshape", [tensor, self._column_shape], f"{hint}-column")


def feature_graph(state: FeatureState, builder: GraphBuilder) -> Features:
    """Add the state's feature extraction to ``builder``; its inputs, features and validity."""
    graph = FeatureGraph(builder)
    schema = state.pipeline.input_schema
    inputs = [_input(name, TensorProto.STRING) for name in schema.categorical]
    inputs += [_input(name, TensorProto.DOUBLE) for name in schema.numeric]
    for name in schema.categorical:
        graph.texts[name] = graph.flat(name, f"{name}-text")
    for name in schema.numeric:
        graph.set_column(name, name, 1)
        graph.require(graph.flat(builder.finite(name, f"{name}-finite"), f"{name}-valid"))
    for stage in state.pipeline.stages:
        emitter_for(stage)(stage, graph)
    matrix = builder.cast(graph.column(state.pipeline.output_col), FLOAT, "features-float32")
    graph.require(_finite_rows(builder, matrix))
    valid = builder.all_of(graph.flags, "valid-so-far")
    assert valid is not None  # the float32 check is always there
    return Features(matrix, valid, inputs)


def _finite_rows(builder: GraphBuilder, matrix: str) -> str:
    """True where every float32 feature of the row is finite (churnctl rejects the others)."""
    axis = builder.const(np.array([1], dtype=np.int64), "feature-axis")
    gaps = builder.op("Sub", [matrix, matrix], "features-minus-themselves")  # 0, or NaN
    total = builder.op("ReduceSum", [gaps, axis], "features-nan-if-not-finite", keepdims=0)
    return builder.op("Not", [builder.op("IsNaN", [total], "features-not-finite")], "features-ok")


def _input(name: str, elem_type: int) -> object:
    return helper.make_tensor_value_info(name, elem_type, ["N", 1])
