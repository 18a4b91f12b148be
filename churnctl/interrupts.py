"""SIGINT and SIGTERM as one exception, never lost, held off where a file would be left behind.

A run stopped by a signal ends in one of two ways: before its outputs are
published, with nothing published and no temporary file left (exit 128 + the
signal's number: 130, 143), or after, with its outputs complete (exit 0).

* The handler records the signal, then raises ``Interrupted`` (a ``SystemExit``
  carrying the exit code), which unwinds the run through its clean-ups. Where
  Python cannot raise it (a ``__del__``, a weakref callback: "Exception ignored
  in ...") the record stays: ``check`` raises it at the next publication, and
  ``exit_code`` makes it the run's code, so a signal is never lost.
* ``deferred`` is a critical section (a temporary file created and registered
  for removal): a signal inside it is raised at its end. ``cleaning`` is a
  clean-up (temporary files removed): a signal inside it is only recorded, and
  raised at the next ``check``, so that no clean-up is ever cut short.
* ``publishing_renames`` surrounds the renames of a publication: a signal before
  it stops the publication; from its first rename on, the publication is the
  run's last step and the run completes (exit 0). Within ``steps`` (a watcher, one
  output pair per input), a publication ends one step instead: a signal during
  its renames is raised once they are done.
* ``first_signal_calls`` lets a first signal ask a loop to finish its current
  step (a watcher); a second one is an ``Interrupted``.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator

TYPE_CHECKING = False  # not typing's: this module is imported before the handlers are in
if TYPE_CHECKING:
    from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
CODES = frozenset(128 + signum for signum in SIGNALS)


class Interrupted(SystemExit):
    """A SIGINT or SIGTERM: unwinds like ``sys.exit(128 + signal)``, not caught as an error."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _State:
    """The process's signal state (a plain class: ``dataclasses`` costs 5 ms at start-up)."""

    def __init__(self) -> None:
        self.received: int | None = None  # the first signal that asked the run to stop
        self.deferring = 0  # open critical sections and held publications
        self.steps = 0  # > 0: a publication ends a step, not the run
        self.installed = False
        self.on_first: list[Callable[[], None]] = []


_state = _State()


def _handle(signum: int, frame: object) -> None:
    if _state.on_first and _state.received is None:
        stop = _state.on_first.pop()
        stop()
        return
    if _state.received is None:
        _state.received = signum
    if not _state.deferring:
        raise Interrupted(_state.received)


def install() -> None:
    """From now on, in this process, SIGINT and SIGTERM are recorded and raised (main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in SIGNALS:
        signal.signal(signum, _handle)
    if sys.unraisablehook is not _unraisable:
        _unraisable.previous = sys.unraisablehook  # type: ignore[attr-defined]
        sys.unraisablehook = _unraisable
    _state.installed = True


def _unraisable(report: Any) -> None:
    """An ``Interrupted`` Python could not raise ("Exception ignored in ...") is recorded
    already: it is not printed as a traceback."""
    if not isinstance(report.exc_value, Interrupted):
        _unraisable.previous(report)  # type: ignore[attr-defined]


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """A run with the handlers installed, from a clean record; the previous handlers after.

    Inside a process where ``install`` was called already (the console script), nothing
    changes: the record kept since start-up is the run's.
    """
    if _state.installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    vars(_state).update(vars(_State()))
    try:
        install()  # inside: a signal once the first handler is in restores them all too
        yield
    finally:
        with cleaning():  # a signal now must not stop the restoring half-way
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            _state.installed = False


def received() -> int | None:
    """The signal that asked this run to stop, if any."""
    return _state.received


def check() -> None:
    """Raise ``Interrupted`` for a signal recorded earlier (one that Python could not raise).

    Only while the handlers are installed: a signal recorded by a run that has ended is
    that run's, never raised in library code called after it.
    """
    if _state.installed and _state.received is not None and not _state.deferring:
        raise Interrupted(_state.received)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A critical section: a signal inside it is raised when it ends."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    check()


@contextlib.contextmanager
def cleaning() -> Iterator[None]:
    """A clean-up (temporary files removed): never cut short by a signal.

    A signal that lands meanwhile is recorded, not raised: the run's next ``check``
    (before a publication's renames, at the command's end) raises it.
    """
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1


@contextlib.contextmanager
def publishing_renames() -> Iterator[None]:
    """Around a publication's renames; see the module docstring."""
    check()
    if _state.steps:
        with deferred():
            yield
        return
    _state.deferring += 1  # held until the run ends: from here on, it completes
    yield


@contextlib.contextmanager
def steps() -> Iterator[None]:
    """Publications inside end a step (one input's pair), not the run."""
    _state.steps += 1
    try:
        yield
    finally:
        _state.steps -= 1


@contextlib.contextmanager
def first_signal_calls(stop: Callable[[], None]) -> Iterator[None]:
    """The first SIGINT/SIGTERM calls ``stop`` (finish the current step); a second interrupts."""
    _state.on_first.append(stop)
    try:
        with steps():
            yield
    finally:
        with contextlib.suppress(ValueError):
            _state.on_first.remove(stop)


def held() -> bool:
    """Whether a signal now waits instead of being raised (a critical section, or published)."""
    return _state.deferring > 0


def hold() -> None:
    """From here to the end of the process, signals are recorded, never raised."""
    _state.deferring += 1


def settle(code: int) -> int:
    """The run's exit code, final: signals are ignored from here to the end of the process.

    A signal recorded but never raised (where Python could not raise it) makes the
    code 128 + its number, unless it came once the run's outputs were published.
    Ignored, not left to Python's finalisation, which would restore their default
    action (death by the signal) after the run has published and reported its outcome.
    """
    _state.deferring += 1  # first: from here on, the handler never raises
    if _state.received is not None and _state.deferring == 1 and code not in CODES:
        code = 128 + _state.received
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
    return code
