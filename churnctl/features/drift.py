"""Drift: new data's distribution against the training profile a state records. No I/O.

``DriftAccumulator`` observes the parsed columns of each batch (``ParsedColumns``, as
the scorer typed them: nothing is parsed twice) and counts them on the profile's
fixed bins and vocabularies, in memory independent of the rows. ``report`` turns the
counts into a ``DriftReport``: per raw column, the population stability index (PSI)
against the training shares, its verdict, the share of unseen categories and the
standardised mean shift.

PSI = Σ (observed - expected) · ln(observed / expected) over the bins, each share
floored at ``PSI_EPSILON`` (an empty bin would make it infinite). A numeric column's
bins are its quantile bins plus one for missing or unreadable values; a category
column's, its labels plus one for empty values and one for unseen labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnctl.defaults import HIGH_UNSEEN, MAJOR_PSI, MIN_DRIFT_ROWS, MODERATE_PSI
from churnctl.features.profile import (
    CategoryProfile,
    NumberProfile,
    ParsedColumns,
    Profile,
    bin_counts,
    category_values,
    label_modes,
)
from churnctl.features.state import FeatureState

PSI_EPSILON = 1e-4  # the floor of a bin's share in the PSI (0.01%)
STABLE, MODERATE, MAJOR, NO_DATA = "stable", "moderate", "major", "no data"
TOO_FEW_ROWS = "too few rows"  # a report of fewer than MIN_DRIFT_ROWS rows: not judged


def drift_accumulator(state: FeatureState) -> DriftAccumulator | None:
    """An accumulator for ``state``'s profile; None for a state without one (cannot judge)."""
    return None if state.profile is None else DriftAccumulator(state)


def verdict(psi: float | None) -> str:
    """``stable`` below 0.1, ``moderate`` below 0.25, ``major`` from 0.25 (``no data``: None)."""
    if psi is None:
        return NO_DATA
    return STABLE if psi < MODERATE_PSI else MODERATE if psi < MAJOR_PSI else MAJOR


def psi(expected: np.ndarray, observed: np.ndarray) -> float:
    """The population stability index of two share vectors (each floored at ``PSI_EPSILON``)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_EPSILON)
    o = np.maximum(np.asarray(observed, dtype=np.float64), PSI_EPSILON)
    return float(np.sum((o - e) * np.log(o / e)))


@dataclass(frozen=True)
class ColumnDrift:
    """One raw column's drift; ``unseen_share`` for categories, ``mean_shift`` for numbers."""

    column: str
    kind: str  # "number" or "category"
    psi: float | None  # None: no row observed
    verdict: str
    null_share: float | None
    unseen_share: float | None = None
    mean_shift: float | None = None  # (mean - training mean) / training std; None if std is 0

    @property
    def drifting(self) -> bool:
        """Worth a warning: PSI at least moderate, or many unseen categories."""
        moved = self.psi is not None and self.psi >= MODERATE_PSI
        return moved or (self.unseen_share is not None and self.unseen_share >= HIGH_UNSEEN)

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "psi": self.psi,
            "verdict": self.verdict,
            "null_share": self.null_share,
            "unseen_share": self.unseen_share,
            "mean_shift": self.mean_shift,
        }


@dataclass(frozen=True)
class DriftReport:
    """Every raw column's drift over ``rows`` observed rows, against ``training_rows``."""

    rows: int
    training_rows: int
    columns: tuple[ColumnDrift, ...]

    @property
    def judged(self) -> bool:
        """Enough rows to judge (``MIN_DRIFT_ROWS``): fewer give a noisy PSI."""
        return self.rows >= MIN_DRIFT_ROWS

    @property
    def drifting(self) -> tuple[ColumnDrift, ...]:
        """The columns worth a warning (none when too few rows were seen to judge)."""
        return tuple(column for column in self.columns if column.drifting) if self.judged else ()

    @property
    def worst(self) -> str:
        """The worst column verdict; ``too few rows`` or ``no data`` when not judged."""
        if not self.judged:
            return TOO_FEW_ROWS if self.rows else NO_DATA
        found = {column.verdict for column in self.columns}
        for level in (MAJOR, MODERATE, STABLE):
            if level in found:
                return level
        return NO_DATA

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "training_rows": self.training_rows,
            "verdict": self.worst,
            "drifting": [column.column for column in self.drifting],
            "columns": [column.to_dict() for column in self.columns],
        }


@dataclass(frozen=True)
class BatchCounts:
    """One batch's counts for a ``DriftAccumulator``: rows; per number column its bins (the
    refused values last) and sum; per category column its label counts."""

    rows: int
    bins: dict[str, np.ndarray]
    sums: dict[str, float]
    labels: dict[str, np.ndarray]


