"""A model bound to the state it was trained with, and the check every runtime runs.

``bind_model`` writes into the ONNX model's ``metadata_props`` the state's
fingerprint (stages and fitted numbers, provenance left out), its ordered
feature names and its format version, plus a checksum over those three so that
a hand-edited binding is noticed. ``check_pair`` is the one check that scoring,
``inspect`` and every other runtime run before a model meets a state:

* the state's feature count must equal the model's input width;
* a bound model refuses a state whose feature names or fingerprint differ;
* an unbound model (fresh from an exporter) passes with a warning;
* ``allow_mismatch`` turns a refusal into a pass marked "skipped".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from churnctl.arguments import check_bool, check_type
from churnctl.atomic import atomic_write_bytes, check_distinct
from churnctl.errors import BIND, CompatibilityError, Fix, ModelError, Step
from churnctl.features.state import FINGERPRINT_FORMAT_VERSION, FeatureState, canonical_json
from churnctl.scoring.model import ChurnModel

FINGERPRINT_KEY = "churnctl.state_fingerprint"
FEATURES_KEY = "churnctl.feature_names"
VERSION_KEY = "churnctl.state_format_version"
CHECKSUM_KEY = "churnctl.binding_checksum"
BINDING_KEYS = (FINGERPRINT_KEY, FEATURES_KEY, VERSION_KEY, CHECKSUM_KEY)
ORDER_SHOWN, ORDER_CONTEXT = 20, 5  # a long feature order: 20 names, 5 before the difference
OVERRIDE = Fix(
    "allow_state_mismatch", True, "only if you are sure the model was trained with this state"
)
REBIND = Fix("rebind", True, "only if the model was trained with this state")


@dataclass(frozen=True)
class Binding:
    """What a model was trained with: the state's fingerprint, feature order and version."""

    fingerprint: str
    feature_names: tuple[str, ...]
    format_version: int

    @classmethod
    def of_state(cls, state: FeatureState) -> Binding:
        """The binding a model trained with ``state`` carries (the fingerprint's version: 1)."""
        return cls(state.fingerprint, tuple(state.feature_names), FINGERPRINT_FORMAT_VERSION)

    @property
    def checksum(self) -> str:
        content = {
            "fingerprint": self.fingerprint,
            "feature_names": list(self.feature_names),
            "format_version": self.format_version,
        }
        return "sha256:" + hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()

    def to_metadata(self) -> dict[str, str]:
        """The ONNX ``metadata_props`` entries, checksum included."""
        return {
            FINGERPRINT_KEY: self.fingerprint,
            FEATURES_KEY: json.dumps(list(self.feature_names), ensure_ascii=False),
            VERSION_KEY: str(self.format_version),
            CHECKSUM_KEY: self.checksum,
        }


def read_binding(metadata: Mapping[str, str], *, source: str) -> Binding | None:
    """The model's binding; None when it has none; ``CompatibilityError`` when damaged."""
    present = [key for key in BINDING_KEYS if key in metadata]
    if not present:
        return None
    damaged = CompatibilityError(
        f"model {source}: its churnctl binding is damaged (edited by hand?)",
        step=Step(BIND.action, "bind it again"),
        fix=OVERRIDE,
    )
    try:
        names = json.loads(metadata[FEATURES_KEY])
        binding = Binding(metadata[FINGERPRINT_KEY], tuple(names), int(metadata[VERSION_KEY]))
        checksum = metadata[CHECKSUM_KEY]
    except (KeyError, ValueError, TypeError):
        raise damaged from None
    if not all(isinstance(n, str) for n in names) or checksum != binding.checksum:
        raise damaged
    return binding


