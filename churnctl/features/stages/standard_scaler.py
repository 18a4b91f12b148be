"""StandardScaler: centring and scaling, and ScalerMoments, which fits it in float64."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from churnctl.errors import PipelineSpecError
from churnctl.features.frame import Frame
from churnctl.features.moments import Moments
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
    numbers,
)
from churnctl.features.stages.params import Column, Flag, WholeNumber, param


@dataclass(kw_only=True, eq=False)
class StandardScaler(Stage):
    """Centres and/or scales each feature; a zero (or denormal) std scales that feature to 0."""

    TYPE = "StandardScaler"
    _fitted_attrs = ("mean_", "std_")

    input_col: str = param(Column())
    output_col: str = param(Column())
    with_mean: bool = param(Flag(), False)
    with_std: bool = param(Flag(), True)
    ddof: int = param(WholeNumber((0, 1)), 1)

    def input_columns(self) -> list[str]:
        return [self.input_col]

    def output_columns(self) -> list[str]:
        return [self.output_col]

    def accumulator(self) -> ScalerMoments:
        """Float64 means and stds of the non-rejected rows, merged batch by batch."""
        return ScalerMoments(self)

    def rejects_rows(self) -> bool:
        return False

    def _set_fitted(self, fitted: dict[str, Any]) -> None:
        mean = numbers(self.TYPE, "mean", fitted["mean"])
        std = numbers(self.TYPE, "std", fitted["std"])
        if mean.shape != std.shape:
            raise PipelineSpecError("StandardScaler: mean and std must be equal-length lists")
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std >= 0).all()):
            raise PipelineSpecError("StandardScaler: mean and std must be finite, std >= 0")
        self.mean_, self.std_ = mean, std

    def transform(self, frame: Frame) -> Frame:
        """Add ``(x - mean) / std`` (each part as configured) as a float64 matrix."""
        self._require_fitted()
        matrix = as_matrix(frame[self.input_col])
        if matrix.shape[1] != len(self.mean_):
            raise PipelineSpecError(
                f"StandardScaler: {self.input_col} has {matrix.shape[-1]} features, "
                f"fitted on {len(self.mean_)}"
            )
        frame[self.output_col] = scale(matrix, self.mean_, self.std_, self.with_mean, self.with_std)
        return frame

    def feature_names(self, names: NameMap) -> dict[str, ColumnNames]:
        return {self.output_col: ColumnNames(names_of(names, self.input_col))}

    def shapes(self, shapes: ShapeMap) -> dict[str, Shape]:
        """As wide as its input: one mean and one std per feature."""
        width = shapes.get(self.input_col, RAW).width
        if len(self.mean_) != width:
            raise PipelineSpecError(
                f"StandardScaler: {len(self.mean_):,} means for {self.input_col}, whose width "
                f"is {width:,}"
            )
        return {self.output_col: Shape(width)}


class ScalerMoments(Accumulator):
    """A StandardScaler's column moments: each batch by the two-pass method, merged by Chan's."""

    def __init__(self, stage: StandardScaler) -> None:
        self.stage = stage
        self.moments: Moments | None = None

    def update(self, frame: Frame) -> None:
        matrix = as_matrix(frame[self.stage.input_col])[frame.ok]
        if matrix.shape[0]:
            self._add(Moments.of(matrix))

    def merge(self, other: ScalerMoments) -> None:
        if other.moments is not None:
            self._add(other.moments)

    def _add(self, moments: Moments) -> None:
        if self.moments is None:
            self.moments = moments
        elif self.moments.hi.shape != moments.hi.shape:
            raise PipelineSpecError(
                f"StandardScaler: {self.stage.input_col} changes its number of features "
                f"between batches ({self.moments.hi.shape} and {moments.hi.shape})"
            )
        else:
            self.moments = self.moments.merged(moments)

    def finish(self) -> None:
        self.stage.mean_, self.stage.std_ = moments_mean_and_std(self.moments, ddof=self.stage.ddof)


def moments_mean_and_std(moments: Moments | None, *, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """The means and stds of gathered moments; too few rows or too large values are refused."""
    n = moments.n if moments is not None else 0
    if moments is None or n <= ddof:
        raise PipelineSpecError(f"StandardScaler: need more than {ddof} training rows, got {n}")
    mean, std = moments.mean, moments.std(ddof)
    mean[moments.constant] = moments.first[moments.constant]
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise PipelineSpecError("StandardScaler: training values are too large to scale")
    return mean, std


def scale(
    matrix: np.ndarray, mean: np.ndarray, std: np.ndarray, with_mean: bool, with_std: bool
) -> np.ndarray:
    """Apply standard scaling; a feature whose std is 0 becomes 0 when scaling by std.

    A std below the smallest normal float64 (a denormal, whose reciprocal
    overflows) counts as 0 too. Values that overflow become ±inf without a
    warning: the caller quarantines the rows that hold them.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        result = matrix - mean if with_mean else matrix.copy()
        if with_std:
            zero = ~(std >= np.finfo(np.float64).tiny)
            np.divide(result, np.where(zero, 1.0, std), out=result)
            result[:, zero] = 0.0
    return result
