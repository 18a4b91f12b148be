"""Arrow column helpers shared by the input policy, the stages and the scorer."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ColumnLike = pa.Array | pa.ChunkedArray | np.ndarray
MAX_FIELD_CHARS = 10_000  # a longer field is rejected; a quoted field may not run on further


def as_array(values: ColumnLike) -> pa.Array:
    """One contiguous Arrow array (chunks combined, dictionaries decoded; NumPy → strings).

    A sliced string array is copied to offset 0: Arrow 16's ``if_else`` with a
    scalar misreads the text of a string array that has an offset.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        return pa.array(values, type=pa.string())
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if values.offset and pa.types.is_string(values.type):
        return pa.concat_arrays([values])
    return values


def as_text(values: ColumnLike) -> pa.Array:
    """The column as an Arrow string array, every value as text that reads back the same.

    Floats: the shortest text that reads back as the same float, whole numbers
    without an exponent (``15580685000000000000``, not ``1.5580685e+19``). Bytes
    that are not UTF-8 get replacement characters; nested values become JSON.
    """
    column = as_array(values)
    if pa.types.is_string(column.type):
        return column
    if pa.types.is_floating(column.type):
        return _float_text(column)
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([_python_text(value) for value in column.to_pylist()], pa.string())


def _float_text(column: pa.Array) -> pa.Array:
    """Arrow's shortest float text, with its exponent form rewritten where positional fits."""
    if pa.types.is_float16(column.type):
        column = pc.cast(column, pa.float32())
    text = pc.cast(column, pa.string())
    exponent = pc.match_substring(text, "e").fill_null(False).to_numpy(zero_copy_only=False)
    if not exponent.any():
        return text
    values = column.to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        magnitude = np.abs(values)
        positional = (values == np.trunc(values)) | ((magnitude >= 1e-4) & (magnitude < 1e16))
    texts = np.array(text.to_pylist(), dtype=object)
    for i in np.flatnonzero(exponent & positional):
        texts[i] = np.format_float_positional(values[i], trim="-")
    return pa.array(texts, pa.string())


def _python_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return json.dumps(value, default=str, ensure_ascii=False)


def empty_as_null(values: pa.Array) -> pa.Array:
    """String values with the empty string turned into null (a missing category)."""
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
