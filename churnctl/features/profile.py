"""The training profile: how each raw input column was distributed in a state's training data.

A ``Profile`` holds, per raw input column of the state (``Age``, ``Geography``):
numbers: quantile bin edges, the share of values in each bin, mean, standard
deviation and the share of rows whose value was missing or unreadable; categories:
the share of each vocabulary label, of empty values and of labels outside the
vocabulary. ``ProfileAccumulator`` gathers it batch by batch, in bounded memory, from
the columns the input policy typed (``ParsedColumns``): exact counts, moments and
label counts, and for the bin edges a seeded sample of at most ``SAMPLE_ROWS`` rows
(the bins' shares are the sample's: exact up to that many rows). The same input
gives the same profile. ``features.drift`` compares new data against it.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa

from churnctl.defaults import MAX_FEATURES, PROFILE_BINS
from churnctl.errors import StateError
from churnctl.features.columns import as_array
from churnctl.features.frame import Column, Frame
from churnctl.features.input_policy import InputSchema, frame_from_batch
from churnctl.features.moments import Moments
from churnctl.features.pipeline import FeaturePipeline
from churnctl.features.stages.string_indexer import StringIndexer, count_labels, normalized

SAMPLE_ROWS = 100_000  # rows of the seeded sample the bin edges come from
SAMPLE_SEED = 20  # the sample's seed: a fixed one, so that a refit gives the same profile
MAX_LABELS_COUNTED = 2 * MAX_FEATURES  # distinct labels counted per column; more: unseen
SHARES_TOLERANCE = 1e-6  # how far from 1 a profile's shares may add up


@dataclass(frozen=True)
class ParsedColumns:
    """A batch's raw input columns as the input policy typed them, before any stage ran.

    ``accepted``: the rows the input policy accepted; ``refused_on``: the column each
    refused row was refused on (None when no row was); ``indices``: a category column's
    label indices as its indexer computed them while scoring (``len(labels)``: empty or
    unseen), when the frame kept them (``with_indices``), so that they are not looked
    up twice.
    """

    columns: Mapping[str, Column]
    accepted: np.ndarray
    refused_on: np.ndarray | None
    indices: Mapping[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, frame: Frame) -> ParsedColumns:
        """A snapshot of a frame fresh from ``frame_from_batch`` (columns shared, not copied)."""
        refused = None if frame.reject_column is None else frame.reject_column.copy()
        return cls(dict(frame.columns), frame.ok, refused)

    def with_indices(self, frame: Frame, raw_names: Mapping[str, str]) -> ParsedColumns:
        """With the index columns a transformed ``frame`` holds (``raw_names``: index → input)."""
        indices = {
            raw: frame.columns[out] for out, raw in raw_names.items() if out in frame.columns
        }
        return replace(self, indices=indices)

    @property
    def n_rows(self) -> int:
        return len(self.accepted)

    def refused_count(self, name: str) -> int:
        """Rows refused for their value in column ``name`` (empty, not a number, not finite)."""
        return 0 if self.refused_on is None else int(np.count_nonzero(self.refused_on == name))


@dataclass(frozen=True)
class NumberProfile:
    """A numeric column: bin ``i`` holds ``edges[i-1] <= x < edges[i]`` (open at both ends)."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]  # one more than the edges
    mean: float
    std: float  # population standard deviation (ddof 0)
    null_share: float  # of the rows: missing or unreadable values


@dataclass(frozen=True)
class CategoryProfile:
    """A category column: each vocabulary label's share of the rows, in vocabulary order."""

    labels: tuple[str, ...]
    shares: tuple[float, ...]
    null_share: float  # empty or missing values
    unseen_share: float  # labels outside the vocabulary (0 for a fit, by definition)


ColumnProfile = NumberProfile | CategoryProfile


@dataclass(frozen=True)
class Profile:
    """The training distribution of every raw input column, and the fit's row counts."""

    rows: int
    reject_rate: float
    columns: Mapping[str, ColumnProfile]  # in the input schema's order

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "reject_rate": self.reject_rate,
            "columns": [_column_dict(name, column) for name, column in self.columns.items()],
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any], source: str) -> Profile:
        """A profile from its (schema-checked) JSON; incoherent numbers are a ``StateError``."""
        columns: dict[str, ColumnProfile] = {}
        for item in document["columns"]:
            name = item["name"]
            if name in columns:
                raise StateError(f"{source}: invalid profile: column {name} appears twice")
            columns[name] = _column_of(item, f"{source}: invalid profile: column {name}")
        return cls(document["rows"], document["reject_rate"], columns)

    def check_matches(
        self, schema: InputSchema, vocabularies: Mapping[str, list[str]], source: str
    ) -> None:
        """Refuse a profile that does not describe the state's input columns and labels."""
        kinds = {name: "category" for name in schema.categorical}
        kinds.update({name: "number" for name in schema.numeric})
        described = {name: _kind(column) for name, column in self.columns.items()}
        if described != kinds:
            raise StateError(
                f"{source}: invalid profile: its columns are not the state's input columns"
            )
        for name in schema.categorical:
            column = self.columns[name]
            if isinstance(column, CategoryProfile) and list(column.labels) != vocabularies[name]:
                raise StateError(
                    f"{source}: invalid profile: the labels of {name} are not its vocabulary"
                )


