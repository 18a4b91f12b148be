"""Arrow column helpers shared by the input policy, the stages and the scorer."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ColumnLike = pa.Array | pa.ChunkedArray | np.ndarray


def as_array(values: ColumnLike) -> pa.Array:
    """One contiguous Arrow array (chunks combined; a NumPy array becomes strings)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return values if isinstance(values, pa.Array) else pa.array(values, type=pa.string())


def as_text(values: ColumnLike) -> pa.Array:
    """The column as an Arrow string array."""
    column = as_array(values)
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


def empty_as_null(values: pa.Array) -> pa.Array:
    """String values with the empty string turned into null (a missing category)."""
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