def bind_model(model_bytes: bytes, state: FeatureState, *, rebind: bool = False) -> bytes:
    """The model's bytes with the state's binding in ``metadata_props`` (others kept).

    A model already bound to another state fingerprint is refused (``RebindError``)
    unless ``rebind``.
    """
    import onnx  # only binding writes ONNX; scoring reads the metadata through onnxruntime

    check_type("bind_model", "model_bytes", model_bytes, bytes, "the ONNX model's bytes")
    check_type("bind_model", "state", state, FeatureState, "a FeatureState (load_state)")
    check_bool("bind_model", "rebind", rebind)
    proto = _parsed(onnx, model_bytes)
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in BINDING_KEYS]
    metadata = {p.key: p.value for p in proto.metadata_props}
    bind_outcome(metadata, state, model="model", rebind=rebind)
    onnx.helper.set_model_props(proto, {**dict(kept), **Binding.of_state(state).to_metadata()})
    return proto.SerializeToString()


class RebindError(CompatibilityError):
    """The model is already bound to a state with another fingerprint (``rebind`` forces it)."""

    def __init__(self, model: str, bound: Binding, requested: Binding, state: str) -> None:
        same = bound.feature_names == requested.feature_names
        how = "same features, other fitted numbers" if same else "another feature order"
        super().__init__(
            f"model {model} is already bound to state {short(bound.fingerprint)}, not to "
            f"{state} ({short(requested.fingerprint)}: {how}); a model's weights encode the "
            "feature order it was trained on: bind a fresh export of the model trained with "
            "this state",
            fix=REBIND,
        )
        self.bound = bound
        self.requested = requested


class BindStatus(Enum):
    """What ``bind_file`` did to the model's binding."""

    BOUND = "bound"  # the model had no binding (or a damaged one)
    UNCHANGED = "unchanged"  # already bound to this very state: the binding stays as it was
    REBOUND = "rebound"  # bound to another state before; replaced because ``rebind`` was set


@dataclass(frozen=True)
class BindOutcome:
    """The binding written, what happened, and the binding replaced (``REBOUND`` only)."""

    binding: Binding
    status: BindStatus
    previous: Binding | None = None


