"""Small batches joined into larger ones, in order: per-batch costs paid per many rows.

A read block holds few rows of a wide file (1 MiB of a 164-column export: 700 rows),
and scoring pays a fixed cost per batch (Arrow calls per column, one model call), so
the batches of a wide file cost twice the reading of its bytes (issue 21). Joining
them costs the needed columns' values only, not the blocks they were read from:
4 MiB read blocks did as well, at 1.7 times the peak memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa

from churnctl.io.reading import SourceBatch

MIN_ROWS = 8_192  # rows a joined batch holds at least (but for the last one)


def coalesced(batches: Iterable[SourceBatch], min_rows: int | None = None) -> Iterator[SourceBatch]:
    """``batches`` with consecutive small ones joined until each holds ``min_rows`` rows
    (``MIN_ROWS`` when not given).

    The rows keep their order, and each joined batch carries the malformed lines of
    its parts in their order, as one larger read block would have given them.
    """
    least = MIN_ROWS if min_rows is None else min_rows
    held: list[SourceBatch] = []
    rows = 0
    for batch in batches:
        held.append(batch)
        rows += batch.rows.num_rows
        if rows >= least:
            yield joined(held)
            held, rows = [], 0
    if held:
        yield joined(held)


def joined(parts: list[SourceBatch]) -> SourceBatch:
    """One batch of ``parts``' rows and malformed lines, in order."""
    if len(parts) == 1:
        return parts[0]
    schema = parts[0].rows.schema
    table = pa.Table.from_batches([part.rows for part in parts], schema=schema).combine_chunks()
    rows = pa.RecordBatch.from_arrays(
        [
            column.chunk(0) if column.num_chunks else pa.array([], field.type)
            for column, field in zip(table.columns, schema, strict=True)
        ],
        schema=schema,
    )
    return SourceBatch(rows, tuple(line for part in parts for line in part.bad_lines))
