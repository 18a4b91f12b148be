"""A state and its model, written side by side in one folder, the model bound to the state.

What a training notebook ends with: ``save_for_serving(state, onnx_model, "serving/")``
writes ``serving/state.json`` and ``serving/model.onnx``, which every runtime scores
with (``churnctl score DATA --state serving/state.json --model serving/model.onnx``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnctl.arguments import PATH, check_bool, check_path, check_type, wrong
from churnctl.atomic import atomic_write_bytes
from churnctl.errors import OutputError
from churnctl.features.state import FeatureState
from churnctl.scoring.binding import bind_model
from churnctl.scoring.model import ChurnModel

STATE_FILE, MODEL_FILE = "state.json", "model.onnx"
MODEL_TAKES = "the ONNX model: its bytes, a path to it, or an onnx ModelProto (skl2onnx's)"


@dataclass(frozen=True)
class ServingPair:
    """Where ``save_for_serving`` wrote the state and the model bound to it."""

    state: Path
    model: Path


def save_for_serving(
    state: FeatureState, model: Any, folder: str | os.PathLike[str], *, rebind: bool = False
) -> ServingPair:
    """Write ``folder/state.json`` and ``folder/model.onnx``, the model bound to the state.

    ``model``: the exported ONNX model (bytes, a path, or an ``onnx.ModelProto`` as
    skl2onnx returns it). Its input width must equal the state's feature count; a
    model bound to another state is refused unless ``rebind``. The folder is created;
    each file is written atomically.
    """
    check_type("save_for_serving", "state", state, FeatureState, "a FeatureState")
    check_path("save_for_serving", "folder", folder, PATH)
    check_bool("save_for_serving", "rebind", rebind)
    data = _model_bytes(model)
    loaded = ChurnModel(data, name="the model")
    loaded.check_compatible(len(state.feature_names), state_source=state.source)
    bound = bind_model(data, state, rebind=rebind)
    target = Path(folder)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{target}: cannot create the folder: {exc.strerror or exc}") from None
    pair = ServingPair(target / STATE_FILE, target / MODEL_FILE)
    state.save(pair.state)
    atomic_write_bytes(pair.model, bound)
    return pair


def _model_bytes(model: Any) -> bytes:
    if isinstance(model, bytes):
        return model
    if isinstance(model, str | os.PathLike):
        return ChurnModel(model).data
    serialize = getattr(model, "SerializeToString", None)
    if callable(serialize):
        return serialize()
    raise wrong("save_for_serving", "model", model, MODEL_TAKES)
