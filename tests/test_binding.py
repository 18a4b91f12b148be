"""A model bound to the state it was trained with: the skew case is refused everywhere.

Real ONNX Runtime on the bundled model (bound to the bundled state by the build
script) and on copies whose ``metadata_props`` are stripped or edited with onnx.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pyarrow.csv as pacsv
import pytest
from cli_helpers import plain, run
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx_factories import logistic_n1

from churnctl import Scorer, bind_model, fit_state
from churnctl.errors import CompatibilityError
from churnctl.features.state import FeatureState, content_checksum, load_state, state_from_text
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.scoring.binding import (
    BINDING_KEYS,
    CHECKSUM_KEY,
    FEATURES_KEY,
    FINGERPRINT_KEY,
    Binding,
    PairStatus,
    check_pair,
    read_binding,
)
from churnctl.scoring.model import ChurnModel


def rewrite_metadata(
    source: Path, target: Path, edit: Callable[[dict[str, str]], dict[str, str]]
) -> Path:
    """Copy an ONNX model with its ``metadata_props`` replaced by ``edit(old)``."""
    proto = onnx.load(str(source))
    props = edit({p.key: p.value for p in proto.metadata_props})
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, str(target))
    return target


def unbound(metadata: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in metadata.items() if k not in BINDING_KEYS}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("binding")


@pytest.fixture(scope="module")
def unbound_model(work: Path) -> Path:
    """The bundled model as an exporter would hand it over: no binding."""
    return rewrite_metadata(bundled(MODEL), work / "unbound.onnx", unbound)


# ------------------------------------------------------------------ the skew case


def test_the_skew_case_is_refused_by_score(work: Path, sklearn_state: Path) -> None:
    out = work / "skew.csv"
    result = run(["score", bundled(SAMPLE), "--state", sklearn_state, "-o", out])
    assert result.exit_code == 2
    error = plain(result.stderr)
    assert error.startswith("Error: model ") and "another feature order" in error
    assert "first difference at position 3" in error
    assert "model: Geography=France, Geography=Germany, Geography=Spain, Gender," in error
    assert "state: Geography=France, Geography=Germany, Geography=Spain, CreditScore," in error
    assert "pass --allow-state-mismatch" in error
    assert result.stderr.count("\n") == 1  # one line
    assert not out.exists()


def test_the_skew_case_is_not_compatible_in_inspect(sklearn_state: Path) -> None:
    result = run(["inspect", "--state", sklearn_state])
    assert result.exit_code == 2
    text = plain(result.stdout)
    assert "NOT compatible" in text
    assert re.search(r"\bcompatible:", text.replace("NOT compatible:", "")) is None
    assert "model (trained on) state (produces)" in text
    assert "3 Gender CreditScore ≠" in text
    assert "11 EstimatedSalary EstimatedSalary" in text
    assert "model binding: bound" in text


def test_the_skew_case_is_refused_by_the_python_api(sklearn_state: Path) -> None:
    with pytest.raises(CompatibilityError, match="another feature order"):
        Scorer(sklearn_state, bundled(MODEL))


def test_forcing_the_skew_case_is_said_in_the_summary(work: Path, sklearn_state: Path) -> None:
    out = work / "forced.csv"
    result = run(
        ["score", bundled(SAMPLE), "--state", sklearn_state, "-o", out, "--allow-state-mismatch"]
    )
    assert result.exit_code == 0, result.output
    err = plain(result.stderr)
    assert err.startswith("Warning: check skipped: model")
    assert "binding check SKIPPED" in err
    assert pacsv.read_csv(out).num_rows == 10_000


# ------------------------------------------------------------------ pairs that score


def test_a_bound_pair_scores_without_warning(work: Path) -> None:
    out = work / "bound.csv"
    result = run(["score", bundled(SAMPLE), "-o", out])
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr
    assert "SKIPPED" not in result.stderr
    check = Scorer(bundled(STATE), bundled(MODEL)).check
    assert check.status is PairStatus.BOUND
    assert check.model == check.state == Binding.of_state(load_state(bundled(STATE)))


def test_an_unbound_model_warns_once_and_scores(work: Path, unbound_model: Path) -> None:
    out = work / "unbound.csv"
    result = run(["score", bundled(SAMPLE), "--model", unbound_model, "-o", out])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning")]
    assert len(warnings) == 1
    assert "only the width (12 features) was checked" in warnings[0]
    assert "churnctl bind" in warnings[0]
    bound = run(["score", bundled(SAMPLE), "-o", work / "bound-too.csv"])
    assert bound.exit_code == 0, bound.output
    assert out.read_bytes() == (work / "bound-too.csv").read_bytes()


def test_train_on_the_bound_states_data_and_pipeline_is_accepted(work: Path) -> None:
    out, bundled_out = work / "train.csv", work / "bundled.csv"
    result = run(["score", bundled(SAMPLE), "--train", bundled(SAMPLE), "-o", out])
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.stderr
    assert run(["score", bundled(SAMPLE), "-o", bundled_out]).exit_code == 0
    assert out.read_bytes() == bundled_out.read_bytes()


def test_train_with_another_pipeline_is_refused(work: Path) -> None:
    result = run(
        [
            "score",
            bundled(SAMPLE),
            "--train",
            bundled(SAMPLE),
            "--pipeline",
            "sklearn",
            "-o",
            work / "x.csv",
        ]
    )
    assert result.exit_code == 2
    assert "another feature order" in result.stderr


# ------------------------------------------------------------------ edited bindings


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(
            lambda m: {**m, FEATURES_KEY: json.dumps(sorted(json.loads(m[FEATURES_KEY])))},
            id="feature order edited",
        ),
        pytest.param(
            lambda m: {**m, FINGERPRINT_KEY: "sha256:" + "0" * 64}, id="fingerprint edited"
        ),
        pytest.param(
            lambda m: {k: v for k, v in m.items() if k != CHECKSUM_KEY}, id="checksum removed"
        ),
        pytest.param(lambda m: {**m, FEATURES_KEY: "[not json"}, id="names not JSON"),
    ],
)
def test_a_hand_edited_binding_is_refused(
    work: Path, edit: Callable[[dict[str, str]], dict[str, str]]
) -> None:
    model = rewrite_metadata(bundled(MODEL), work / "edited.onnx", edit)
    result = run(["score", bundled(SAMPLE), "--model", model, "-o", work / "edited.csv"])
    assert result.exit_code == 2
    assert "binding is damaged" in result.stderr
    assert "churnctl bind" in result.stderr
    assert not (work / "edited.csv").exists()
    inspected = run(["inspect", "--model", model])
    assert inspected.exit_code == 2
    assert "model binding: damaged" in plain(inspected.stdout)


def test_a_fingerprint_edited_consistently_is_still_refused(work: Path) -> None:
    """Recomputing the checksum does not help: the fingerprint is another state's."""
    state = load_state(bundled(STATE))
    other = Binding("sha256:" + "1" * 64, tuple(state.feature_names), 1)
    model = rewrite_metadata(
        bundled(MODEL), work / "other.onnx", lambda m: {**m, **other.to_metadata()}
    )
    with pytest.raises(CompatibilityError, match="other fitted numbers") as info:
        Scorer(state, model)
    assert "111111111111" in str(info.value)