class DriftAccumulator:
    """Counts batches on a profile's bins and labels: call ``observe`` per batch, then
    ``report``. Memory: the profile's bins and vocabularies, whatever the rows."""

    def __init__(self, state: FeatureState) -> None:
        if state.profile is None:
            raise ValueError("a state without a training profile has nothing to compare with")
        self.profile: Profile = state.profile
        schema = state.pipeline.input_schema
        self.numeric, self.categorical = schema.numeric, schema.categorical
        self.modes = label_modes(state.pipeline.stages)
        self.rows = 0
        self.bins = {name: self._edges(name) for name in self.numeric}
        self.counts = {name: np.zeros(len(e) + 2, dtype=np.int64) for name, e in self.bins.items()}
        self.sums = dict.fromkeys(self.numeric, 0.0)
        self.labels = {name: self._vocabulary(name) for name in self.categorical}
        self.label_counts = {
            name: np.zeros(len(vocabulary) + 2, dtype=np.int64)
            for name, vocabulary in self.labels.items()
        }

    def _edges(self, name: str) -> np.ndarray:
        column = self.profile.columns[name]
        assert isinstance(column, NumberProfile)
        return np.array(column.edges, dtype=np.float64)

    def _vocabulary(self, name: str) -> pa.Array:
        column = self.profile.columns[name]
        assert isinstance(column, CategoryProfile)
        return pa.array(column.labels, pa.string())

    def observe(self, parsed: ParsedColumns) -> None:
        """Count one batch: numbers of the rows the input policy accepted, labels of all."""
        self.add(self.counted(parsed))

    def counted(self, parsed: ParsedColumns) -> BatchCounts:
        """One batch's counts, not yet added: pure, so any thread may count a batch while
        ``add`` takes the batches in order (the sums then add up the same, bit for bit)."""
        whole = bool(parsed.accepted.all())
        bins: dict[str, np.ndarray] = {}
        sums: dict[str, float] = {}
        for name in self.numeric:
            values = np.asarray(parsed.columns[name])
            values = values if whole else values[parsed.accepted]
            refused = parsed.refused_count(name)
            bins[name] = np.append(bin_counts(values, self.bins[name]), refused)
            sums[name] = float(values.sum())
        labels = {}
        for name in self.categorical:
            index = parsed.indices.get(name)
            if index is not None and self.modes.get(name) == "exact":
                labels[name] = self._index_counts(name, index, parsed.columns[name].null_count)
            else:
                labels[name] = self._label_counts(name, parsed.columns[name])
        return BatchCounts(parsed.n_rows, bins, sums, labels)

    def add(self, counts: BatchCounts) -> None:
        """Add one batch's ``counted`` counts (batches in input order)."""
        self.rows += counts.rows
        for name, found in counts.bins.items():
            self.counts[name] += found
            self.sums[name] += counts.sums[name]
        for name, found in counts.labels.items():
            self.label_counts[name] += found

    def _index_counts(self, name: str, index: np.ndarray, nulls: int) -> np.ndarray:
        """Counts from the indexer's own indices (its labels are the profile's: checked on load)."""
        size = len(self.labels[name])
        counts = np.bincount(index.astype(np.intp), minlength=size + 1)
        return np.array([*counts[:size], nulls, counts[size] - nulls], dtype=np.int64)

    def _label_counts(self, name: str, column: Any) -> np.ndarray:
        """Each label's count (in vocabulary order), then empty values, then unseen labels."""
        values = category_values(column, self.modes.get(name, "exact"))
        vocabulary = self.labels[name]
        found = pc.index_in(values, value_set=vocabulary).fill_null(len(vocabulary) + 1)
        counts = np.bincount(found.to_numpy(zero_copy_only=False), minlength=len(vocabulary) + 2)
        counts[len(vocabulary)] += values.null_count  # counted as unseen by index_in
        counts[len(vocabulary) + 1] -= values.null_count
        return counts

    def report(self) -> DriftReport:
        """The drift of every raw column, in the input schema's order."""
        columns = []
        for name in (*self.categorical, *self.numeric):
            expected = self.profile.columns[name]
            if isinstance(expected, NumberProfile):
                columns.append(self._number(name, expected))
            else:
                columns.append(self._category(name, expected))
        return DriftReport(self.rows, self.profile.rows, tuple(columns))

    def _number(self, name: str, expected: NumberProfile) -> ColumnDrift:
        counts = self.counts[name]
        if self.rows == 0:
            return ColumnDrift(name, "number", None, NO_DATA, None)
        values = int(counts[:-1].sum())
        present = 1.0 - expected.null_share
        training = np.array([*(s * present for s in expected.shares), expected.null_share])
        score = psi(training, counts / max(int(counts.sum()), 1))
        shift = None
        if values and expected.std > 0:
            shift = (self.sums[name] / values - expected.mean) / expected.std
        null = float(counts[-1] / self.rows)
        return ColumnDrift(name, "number", score, verdict(score), null, None, _finite(shift))

    def _category(self, name: str, expected: CategoryProfile) -> ColumnDrift:
        counts = self.label_counts[name]
        if self.rows == 0:
            return ColumnDrift(name, "category", None, NO_DATA, None)
        training = np.array([*expected.shares, expected.null_share, expected.unseen_share])
        observed = counts / self.rows
        score = psi(training, observed)
        null, unseen = float(observed[-2]), float(observed[-1])
        return ColumnDrift(name, "category", score, verdict(score), null, unseen)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
