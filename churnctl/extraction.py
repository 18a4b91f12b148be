"""Feature extraction: a state applied to a record batch, rejections kept per row.

Needs no model: training scripts use it to build the matrix a model learns
from, and ``Scorer.features`` is exactly this, so training and serving share it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnctl.inputs import frame_from_batch
from churnctl.state import FeatureState


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
    """The float32 feature matrix, the valid-row mask and each row's reject column/reason."""
    frame = frame_from_batch(batch, state.pipeline.input_schema)
    matrix = state.pipeline.transform(frame).astype(np.float32)
    n_rows = batch.num_rows
    return FeatureBatch(
        matrix,
        frame.ok,
        _strings(frame.reject_column, n_rows),
        _strings(frame.reject_reason, n_rows),
    )


def _strings(values: np.ndarray | None, n_rows: int) -> pa.Array:
    if values is None:
        return pa.nulls(n_rows, pa.string())
    return pa.array(values.tolist(), pa.string())