# ------------------------------------------------------------------ bind


def test_bind_an_exported_model_to_its_state(
    work: Path, unbound_model: Path, sklearn_state: Path
) -> None:
    bound = work / "sk-bound.onnx"
    result = run(["bind", "--model", unbound_model, "--state", sklearn_state, "-o", bound])
    assert result.exit_code == 0, result.output
    assert f"→ {bound}" in result.stderr
    scorer = Scorer(sklearn_state, bound)
    assert scorer.check.status is PairStatus.BOUND
    refused = run(["score", bundled(SAMPLE), "--model", bound, "-o", work / "ref.csv"])
    assert refused.exit_code == 2 and "another feature order" in refused.stderr
    original = onnx.load(str(unbound_model))
    rebound = onnx.load(str(bound))
    assert rebound.graph == original.graph  # only the metadata changed


def test_bind_keeps_other_metadata_and_replaces_an_old_binding(work: Path) -> None:
    model = rewrite_metadata(bundled(MODEL), work / "meta.onnx", lambda m: {**m, "author": "x"})
    state = fit_state(bundled(SAMPLE), pipeline="sklearn")
    data = bind_model(model.read_bytes(), state, rebind=True)
    loaded = ChurnModel(data)
    assert loaded.metadata["author"] == "x"
    assert read_binding(loaded.metadata, source="m") == Binding.of_state(state)
    assert check_pair(loaded, state).status is PairStatus.BOUND


