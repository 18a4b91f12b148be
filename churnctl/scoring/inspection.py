"""What a model and a state contain, and whether they fit together (the scoring check).

The report stays small whatever the state's size: long lists (labels, feature
names, parameters) are given as a count and their first items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from churnctl.errors import CompatibilityError
from churnctl.features.state import FeatureState
from churnctl.scoring.binding import Binding, PairStatus, check_pair, read_binding
from churnctl.scoring.model import ChurnModel, TensorInfo

FEATURES_SHOWN = 50  # feature names listed; the report counts the rest
ITEMS_SHOWN = 20  # items of a long list in a stage's parameters or fitted data


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
    model_feature_names: list[str] | None  # the model's order when bound (first ones)
    stages: list[StageSummary]
    feature_names: list[str]  # the state's order: the first FEATURES_SHOWN names
    n_features: int  # how many the state has in all
    n_model_features: int | None  # how many the bound model has in all
    orders_differ: bool  # the bound model's order is not the state's
    provenance: dict[str, Any]
    compatible: bool
    verdict: str

    @property
    def more_features(self) -> str:
        """``59,959 more features`` when the state's list is cut; else empty."""
        return _more(self.n_features, self.feature_names)

    @property
    def more_model_features(self) -> str:
        """The same for the bound model's list."""
        return _more(self.n_model_features or 0, self.model_feature_names or [])


def _more(total: int, shown: list[str]) -> str:
    return f"{total - len(shown):,} more features" if total > len(shown) else ""


def inspect_pair(model: ChurnModel, state: FeatureState) -> Report:
    """Describe a model and a state and check them exactly as scoring does."""
    compatible, verdict = _verdict(model, state)
    binding, bound = _binding(model)
    names = state.feature_names
    return Report(
        model_inputs=model.inputs,
        model_outputs=model.outputs,
        probability_output=f"{model.choice.name} ({model.choice.form})",
        binding=binding,
        model_fingerprint=bound.fingerprint if bound else None,
        state_fingerprint=state.fingerprint,
        model_feature_names=list(bound.feature_names[:FEATURES_SHOWN]) if bound else None,
        stages=[_summarise(stage) for stage in state.computation()["stages"]],
        feature_names=names[:FEATURES_SHOWN],
        n_features=len(names),
        n_model_features=len(bound.feature_names) if bound else None,
        orders_differ=bound is not None and list(bound.feature_names) != names,
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
    params = {key: _capped(value) for key, value in stage["params"].items()}
    parts = []
    for key, value in stage["fitted"].items():
        nested = isinstance(value, list) and bool(value) and isinstance(value[0], list)
        if isinstance(value, list) and not nested and len(value) > 4:
            parts.append(f"{key}: {len(value):,} values")
        else:
            parts.append(f"{key}: {_short(value, key)}")
    return StageSummary(stage["type"], params, "; ".join(parts))


def _capped(value: Any) -> Any:
    """A parameter as is, or a long list as its count and first items."""
    if isinstance(value, list) and len(value) > ITEMS_SHOWN:
        return _short(value, "items")
    return value


def _short(value: Any, what: str) -> str:
    """``[a, b]``; a long list: ``[9,000,000 labels; first 20: a, b, …]``."""
    if not isinstance(value, list):
        return f"{value:.6g}" if isinstance(value, float) else str(value)
    items = ", ".join(_short(v, what) for v in value[:ITEMS_SHOWN])
    if len(value) <= ITEMS_SHOWN:
        return f"[{items}]"
    return f"[{len(value):,} {what}; first {ITEMS_SHOWN}: {items}, …]"
