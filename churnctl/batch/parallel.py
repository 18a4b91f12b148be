"""Work on a few threads at once, handed back in input order: batches scored in parallel.

Arrow compute, NumPy and ONNX Runtime release the GIL, so batch n+1 can be scored (and
its output encoded) on another core while batch n is written and its rejects located.
The caller sees the results in input order, each exception where its item would have
come, and nothing runs on once it stops early.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
MAX_SCORING_THREADS = 4  # beyond this, writing and locating rejects are the bottleneck


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def scoring_threads(threads: int) -> int:
    """Batches to score at once for a scorer given ``threads`` ONNX Runtime threads: that
    budget when set (1 in pool workers and Flink tasks), else the usable cores (at most
    ``MAX_SCORING_THREADS``)."""
    return threads if threads > 0 else min(usable_cores(), MAX_SCORING_THREADS)


def ordered_map(function: Callable[[T], R], items: Iterable[T], *, workers: int) -> Iterator[R]:
    """``function`` of each item, in order, run on up to ``workers`` threads at once.

    At most ``workers`` + 1 items are taken ahead of the one handed back. An input of a
    single item, or ``workers`` of 1, runs here, without a thread. When the caller stops
    early (``break``, an error), items not started are cancelled and those running are
    waited for before this generator returns.
    """
    iterator = iter(items)
    head = list(itertools.islice(iterator, 1 if workers <= 1 else 2))
    if len(head) < 2:  # one item (or none), or one worker: no thread
        yield from map(function, itertools.chain(head, iterator))
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="churnctl-score") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in itertools.chain(head, iterator):
                pending.append(pool.submit(function, item))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
