"""Joining small batches: the same rows and malformed lines, in order, in fewer batches."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from churnctl.io.coalesce import coalesced
from churnctl.io.reading import BadLine, SourceBatch

SCHEMA = pa.schema([("Age", pa.string()), ("Geography", pa.string())])


def batch(start: int, size: int, bad: int) -> SourceBatch:
    rows = pa.RecordBatch.from_arrays(
        [
            pa.array([str(i) for i in range(start, start + size)], pa.string()),
            pa.array([f"g{i}" for i in range(start, start + size)], pa.string()),
        ],
        schema=SCHEMA,
    )
    lines = tuple(
        BadLine(start + k, "expected 2 fields, found 1", f"x{start}-{k}") for k in range(bad)
    )
    return SourceBatch(rows, lines)


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3)), max_size=12),
    min_rows=st.integers(1, 60),
)
def test_joined_batches_hold_the_same_rows_and_lines_in_order(
    parts: list[tuple[int, int]], min_rows: int
) -> None:
    batches, start = [], 0
    for size, bad in parts:
        batches.append(batch(start, size, bad))
        start += size
    joined = list(coalesced(batches, min_rows))
    rows = [value for b in joined for value in b.rows.column("Age").to_pylist()]
    assert rows == [str(i) for i in range(start)]
    assert [line for b in joined for line in b.bad_lines] == [
        line for b in batches for line in b.bad_lines
    ]
    assert all(b.rows.schema == SCHEMA for b in joined)
    assert all(b.rows.num_rows >= min_rows for b in joined[:-1])
    assert len(joined) <= max(len(batches), 1)
