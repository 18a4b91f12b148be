"""Fault injection for crash tests: kill the process at a named step, when asked.

Off in normal use. A test sets ``CHURNCTL_FAULT`` to a step name (``after-rename``)
or to ``step@N`` (the N-th time the step is reached, from 1) and the process
SIGKILLs itself there, as ``kill -9`` would, with no clean-up of any kind; or to
``sleep=SECONDS``, and every step waits that long there, so that a signal sent at a
random moment lands in each step's window more often.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

FAULT_ENV = "CHURNCTL_FAULT"
STEPS = ("after-temp-write", "after-rename", "after-commit", "after-archive")  # commit order
WINDOWS = ("temp-created", "spool-created", "batch-scored")  # other steps, for sleep=SECONDS

_reached: Counter[str] = Counter()


def checkpoint(step: str) -> None:
    """Die here if ``CHURNCTL_FAULT`` names this step (and this is the asked occurrence)."""
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
