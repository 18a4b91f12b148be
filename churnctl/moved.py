"""Module paths of churnctl 0.x that moved into subpackages: still importable, for one release.

``import churnctl.sources`` (or ``from churnctl.flink_job import run_job``, as job files
written by earlier ``flink-submit`` runs do) gets the module at its new path, with a
``DeprecationWarning`` that names it. The table is the whole story; see
docs/python-api.md, "Moved modules". Removed in the release after next.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED: dict[str, str] = {
    "churnctl.binding": "churnctl.scoring.binding",
    "churnctl.bundled": "churnctl.samples.bundled",
    "churnctl.extraction": "churnctl.features.extraction",
    "churnctl.file_scoring": "churnctl.batch.score_file",
    "churnctl.fitting": "churnctl.batch.fit_file",
    "churnctl.flink_job": "churnctl.flink.job",
    "churnctl.generate": "churnctl.samples.generate",
    "churnctl.inputs": "churnctl.features.input_policy",
    "churnctl.model": "churnctl.scoring.model",
    "churnctl.parallel_scoring": "churnctl.batch.score_files",
    "churnctl.rejects": "churnctl.io.rejects",
    "churnctl.scorer": "churnctl.scoring.scorer",
    "churnctl.sinks": "churnctl.io.sinks",
    "churnctl.sources": "churnctl.io.sources",
    "churnctl.state": "churnctl.features.state",
    "churnctl.watcher": "churnctl.watch.watcher",
}


class MovedModules:
    """Finds an old module path and loads it as the module at its new path (one object).

    A meta path finder and loader by protocol (``importlib.abc`` costs 8 ms at start-up).
    """

    def __init__(self) -> None:
        self.specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {MOVED[spec.name]}; import it from there "
            "(the old path goes in the release after next)",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(MOVED[spec.name])
        self.specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module ran at its new path. Its own spec is put back."""
        module.__spec__ = self.specs[module.__name__]


def install() -> None:
    """Serve the old paths (once per process; after the regular finders)."""
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())