def test_bind_refuses_to_overwrite_its_input(work: Path, unbound_model: Path) -> None:
    before = unbound_model.read_bytes()
    result = run(["bind", "--model", unbound_model, "--state", bundled(STATE), "-o", unbound_model])
    assert result.exit_code == 2
    assert "is the same file as the model" in result.stderr
    assert unbound_model.read_bytes() == before


def test_bind_refuses_a_model_of_another_width(work: Path) -> None:
    narrow = logistic_n1(work / "k5.onnx", 5).path
    result = run(["bind", "--model", narrow, "--state", bundled(STATE), "-o", work / "k5b.onnx"])
    assert result.exit_code == 2
    assert "expects 5 features" in result.stderr
    assert not (work / "k5b.onnx").exists()


# ------------------------------------------------------------------ fingerprints


def test_refitting_the_same_pipeline_on_the_same_data_gives_the_same_fingerprint() -> None:
    bundled_state = load_state(bundled(STATE))
    refit = fit_state(bundled(SAMPLE))
    assert refit.provenance["fitted_at"] != bundled_state.provenance["fitted_at"]
    assert refit.fingerprint == bundled_state.fingerprint


def test_the_fingerprint_survives_a_json_round_trip() -> None:
    state = fit_state(bundled(SAMPLE), pipeline="sklearn")
    assert state_from_text(state.dumps()).fingerprint == state.fingerprint


@settings(max_examples=20, deadline=None)
@given(index=st.integers(0, 11), delta=st.floats(1e-9, 1e3))
def test_any_change_to_a_fitted_number_changes_the_fingerprint(index: int, delta: float) -> None:
    state = load_state(bundled(STATE))
    document = state.to_dict()
    mean = document["stages"][-1]["fitted"]["mean"]
    if mean[index] + delta == mean[index]:
        return  # too small to change a float64
    mean[index] += delta
    del document["checksum"]
    document["checksum"] = "sha256:" + content_checksum(document)
    changed = state_from_text(json.dumps(document))
    assert changed.fingerprint != state.fingerprint
    with pytest.raises(CompatibilityError, match="other fitted numbers"):
        Scorer(changed, bundled(MODEL))


def test_provenance_is_left_out_of_the_fingerprint() -> None:
    state = load_state(bundled(STATE))
    moved = FeatureState(state.pipeline, {**state.provenance, "training_file": "elsewhere.csv"})
    assert moved.fingerprint == state.fingerprint
    assert moved.to_dict()["checksum"] != state.to_dict()["checksum"]


def test_the_check_result_travels_with_a_pickled_scorer(sklearn_state: Path) -> None:
    scorer = Scorer(sklearn_state, bundled(MODEL), allow_state_mismatch=True)
    copy = pickle.loads(pickle.dumps(scorer))
    assert copy.check == scorer.check
    assert copy.check.status is PairStatus.SKIPPED
    batch = pacsv.read_csv(bundled(SAMPLE)).slice(0, 100)
    np.testing.assert_array_equal(
        copy.score(batch).scored.column("raw"), scorer.score(batch).scored.column("raw")
    )
