"""Start-up time of the command line, against a bare interpreter and Typer alone.

    PYTHONPATH=. python benchmarks/bench_startup.py [--runs 10] [--smoke] [--before DIR]

Each figure is the median wall time of ``--runs`` fresh interpreters (``subprocess.run``
timed with ``time.perf_counter``); the cases take turns, run by run, so that a busy
machine slows them alike. The cases: ``python -c pass``; a two-command Typer app's
``--help`` (Typer and Rich alone: the floor for any Typer CLI); ``import churnctl``;
``churnctl --help``, ``churnctl score --help`` and ``churnctl --version``; and
``churnctl inspect`` (ONNX Runtime, the model and the state loaded: a command at work).
``--before DIR`` also times the churnctl of another checkout (e.g. the main branch),
in the same turns, and shows it beside this one.
Target: ``churnctl --help`` <= 0.25 s on an idle 2-core machine. ``--smoke`` runs twice.
A case that exits non-zero is reported as a PROBLEM on stderr, and the script exits 1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bench_report

ROOT = Path(__file__).resolve().parent.parent
CLI = "import sys; from churnctl.cli import run; sys.argv[0] = 'churnctl'; run()"
TYPER_ONLY = """
import typer
app = typer.Typer()
@app.command()
def one(n: int = 1) -> None: pass
@app.command()
def two(n: int = 1) -> None: pass
app()
"""
CASES: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "Typer app --help (floor)": ["-c", TYPER_ONLY, "--help"],
    "import churnctl": ["-c", "import churnctl"],
    "churnctl --help": ["-c", CLI, "--help"],
    "churnctl score --help": ["-c", CLI, "score", "--help"],
    "churnctl --version": ["-c", CLI, "--version"],
    "churnctl inspect": ["-c", CLI, "inspect"],
}


def timed(args: list[str], root: Path) -> tuple[float, int]:
    """Wall seconds of one fresh interpreter running ``args`` in ``root``, and its exit code.

    ``python -c`` puts the current folder first on ``sys.path``: the churnctl of ``root``.
    """
    env = {**os.environ, "PYTHONPATH": str(root)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, cwd=root, capture_output=True)
    return time.perf_counter() - started, done.returncode


def measure(runs: int, roots: list[Path]) -> tuple[dict[tuple[str, Path], list[float]], list[str]]:
    """Every case of every checkout ``runs`` times, in turns: wall times, and the failures."""
    times: dict[tuple[str, Path], list[float]] = {}
    problems: list[str] = []
    for _ in range(runs):
        for name, args in CASES.items():
            for root in roots:
                seconds, code = timed(args, root)
                times.setdefault((name, root), []).append(seconds)
                if code != 0:
                    problems.append(f"{name} ({root}) exited {code}")
    return times, problems


def package_folder(root: Path) -> str:
    """Where the timed runs find churnctl (to be sure it is ``root``'s)."""
    code = "import churnctl, pathlib; print(pathlib.Path(churnctl.__file__).parent)"
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    return done.stdout.strip()


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms ({min(values) * 1000:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per case (median)")
    parser.add_argument("--smoke", action="store_true", help="2 runs: the script works")
    parser.add_argument("--before", type=Path, help="another checkout to time beside this one")
    args = parser.parse_args()
    runs = 2 if args.smoke else max(args.runs, 1)
    roots = [ROOT, *([args.before.resolve()] if args.before else [])]
    times, problems = measure(runs, roots)
    print(f"wall time, median (min) of {runs} runs; churnctl from:")
    for label, root in zip(("this", "before"), roots, strict=False):
        print(f"  {label}: {package_folder(root)}")
    print(f"  {'':<26} {'this':>15}" + (f" {'before':>15}" if args.before else ""))
    for name in CASES:
        cells = [_cell(times[name, root]) for root in roots]
        print(f"  {name:<26} " + " ".join(f"{cell:>15}" for cell in cells))
    for key, value in bench_report.machine([]).items():
        print(f"  {key}: {value}")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
