"""OneHotEncoder: category indices to one-hot vectors, and LargestIndex, which fits it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from churnctl.defaults import MAX_FEATURES
from churnctl.errors import PipelineSpecError
from churnctl.features.frame import Frame
from churnctl.features.stages.base import (
    RAW,
    Accumulator,
    ColumnNames,
    NameMap,
    Shape,
    ShapeMap,
    Stage,
    names_of,
    too_wide,
    whole_numbers,
)
from churnctl.features.stages.params import (
    Columns,
    DroppedIndices,
    Flag,
    OneOf,
    none_dropped,
    param,
)


@dataclass(kw_only=True, eq=False)
class OneHotEncoder(Stage):
    """Maps float indices to one-hot vectors; ``drop_last`` drops the last category.

    ``drop_index``: per column, the index of the category left out (scikit-learn's
    ``drop="first"`` or ``"if_binary"``), or None: then ``drop_last`` says.
    """

    TYPE = "OneHotEncoder"
    READS_VECTORS = False  # one index per row
    READS_INDICES = True  # a StringIndexer's output
    _fitted_attrs = ("category_sizes_",)

    input_cols: Sequence[str] = param(Columns())
    output_cols: Sequence[str] = param(Columns(like="input_cols"))
    drop_last: bool = param(Flag(), True)
    handle_invalid: str = param(OneOf(("error", "keep")), "error")
    drop_index: Sequence[int | None] | None = param(
        DroppedIndices("input_cols"), None, unset=none_dropped
    )  # None: drop_last says, for every column

    def input_columns(self) -> list[str]:
        return list(self.input_cols)

    def output_columns(self) -> list[str]:
        return list(self.output_cols)

    def accumulator(self) -> LargestIndex:
        """Learns each column's number of categories (largest index + 1)."""
        return LargestIndex(self)

    def rejects_rows(self) -> bool:
        return self.handle_invalid == "error"

    def _set_fitted(self, fitted: dict[str, Any]) -> None:
        sizes = whole_numbers(
            self.TYPE,
            "category_sizes",
            fitted["category_sizes"],
            1,
            "one positive category size per column",
        )
        if len(sizes) != len(self.input_cols):
            raise PipelineSpecError("OneHotEncoder: one positive category size per column needed")
        self._check_dropped(sizes)
        self.category_sizes_ = [int(s) for s in sizes]

    def _check_dropped(self, sizes: list[int]) -> None:
        for col, size, dropped in zip(self.input_cols, sizes, self.drop_index, strict=True):
            if dropped is not None and dropped >= size:
                raise PipelineSpecError(
                    f"OneHotEncoder: drop_index {dropped} for {col}, which has {size:,} categories"
                )

    def _width(self, size: int, dropped: int | None) -> int:
        """The vector's width: the categories, less the dropped one."""
        return size - 1 if self.drop_last or dropped is not None else size

    def transform(self, frame: Frame) -> Frame:
        """Add one-hot matrix columns; an index past the vocabulary follows ``handle_invalid``."""
        self._require_fitted()
        for col, out, size, dropped in zip(
            self.input_cols, self.output_cols, self.category_sizes_, self.drop_index, strict=True
        ):
            frame[out] = self._encode(frame, col, size, dropped)
        return frame

    def _encode(self, frame: Frame, col: str, size: int, dropped: int | None) -> np.ndarray:
        index = np.asarray(frame[col], dtype=np.float64)
        valid = (index >= 0) & (index < size) & (index == np.floor(index))
        if self.handle_invalid == "error":
            frame.reject(~valid, col, f"index out of range for {size} categories")
        if dropped is not None:
            encoded = np.zeros((len(index), size), dtype=np.float64)
            encoded[np.flatnonzero(valid), index[valid].astype(np.intp)] = 1.0
            return np.delete(encoded, dropped, axis=1)
        width = size - 1 if self.drop_last else size
        encoded = np.zeros((len(index), width), dtype=np.float64)
        hot = valid & (index < width)
        encoded[np.flatnonzero(hot), index[hot].astype(np.intp)] = 1.0
        return encoded

    def feature_names(self, names: NameMap) -> dict[str, ColumnNames]:
        """``Geography=France``, ...: one feature per kept category, named by its label."""
        result = {}
        for col, out, size, dropped in zip(
            self.input_cols, self.output_cols, self.category_sizes_, self.drop_index, strict=True
        ):
            known = names[col].labels if col in names else ()
            labels = [*known, *(str(i) for i in range(len(known), size))][:size]
            if dropped is not None:
                del labels[dropped]
            base = names_of(names, col)[0]
            kept = labels[: self._width(size, dropped)]
            result[out] = ColumnNames(tuple(f"{base}={label}" for label in kept))
        return result

    def shapes(self, shapes: ShapeMap) -> dict[str, Shape]:
        """A vector per input; a category size past its indexer's labels is refused."""
        result = {}
        for col, out, size, dropped in zip(
            self.input_cols, self.output_cols, self.category_sizes_, self.drop_index, strict=True
        ):
            shape = shapes.get(col, RAW)
            if shape.categories is not None and size > shape.categories:
                raise PipelineSpecError(
                    f"OneHotEncoder: category size {size:,} for {col}, which holds "
                    f"{shape.categories:,} categories"
                )
            width = self._width(size, dropped)
            if width > MAX_FEATURES:
                raise too_wide(col, f"{size:,} categories")
            result[out] = Shape(width)
        return result


class LargestIndex(Accumulator):
    """A OneHotEncoder's largest index per input column (-1 before any row)."""

    def __init__(self, stage: OneHotEncoder) -> None:
        self.stage = stage
        self.largest = [-1.0] * len(stage.input_cols)

    def update(self, frame: Frame) -> None:
        self.largest = [
            max(largest, float(np.max(_indices(frame, col), initial=-1)))
            for largest, col in zip(self.largest, self.stage.input_cols, strict=True)
        ]
        for col, largest in zip(self.stage.input_cols, self.largest, strict=True):
            if largest - int(self.stage.drop_last) >= MAX_FEATURES:
                raise too_wide(col, f"an index of {largest:,.0f} ({largest + 1:,.0f} categories)")

    def merge(self, other: LargestIndex) -> None:
        self.largest = [max(a, b) for a, b in zip(self.largest, other.largest, strict=True)]

    def finish(self) -> None:
        for col, largest in zip(self.stage.input_cols, self.largest, strict=True):
            if largest < 0:
                raise PipelineSpecError(
                    f"OneHotEncoder: no training row has a valid index (a whole number >= 0) "
                    f"in {col}; encode a column of category indices (a StringIndexer's output)"
                )
        sizes = [int(largest) + 1 for largest in self.largest]
        self.stage._check_dropped(sizes)
        self.stage.category_sizes_ = sizes


def _indices(frame: Frame, col: str) -> np.ndarray:
    """The column's valid category indices (whole numbers >= 0) in the non-rejected rows."""
    values = np.asarray(frame[col], dtype=np.float64)[frame.ok]
    return values[(values >= 0) & (values == np.floor(values))]
