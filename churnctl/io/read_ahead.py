"""Reading ahead: the next items of an iterator produced by a thread while the caller works.

Arrow's CSV parsing, NumPy and ONNX Runtime release the GIL, so reading batch
n+1 in a thread while batch n is scored uses a second core.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_ITEM, _END, _ERROR = range(3)
_POLL = 0.05  # seconds between checks for a consumer that went away


def read_ahead(items: Iterable[T], *, depth: int = 2) -> Iterator[T]:
    """Yield ``items`` in order, produced by a thread up to ``depth`` items ahead.

    An exception of the producer is raised here, where its item would have come.
    When the caller stops early (``break``, an error), the thread stops at its next
    item and is joined before this generator returns, so the caller may then close
    what ``items`` reads from. Use it on sources whose next item cannot block for
    ever (files, not pipes).
    """
    handoff: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    thread = threading.Thread(
        target=_produce, args=(items, handoff, stop), name="churnctl-read-ahead", daemon=True
    )
    thread.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == _END:
                return
            if kind == _ERROR:
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


def _produce(
    items: Iterable[T], handoff: queue.Queue[tuple[int, object]], stop: threading.Event
) -> None:
    try:
        for item in items:
            if not _offer(handoff, stop, (_ITEM, item)):
                return
        _offer(handoff, stop, (_END, None))
    except BaseException as exc:  # handed to the consumer, raised there
        _offer(handoff, stop, (_ERROR, exc))


def _offer(
    handoff: queue.Queue[tuple[int, object]], stop: threading.Event, entry: tuple[int, object]
) -> bool:
    """Put ``entry`` once there is room; False if the consumer went away first."""
    while not stop.is_set():
        try:
            handoff.put(entry, timeout=_POLL)
            return True
        except queue.Full:
            continue
    return False
