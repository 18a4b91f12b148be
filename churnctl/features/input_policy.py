"""The input policy: a batch → a typed ``Frame``, rejecting bad values per row.

Shared by every runtime (batch, watch, Flink) so a value is accepted or rejected
the same way everywhere. A batch is a pyarrow ``RecordBatch`` or ``Table`` or a
pandas ``DataFrame`` (``arrow_batch``: the one place that accepts and checks
one). Numbers in text may carry surrounding whitespace and exponent notation;
their decimal mark is ``.`` or, with ``decimal=","``, ``,`` (``101348,88``), never
both, and never with thousands separators; empty, non-numeric and non-finite
values reject the row. Category values are matched exactly; an empty value
counts as missing (null).
"""

from __future__ import annotations

import math
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnctl.arguments import wrong
from churnctl.errors import UsageError
from churnctl.features.columns import MAX_FIELD_CHARS, as_array, as_text, empty_as_null
from churnctl.features.frame import Frame
from churnctl.features.schema_check import check_header

if TYPE_CHECKING:
    import pandas as pd

Batch = pa.RecordBatch | pa.Table
BatchLike: TypeAlias = "pa.RecordBatch | pa.Table | pd.DataFrame"

NUMBER_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
DECIMAL_MARKS = (".", ",")
NON_FINITE_PATTERN = r"^[+-]?(nan|inf|infinity)$"
EMPTY, NOT_A_NUMBER, NOT_FINITE = "empty value", "not a number", "non-finite value"
TOO_LONG = f"field longer than {MAX_FIELD_CHARS:,} characters"
BATCH_TAKES = "a pyarrow RecordBatch or Table, or a pandas DataFrame"
NAMES_SHOWN = 10  # duplicate column names listed in a message
# pandas' inferred kinds of an object column that Arrow converts faithfully
UNIFORM = {"string", "empty", "integer", "floating", "mixed-integer-float", "boolean", "decimal"}
NUMERIC_TYPES = (
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_decimal,
    pa.types.is_boolean,
)


@dataclass(frozen=True)
class InputSchema:
    """The raw columns a pipeline reads: categorical (string) and numeric (float64)."""

    categorical: tuple[str, ...]
    numeric: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.categorical + self.numeric


def arrow_batch(
    batch: BatchLike, required: Sequence[str], *, name: str = "batch", kept: Sequence[str] = ()
) -> Batch:
    """The batch as Arrow, checked to hold every ``required`` column (``name`` in messages).

    A ``RecordBatch`` or ``Table`` is taken as it is, a pandas ``DataFrame`` converted
    (its index dropped); anything else is a ``UsageError``. ``kept``: the required
    columns that are only copied to the output (named so when missing).
    """
    if not isinstance(batch, pa.RecordBatch | pa.Table):
        batch = _from_pandas(batch)
    check_header(name, batch.schema.names, required, kept=kept)
    return batch


def _from_pandas(frame: Any) -> pa.Table:
    """A DataFrame as Arrow; an object column mixing types is read as text, cell by cell.

    A stray value (a ``True`` among ages) then rejects its row by the input policy
    (its text is not a number, or not a known category), not the whole batch.
    """
    pandas = sys.modules.get("pandas")  # not imported: the object cannot be a DataFrame
    if pandas is None or not isinstance(frame, pandas.DataFrame):
        hint = "to score a file, use churnctl.score_file" if _is_path(frame) else ""
        raise wrong("", "batch", frame, BATCH_TAKES, hint)
    _refuse_duplicate_columns(frame)
    try:
        return pa.Table.from_pandas(_mixed_as_text(frame, pandas), preserve_index=False)
    except (TypeError, ValueError, pa.ArrowException) as exc:
        reason = " ".join(str(exc).split())[:200] or "not convertible"
        raise UsageError(f"cannot read this DataFrame as a batch: {reason}") from None


def _is_path(value: Any) -> bool:
    return isinstance(value, str | os.PathLike)


def _refuse_duplicate_columns(frame: Any) -> None:
    counts = Counter(str(name) for name in frame.columns)
    duplicates = sorted(name for name, count in counts.items() if count > 1)
    if duplicates:
        shown = ", ".join(duplicates[:NAMES_SHOWN])
        extra = len(duplicates) - NAMES_SHOWN
        more = f" and {extra:,} more" if extra > 0 else ""
        raise UsageError(
            f"the DataFrame has duplicate column names: {shown}{more}; rename or drop them"
        )


def _mixed_as_text(frame: Any, pandas: Any) -> Any:
    """``frame``, or a shallow copy with each object column mixing kinds of values as text.

    Arrow would refuse such a column (ints and a bool), or worse read it (a ``False``
    among floats as 0.0).
    """
    infer = pandas.api.types.infer_dtype  # compiled: no Python loop over a uniform column
    mixed = [
        i
        for i, (_, series) in enumerate(frame.items())
        if series.dtype == object and infer(series, skipna=True) not in UNIFORM
    ]
    if not mixed:
        return frame
    copied = frame.copy(deep=False)
    for position in mixed:
        series = frame.iloc[:, position]
        text = [_cell_text(value) for value in series]
        copied.isetitem(position, pandas.Series(text, index=series.index, dtype=object))
    return copied


