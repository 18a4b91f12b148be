"""What a model and a state contain, and whether they fit together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from churnctl.errors import CompatibilityError
from churnctl.model import ChurnModel, TensorInfo
from churnctl.state import FeatureState


@dataclass(frozen=True)
class StageSummary:
    type: str
    params: dict[str, Any]
    fitted: str


@dataclass(frozen=True)
class Report:
    """The facts ``churnctl inspect`` shows."""

    model_inputs: list[TensorInfo]
    model_outputs: list[TensorInfo]
    probability_output: str
    stages: list[StageSummary]
    feature_names: list[str]
    provenance: dict[str, Any]
    compatible: bool
    verdict: str


def inspect_pair(model: ChurnModel, state: FeatureState) -> Report:
    """Describe a model and a state and check that they fit together."""
    compatible, verdict = _verdict(model, state)
    return Report(
        model_inputs=model.inputs,
        model_outputs=model.outputs,
        probability_output=f"{model.choice.name} ({model.choice.form})",
        stages=[_summarise(stage) for stage in state.to_dict()["stages"]],
        feature_names=state.feature_names,
        provenance=state.provenance,
        compatible=compatible,
        verdict=verdict,
    )


def _verdict(model: ChurnModel, state: FeatureState) -> tuple[bool, str]:
    n = state.pipeline.n_features
    try:
        model.check_compatible(n)
    except CompatibilityError as exc:
        return False, str(exc)
    if model.n_features is None:
        return True, f"state produces {n} features; the model's width is symbolic (checked at run)"
    return True, f"state produces {n} features and the model expects {model.n_features}"


def _summarise(stage: dict[str, Any]) -> StageSummary:
    parts = []
    for key, value in stage["fitted"].items():
        size = len(value) if isinstance(value, list) else 1
        parts.append(f"{key}: {_short(value)}" if size <= 4 else f"{key}: {size} values")
    return StageSummary(stage["type"], stage["params"], "; ".join(parts))


def _short(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return f"{value:.6g}" if isinstance(value, float) else str(value)
