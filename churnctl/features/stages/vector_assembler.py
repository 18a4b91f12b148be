"""VectorAssembler: columns concatenated into one vector, and InputSizes, which fits it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from churnctl.defaults import MAX_FEATURES
from churnctl.errors import NotFittedError, PipelineSpecError
from churnctl.features.frame import Frame
from churnctl.features.stages.base import (
    RAW,
    Accumulator,
    ColumnNames,
    NameMap,
    Shape,
    ShapeMap,
    Stage,
    as_matrix,
    names_of,
    too_wide,
    whole_numbers,
)
from churnctl.features.stages.params import Column, Columns, param


@dataclass(kw_only=True, eq=False)
class VectorAssembler(Stage):
    """Concatenates scalar and vector columns, in the given order, into one vector."""

    TYPE = "VectorAssembler"
    NEEDS_ROWS = False  # fitted from the column shapes of one batch
    _fitted_attrs = ("input_sizes_",)

    input_cols: Sequence[str] = param(Columns())
    output_col: str = param(Column())

    def input_columns(self) -> list[str]:
        return list(self.input_cols)

    def output_columns(self) -> list[str]:
        return [self.output_col]

    def accumulator(self) -> InputSizes:
        """Records each input's size (1 for a scalar column)."""
        return InputSizes(self)

    def rejects_rows(self) -> bool:
        return False

    def _set_fitted(self, fitted: dict[str, Any]) -> None:
        sizes = whole_numbers(
            self.TYPE, "input_sizes", fitted["input_sizes"], 0, "one input size per column"
        )
        if len(sizes) != len(self.input_cols):
            raise PipelineSpecError("VectorAssembler: one input size (>= 0) per column needed")
        self.input_sizes_ = [int(s) for s in sizes]

    def transform(self, frame: Frame) -> Frame:
        """Add the assembled float64 matrix column, checking every input's size."""
        self._require_fitted()
        parts = []
        for col, size in zip(self.input_cols, self.input_sizes_, strict=True):
            values = as_matrix(frame[col])
            if values.shape[1] != size:
                raise PipelineSpecError(
                    f"VectorAssembler: column {col} has size {values.shape[1]}, expected {size}"
                )
            parts.append(values)
        frame[self.output_col] = np.hstack(parts) if parts else np.zeros((frame.n_rows, 0))
        return frame

    def feature_names(self, names: NameMap) -> dict[str, ColumnNames]:
        flat = [name for col in self.input_cols for name in names_of(names, col)]
        return {self.output_col: ColumnNames(tuple(flat))}

    def shapes(self, shapes: ShapeMap) -> dict[str, Shape]:
        """The sum of the inputs' widths, each as fitted."""
        for col, size in zip(self.input_cols, self.input_sizes_, strict=True):
            if size != shapes.get(col, RAW).width:
                raise PipelineSpecError(
                    f"VectorAssembler: input size {size:,} for {col}, whose width is "
                    f"{shapes.get(col, RAW).width:,}"
                )
        return {self.output_col: _assembled(self, self.input_sizes_)}


def _assembled(stage: VectorAssembler, sizes: list[int]) -> Shape:
    """The shape of an assembled vector, refused past the width cap (naming its widest inputs)."""
    if sum(sizes) > MAX_FEATURES:
        widest = sorted(zip(sizes, stage.input_cols, strict=True), reverse=True)[:3]
        parts = ", ".join(f"{col} {size:,}" for size, col in widest)
        raise too_wide(stage.output_col, f"{sum(sizes):,} features (widest: {parts})")
    return Shape(sum(sizes))


class InputSizes(Accumulator):
    """A VectorAssembler's input sizes: the column shapes of the first frame seen."""

    def __init__(self, stage: VectorAssembler) -> None:
        self.stage = stage
        self.sizes: list[int] | None = None

    def update(self, frame: Frame) -> None:
        if self.sizes is None:
            self.sizes = [_width(frame[col]) for col in self.stage.input_cols]

    def merge(self, other: InputSizes) -> None:
        if self.sizes is None:
            self.sizes = other.sizes

    def finish(self) -> None:
        if self.sizes is None:
            raise NotFittedError("VectorAssembler: no training batch was seen, nothing to fit")
        _assembled(self.stage, self.sizes)
        self.stage.input_sizes_ = list(self.sizes)


def _width(values: np.ndarray | pa.Array) -> int:
    array = np.asarray(values)
    return 1 if array.ndim == 1 else int(array.shape[1])
