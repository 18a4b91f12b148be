"""Limits and choices that the command line shows in its help: no heavy imports here.

They live apart from the modules that use them (``generate``, ``sinks``) so that
defining the CLI's options, and ``churnctl --help``, imports neither NumPy nor Arrow.
"""

from __future__ import annotations

MAX_FILES = 10_000  # part files per `generate` call: more is a typo, not a data set
# The total feature width a pipeline may produce (and the categories one column may have):
# it keeps `fit` and `score` within their memory budget (README, "Memory"). A state that
# says more is refused before anything is allocated; a fit, as soon as it counts more.
MAX_FEATURES = 4_096
# Drift against the training distribution (docs/drift.md): the quantile bins a fit records
# per numeric column, and the thresholds a drift verdict and `score`'s warning use.
PROFILE_BINS = 10
MODERATE_PSI = 0.1  # PSI below this: stable
MAJOR_PSI = 0.25  # PSI below this: moderate; at or above: major
HIGH_UNSEEN = 0.05  # a share of unseen categories at or above this is worth a warning
# Fewer rows than this are not judged: the PSI of a sample of n rows from the very training
# distribution is about (bins - 1) / n, which is near the moderate threshold for small n.
MIN_DRIFT_ROWS = 1_000
