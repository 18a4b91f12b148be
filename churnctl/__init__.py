"""churnctl: one JSON feature-extractor state, every runtime, no training/serving skew.

The public Python API (see docs/python-api.md)::

    from churnctl import Scorer
    scorer = Scorer("state.json", "model.onnx", keep=["CustomerId"])
    result = scorer.score(record_batch)           # scored rows + rejects
    aligned = scorer.score_aligned(record_batch)  # one row per input row

Names are imported on first use, so ``import churnctl`` stays cheap.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("churnctl")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0.0.0+unknown"

_EXPORTS = {
    "Scorer": "churnctl.scorer",
    "ScoredBatch": "churnctl.scorer",
    "FeatureBatch": "churnctl.extraction",
    "extract_features": "churnctl.extraction",
    "FeatureState": "churnctl.state",
    "load_state": "churnctl.state",
    "fit_state": "churnctl.fitting",
    "ChurnModel": "churnctl.model",
    "bind_model": "churnctl.binding",
    "ChurnctlError": "churnctl.errors",
}
__all__ = [
    "ChurnModel",
    "ChurnctlError",
    "FeatureBatch",
    "FeatureState",
    "ScoredBatch",
    "Scorer",
    "__version__",
    "bind_model",
    "extract_features",
    "fit_state",
    "load_state",
]

if TYPE_CHECKING:  # pragma: no cover
    from churnctl.binding import bind_model
    from churnctl.errors import ChurnctlError
    from churnctl.extraction import FeatureBatch, extract_features
    from churnctl.fitting import fit_state
    from churnctl.model import ChurnModel
    from churnctl.scorer import ScoredBatch, Scorer
    from churnctl.state import FeatureState, load_state


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'churnctl' has no attribute {name!r}")
