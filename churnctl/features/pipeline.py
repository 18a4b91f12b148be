"""The feature pipeline: an ordered list of stages, and ``StreamingFit``, its fit pass by pass.

Presets and spec files are in ``spec``; the checks of which columns the stages
read and write are in ``graph``.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from churnctl.errors import REFIT, Fix, NotFittedError, PipelineSpecError, Step, listing
from churnctl.features.frame import Frame
from churnctl.features.graph import input_schema_of
from churnctl.features.stages import Accumulator, ColumnNames, Shape, Stage

# A fit transforms a batch in slices of rows such that rows * widest column * 8 bytes stays
# under this: memory does not grow with rows * width (each slice holds a few such matrices).
SLICE_BYTES = 8 << 20


class FeaturePipeline:
    """Ordered stages turning raw columns into one float64 feature matrix."""

    def __init__(self, *, stages: list[Stage]) -> None:
        if not stages:
            raise PipelineSpecError("a pipeline needs at least one stage")
        self.stages = list(stages)
        self.input_schema = input_schema_of(self.stages)
        self.output_col = self.stages[-1].output_columns()[0]
        self.raw_names = _raw_names(self.stages)

    def fit(self, frame: Frame) -> FeaturePipeline:
        """Fit every stage in order on the frame's non-rejected rows."""
        for stage in self.stages:
            stage.fit(frame)
            stage.transform(frame)
        self.feature_names_ = self.compute_feature_names()
        return self

    def is_fitted(self) -> bool:
        return all(stage.is_fitted() for stage in self.stages)

    def transform(self, frame: Frame) -> np.ndarray:
        """Run every stage; return the float64 feature matrix (rejected rows included)."""
        if not self.is_fitted():
            raise NotFittedError(
                "the feature pipeline is not fitted: fit it on training data first, "
                "or load a fitted state",
                step=Step(REFIT.action, "fit a state"),
                fix=Fix("state", "state.json"),
            )
        for stage in self.stages:
            stage.transform(frame)
        name_raw_columns(frame, self.raw_names)
        matrix = np.asarray(frame[self.output_col], dtype=np.float64)
        return matrix[:, np.newaxis] if matrix.ndim == 1 else matrix

    def compute_feature_names(self) -> list[str]:
        """The output vector's feature names, in order (``Geography=France``, ``Age``, ...)."""
        names: dict[str, ColumnNames] = {}
        for stage in self.stages:
            names.update(stage.feature_names(names))
        features = list(names[self.output_col].features)
        if not features:
            raise PipelineSpecError(
                f"the pipeline's output {self.output_col} has no features (a one-hot encoder "
                "with drop_last over a single category leaves none); a model needs at least one"
            )
        repeated = sorted(name for name, n in Counter(features).items() if n > 1)
        if repeated:
            raise PipelineSpecError(
                f"feature name(s) {listing(repeated)} appear twice in {self.output_col} (a "
                "binding matches features by name); assemble each input once"
            )
        return features

    def vocabularies(self) -> dict[str, list[str]]:
        """Every categorical input column → the labels learned for it."""
        learned: dict[str, list[str]] = {}
        for stage in self.stages:
            learned.update(stage.vocabularies())
        return learned

    @property
    def n_features(self) -> int:
        return len(self.feature_names_)

    def slice_rows(self) -> int:
        """How many rows to transform at once: rows x widest column x 8 bytes <= ``SLICE_BYTES``."""
        shapes: dict[str, Shape] = {}
        for stage in self.stages:
            if not stage.is_fitted():
                break  # the widest column the stages fitted so far write
            shapes.update(stage.shapes(shapes))
        widest = max([1, *(shape.width for shape in shapes.values())])
        return max(1, SLICE_BYTES // (8 * widest))


def _raw_names(stages: list[Stage]) -> dict[str, str]:
    """Each index column -> the input column it indexes (what a reject on it names)."""
    return {
        out: col
        for stage in stages
        if stage.WRITES_INDICES
        for col, out in zip(stage.input_columns(), stage.output_columns(), strict=True)
    }


def name_raw_columns(frame: Frame, raw_names: dict[str, str]) -> None:
    """Rejects on an index column name the input column behind it (Geography, not its index)."""
    if frame.reject_column is None or not raw_names:
        return
    for written, raw in raw_names.items():
        frame.reject_column[frame.reject_column == written] = raw


def fitting_levels(stages: list[Stage]) -> list[int]:
    """The pass over the training data (0 first) in which each stage is fitted.

    A stage is fitted after an earlier stage whose output it reads, or whose
    transform may reject rows (it must fit on the rows that survive them): in
    the next pass if that stage needs every row (``NEEDS_ROWS``), in the same
    pass if it is fitted from the pass's first batch alone.
    """
    levels: list[int] = []
    for position, stage in enumerate(stages):
        reads = set(stage.input_columns())
        level = 0
        for earlier, at in zip(stages[:position], levels, strict=True):
            if reads.intersection(earlier.output_columns()) or earlier.rejects_rows():
                level = max(level, at + 1 if earlier.NEEDS_ROWS else at)
        levels.append(level)
    return levels


class StreamingFit:
    """Fits a pipeline one batch at a time, in constant memory, one pass per fitting level.

    For each of ``passes`` passes over the same data: ``update`` with each
    batch's frame, in order, then ``end_pass``. ``update`` applies every stage
    fitted so far to the frame; in the last pass (``last_pass``) the frame
    leaves with the rejections the fitted pipeline makes (with one more pass
    than the levels when the last level's stages may reject rows).
    """

    def __init__(self, pipeline: FeaturePipeline) -> None:
        self.pipeline = pipeline
        self.levels = fitting_levels(pipeline.stages)
        self.fitting_passes = max(self.levels) + 1
        last = zip(pipeline.stages, self.levels, strict=True)
        rejecting = any(
            stage.NEEDS_ROWS and stage.rejects_rows()
            for stage, level in last
            if level == self.fitting_passes - 1
        )
        self.passes = self.fitting_passes + int(rejecting)
        self.pass_index = 0
        self._open = self._accumulators(0)

    @property
    def last_pass(self) -> bool:
        return self.pass_index == self.passes - 1

    def update(self, frame: Frame) -> Frame:
        """Fit this pass's stages on the frame, after applying the stages fitted before them.

        A wide pipeline takes the frame in slices of rows (``SLICE_BYTES``); the frame
        leaves with their rejections, not with the columns the stages wrote.
        """
        rows = self.pipeline.slice_rows()
        if frame.n_rows <= rows:
            self._update_rows(frame)
        else:
            for start in range(0, frame.n_rows, rows):
                part = frame.rows(start, min(start + rows, frame.n_rows))
                self._update_rows(part)
                frame.take_rejections(part, start)
        name_raw_columns(frame, self.pipeline.raw_names)  # reasons name the raw column
        return frame

    def _update_rows(self, frame: Frame) -> None:
        for index, stage in enumerate(self.pipeline.stages):
            accumulator = self._open.get(index)
            if accumulator is not None:
                accumulator.update(frame)
                if stage.NEEDS_ROWS:
                    continue
                accumulator.finish()  # fitted on shapes: applied from this batch on
                del self._open[index]
            if self.levels[index] <= self.pass_index:
                stage.transform(frame)

    def end_pass(self) -> None:
        """Finish the stages fitted in this pass; the pipeline is fitted after the last level."""
        for accumulator in self._open.values():
            accumulator.finish()
        self.pass_index += 1
        if self.pass_index == self.fitting_passes:
            self.pipeline.feature_names_ = self.pipeline.compute_feature_names()
        self._open = self._accumulators(self.pass_index)

    def _accumulators(self, level: int) -> dict[int, Accumulator]:
        pairs = enumerate(zip(self.pipeline.stages, self.levels, strict=True))
        return {index: stage.accumulator() for index, (stage, at) in pairs if at == level}
