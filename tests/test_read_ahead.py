"""read_ahead: the same items in order, the producer's error where it happened, no thread left."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from churnctl.io.read_ahead import read_ahead


def live_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "churnctl-read-ahead"]


@given(st.lists(st.integers()), st.integers(min_value=1, max_value=4))
def test_the_same_items_in_order(items: list[int], depth: int) -> None:
    assert list(read_ahead(iter(items), depth=depth)) == items
    assert live_threads() == []


def test_an_error_is_raised_where_its_item_would_have_come() -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad batch")

    got = []
    with pytest.raises(ValueError, match="bad batch"):
        for item in read_ahead(failing()):
            got.append(item)
    assert got == [1, 2]
    assert live_threads() == []


def test_stopping_early_stops_and_joins_the_producer() -> None:
    produced = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    for item in read_ahead(endless(), depth=2):
        if item == 5:
            break
    assert live_threads() == []  # joined before the loop went on
    assert len(produced) <= 5 + 1 + 2 + 1  # at most depth (+ the one in hand) ahead


def test_it_reads_ahead_while_the_consumer_works() -> None:
    """The producer runs while the consumer holds an item: it has put the next one already."""
    ready = threading.Event()

    def items() -> Iterator[int]:
        yield 1
        ready.set()  # reached only when the producer asks for the second item
        yield 2

    iterator = read_ahead(items(), depth=1)
    assert next(iterator) == 1
    assert ready.wait(timeout=10)
    assert list(iterator) == [2]
