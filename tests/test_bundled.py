"""The bundled sample, state and model are reproducible and fit together."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

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


UV = ROOT / ".tools" / "bin" / "uv"


@pytest.mark.skipif(not UV.exists(), reason="uv is installed by ./dev.sh into .tools/bin")
def test_an_installed_wheel_finds_its_bundled_files(tmp_path: Path) -> None:
    """The wheel's force-include targets the folder ``samples.bundled`` looks in."""
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=300)
    built = run([UV, "build", "--wheel", "-q", "-o", tmp_path / "dist"], cwd=ROOT)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("churnctl-*.whl")
    venv = tmp_path / "venv"
    assert run([UV, "venv", "-q", "--python", sys.executable, venv]).returncode == 0
    python = venv / "bin" / "python"
    installed = run([UV, "pip", "install", "-q", "--no-deps", "--python", python, wheel])
    assert installed.returncode == 0, installed.stderr
    probe = (
        "import json; from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled; "
        "print(json.dumps([str(bundled(n)) for n in (MODEL, STATE, SAMPLE)]))"
    )
    done = run([python, "-c", probe], cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stderr
    for found, name in zip(json.loads(done.stdout), (MODEL, STATE, SAMPLE), strict=True):
        assert Path(found).is_relative_to(venv) and Path(found).is_file(), found
        assert Path(found).read_bytes() == (ROOT / name).read_bytes()
