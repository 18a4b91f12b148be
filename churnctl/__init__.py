"""churnctl: one JSON feature-extractor state, every runtime, no training/serving skew.

The public Python API (see docs/python-api.md)::

    from churnctl import Scorer
    scorer = Scorer("state.json", "model.onnx", keep=["CustomerId"])
    result = scorer.score(record_batch)           # scored rows + rejects
    aligned = scorer.score_aligned(record_batch)  # one row per input row
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("churnctl")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0.0.0+unknown"

from churnctl.binding import bind_model
from churnctl.errors import ChurnctlError
from churnctl.extraction import FeatureBatch, extract_features
from churnctl.fitting import fit_state
from churnctl.model import ChurnModel
from churnctl.scorer import ScoredBatch, Scorer
from churnctl.state import FeatureState, load_state

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
