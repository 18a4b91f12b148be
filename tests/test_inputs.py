"""The input policy's numeric parsing: the fast Arrow cast and the checked path agree."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from churnctl.features.input_policy import (
    EMPTY,
    NOT_A_NUMBER,
    NOT_FINITE,
    InputSchema,
    frame_from_batch,
    numeric_column,
)

NUMERIC_TEXT = st.text(alphabet="0123456789+-.eE naifNIFty_,x", max_size=10)


def _checked(value: str) -> tuple[float, object]:
    """Force the checked (regex) path: a null in the column disables the fast cast."""
    values, reasons = numeric_column(pa.array([value, None]))
    return values[0], None if reasons is None else reasons[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(NUMERIC_TEXT, min_size=1, max_size=20))
def test_fast_path_agrees_with_checked_path(texts: list[str]) -> None:
    values, reasons = numeric_column(pa.array(texts))
    for i, text in enumerate(texts):
        value, reason = _checked(text)
        assert (None if reasons is None else reasons[i]) == reason
        if reason is None:
            assert values[i] == value


def test_examples() -> None:
    values, reasons = numeric_column(pa.array([" 1.5 ", "1e3", "+.5", "abc", "", "NaN", "-inf"]))
    np.testing.assert_array_equal(values[:3], [1.5, 1000.0, 0.5])
    assert list(reasons) == [None, None, None, NOT_A_NUMBER, EMPTY, NOT_FINITE, NOT_FINITE]


def test_typed_columns_are_checked_too() -> None:
    values, reasons = numeric_column(pa.array([1.0, None, float("inf"), 2.0]))
    assert list(reasons) == [None, EMPTY, NOT_FINITE, None]
    assert values[3] == 2.0


CELLS = st.text(alphabet="ab 1.e-", max_size=6)


@settings(max_examples=150, deadline=None)
@given(
    categories=st.lists(CELLS, min_size=1, max_size=12),
    numbers=st.data(),
    start=st.integers(0, 11),
)
def test_a_sliced_batch_is_read_like_the_same_rows_unsliced(
    categories: list[str], numbers: st.DataObject, start: int
) -> None:
    """Regression: Arrow 16's if_else misread sliced string arrays ('d\\x00\\x00')."""
    n = len(categories)
    start = min(start, n)
    amounts = numbers.draw(st.lists(CELLS, min_size=n, max_size=n))
    schema = InputSchema(categorical=("c",), numeric=("x",))
    whole = pa.record_batch({"c": categories, "x": amounts})
    sliced = frame_from_batch(whole.slice(start), schema)
    fresh = frame_from_batch(pa.table({"c": categories[start:], "x": amounts[start:]}), schema)
    assert sliced["c"].to_pylist() == fresh["c"].to_pylist()
    assert np.array_equal(sliced["x"], fresh["x"])
    assert sliced.rejected.tolist() == fresh.rejected.tolist()
