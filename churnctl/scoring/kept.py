"""The type a kept input column has in the output.

A kept column keeps its type where the output can hold it: integers, floats
(a half float as float32), booleans and text stay as they are (a dictionary is
decoded first); any other type (dates, decimals, bytes, nested values, a column
of nulls only) is written as text, as ``features.columns.as_text`` spells it.
A CSV input is read as text, so its kept columns are text; a Parquet file or a
pandas ``DataFrame`` gives them their own types. A file output fixes each kept
column's type before its first row (``agreed_types``); CSV output keeps them
as text, byte for byte what it always wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from churnctl.features.columns import ColumnLike, as_array, as_text

TEXT = pa.string()


def kept_type(kind: pa.DataType) -> pa.DataType:
    """The output type of a kept column of Arrow type ``kind``."""
    if pa.types.is_dictionary(kind):
        return kept_type(kind.value_type)
    if pa.types.is_float16(kind):
        return pa.float32()
    keeps = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_string)
    return kind if any(test(kind) for test in keeps) else TEXT


def kept_array(values: ColumnLike, kind: pa.DataType | None = None) -> pa.Array:
    """The column as the output holds it: of type ``kind`` if given, else ``kept_type``'s."""
    column = as_array(values)
    kind = kept_type(column.type) if kind is None else kind
    if kind == TEXT:
        return as_text(column)
    return column if column.type == kind else pc.cast(column, kind)


def agreed_types(inputs: Iterable[Mapping[str, pa.DataType]]) -> dict[str, pa.DataType]:
    """One type per kept column for an output joined from several inputs: the inputs' own
    type where they all agree on it, else text (an id read as int64 from a Parquet file and
    as text from a CSV file is text)."""
    agreed: dict[str, pa.DataType] = {}
    for types in inputs:
        for name, kind in types.items():
            kind = kept_type(kind)
            agreed[name] = kind if agreed.get(name, kind) == kind else TEXT
    return agreed
