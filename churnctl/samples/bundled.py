"""Paths of the bundled sample data, model and state (in a wheel or a source checkout)."""

from __future__ import annotations

from pathlib import Path

from churnctl.errors import UsageError

_PACKAGE = Path(__file__).resolve().parents[1]  # churnctl/, whatever folder this module is in
_ROOTS = (_PACKAGE / "_bundled", _PACKAGE.parent)

MODEL = "models/churn_mlp.onnx"
STATE = "models/churn_state.json"
SAMPLE = "data/sample.csv"


def bundled(relative: str) -> Path:
    """Absolute path of a bundled file, or a clear error when it is not installed."""
    for root in _ROOTS:
        candidate = root / relative
        if candidate.is_file():
            return candidate
    raise UsageError(f"bundled file {relative} is not installed; pass its path explicitly")