def _kind(column: ColumnProfile) -> str:
    return "number" if isinstance(column, NumberProfile) else "category"


def _column_dict(name: str, column: ColumnProfile) -> dict[str, Any]:
    if isinstance(column, NumberProfile):
        return {
            "name": name,
            "type": "number",
            "edges": list(column.edges),
            "shares": list(column.shares),
            "mean": column.mean,
            "std": column.std,
            "null_share": column.null_share,
        }
    return {
        "name": name,
        "type": "category",
        "labels": list(column.labels),
        "shares": list(column.shares),
        "null_share": column.null_share,
        "unseen_share": column.unseen_share,
    }


def _column_of(item: dict[str, Any], where: str) -> ColumnProfile:
    """One column's profile, its numbers checked against each other."""
    shares = tuple(float(s) for s in item["shares"])
    if item["type"] == "number":
        edges = tuple(float(e) for e in item["edges"])
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise StateError(f"{where}: its bin edges are not strictly ascending")
        if len(shares) != len(edges) + 1:
            raise StateError(f"{where}: {len(edges)} edges need {len(edges) + 1} shares")
        _check_total(where, sum(shares), "bin shares")
        return NumberProfile(edges, shares, item["mean"], item["std"], item["null_share"])
    labels = tuple(item["labels"])
    if len(labels) != len(shares) or len(set(labels)) != len(labels):
        raise StateError(f"{where}: its labels and shares do not pair one to one")
    _check_total(where, sum(shares) + item["null_share"] + item["unseen_share"], "shares")
    return CategoryProfile(labels, shares, item["null_share"], item["unseen_share"])


def _check_total(where: str, total: float, what: str) -> None:
    if abs(total - 1.0) > SHARES_TOLERANCE and total != 0.0:
        raise StateError(f"{where}: its {what} add up to {total:.6g}, not 1")


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """How many ``values`` fall in each bin of ``edges`` (``len(edges) + 1`` counts).

    One comparison per edge: several times faster than ``searchsorted`` for few edges.
    """
    at_least = [np.count_nonzero(values >= edge) for edge in edges]
    bounds = np.array([len(values), *at_least, 0], dtype=np.int64)
    return bounds[:-1] - bounds[1:]


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges: each distinct value for a column with few of them, else the quantiles."""
    distinct = np.unique(values)
    if len(distinct) <= bins:
        return distinct[1:]
    cuts = np.unique(np.quantile(values, np.arange(1, bins) / bins))
    return cuts[cuts > distinct[0]]


def label_modes(stages: list[Any]) -> dict[str, str]:
    """Each indexed category column → how its indexer matches labels (``normalize``)."""
    modes: dict[str, str] = {}
    for stage in stages:
        if isinstance(stage, StringIndexer):
            modes.update(zip(stage.input_cols, stage.normalize, strict=True))
    return modes


def category_values(values: Column, mode: str) -> pa.Array:
    """A category column's values as its indexer matches them (empty values as null)."""
    return normalized(as_array(values), mode)


