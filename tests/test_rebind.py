"""A bound model is never rebound by accident: ``bind`` refuses another fingerprint.

Real models (the bundled one, bound to the bundled state, and a copy with its
binding stripped) and real states fitted with two pipelines and on two slices of data.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import onnx
import pyarrow.csv as pacsv
import pytest
from cli_helpers import plain, run

from churnctl import bind_model, fit_state
from churnctl.features.state import FeatureState, load_state
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.scoring.binding import BINDING_KEYS, Binding, RebindError, read_binding, short
from churnctl.scoring.model import ChurnModel


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rebind")


@pytest.fixture(scope="module")
def states(work: Path, sklearn_state: Path) -> dict[str, FeatureState]:
    """Four states: two feature orders, and for the reference order two sets of numbers."""
    half = work / "half.csv"
    table = pacsv.read_csv(bundled(SAMPLE))
    pacsv.write_csv(table.slice(0, table.num_rows // 2), half)
    return {
        "bundled": load_state(bundled(STATE)),
        "sklearn": load_state(sklearn_state),
        "reference-half": fit_state(half),
        "sklearn-half": fit_state(half, pipeline="sklearn"),
    }


def unbound_bytes() -> bytes:
    proto = onnx.load(str(bundled(MODEL)))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in BINDING_KEYS]
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, dict(kept))
    return proto.SerializeToString()


def bound_to(data: bytes) -> Binding | None:
    return read_binding(ChurnModel(data).metadata, source="m")


# ------------------------------------------------------------------ the CLI


def test_bind_refuses_a_model_bound_to_another_state(work: Path, sklearn_state: Path) -> None:
    out = work / "refused.onnx"
    result = run(["bind", "--model", bundled(MODEL), "--state", sklearn_state, "-o", out])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert sum(line.startswith("Error:") for line in lines) == 1
    error = lines[0]
    model_fp = short(load_state(bundled(STATE)).fingerprint)
    state_fp = short(load_state(sklearn_state).fingerprint)
    assert error.startswith("Error: model ") and model_fp in error and state_fp in error
    assert "pass --rebind" in error
    text = plain(result.stderr)
    assert "model (trained on) state (produces)" in text
    assert "3 Gender CreditScore ≠" in text
    assert not out.exists()


def test_rebind_forces_it_with_a_warning(work: Path, sklearn_state: Path) -> None:
    out = work / "rebound.onnx"
    args = ["bind", "--model", bundled(MODEL), "--state", sklearn_state, "-o", out, "--rebind"]
    result = run(args)
    assert result.exit_code == 0, result.output
    err = plain(result.stderr)
    assert err.startswith("Warning: rebound ")
    assert "weights encode the feature order it was trained on" in err
    assert bound_to(out.read_bytes()) == Binding.of_state(load_state(sklearn_state))


def test_binding_again_to_the_same_state_is_a_no_op(work: Path) -> None:
    out = work / "same.onnx"
    result = run(["bind", "--model", bundled(MODEL), "--state", bundled(STATE), "-o", out])
    assert result.exit_code == 0, result.output
    assert "is already bound to state" in result.stderr and "binding unchanged" in result.stderr
    assert "Warning" not in result.stderr
    assert bound_to(out.read_bytes()) == bound_to(bundled(MODEL).read_bytes())


# ------------------------------------------------------------------ every pair of states


def test_every_pair_of_states_rebinds_only_when_forced(states: dict[str, FeatureState]) -> None:
    """Bound to ``first``, bound again to ``second``: refused iff the fingerprints differ."""
    fresh = unbound_bytes()
    assert len({s.fingerprint for s in states.values()}) == len(states)
    for (a, first), (b, second) in itertools.product(states.items(), repeat=2):
        bound = bind_model(fresh, first)
        if first.fingerprint == second.fingerprint:
            assert bound_to(bind_model(bound, second)) == Binding.of_state(first), (a, b)
        else:
            with pytest.raises(RebindError) as info:
                bind_model(bound, second)
            message = str(info.value)
            assert short(first.fingerprint) in message and short(second.fingerprint) in message
            assert "\n" not in message and info.value.fix is not None
            same = first.feature_names == second.feature_names
            assert ("another feature order" in message) is not same, message
            assert info.value.fix.setting == "rebind"
            assert (info.value.bound, info.value.requested) == (
                Binding.of_state(first),
                Binding.of_state(second),
            )
        forced = bind_model(bound, second, rebind=True)
        assert bound_to(forced) == Binding.of_state(second), (a, b)
