"""What every benchmark script reports: the machine, and a markdown table of figures."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

Figure = tuple[str, str, str, "bool | None"]  # name, measured, target, met (None: no target)


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _proc(name: str, pattern: str) -> str:
    with contextlib.suppress(OSError):
        found = re.search(pattern, Path("/proc", name).read_text())
        return found.group(1).strip() if found else ""
    return ""


def cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) CPU time of the whole machine from /proc/stat, or None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1)


def machine(packages: Sequence[str]) -> dict[str, str]:
    """Cores, memory, load, OS, Python and the given packages' versions."""
    cpu, memory = (
        _proc("cpuinfo", r"model name\s*:\s*(.+)"),
        _proc("meminfo", r"MemTotal:\s+(\d+) kB"),
    )
    return {
        "cores": f"{os.cpu_count()}" + (f" ({cpu})" if cpu else ""),
        "memory": f"{int(memory) / 1024**2:.1f} GiB" if memory else "?",
        "load average at the end (1, 5, 15 min)": " ".join(_proc("loadavg", r"(.+)").split()[:3])
        or "?",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **{name: version(name) for name in packages},
    }


def markdown(
    title: str,
    command: str,
    seconds: float,
    packages: Sequence[str],
    figures: Sequence[Figure],
    notes: Sequence[str],
    problems: Sequence[str],
) -> str:
    """A markdown section: the command, the machine, the table of figures, notes, problems."""
    lines = [f"## {title}", "", f"`{command}` ({time.strftime('%Y-%m-%d')}, {seconds:.0f} s)", ""]
    lines += [f"- {key}: {value}" for key, value in machine(packages).items()]
    lines += ["", "| figure | measured | target | met? |", "|---|---|---|---|"]
    for name, measured, target, met in figures:
        verdict = "" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {name} | {measured} | {target} | {verdict} |")
    lines += ["", *notes, ""]
    if problems:
        lines += ["**Problems:**", "", *(f"- {p}" for p in problems), ""]
    return "\n".join(lines)
