"""``export_fused``: a state and a model as one ONNX graph from raw columns to ``raw``/``valid``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from churnctl.arguments import PATH, check_bool, check_path, check_type
from churnctl.atomic import atomic_write_bytes, check_distinct
from churnctl.errors import ModelError, PipelineSpecError
from churnctl.features.state import FeatureState, load_state
from churnctl.fused.builder import ML, GraphBuilder
from churnctl.fused.graph import Features, feature_graph
from churnctl.fused.splice import PREFIX, model_graph, positive_class
from churnctl.scoring.binding import Binding, check_pair
from churnctl.scoring.model import FUSED_KEY, ChurnModel

OUTPUTS = ("raw", "valid")
ML_OPSET = 2  # LabelEncoder's keys_strings/values_int64s


def export_fused(
    state: FeatureState | str | os.PathLike[str],
    model: ChurnModel | str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    logits: bool = False,
) -> Path:
    """Write one ONNX graph applying ``state``'s feature extraction, then ``model``, to ``output``.

    Inputs: one per raw column, shape [N, 1] (categories ``tensor(string)``, ``""`` for
    missing; numbers ``tensor(double)``). Outputs: ``raw`` (float [N], the positive-class
    probability as churnctl's ``raw`` column holds it; NaN where not valid) and ``valid``
    (bool [N], false where churnctl rejects the row). ``logits``: the model outputs
    log-odds, as ``Scorer(logits=True)`` reads them. The file is written atomically and
    carries the state's binding. Returns ``output``.
    """
    check_type(
        "export_fused",
        "state",
        state,
        (FeatureState, str, os.PathLike),
        "a FeatureState or " + PATH,
    )
    check_type(
        "export_fused", "model", model, (ChurnModel, str, os.PathLike), "a ChurnModel or " + PATH
    )
    check_path("export_fused", "output", output)
    check_bool("export_fused", "logits", logits)
    paths = {"state": state, "model": model}  # the inputs given as files
    check_distinct(
        {k: v for k, v in paths.items() if isinstance(v, str | os.PathLike)}, {"output": output}
    )
    loaded = state if isinstance(state, FeatureState) else load_state(state)
    opened = model if isinstance(model, ChurnModel) else ChurnModel(model)
    proto = fused_model(loaded, opened, logits=logits)
    atomic_write_bytes(Path(output), proto.SerializeToString())
    return Path(output)


def fused_model(state: FeatureState, model: ChurnModel, *, logits: bool = False) -> onnx.ModelProto:
    """The fused graph as an ONNX model (checked), bound to ``state``."""
    check_pair(model, state)
    _check_exportable(state, model, logits)
    builder = GraphBuilder()
    features = feature_graph(state, builder)
    spliced, probability = model_graph(model, builder.opset)
    model_input = PREFIX + model.input.name
    _feed_model(builder, features, model_input, model.input.type)
    before = len(builder.nodes)  # the model's nodes run here
    value, readable = positive_class(builder, probability, logits=logits)
    _outputs(builder, features.valid, value, readable)
    graph = helper.make_graph(
        [*builder.nodes[:before], *spliced.graph.node, *builder.nodes[before:]],
        "churnctl-fused",
        features.inputs,
        [
            helper.make_tensor_value_info("raw", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("valid", TensorProto.BOOL, ["N"]),
        ],
        initializer=[*builder.initializers, *spliced.graph.initializer],
        sparse_initializer=list(spliced.graph.sparse_initializer),
    )
    return _model(graph, spliced, builder.opset, state)


def _check_exportable(state: FeatureState, model: ChurnModel, logits: bool) -> None:
    taken = sorted(set(OUTPUTS).intersection(state.pipeline.input_schema.columns))
    if taken:
        raise PipelineSpecError(
            f"input column {taken[0]} has the name of a fused graph output (raw, valid); "
            "rename the column in the pipeline"
        )
    if model.fixed_batch is not None:
        raise ModelError(
            f"{model.name}: its input has a fixed batch size of {model.fixed_batch}, which a "
            "fused graph taking any number of rows cannot feed; export the model with a "
            "dynamic batch axis"
        )
    if logits:
        model.check_logits()


def _feed_model(builder: GraphBuilder, features: Features, model_input: str, kind: str) -> None:
    """The float32 features, zeros where the row is not valid, as the model's input type."""
    column = builder.op(
        "Unsqueeze",
        [features.valid, builder.const(np.array([1], np.int64), "axis")],
        "valid-column",
    )
    zero = builder.const(np.float32(0.0), "zero-feature")
    fed = builder.op("Where", [column, features.matrix, zero], "model-features")
    to = TensorProto.DOUBLE if kind == "tensor(double)" else TensorProto.FLOAT
    builder.op_into("Cast", [fed], model_input, to=to)


def _outputs(builder: GraphBuilder, valid: str, value: str, readable: str) -> None:
    builder.op_into("And", [valid, readable], "valid")
    raw = builder.cast(value, TensorProto.FLOAT, "raw-float32")
    nan = builder.const(np.float32(np.nan), "not-valid")
    builder.op_into("Where", ["valid", raw, nan], "raw")


def _model(
    graph: onnx.GraphProto, spliced: onnx.ModelProto, opset: int, state: FeatureState
) -> onnx.ModelProto:
    versions = {o.domain or "ai.onnx": o.version for o in spliced.opset_import}
    versions["ai.onnx"] = max(versions.get("ai.onnx", 0), opset)
    versions[ML] = max(versions.get(ML, 0), ML_OPSET)
    imports = [helper.make_opsetid("" if d == "ai.onnx" else d, v) for d, v in versions.items()]
    proto = helper.make_model(
        graph,
        opset_imports=imports,
        producer_name="churnctl",
        ir_version=max(spliced.ir_version, helper.find_min_ir_version_for(imports)),
        functions=list(spliced.functions),
    )
    helper.set_model_props(proto, {**Binding.of_state(state).to_metadata(), FUSED_KEY: "1"})
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ModelError(
            f"the fused graph is not valid ONNX: {' '.join(str(exc).split())[:300]}"
        ) from None
    return proto
