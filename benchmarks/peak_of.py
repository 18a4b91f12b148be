"""Run a Python program in this process and write its own peak RSS (kB) to a file at exit.

    python benchmarks/peak_of.py PEAK_FILE SCRIPT [ARGS...]
    python benchmarks/peak_of.py PEAK_FILE -c CODE [ARGS...]

The peak is ``VmHWM`` from ``/proc/self/status`` (Linux), read at exit.
``wait4``/``getrusage``'s ``ru_maxrss`` of a child is no good for this: it also
counts the pages the child shared with its parent (a large benchmark process)
before it executed Python.
"""

from __future__ import annotations

import atexit
import runpy
import sys
from pathlib import Path


def write_peak(target: str) -> None:
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    Path(target).write_text(line.split()[1], encoding="ascii")


def main() -> None:
    peak_file, program, *args = sys.argv[1:]
    atexit.register(write_peak, peak_file)
    if program == "-c":
        code, *args = args
        sys.argv = ["-c", *args]
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
        return
    sys.argv = [program, *args]
    sys.path.insert(0, str(Path(program).resolve().parent))
    runpy.run_path(program, run_name="__main__")


if __name__ == "__main__":
    main()
