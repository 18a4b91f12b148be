"""The columns a batch must have, checked on its header or schema before any row is read.

Shared by every reader (CSV header, Parquet schema) and by the ``Scorer`` on a record
batch: a missing header, a wrong delimiter, duplicate or missing columns, nested types.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pyarrow as pa

from churnctl.errors import Fix, SchemaError, listing


def check_header(
    name: str,
    columns: Sequence[str] | pa.Schema,
    required: Sequence[str],
    *,
    kept: Sequence[str] = (),
) -> None:
    """Refuse a missing header, a wrong delimiter, duplicate names or missing columns.

    Given a schema, also refuse required columns of nested types (struct, list, map).
    ``kept``: the required columns that are only copied to the output, named so when
    they are the ones missing.
    """
    names = list(columns.names if isinstance(columns, pa.Schema) else columns)
    present = set(names)
    missing = [c for c in required if c not in present]
    if required and len(missing) == len(required) and any(_looks_numeric(c) for c in names):
        raise SchemaError(
            f"{name}: no header row: the first line looks like data; add a header line "
            f"naming the columns ({listing(required)})"
        )
    delimiter = _likely_delimiter(names) if missing else None
    if delimiter is not None:
        raise SchemaError(
            f"{name}: the header has one column but looks {delimiter!r}-delimited",
            fix=Fix("delimiter", delimiter),
        )
    duplicates = sorted(c for c, n in Counter(names).items() if n > 1)
    if duplicates:
        raise SchemaError(f"{name}: duplicate column name(s) {listing(duplicates)} in the header")
    if missing and set(missing) <= set(kept):
        raise SchemaError(
            f"{name}: missing column(s) {listing(missing)} named to keep; found: {listing(names)}",
            fix=Fix("keep", note="with only columns the input has"),
        )
    if missing:
        raise SchemaError(
            f"{name}: missing required column(s) {listing(missing)}; found: {listing(names)}"
        )
    if isinstance(columns, pa.Schema):
        _check_types(name, columns, required)


def _check_types(name: str, schema: pa.Schema, required: Sequence[str]) -> None:
    for column in required:
        kind = schema.field(column).type
        if pa.types.is_nested(kind):
            raise SchemaError(
                f"{name}: column {column} holds nested values ({kind}), not numbers or text; "
                "flatten it into plain columns"
            )


def _likely_delimiter(columns: Sequence[str]) -> str | None:
    if len(columns) != 1:
        return None
    counts = {d: columns[0].count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else None


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
