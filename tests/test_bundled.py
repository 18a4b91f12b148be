"""The bundled sample, state and model are reproducible and fit together."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnxruntime as ort

from churnctl.features.state import load_state
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.scoring.binding import Binding, PairStatus, check_pair, read_binding
from churnctl.scoring.model import ChurnModel

ROOT = Path(__file__).resolve().parents[1]


def _build_script():
    path = ROOT / "scripts" / "build_bundled.py"
    spec = importlib.util.spec_from_file_location("build_bundled", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundled_files_resolve_and_fit_together() -> None:
    state = load_state(bundled(STATE))
    model = ChurnModel(bundled(MODEL))
    assert check_pair(model, state).status is PairStatus.BOUND
    assert read_binding(model.metadata, source="bundled") == Binding.of_state(state)
    assert state.provenance["training_file"] == Path(SAMPLE).name
    assert model.n_features == 12


def test_build_script_reproduces_committed_files(tmp_path: Path) -> None:
    sample, state, model = _build_script().build(tmp_path)
    assert sample.read_bytes() == (ROOT / SAMPLE).read_bytes()
    assert state.read_bytes() == (ROOT / STATE).read_bytes()
    x = np.random.default_rng(0).normal(size=(500, 12)).astype(np.float32)
    rebuilt = ort.InferenceSession(str(model)).run(["probabilities"], {"X": x})[0]
    committed = ort.InferenceSession(str(ROOT / MODEL)).run(["probabilities"], {"X": x})[0]
    np.testing.assert_allclose(rebuilt, committed, atol=1e-6)
    assert ChurnModel(model).metadata == ChurnModel(ROOT / MODEL).metadata  # the same binding
