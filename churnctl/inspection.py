"""What a model and a state contain, and whether they fit together (the scoring check)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from churnctl.binding import Binding, PairStatus, check_pair, read_binding
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
    binding: str  # "bound", "unbound" or "damaged"
    model_fingerprint: str | None
    state_fingerprint: str
    model_feature_names: list[str] | None  # the model's order when bound
    stages: list[StageSummary]
    feature_names: list[str]
    provenance: dict[str, Any]
    compatible: bool
    verdict: str

    @property
    def orders_differ(self) -> bool:
        names = self.model_feature_names
        return names is not None and names != self.feature_names


def inspect_pair(model: ChurnModel, state: FeatureState) -> Report:
    """Describe a model and a state and check them exactly as scoring does."""
    compatible, verdict = _verdict(model, state)
    binding, bound = _binding(model)
    return Report(
        model_inputs=model.inputs,
        model_outputs=model.outputs,
        probability_output=f"{model.choice.name} ({model.choice.form})",
        binding=binding,
        model_fingerprint=bound.fingerprint if bound else None,
        state_fingerprint=state.fingerprint,
        model_feature_names=list(bound.feature_names) if bound else None,
        stages=[_summarise(stage) for stage in state.to_dict()["stages"]],
        feature_names=state.feature_names,
        provenance=state.provenance,
        compatible=compatible,
        verdict=verdict,
    )


def _verdict(model: ChurnModel, state: FeatureState) -> tuple[bool, str]:
    try:
        check = check_pair(model, state)
    except CompatibilityError as exc:
        return False, exc.message
    if check.status is PairStatus.UNBOUND and model.n_features is None:
        return True, check.message + "; the model's width is symbolic (checked at run time)"
    return True, check.message


def _binding(model: ChurnModel) -> tuple[str, Binding | None]:
    try:
        bound = read_binding(model.metadata, source=model.name)
    except CompatibilityError:
        return "damaged", None
    return ("bound" if bound else "unbound"), bound


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
