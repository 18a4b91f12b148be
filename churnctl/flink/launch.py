"""Run a command as the leader of a process group that dies with the process that started it.

``python -m churnctl.flink.launch PARENT_PID COMMAND...`` is started by ``flink.process``
in a session of its own; COMMAND (``python job.py``, ``flink run``) and all it starts
(a JVM, Python workers) share its process group. A parent-death signal (Linux
``prctl(PR_SET_PDEATHSIG)``) turns the death of PARENT_PID, even by SIGKILL, into a
SIGTERM here; SIGTERM or SIGINT then end the whole group: SIGTERM to every member,
``GRACE`` seconds for COMMAND to end, then SIGKILL to every member (this one too).
The signal is not inherited by children, which is why this process stays to watch.
Its exit code is COMMAND's (128 + N when a signal N ended COMMAND).

Standard library only, so that it starts fast.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

GRACE = 5.0  # seconds between SIGTERM and SIGKILL of the group
_PR_SET_PDEATHSIG = 1
_STOPPING = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _Stop(Exception):
    """The first SIGTERM, SIGINT or SIGHUP; later ones change nothing."""


_stopping = [False]  # once True, a signal is not raised again


def _raise_stop(signum: int, frame: object) -> None:
    if not _stopping[0]:
        _stopping[0] = True
        raise _Stop(signum)


def arm_parent_death_signal(signum: int = signal.SIGTERM) -> bool:
    """Ask the kernel for ``signum`` when this process's parent dies; whether it could."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    return False


def end_group(child: subprocess.Popen[bytes] | None, grace: float = GRACE) -> None:
    """SIGTERM to the group, ``grace`` seconds for ``child`` to end, SIGKILL to the group."""
    for signum in _STOPPING:
        signal.signal(signum, signal.SIG_IGN)
    group = os.getpgrp()
    os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while child is not None and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(group, signal.SIGKILL)  # the stragglers, and this process: the end


def run(parent: int, command: list[str]) -> int:
    """Run ``command`` to its end, or end its group when told to stop; its exit code."""
    for signum in _STOPPING:
        signal.signal(signum, _raise_stop)
    child = None
    try:
        arm_parent_death_signal()
        if os.getppid() != parent:  # it died before the signal was armed
            _raise_stop(signal.SIGTERM, None)
        child = subprocess.Popen(command)
        code = child.wait()
        _stopping[0] = True  # from here on, a signal is ignored
    except _Stop:
        end_group(child)
        return 128 + signal.SIGKILL  # not reached: end_group kills this process too
    for signum in _STOPPING:  # done: what is left of the group (a JVM shutting down) is told
        signal.signal(signum, signal.SIG_IGN)
    os.killpg(os.getpgrp(), signal.SIGTERM)
    return 128 - code if code < 0 else code


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        sys.stderr.write("usage: python -m churnctl.flink.launch PARENT_PID COMMAND...\n")
        return 2
    return run(int(argv[0]), argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))  # run as a program only
