"""Fault injection for crash and race tests: die or pause at a named step, when asked.

Off in normal use. A test sets ``CHURNCTL_FAULT`` to a step name (``after-rename``)
or to ``step@N`` (the N-th time the step is reached, from 1) and the process
SIGKILLs itself there, as ``kill -9`` would, with no clean-up of any kind; or to
``sleep=SECONDS``, and every step waits that long there, so that a signal sent at a
random moment lands in each step's window more often.

``CHURNCTL_PAUSE`` (steps, comma-separated) with ``CHURNCTL_PAUSE_DIR`` makes the
process stop at each of those steps: it creates ``DIR/<step>.<N>`` and waits until
the test removes it (at most ``PAUSE_LIMIT`` seconds), so that a test can act, at
a known point, between two steps of the process (rename a file over an input ...).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

FAULT_ENV = "CHURNCTL_FAULT"
PAUSE_ENV, PAUSE_DIR_ENV = "CHURNCTL_PAUSE", "CHURNCTL_PAUSE_DIR"
STEPS = ("after-temp-write", "after-rename", "after-commit", "after-aside", "after-archive")
WINDOWS = ("temp-created", "spool-created", "batch-scored")  # other steps, for sleep=SECONDS
PAUSE_LIMIT = 60.0  # seconds

_reached: Counter[str] = Counter()


def checkpoint(step: str) -> None:
    """Die here if ``CHURNCTL_FAULT`` names this step (and this is the asked occurrence).

    Pause here if ``CHURNCTL_PAUSE`` names it.
    """
    if step in os.environ.get(PAUSE_ENV, "").split(","):
        _pause(step)
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    if wanted.startswith("sleep="):
        time.sleep(float(wanted.removeprefix("sleep=")))
        return
    name, _, nth = wanted.partition("@")
    if name != step:
        return
    _reached[step] += 1
    if _reached[step] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _pause(step: str) -> None:
    """Create the step's pause file and wait until it is removed."""
    _reached[f"pause:{step}"] += 1
    flag = Path(os.environ[PAUSE_DIR_ENV]) / f"{step}.{_reached[f'pause:{step}']}"
    flag.touch()
    deadline = time.monotonic() + PAUSE_LIMIT
    while flag.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
