"""StringIndexer: category text to float indices, and LabelCounts, which fits it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnctl.defaults import MAX_FEATURES
from churnctl.errors import PipelineSpecError
from churnctl.features.columns import as_array, empty_as_null
from churnctl.features.frame import Frame
from churnctl.features.stages.base import (
    Accumulator,
    ColumnNames,
    NameMap,
    Shape,
    ShapeMap,
    Stage,
    label_lists,
    names_of,
    too_wide,
)
from churnctl.features.stages.params import Columns, OneOf, OnePerColumn, param

ORDER_TYPES = ("alphabetAsc", "alphabetDesc", "frequencyDesc", "frequencyAsc")  # a fit's
# The labels as an imported encoder holds them (from_sklearn), in its order: not learned.
GIVEN = "given"
INVALID_POLICIES = ("error", "skip", "keep")
NORMALIZE_MODES = ("exact", "trim", "trim-lower")


@dataclass(kw_only=True, eq=False)
class StringIndexer(Stage):
    """Maps string categories to float indices, in a chosen label order.

    ``string_order_type`` ``given``: the labels an imported encoder holds, in its
    order (``from_sklearn``); such a stage is never fitted.
    """

    TYPE = "StringIndexer"
    READS_CATEGORIES = True
    WRITES_VECTORS = False  # one index per row
    WRITES_INDICES = True
    _fitted_attrs = ("labels_",)

    input_cols: Sequence[str] = param(Columns())
    output_cols: Sequence[str] = param(Columns(like="input_cols"))
    string_order_type: str = param(OneOf((*ORDER_TYPES, GIVEN)), "alphabetAsc")
    handle_invalid: str = param(OneOf(INVALID_POLICIES), "error")
    normalize: Sequence[str] | None = param(
        OnePerColumn("input_cols", OneOf(NORMALIZE_MODES), fill="exact"), None
    )  # None: "exact" for every column

    def input_columns(self) -> list[str]:
        return list(self.input_cols)

    def output_columns(self) -> list[str]:
        return list(self.output_cols)

    def accumulator(self) -> LabelCounts:
        """Counts each column's labels; their order is decided at the end."""
        return LabelCounts(self)

    def rejects_rows(self) -> bool:
        return self.handle_invalid != "keep"

    def _set_fitted(self, fitted: dict[str, Any]) -> None:
        labels = label_lists(self.TYPE, fitted["labels"])
        if len(labels) != len(self.input_cols):
            raise PipelineSpecError(
                f"StringIndexer: {len(labels)} label lists for {len(self.input_cols)} columns"
            )
        for col, col_labels in zip(self.input_cols, labels, strict=True):
            if len(set(col_labels)) != len(col_labels):
                raise PipelineSpecError(f"StringIndexer: duplicate labels for column {col}")
        self.labels_ = [list(col_labels) for col_labels in labels]

    def transform(self, frame: Frame) -> Frame:
        """Add float index columns; unseen or null values follow ``handle_invalid``."""
        self._require_fitted()
        columns = zip(self.input_cols, self.output_cols, self.labels_, self.normalize, strict=True)
        for col, out, labels, mode in columns:
            frame[out] = self._index_column(frame, col, labels, mode)
        return frame

    def _index_column(self, frame: Frame, col: str, labels: list[str], mode: str) -> np.ndarray:
        values = as_array(frame[col])
        matched = normalized(values, mode)
        found = pc.index_in(matched, value_set=pa.array(labels, type=pa.string()))
        invalid = found.is_null().to_numpy(zero_copy_only=False)
        index = found.fill_null(len(labels)).to_numpy(zero_copy_only=False).astype(np.float64)
        if invalid.any() and self.handle_invalid != "keep":
            frame.reject(invalid, col, self._invalid_reasons(values, matched, invalid))
        return index

    def _invalid_reasons(
        self, values: pa.Array, matched: pa.Array, invalid: np.ndarray
    ) -> np.ndarray | str:
        if self.handle_invalid == "skip":
            return "skipped"
        reasons = np.full(len(values), None, dtype=object)
        for i in np.flatnonzero(invalid):
            empty = matched[int(i)].as_py() is None
            reasons[i] = "empty value" if empty else f"unseen category {values[int(i)].as_py()!r}"
        return reasons

    def vocabularies(self) -> dict[str, list[str]]:
        self._require_fitted()
        return {
            col: list(labels) for col, labels in zip(self.input_cols, self.labels_, strict=True)
        }

    def feature_names(self, names: NameMap) -> dict[str, ColumnNames]:
        """Each index column is one feature named after its input, carrying its labels."""
        return {
            out: ColumnNames(names_of(names, col), tuple(labels))
            for col, out, labels in zip(
                self.input_cols, self.output_cols, self.labels_, strict=True
            )
        }

    def shapes(self, shapes: ShapeMap) -> dict[str, Shape]:
        """One index per row: ``keep`` adds one index, for the unseen values."""
        result = {}
        for col, out, labels in zip(self.input_cols, self.output_cols, self.labels_, strict=True):
            if len(labels) > MAX_FEATURES:
                raise too_wide(col, f"{len(labels):,} categories")
            result[out] = Shape(1, len(labels) + int(self.handle_invalid == "keep"))
        return result


def normalized(values: pa.Array, mode: str) -> pa.Array:
    """Category values as matched: exact, trimmed, or trimmed and lower-cased ("" → null)."""
    if mode == "exact":
        return values
    values = pc.utf8_trim_whitespace(values)
    if mode == "trim-lower":
        values = pc.utf8_lower(values)
    return empty_as_null(values)


class LabelCounts(Accumulator):
    """A StringIndexer's label counts per input column (of the normalized, non-null values)."""

    def __init__(self, stage: StringIndexer) -> None:
        self.stage = stage
        self.counts: list[Counter[str]] = [Counter() for _ in stage.input_cols]

    def update(self, frame: Frame) -> None:
        ok = pa.array(frame.ok)
        for counts, col, mode in zip(
            self.counts, self.stage.input_cols, self.stage.normalize, strict=True
        ):
            counts.update(count_labels(pc.filter(normalized(as_array(frame[col]), mode), ok)))
            if len(counts) > MAX_FEATURES:  # refused as soon as counted: memory stays bounded
                raise too_wide(col, f"{len(counts):,} categories so far")

    def merge(self, other: LabelCounts) -> None:
        for counts, more in zip(self.counts, other.counts, strict=True):
            counts.update(more)

    def finish(self) -> None:
        order = self.stage.string_order_type
        if order == GIVEN:
            raise PipelineSpecError(
                f"StringIndexer: string_order_type {GIVEN!r} keeps the labels of an imported "
                f"encoder, which a fit cannot learn; choose one of {', '.join(ORDER_TYPES)}"
            )
        self.stage.labels_ = [order_labels(counts, order) for counts in self.counts]


def count_labels(values: pa.Array) -> Counter[str]:
    """How often each non-null label occurs."""
    counts = pc.value_counts(values.drop_null()).to_pylist()
    return Counter({c["values"]: c["counts"] for c in counts})


def order_labels(counts: Mapping[str, int], order: str) -> list[str]:
    """Labels with their counts, in the given order; frequency ties break alphabetically."""
    pairs = list(counts.items())
    if order == "alphabetAsc":
        pairs.sort(key=lambda p: p[0])
    elif order == "alphabetDesc":
        pairs.sort(key=lambda p: p[0], reverse=True)
    elif order == "frequencyDesc":
        pairs.sort(key=lambda p: (-p[1], p[0]))
    else:
        pairs.sort(key=lambda p: (p[1], p[0]))
    return [label for label, _ in pairs]
