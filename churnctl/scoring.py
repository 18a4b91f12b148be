"""Scoring as a pure function of (state, model, record batch).

Every runtime (batch files, directory watch, Flink) calls ``score_batch``; I/O
and orchestration live elsewhere. Each input row ends up either in ``scored``
or in ``rejects``, so ``n_read == scored.num_rows + rejects.num_rows``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnctl.frame import Frame
from churnctl.inputs import frame_from_batch
from churnctl.model import ChurnModel
from churnctl.state import FeatureState

ROW_REJECT_SCHEMA = pa.schema(
    [("row", pa.int64()), ("column", pa.string()), ("reason", pa.string()), ("value", pa.string())]
)


@dataclass(frozen=True)
class ScoredBatch:
    """Scored rows (kept columns, ``raw``, ``exited``) and rejected rows of one batch."""

    scored: pa.Table
    rejects: pa.Table  # ROW_REJECT_SCHEMA; ``row`` is 0-based within the batch

    @property
    def n_read(self) -> int:
        return self.scored.num_rows + self.rejects.num_rows


def output_schema(keep: Sequence[str]) -> pa.Schema:
    """Schema of scored rows: kept columns as text, the probability, the decision."""
    fields = [pa.field(name, pa.string()) for name in keep]
    return pa.schema([*fields, pa.field("raw", pa.float32()), pa.field("exited", pa.bool_())])


def score_batch(
    state: FeatureState,
    model: ChurnModel,
    batch: pa.RecordBatch | pa.Table,
    *,
    keep: Sequence[str] = ("CustomerId",),
    threshold: float = 0.5,
) -> ScoredBatch:
    """Extract features with the state, run the model on valid rows, split off rejects."""
    frame = frame_from_batch(batch, state.pipeline.input_schema)
    features = state.pipeline.transform(frame)
    ok = frame.ok
    raw = model.predict_proba(features[ok]).astype(np.float32)
    kept = [_as_text(batch.column(name)).filter(pa.array(ok)) for name in keep]
    columns = [*kept, pa.array(raw, pa.float32()), pa.array(raw > threshold, pa.bool_())]
    scored = pa.Table.from_arrays(columns, schema=output_schema(keep))
    return ScoredBatch(scored, _rejects(batch, frame))


def _as_text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


def _rejects(batch: pa.RecordBatch | pa.Table, frame: Frame) -> pa.Table:
    rows = np.flatnonzero(frame.rejected)
    columns, reasons = frame.reject_column, frame.reject_reason
    if len(rows) == 0 or columns is None or reasons is None:
        return ROW_REJECT_SCHEMA.empty_table()
    names = columns[rows].tolist()
    values = [_cell_text(batch, name, int(row)) for name, row in zip(names, rows, strict=True)]
    arrays = [pa.array(rows, pa.int64()), pa.array(names), pa.array(reasons[rows].tolist()),
              pa.array(values, pa.string())]  # fmt: skip
    return pa.Table.from_arrays(arrays, schema=ROW_REJECT_SCHEMA)


def _cell_text(batch: pa.RecordBatch | pa.Table, column: str, row: int) -> str | None:
    value = batch.column(column)[row].as_py()
    return None if value is None else str(value)
