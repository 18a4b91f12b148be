"""Rebuild the bundled sample data, feature state and ONNX model, deterministically.

    uv run --extra train python scripts/build_bundled.py

Writes data/sample.csv (synthetic, seed 42), models/churn_state.json (the
reference pipeline fitted on it) and models/churn_mlp.onnx (a small
scikit-learn MLP trained on its features, exported with skl2onnx, no ZipMap,
and bound to that state so that no runtime scores it with another).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
from skl2onnx import to_onnx
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from churnctl import bind_model, extract_features, fit_state
from churnctl.samples.generate import generate_files

ROOT = Path(__file__).resolve().parent.parent


def train_mlp(features: np.ndarray, labels: np.ndarray) -> MLPClassifier:
    """A small, seeded MLP: 12 → 16 → 8 → 1."""
    model = MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=300, random_state=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(features, labels)


def build(root: Path) -> tuple[Path, Path, Path]:
    """Write the sample, state and model under ``root``; return their paths."""
    sample = root / "data" / "sample.csv"
    state_path = root / "models" / "churn_state.json"
    model_path = root / "models" / "churn_mlp.onnx"
    generate_files(sample, n_rows=10_000, seed=42)
    state = fit_state(sample)
    state.provenance["fitted_at"] = "1970-01-01T00:00:00+00:00"  # reproducible bytes
    state.save(state_path)
    table = pacsv.read_csv(sample)
    features = extract_features(state, table).matrix
    labels = table.column("Exited").to_numpy()
    mlp = train_mlp(features, labels)
    onnx_model = to_onnx(mlp, features[:1], options={id(mlp): {"zipmap": False}}, target_opset=17)
    opsets = sorted(onnx_model.opset_import, key=lambda o: o.domain)  # skl2onnx order varies
    del onnx_model.opset_import[:]
    onnx_model.opset_import.extend(opsets)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_bytes(bind_model(onnx_model.SerializeToString(), state))
    return sample, state_path, model_path


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT
    for path in build(root):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
