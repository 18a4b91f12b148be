"""Where long work is, on stderr when it is a terminal: rows, a percentage and an ETA.

The library reports ``sources.Progress`` through a callback; this renders it with
rich. A regular file shows its share read (bytes as stored, Parquet rows) and an
ETA beside the rows; stdin and pipes show the rows only; a fit shows its pass
("pass 1 of 3") with the share of the file read in that pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from churnctl.cli.console import stderr

if TYPE_CHECKING:
    from churnctl.io.sources import Progress


class _Display:
    """A rich progress display started with the first report (its kind known by then)."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, report: Progress) -> None:
        if self._bar is None:
            self._start(measured=report.fraction is not None)
        label = self._label
        if report.passes > 1:
            label = f"{label} pass {report.pass_number} of {report.passes}"
        if report.fraction is None:
            self._bar.update(self._task, completed=report.rows, rows=report.rows, description=label)
            return
        if label != self._bar.tasks[0].description:  # a new pass: its own percentage and ETA
            self._bar.reset(self._task, total=100, description=label)
        self._bar.update(self._task, completed=100 * report.fraction, rows=report.rows)

    def _start(self, *, measured: bool) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
        if measured:
            columns += [
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rows]:,} rows"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            ]
        else:
            columns += [TextColumn("{task.fields[rows]:,} rows"), TimeElapsedColumn()]
        self._bar = Progress(*columns, console=stderr, transient=True)
        self._bar.start()
        self._task = self._bar.add_task(self._label, total=100 if measured else None, rows=0)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


@contextlib.contextmanager
def progress(label: str) -> Iterator[Callable[[Progress], None] | None]:
    """A callback rendering progress on stderr when it is a terminal; None otherwise."""
    if not stderr.is_terminal:
        yield None
        return
    display = _Display(label)
    try:
        yield display
    finally:
        display.stop()