def _parsed(onnx: Any, model_bytes: bytes) -> Any:
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load_model_from_string(model_bytes)
    except (DecodeError, ValueError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise ModelError(f"bind_model: model_bytes are not an ONNX model ({reason})") from None
    if not proto.HasField("graph") or not proto.graph.input:  # b"" parses as an empty model
        raise ModelError("bind_model: model_bytes are not an ONNX model (no graph with an input)")
    return proto


def bind_file(
    model: Path, state: FeatureState, output: Path, *, rebind: bool = False
) -> BindOutcome:
    """Write ``model`` bound to ``state`` to ``output`` (atomically); the input is kept.

    A model bound to another state fingerprint is refused (``RebindError``) unless
    ``rebind``; one bound to this state is copied with its binding unchanged.
    """
    check_distinct({"model": model}, {"output": output})
    loaded = ChurnModel(model)
    loaded.check_compatible(len(state.feature_names), state_source=state.source)
    outcome = bind_outcome(loaded.metadata, state, model=loaded.name, rebind=rebind)
    atomic_write_bytes(Path(output), bind_model(loaded.data, state, rebind=True))
    return outcome


def bind_outcome(
    metadata: Mapping[str, str], state: FeatureState, *, model: str, rebind: bool
) -> BindOutcome:
    """What binding a model with ``metadata`` to ``state`` does; ``RebindError`` if refused."""
    requested = Binding.of_state(state)
    try:
        bound = read_binding(metadata, source=model)
    except CompatibilityError:  # a damaged binding is what binding again repairs
        bound = None
    if bound is None:
        return BindOutcome(requested, BindStatus.BOUND)
    if bound.fingerprint == requested.fingerprint:
        return BindOutcome(requested, BindStatus.UNCHANGED)
    if not rebind:
        raise RebindError(model, bound, requested, state.source)
    return BindOutcome(requested, BindStatus.REBOUND, bound)


class PairStatus(Enum):
    """How a model and a state were matched."""

    BOUND = "bound"  # the model's binding matches the state
    UNBOUND = "unbound"  # the model has no binding: only the width was checked
    SKIPPED = "skipped"  # the binding did not match (or was damaged) and the check was skipped


@dataclass(frozen=True)
class PairCheck:
    """The outcome of ``check_pair``: a status, both bindings, and a one-line explanation."""

    status: PairStatus
    state: Binding
    model: Binding | None
    problem: str  # what the check found
    step: Step | None = None  # what to do about it, if anything

    @property
    def message(self) -> str:
        """The one-line explanation: the problem, and the step to take."""
        return self.problem if self.step is None else f"{self.problem}; {self.step.describe()}"


def check_pair(
    model: ChurnModel, state: FeatureState, *, allow_mismatch: bool = False
) -> PairCheck:
    """Match a model and a state; refuse a mismatch with a ``CompatibilityError``."""
    model.check_compatible(len(state.feature_names), state_source=state.source)
    expected = Binding.of_state(state)
    try:
        bound = read_binding(model.metadata, source=model.name)
        if bound is None:
            return PairCheck(
                PairStatus.UNBOUND, expected, None, _unbound_message(model, state), BIND
            )
        _refuse_mismatch(bound, expected, model.name, state.source)
    except CompatibilityError as exc:
        if not allow_mismatch:
            raise
        skipped = f"check skipped: {exc.message}"
        return PairCheck(PairStatus.SKIPPED, expected, None, skipped, exc.step)
    return PairCheck(PairStatus.BOUND, expected, bound, _bound_message(model, state, bound))


def _refuse_mismatch(bound: Binding, expected: Binding, model: str, state: str) -> None:
    if bound.feature_names != expected.feature_names:
        raise CompatibilityError(
            f"model {model} was trained on another feature order than {state} produces: "
            f"{describe_orders(bound.feature_names, expected.feature_names)}; use the state "
            "the model was trained with, or refit this one with the matching pipeline",
            fix=OVERRIDE,
        )
    if bound.fingerprint != expected.fingerprint:
        raise CompatibilityError(
            f"model {model} was trained with state {short(bound.fingerprint)} but {state} is "
            f"{short(expected.fingerprint)} (same features, other fitted numbers or "
            "parameters); use the state the model was trained with",
            step=Step(BIND.action, "or, if it was trained with this one, bind the model to it"),
            fix=OVERRIDE,
        )


def describe_orders(model: Sequence[str], state: Sequence[str]) -> str:
    """Both feature orders on one line, marking the first position where they differ.

    Long orders are shown around that position only, so the line stays short.
    """
    width = max(len(model), len(state))
    first = next(
        i for i in range(width) if i >= len(model) or i >= len(state) or model[i] != state[i]
    )
    return (
        f"first difference at position {first} "
        f"(model: {_window(model, first)} | state: {_window(state, first)})"
    )


def _window(names: Sequence[str], first: int) -> str:
    """All names if few; else some before ``first`` and more after it, with the total."""
    if len(names) <= ORDER_SHOWN:
        return ", ".join(names)
    start = max(0, min(first - ORDER_CONTEXT, len(names) - ORDER_SHOWN))
    shown = ", ".join(names[start : start + ORDER_SHOWN])
    before = "… " if start > 0 else ""
    after = ", …" if start + ORDER_SHOWN < len(names) else ""
    return f"{before}{shown}{after} ({len(names):,} in all)"


def short(fingerprint: str) -> str:
    """A fingerprint's first 12 hex digits, enough to tell two apart in a message."""
    return fingerprint.removeprefix("sha256:")[:12]


def _unbound_message(model: ChurnModel, state: FeatureState) -> str:
    return (
        f"model {model.name} is not bound to a state: only the width "
        f"({len(state.feature_names)} features) was checked, not the feature order"
    )


def _bound_message(model: ChurnModel, state: FeatureState, bound: Binding) -> str:
    return (
        f"model {model.name} is bound to state {short(bound.fingerprint)}, which {state.source} "
        f"is ({len(bound.feature_names)} features in the same order)"
    )
