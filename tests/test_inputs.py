"""The input policy's numeric parsing: the fast Arrow cast and the checked path agree."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from churnctl.inputs import EMPTY, NOT_A_NUMBER, NOT_FINITE, numeric_column

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
