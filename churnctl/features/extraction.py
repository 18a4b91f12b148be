"""Feature extraction: a state applied to a record batch, rejections kept per row.

Needs no model: training scripts use it to build the matrix a model learns
from, and ``Scorer.features`` is exactly this, so training and serving share it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, overload

import numpy as np
import pyarrow as pa

from churnctl.arguments import check_bool, check_type
from churnctl.features.frame import Frame
from churnctl.features.input_policy import BatchLike, arrow_batch, frame_from_batch
from churnctl.features.profile import ParsedColumns
from churnctl.features.state import FeatureState

if TYPE_CHECKING:
    import pandas as pd

TOO_LARGE = "value too large after scaling"
ROW_REJECT_SCHEMA = pa.schema(
    [("row", pa.int64()), ("column", pa.string()), ("reason", pa.string()), ("value", pa.string())]
)


@dataclass(frozen=True)
class FeatureBatch:
    """Features of a batch: ``matrix`` [N, k] float32 (placeholders where not ``valid``)."""

    matrix: np.ndarray
    valid: np.ndarray
    reject_column: pa.Array  # string, null where the row is valid
    reject_reason: pa.Array  # string, null where the row is valid
    # the raw columns as the input policy typed them, for observers (features.drift)
    parsed: ParsedColumns | None = field(default=None, compare=False, repr=False)

    def rejecting(self, rows: np.ndarray, column: str | None, reason: str) -> FeatureBatch:
        """The same features with the still-valid ``rows`` (a mask) rejected for ``reason``."""
        fresh = rows & self.valid
        if not fresh.any():
            return self
        columns = self.reject_column.to_numpy(zero_copy_only=False).copy()
        reasons = self.reject_reason.to_numpy(zero_copy_only=False).copy()
        columns[fresh], reasons[fresh] = column, reason
        return replace(
            self,
            valid=self.valid & ~fresh,
            reject_column=pa.array(columns.tolist(), pa.string()),
            reject_reason=pa.array(reasons.tolist(), pa.string()),
        )


@overload
def extract_features(
    state: FeatureState, batch: BatchLike, *, decimal: str = ..., as_frame: Literal[False] = ...
) -> FeatureBatch: ...


@overload
def extract_features(
    state: FeatureState, batch: BatchLike, *, decimal: str = ..., as_frame: Literal[True]
) -> pd.DataFrame: ...


def extract_features(
    state: FeatureState, batch: BatchLike, *, decimal: str = ".", as_frame: bool = False
) -> FeatureBatch | pd.DataFrame:
    """The float32 feature matrix, the valid-row mask and each row's reject column/reason.

    ``batch``: a pyarrow ``RecordBatch`` or ``Table``, or a pandas ``DataFrame``, holding
    the state's input columns; ``decimal``, the decimal mark of numbers written as text
    (``.`` or ``,``). A row with a feature that is not finite in float32 (a value too
    large after scaling) is rejected on the feature's column, never handed to a model.
    ``as_frame``: the features as a pandas DataFrame instead (``feature_frame``).
    """
    check_type("extract_features", "state", state, FeatureState, "a FeatureState (load_state)")
    check_bool("extract_features", "as_frame", as_frame)
    schema = state.pipeline.input_schema
    frame = frame_from_batch(arrow_batch(batch, schema.columns), schema, decimal=decimal)
    parsed = ParsedColumns.of(frame)  # before any stage: shared columns, no copy
    with np.errstate(over="ignore", invalid="ignore"):  # overflow → inf → rejected below
        matrix = _transformed(state, frame)
    _reject_non_finite(frame, matrix, state)
    parsed = parsed.with_indices(frame, state.pipeline.raw_names)
    features = features_of_frame(frame, matrix, parsed)
    return feature_frame(state, features, batch) if as_frame else features


def feature_frame(state: FeatureState, features: FeatureBatch, batch: object) -> pd.DataFrame:
    """The features as a float32 DataFrame, ``state.feature_names`` as its columns, on the
    batch's index when it is a DataFrame (else a RangeIndex); a rejected row is all NaN."""
    import pandas as pd

    matrix = np.where(features.valid[:, None], features.matrix, np.float32(np.nan))
    index = batch.index if isinstance(batch, pd.DataFrame) else None
    return pd.DataFrame(matrix, columns=state.feature_names, index=index, copy=False)


def _transformed(state: FeatureState, frame: Frame) -> np.ndarray:
    """The float32 features, a wide pipeline's in slices of rows (memory: rows x width x 4)."""
    pipeline = state.pipeline
    rows = pipeline.slice_rows()
    if frame.n_rows <= rows:
        return pipeline.transform(frame).astype(np.float32)
    matrix = np.empty((frame.n_rows, pipeline.n_features), dtype=np.float32)
    for start in range(0, frame.n_rows, rows):
        part = frame.rows(start, min(start + rows, frame.n_rows))
        matrix[start : start + part.n_rows] = pipeline.transform(part)
        frame.take_rejections(part, start)
    return matrix


def features_of_frame(
    frame: Frame, matrix: np.ndarray, parsed: ParsedColumns | None = None
) -> FeatureBatch:
    """A transformed frame's features: its matrix as float32, and its rejections."""
    column = _strings(frame.reject_column, frame.n_rows)
    reason = _strings(frame.reject_reason, frame.n_rows)
    matrix = matrix.astype(np.float32, copy=False)
    return FeatureBatch(matrix, frame.ok, column, reason, parsed)


def rejected_rows(batch: pa.RecordBatch | pa.Table, features: FeatureBatch) -> pa.Table:
    """The batch's rejected rows: 0-based row, column, reason, and the cell's text."""
    rows = np.flatnonzero(~features.valid)
    if len(rows) == 0:
        return ROW_REJECT_SCHEMA.empty_table()
    index = pa.array(rows, pa.int64())
    names = features.reject_column.take(index)
    pairs = zip(names.to_pylist(), rows.tolist(), strict=True)
    values = [_cell_text(batch, name, row) for name, row in pairs]
    arrays = [index, names, features.reject_reason.take(index), pa.array(values, pa.string())]
    return pa.Table.from_arrays(arrays, schema=ROW_REJECT_SCHEMA)


def _cell_text(batch: pa.RecordBatch | pa.Table, column: str | None, row: int) -> str | None:
    """The cell's text; None where no one cell is to blame (a model output, a derived feature)."""
    if column is None or column not in batch.schema.names:
        return None
    value = batch.column(column)[row].as_py()
    return None if value is None else str(value)


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
