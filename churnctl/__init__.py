"""churnctl: one JSON feature-extractor state, every runtime, no training/serving skew.

The public Python API (see docs/python-api.md)::

    from churnctl import Scorer
    scorer = Scorer("state.json", "model.onnx", keep=["CustomerId"])
    result = scorer.score(record_batch)           # scored rows + rejects
    aligned = scorer.score_aligned(record_batch)  # one row per input row

A training notebook's fitted scikit-learn preprocessing becomes a state with
``from_sklearn``; ``save_for_serving`` writes it beside the exported model, bound;
``export_fused`` writes a state and its model as one ONNX graph, for a caller without
churnctl (docs/fused-onnx.md); ``drift_file`` compares a file with the state's training
profile (docs/drift.md); ``read_output_lineage`` says what produced an output
(docs/lineage.md).
Each runtime's entry point is here too: ``score_file`` (one file), ``score_files``
(many, in a pool of processes), ``Watcher`` (a folder, as it receives files). The
packages below hold the rest, by job: ``features`` (the state), ``scoring`` (model +
state), ``io``, ``batch``, ``watch``, ``flink`` (see README, "Layout").

``import churnctl`` is cheap: each public name imports its module (and so NumPy,
Arrow, ONNX Runtime ...) on first use (PEP 562), which keeps ``churnctl --help`` fast.
"""

from __future__ import annotations

from churnctl.moved import install as _serve_moved_modules

TYPE_CHECKING = False  # not typing's: ``import churnctl`` runs before the signal handlers are in

_serve_moved_modules()

if TYPE_CHECKING:
    from typing import Any

    from churnctl.batch.drift_file import drift_file
    from churnctl.batch.fit_file import fit_state
    from churnctl.batch.lineage_files import read_output_lineage
    from churnctl.batch.score_file import ScoreRequest, score_file
    from churnctl.batch.score_files import FilesRequest, score_files
    from churnctl.errors import ChurnctlError
    from churnctl.features.extraction import FeatureBatch, extract_features
    from churnctl.features.sklearn import from_sklearn
    from churnctl.features.state import FeatureState, load_state
    from churnctl.fused.export import export_fused
    from churnctl.scoring.binding import bind_model
    from churnctl.scoring.model import ChurnModel
    from churnctl.scoring.scorer import ScoredBatch, Scorer, ScorerOptions, scorer_from
    from churnctl.scoring.serving_pair import save_for_serving
    from churnctl.watch.watcher import Watcher, WatchSettings

    __version__: str

__all__ = [
    "ChurnModel",
    "ChurnctlError",
    "FeatureBatch",
    "FeatureState",
    "FilesRequest",
    "ScoreRequest",
    "ScoredBatch",
    "Scorer",
    "ScorerOptions",
    "WatchSettings",
    "Watcher",
    "__version__",
    "bind_model",
    "drift_file",
    "export_fused",
    "extract_features",
    "fit_state",
    "from_sklearn",
    "load_state",
    "read_output_lineage",
    "save_for_serving",
    "score_file",
    "score_files",
    "scorer_from",
]


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (then kept here).

    Each import is spelled out: the package never imports a module by a computed name.
    """
    match name:
        case "__version__":
            from churnctl.version import package_version

            value: Any = package_version()
        case "ChurnctlError":
            from churnctl.errors import ChurnctlError as value
        case "ChurnModel":
            from churnctl.scoring.model import ChurnModel as value
        case "FeatureState":
            from churnctl.features.state import FeatureState as value
        case "load_state":
            from churnctl.features.state import load_state as value
        case "FeatureBatch":
            from churnctl.features.extraction import FeatureBatch as value
        case "extract_features":
            from churnctl.features.extraction import extract_features as value
        case "bind_model":
            from churnctl.scoring.binding import bind_model as value
        case "export_fused":
            from churnctl.fused.export import export_fused as value
        case "from_sklearn":
            from churnctl.features.sklearn import from_sklearn as value
        case "save_for_serving":
            from churnctl.scoring.serving_pair import save_for_serving as value
        case "fit_state":
            from churnctl.batch.fit_file import fit_state as value
        case "read_output_lineage":
            from churnctl.batch.lineage_files import read_output_lineage as value
        case "drift_file":
            from churnctl.batch.drift_file import drift_file as value
        case "Scorer":
            from churnctl.scoring.scorer import Scorer as value
        case "ScoredBatch":
            from churnctl.scoring.scorer import ScoredBatch as value
        case "ScorerOptions":
            from churnctl.scoring.scorer import ScorerOptions as value
        case "scorer_from":
            from churnctl.scoring.scorer import scorer_from as value
        case "ScoreRequest":
            from churnctl.batch.score_file import ScoreRequest as value
        case "score_file":
            from churnctl.batch.score_file import score_file as value
        case "FilesRequest":
            from churnctl.batch.score_files import FilesRequest as value
        case "score_files":
            from churnctl.batch.score_files import score_files as value
        case "Watcher":
            from churnctl.watch.watcher import Watcher as value
        case "WatchSettings":
            from churnctl.watch.watcher import WatchSettings as value
        case _:
            raise AttributeError(f"module 'churnctl' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
