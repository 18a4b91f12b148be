"""Feature extraction: a state applied to a record batch, rejections kept per row.

Needs no model: training scripts use it to build the matrix a model learns
from, and ``Scorer.features`` is exactly this, so training and serving share it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnctl.frame import Frame
from churnctl.inputs import frame_from_batch
from churnctl.state import FeatureState

TOO_LARGE = "value too large after scaling"


@dataclass(frozen=True)
class FeatureBatch:
    """Features of a batch: ``matrix`` [N, k] float32 (placeholders where not ``valid``)."""

    matrix: np.ndarray
    valid: np.ndarray
    reject_column: pa.Array  # string, null where the row is valid
    reject_reason: pa.Array  # string, null where the row is valid

    def rejecting(self, rows: np.ndarray, column: str | None, reason: str) -> FeatureBatch:
        """The same features with the still-valid ``rows`` (a mask) rejected for ``reason``."""
        fresh = rows & self.valid
        if not fresh.any():
            return self
        mask = pa.array(fresh)
        return replace(
            self,
            valid=self.valid & ~fresh,
            reject_column=pc.if_else(mask, pa.scalar(column, pa.string()), self.reject_column),
            reject_reason=pc.if_else(mask, pa.scalar(reason, pa.string()), self.reject_reason),
        )


def extract_features(state: FeatureState, batch: pa.RecordBatch | pa.Table) -> FeatureBatch:
    """The float32 feature matrix, the valid-row mask and each row's reject column/reason.

    A row with a feature that is not finite in float32 (a value too large after
    scaling) is rejected on the feature's column, never handed to a model.
    """
    frame = frame_from_batch(batch, state.pipeline.input_schema)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow → inf → rejected below
        matrix = state.pipeline.transform(frame).astype(np.float32)
    _reject_non_finite(frame, matrix, state)
    n_rows = batch.num_rows
    return FeatureBatch(
        matrix,
        frame.ok,
        _strings(frame.reject_column, n_rows),
        _strings(frame.reject_reason, n_rows),
    )


def _reject_non_finite(frame: Frame, matrix: np.ndarray, state: FeatureState) -> None:
    """Reject the valid rows holding a non-finite feature, naming the first such feature."""
    bad = ~np.isfinite(matrix)
    rows = bad.any(axis=1) & frame.ok
    if not rows.any():
        return
    first = bad.argmax(axis=1)
    names, columns = state.feature_names, set(state.pipeline.input_schema.columns)
    for position in np.unique(first[rows]):
        name = names[position]
        mask = rows & (first == position)
        if name in columns:
            frame.reject(mask, name, TOO_LARGE)
        else:  # a derived feature (one-hot): no one input column holds its value
            frame.reject(mask, None, f"feature {name} too large after scaling")


def _strings(values: np.ndarray | None, n_rows: int) -> pa.Array:
    if values is None:
        return pa.nulls(n_rows, pa.string())
    return pa.array(values.tolist(), pa.string())