def _cell_text(value: Any) -> str | None:
    """A cell as a CSV field would hold it: None when missing, else its text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value if isinstance(value, str) else str(value)


def check_decimal(decimal: Any) -> str:
    """A decimal mark the input policy reads: ``.`` or ``,``."""
    if not isinstance(decimal, str) or decimal not in DECIMAL_MARKS:
        raise UsageError(
            f"decimal must be '.' or ',' (the decimal mark of numbers in text), got {decimal!r}"
        )
    return decimal


def frame_from_batch(batch: Batch, schema: InputSchema, *, decimal: str = ".") -> Frame:
    """Typed frame for the schema's columns; bad numeric values are rejected per row.

    ``decimal``: the decimal mark of numbers written as text (``.`` or ``,``).
    """
    check_decimal(decimal)
    frame = Frame({}, batch.num_rows)
    for name in schema.columns:
        frame.reject(_too_long(_column(batch, name)), name, TOO_LONG)
    for name in schema.categorical:
        frame[name] = categorical_column(_column(batch, name))
    for name in schema.numeric:
        values, reasons = numeric_column(_column(batch, name), decimal=decimal)
        frame[name] = values
        if reasons is not None:
            frame.reject(reasons != None, name, reasons)  # noqa: E711 - element-wise
    return frame


def _column(batch: Batch, name: str) -> pa.Array:
    return as_array(batch.column(name))


def _too_long(column: pa.Array) -> np.ndarray:
    text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    if not text or len(column) == 0:
        return np.zeros(len(column), dtype=bool)
    if (pc.max(pc.binary_length(column)).as_py() or 0) <= MAX_FIELD_CHARS:
        return np.zeros(len(column), dtype=bool)  # bytes >= characters: nothing is too long
    lengths = pc.utf8_length(column).fill_null(0)
    return pc.greater(lengths, MAX_FIELD_CHARS).to_numpy(zero_copy_only=False)


def categorical_column(column: pa.Array) -> pa.Array:
    """String values as they are, with the empty string treated as missing."""
    return empty_as_null(as_text(column))


def numeric_column(column: pa.Array, *, decimal: str = ".") -> tuple[np.ndarray, np.ndarray | None]:
    """Float64 values and per-row reasons (None where valid, or None if all valid).

    Text is parsed with ``decimal`` as its decimal mark; numeric columns are taken as
    they are.
    """
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _parse_strings(column, decimal)
    if not any(test(kind) for test in NUMERIC_TYPES):
        return _parse_strings(as_text(column), decimal)
    # booleans are 1/0; integers beyond 2**53 take the nearest float64, as their text would
    values = pc.cast(column, pa.float64(), safe=False).fill_null(0.0)
    values = values.to_numpy(zero_copy_only=False)
    missing = column.is_null().to_numpy(zero_copy_only=False)
    return values, _reasons(len(values), missing=missing, malformed=None, values=values)


def _parse_strings(column: pa.Array, decimal: str) -> tuple[np.ndarray, np.ndarray | None]:
    foreign = None  # the values holding a "." when the decimal mark is ","
    if decimal != ".":
        column, foreign = _with_decimal_point(column, decimal)
    fast = _cast_clean(column) if foreign is None else None
    if fast is not None:
        return fast, None
    trimmed = pc.utf8_trim_whitespace(column)
    missing = pc.or_kleene(trimmed.is_null(), pc.equal(trimmed, "")).fill_null(True)
    wellformed = pc.match_substring_regex(trimmed, NUMBER_PATTERN).fill_null(False)
    if foreign is not None:
        wellformed = pc.and_(wellformed, pc.invert(foreign))
    cleaned = pc.if_else(wellformed, trimmed, "0")
    values = pc.cast(cleaned, pa.float64()).to_numpy(zero_copy_only=False)
    missing_np = missing.to_numpy(zero_copy_only=False)
    malformed = ~wellformed.to_numpy(zero_copy_only=False) & ~missing_np
    if malformed.any():
        spelled = pc.match_substring_regex(trimmed, NON_FINITE_PATTERN, ignore_case=True)
        spelled_np = spelled.fill_null(False).to_numpy(zero_copy_only=False)
        values = np.where(spelled_np, np.nan, values)
        malformed &= ~spelled_np
    return values, _reasons(len(values), missing=missing_np, malformed=malformed, values=values)


def _with_decimal_point(column: pa.Array, decimal: str) -> tuple[pa.Array, pa.Array | None]:
    """The text with ``decimal`` spelled ``.``, and which values held a ``.`` (None if none).

    Those values are not numbers in this mode: a ``.`` is neither the decimal mark nor,
    since no thousands separator is read, anything else.
    """
    foreign = pc.match_substring(column, ".").fill_null(False)
    swapped = pc.replace_substring(column, decimal, ".")
    return swapped, foreign if pc.any(foreign).as_py() else None


def _cast_clean(column: pa.Array) -> np.ndarray | None:
    """Fast path: Arrow's cast accepts exactly NUMBER_PATTERN plus nan/inf spellings."""
    if column.null_count:
        return None
    try:
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        return None
    return values if np.isfinite(values).all() else None


def _reasons(
    n: int, *, missing: np.ndarray, malformed: np.ndarray | None, values: np.ndarray
) -> np.ndarray | None:
    nonfinite = ~np.isfinite(values)
    if malformed is None:
        malformed = np.zeros(n, dtype=bool)
    if not (missing.any() or malformed.any() or nonfinite.any()):
        return None
    reasons = np.full(n, None, dtype=object)
    reasons[nonfinite] = NOT_FINITE
    reasons[malformed] = NOT_A_NUMBER
    reasons[missing] = EMPTY
    return reasons
