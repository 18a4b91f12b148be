"""Batches scored on several threads: the same bytes, rejects and drift as one at a time.

``ordered_map`` hands results back in input order, raises each error where its item
comes, takes a bounded number of items ahead and leaves nothing running when its
caller stops early; ``score_file`` on a scorer with several threads writes what it
writes with one.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnctl.batch.parallel import ordered_map, scoring_threads
from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.io.reading import ReadOptions
from churnctl.io.rejects import NO_LIMIT
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.samples.generate import COLUMNS, generate_files
from churnctl.scoring.scorer import Scorer


def slow_square(item: tuple[int, float]) -> int:
    value, pause = item
    time.sleep(pause)
    return value * value


@settings(max_examples=30, deadline=None)
@given(
    pauses=st.lists(st.sampled_from([0.0, 0.0005, 0.002]), max_size=12),
    workers=st.integers(1, 4),
)
def test_results_come_in_input_order(pauses: list[float], workers: int) -> None:
    items = list(enumerate(pauses))
    assert list(ordered_map(slow_square, items, workers=workers)) == [i * i for i, _ in items]


def test_an_error_is_raised_where_its_item_comes() -> None:
    def fail_on_three(item: int) -> int:
        if item == 3:
            raise ValueError("three")
        time.sleep(0.001 * (5 - item))  # later items finish first
        return item

    results = ordered_map(fail_on_three, range(6), workers=3)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="three"):
        next(results)


def test_at_most_workers_plus_one_items_are_taken_ahead() -> None:
    taken: list[int] = []

    def items() -> Iterator[int]:
        for i in range(100):
            taken.append(i)
            yield i

    results = ordered_map(lambda item: item, items(), workers=3)
    assert next(results) == 0
    assert len(taken) <= 3 + 1
    results.close()


def test_stopping_early_leaves_nothing_running() -> None:
    running = set[int]()
    lock = threading.Lock()

    def work(item: int) -> int:
        with lock:
            running.add(item)
        time.sleep(0.01)
        with lock:
            running.discard(item)
        return item

    for result in ordered_map(work, range(50), workers=4):
        if result == 2:
            break
    assert running == set()


@pytest.mark.parametrize("count", [0, 1])
def test_one_item_or_none_is_worked_here_without_a_thread(count: int) -> None:
    here = threading.get_ident()
    assert (
        list(ordered_map(lambda _: threading.get_ident(), range(count), workers=4))
        == [here] * count
    )


def test_one_worker_works_here() -> None:
    here = threading.get_ident()
    assert set(ordered_map(lambda _: threading.get_ident(), range(5), workers=1)) == {here}


def test_a_scorer_given_threads_scores_that_many_batches_at_once() -> None:
    assert scoring_threads(1) == 1
    assert scoring_threads(3) == 3
    assert 1 <= scoring_threads(0) <= 4


@pytest.fixture(scope="module")
def messy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40,000 rows over several batches, with bad values, short rows, a multi-line quoted
    field, a stray quote and blank lines among them."""
    path = generate_files(tmp_path_factory.mktemp("messy") / "rows.csv", n_rows=40_000, seed=7)[0]
    lines = path.read_text().splitlines(keepends=True)
    rng = random.Random(7)
    age = COLUMNS.index("Age")
    for n in rng.sample(range(1, len(lines)), 300):
        fields = lines[n].rstrip("\n").split(",")
        change = rng.choice(["bad", "short", "blank", "stray", "quoted"])
        if change == "bad":
            fields[age] = "?"
        elif change == "short":
            del fields[age:]
        elif change == "stray":
            fields[0] = '"' + fields[0]
        elif change == "quoted":
            fields[2] = '"two\nlines"'
        lines[n] = ",".join(fields) + "\n" + ("\n" if change == "blank" else "")
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_several_threads_write_what_one_writes(messy_file: Path, tmp_path: Path, fmt: str) -> None:
    outputs = {}
    for threads in (1, 2):
        scorer = Scorer(bundled(STATE), bundled(MODEL), threads=threads)
        output = tmp_path / f"threads-{threads}.{fmt}"
        request = ScoreRequest(
            str(messy_file),
            str(output),
            scorer,
            max_rejects=NO_LIMIT,
            read_options=ReadOptions(block_size=64 << 10),
        )
        summary = score_file(request)
        rejects = Path(summary.rejects or "").read_bytes()
        data = pq.read_table(output) if fmt == "parquet" else output.read_bytes()
        outputs[threads] = (data, rejects, summary.rows, summary.drift)
    one, two = outputs[1], outputs[2]
    assert one[2].rejected > 100 and one[2].scored > 39_000  # the file's faults were met
    assert one[0] == two[0]  # Parquet: the same rows (its metadata holds the time of the run)
    assert one[1:] == two[1:]