class ProfileAccumulator:
    """Gathers a ``Profile`` from the parsed columns of every batch, in bounded memory."""

    def __init__(
        self, schema: InputSchema, modes: Mapping[str, str], bins: int = PROFILE_BINS
    ) -> None:
        self.schema, self.modes, self.bins = schema, dict(modes), bins
        self.rows = 0
        self.sums = _Sums()
        self.refused = Counter[str]()
        self.labels = {name: Counter[str]() for name in schema.categorical}
        self.nulls = Counter[str]()
        self.uncounted = Counter[str]()  # labels past MAX_LABELS_COUNTED, per column
        self._keys = np.empty(0)
        self._sample = np.empty((0, len(schema.numeric)))
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []  # rows that may enter it
        self._waiting = 0  # rows pending
        self._threshold = 1.0  # keys at or above it cannot enter the sample (once full)
        self._random = np.random.default_rng(SAMPLE_SEED)

    def update(self, parsed: ParsedColumns) -> None:
        """Count one batch's values; every row draws a sample key (same input, same sample)."""
        self.rows += parsed.n_rows
        keys = self._random.random(parsed.n_rows)
        for name in self.schema.categorical:
            self._count_labels(
                name, category_values(parsed.columns[name], self.modes.get(name, "exact"))
            )
        if not self.schema.numeric:
            return
        whole = bool(parsed.accepted.all())
        rows = None if whole else np.flatnonzero(parsed.accepted)
        columns = []
        for name in self.schema.numeric:
            self.refused[name] += parsed.refused_count(name)
            values = np.asarray(parsed.columns[name])
            columns.append(values if rows is None else values[rows])
        if len(columns[0]):
            self.sums.add(columns)
            self._draw(keys if rows is None else keys[rows], columns)

    def _count_labels(self, name: str, values: pa.Array) -> None:
        self.nulls[name] += values.null_count
        counts = self.labels[name]
        for label, count in count_labels(values).items():
            if label in counts or len(counts) < MAX_LABELS_COUNTED:
                counts[label] += count
            else:  # too many labels to count: outside any vocabulary a state may hold
                self.uncounted[name] += count

    def _draw(self, keys: np.ndarray, columns: list[np.ndarray]) -> None:
        """Keep the ``SAMPLE_ROWS`` rows with the smallest keys (a seeded uniform sample).

        Rows whose key is above the largest key kept cannot enter; the others wait in
        ``_pending`` until they are as many as the sample, then all are cut down to it.
        """
        entering = np.flatnonzero(keys < self._threshold)
        matrix = np.column_stack([values[entering] for values in columns])
        self._pending.append((keys[entering], matrix))
        self._waiting += len(entering)
        if self._waiting > SAMPLE_ROWS:
            self._cut()

    def _cut(self) -> None:
        """The sample and the pending rows, cut down to the ``SAMPLE_ROWS`` smallest keys."""
        keys = np.concatenate([self._keys, *(k for k, _ in self._pending)])
        sample = np.concatenate([self._sample, *(m for _, m in self._pending)])
        self._pending, self._waiting = [], 0
        if len(keys) > SAMPLE_ROWS:
            kept = np.argpartition(keys, SAMPLE_ROWS)[:SAMPLE_ROWS]
            keys, sample = keys[kept], sample[kept]
            self._threshold = float(keys.max())
        self._keys, self._sample = keys, sample

    def profile(self, vocabularies: Mapping[str, list[str]], read: int, rejected: int) -> Profile:
        """The profile, categories against the fitted ``vocabularies``; ``rejected`` of the
        ``read`` rows (malformed lines included) give the fit's reject rate."""
        columns: dict[str, ColumnProfile] = {}
        total = max(self.rows, 1)
        for name in self.schema.categorical:
            columns[name] = self._category(name, vocabularies[name], total)
        for index, name in enumerate(self.schema.numeric):
            columns[name] = self._number(index, self.refused[name] / total)
        return Profile(self.rows, rejected / max(read, 1), columns)

    def _category(self, name: str, vocabulary: list[str], total: int) -> CategoryProfile:
        counts = self.labels[name]
        shares = tuple(counts.get(label, 0) / total for label in vocabulary)
        known = sum(counts.get(label, 0) for label in vocabulary)
        unseen = sum(counts.values()) - known + self.uncounted[name]
        return CategoryProfile(tuple(vocabulary), shares, self.nulls[name] / total, unseen / total)

    def _number(self, index: int, null_share: float) -> NumberProfile:
        if self._pending:
            self._cut()
        if self.sums.n == 0 or len(self._sample) == 0:
            return NumberProfile((), (1.0,), 0.0, 0.0, null_share)
        values = self._sample[:, index]
        edges = quantile_edges(values, self.bins)
        shares = bin_counts(values, edges) / len(values)
        mean, std = self.sums.mean_std(index)
        return NumberProfile(
            tuple(float(e) for e in edges),
            tuple(float(s) for s in shares),
            mean,
            _finite(std),
            null_share,
        )


def profile_of(pipeline: FeaturePipeline, batches: Iterable[pa.RecordBatch]) -> Profile:
    """The profile of data in memory, for a fitted ``pipeline`` (an imported state): its
    reject rate is the share of rows the pipeline rejects."""
    schema = pipeline.input_schema
    profiling = ProfileAccumulator(schema, label_modes(pipeline.stages))
    rejected = 0
    for batch in batches:
        frame = frame_from_batch(batch, schema)
        profiling.update(ParsedColumns.of(frame))
        with np.errstate(over="ignore", invalid="ignore"):
            pipeline.transform(frame)
        rejected += int(frame.rejected.sum())
    return profiling.profile(pipeline.vocabularies(), profiling.rows, rejected)


class _Sums:
    """Per-column count, mean and standard deviation, gathered batch by batch with the
    StandardScaler's own ``Moments``: numbers that are the same bits under every NumPy
    (a 1-D ``sum`` is not: its order of additions changes between releases)."""

    def __init__(self) -> None:
        self.moments: Moments | None = None

    @property
    def n(self) -> int:
        return 0 if self.moments is None else self.moments.n

    def add(self, columns: list[np.ndarray]) -> None:
        if not columns or len(columns[0]) == 0:
            return
        batch = Moments.of(np.column_stack(columns).astype(np.float64, copy=False))
        self.moments = batch if self.moments is None else self.moments.merged(batch)

    def mean_std(self, index: int) -> tuple[float, float]:
        """The column's mean and standard deviation (ddof 0); 0 where not finite."""
        if self.moments is None:
            return 0.0, 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = self.moments.mean[index], self.moments.std(0)[index]
        return _finite(float(mean)), _finite(float(std))


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0
