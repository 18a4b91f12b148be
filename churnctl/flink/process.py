"""The job's process: its own group, dying with this process, its output watched as it comes.

``run_logged`` starts a command through ``flink.launch`` (a process group of its own
in a session of its own, ended as a whole when this process dies, even by SIGKILL),
appends its output to a log as it comes, hands each line to ``on_line`` and calls
``on_tick`` every ``every`` seconds. Whatever ends the wait early (SIGINT, SIGTERM,
an error in a callback), the whole group is stopped before it propagates.

The job is started from the calling thread: the parent-death signal follows that
thread, so call it from a thread that outlives the job (the main thread).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import BinaryIO

from churnctl import interrupts
from churnctl.flink.launch import GRACE

DRAIN = 5.0  # seconds the group may keep the output open once the command has ended
TAIL = 1 << 20  # bytes of output kept in memory (for the root cause); the log has it all


def _nothing(*args: object) -> None:
    return None


def run_logged(
    command: list[str],
    env: dict[str, str],
    log: BinaryIO,
    *,
    on_line: Callable[[str], None] | None = None,
    on_tick: Callable[[], None] | None = None,
    every: float = 2.0,
) -> tuple[int, str]:
    """Run ``command`` in a group of its own; its exit code and the tail of its output."""
    launcher = [sys.executable, "-m", "churnctl.flink.launch", str(os.getpid()), *command]
    process = subprocess.Popen(
        launcher,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output = _Output(log, on_line or _nothing)
    try:
        _pump(process, output, on_tick or _nothing, every)
        output.finish()
        code = process.wait()
    except BaseException:
        with interrupts.cleaning():  # a second Ctrl-C must not cut the stopping short
            stop_group(process)
        raise
    finally:
        if process.stdout is not None:
            process.stdout.close()
    return code, output.text()


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """End ``process``'s group: SIGTERM (the launcher passes it on, then SIGKILLs the group
    after its grace), then SIGKILL here if the launcher itself did not end in time."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=GRACE + 2)
    except subprocess.TimeoutExpired:
        _signal_group(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=GRACE)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _pump(
    process: subprocess.Popen[bytes],
    output: _Output,
    on_tick: Callable[[], None],
    every: float,
) -> None:
    """Read the output to its end, ticking; at most ``DRAIN`` s more once the command ended."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    tick = time.monotonic() + every
    ended: float | None = None
    while True:
        now = time.monotonic()
        if ended is None and process.poll() is not None:
            ended = now
        if ended is not None and now - ended > DRAIN:
            return  # a member of the group still holds the output open: the launcher told it
        wake = tick if ended is None else min(tick, ended + DRAIN)
        ready, _, _ = select.select([fd], [], [], max(wake - now, 0))
        if ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            output.feed(chunk)
        if time.monotonic() >= tick:
            on_tick()
            tick = time.monotonic() + every


class _Output:
    """The output as it comes: written to the log, cut into lines, its tail kept."""

    def __init__(self, log: BinaryIO, on_line: Callable[[str], None]) -> None:
        self._log, self._on_line = log, on_line
        self._partial = b""
        self._tail: deque[bytes] = deque()
        self._tail_size = 0

    def feed(self, chunk: bytes) -> None:
        self._log.write(chunk)
        self._log.flush()  # the log is readable while the job runs (tail -f)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        if len(self._partial) > TAIL:  # no line break for a long while: a line all the same
            lines.append(self._partial)
            self._partial = b""
        for line in lines:
            self._keep(line)
            self._on_line(line.decode("utf-8", "replace").rstrip("\r"))

    def finish(self) -> None:
        """The output ended: its last line, if it had no line break."""
        if self._partial:
            self._log.write(b"\n")
            self._log.flush()
            self._keep(self._partial)
            self._on_line(self._partial.decode("utf-8", "replace"))
            self._partial = b""

    def _keep(self, line: bytes) -> None:
        self._tail.append(line)
        self._tail_size += len(line) + 1
        while self._tail_size > TAIL and len(self._tail) > 1:
            self._tail_size -= len(self._tail.popleft()) + 1

    def text(self) -> str:
        return b"\n".join(self._tail).decode("utf-8", "replace")
