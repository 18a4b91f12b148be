"""Arrow column helpers shared by the input policy, the stages and the scorer."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ColumnLike = pa.Array | pa.ChunkedArray | np.ndarray
MAX_FIELD_CHARS = 10_000  # a longer field is rejected; a quoted field may not run on further


def as_array(values: ColumnLike) -> pa.Array:
    """One contiguous Arrow array (chunks combined; a NumPy array becomes strings).

    A sliced string array is copied to offset 0: Arrow 16's ``if_else`` with a
    scalar misreads the text of a string array that has an offset.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        return pa.array(values, type=pa.string())
    if values.offset and pa.types.is_string(values.type):
        return pa.concat_arrays([values])
    return values


def as_text(values: ColumnLike) -> pa.Array:
    """The column as an Arrow string array."""
    column = as_array(values)
    return column if pa.types.is_string(column.type) else pc.cast(column, pa.string())


def empty_as_null(values: pa.Array) -> pa.Array:
    """String values with the empty string turned into null (a missing category)."""
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
