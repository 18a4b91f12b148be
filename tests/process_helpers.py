"""Processes as the kernel sees them (/proc): groups, children, the living."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    state: str
    cmdline: str


def processes() -> list[Proc]:
    """Every process that is not a zombie (a dead one waiting to be reaped)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] not in ("Z", "X"):
            found.append(Proc(int(entry.name), int(fields[1]), int(fields[2]), fields[0], cmdline))
    return found


def group(pgid: int) -> list[Proc]:
    """The living members of process group ``pgid``."""
    return [p for p in processes() if p.pgid == pgid]


def launcher_of(parent: int) -> Proc | None:
    """The ``churnctl.flink.launch`` process that ``parent`` started, if there is one."""
    return next(
        (p for p in processes() if p.ppid == parent and "churnctl.flink.launch" in p.cmdline), None
    )


def wait_until_gone(pgid: int, timeout: float) -> list[Proc]:
    """Wait (bounded) for group ``pgid`` to have no living member; those left at the end."""
    deadline = time.monotonic() + timeout
    while (left := group(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
