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

from churnctl.features.state import FeatureState
from churnctl.fused.builder import FLOAT, GraphBuilder
from churnctl.fused.columns import FeatureGraph
from churnctl.fused.stages import emitter_for


@dataclass(frozen=True)
class Features:
    """What the feature subgraph gives: float32 features [N, k] and validity [N] (bool)."""

    matrix: str
    valid: str
    inputs: list[object]  # the graph inputs (ValueInfoProto)


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
