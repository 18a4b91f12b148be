"""Acceptance on the public bank-churn data set (skipped when ../shared is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
from cli_helpers import run

CHURN_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "Churn_Modelling.csv"
pytestmark = [
    pytest.mark.acceptance,
    pytest.mark.skipif(not CHURN_CSV.is_file(), reason=f"public data set not at {CHURN_CSV}"),
]


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_score_the_public_data_with_the_bundled_model_and_state(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    scored = run(["score", str(CHURN_CSV), "-o", str(out)])
    assert scored.exit_code == 0, scored.output
    assert "read 10,000 rows: 10,000 scored, 0 rejected" in scored.stderr
    assert "Warning" not in scored.stderr  # the bundled model is bound to the bundled state
    result = pacsv.read_csv(out)
    truth = pacsv.read_csv(CHURN_CSV)
    assert result.column("CustomerId").to_pylist() == truth.column("CustomerId").to_pylist()
    raw = result.column("raw").to_numpy()
    assert ((raw >= 0) & (raw <= 1)).all()
    assert (result.column("exited").to_numpy(zero_copy_only=False) == (raw > 0.5)).all()
    # trained on synthetic data only, the bundled model still ranks real churners well
    assert _auc(raw, truth.column("Exited").to_numpy()) > 0.75


def test_a_state_fitted_on_the_public_data_is_not_the_bundled_models(tmp_path: Path) -> None:
    """Same pipeline, other training data: other scaling numbers, so the bound model refuses."""
    state, out = tmp_path / "s.json", tmp_path / "out.csv"
    fitted = run(["fit", str(CHURN_CSV), "-o", str(state)])
    assert fitted.exit_code == 0, fitted.output
    refused = run(["score", str(CHURN_CSV), "--state", str(state), "-o", str(out)])
    assert refused.exit_code == 2
    assert "same features, other fitted numbers" in refused.stderr
    assert not out.exists()
    forced = run(
        ["score", str(CHURN_CSV), "--state", str(state), "-o", str(out), "--allow-state-mismatch"],
    )
    assert forced.exit_code == 0, forced.output
    assert "binding check SKIPPED" in forced.stderr
    assert pacsv.read_csv(out).num_rows == 10_000
