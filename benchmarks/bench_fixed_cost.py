"""The fixed cost: ``churnctl score`` on a one-row file against the polars script, many rounds.

    PYTHONPATH=. python benchmarks/bench_fixed_cost.py [--rounds 21] [--before DIR] [--smoke]

A one-row file (the bundled sample's header and first row) costs what every ``watch``
file and small cron job pays (issue 21: at most 1.2 times the polars script). Its ratio
moves most from run to run, so this script times that file alone, in more rounds than
``run.py`` does: ``churnctl score`` as its console script runs (``__main__.main``), the
same from the checkout ``--before DIR`` if given, and ``polars_script.py``, in turns,
whole processes, medians of wall and CPU time (user + system, from ``os.wait4``), each
checkout's bytecode compiled first. Then both outputs must hold the same score (to
1e-6). ``--smoke`` runs 2 rounds. A run that fails, or a score that differs, is a
PROBLEM on stderr, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_report

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHURNCTL = "import sys; sys.argv[0] = 'churnctl'; from churnctl.__main__ import main; main()"
Times = dict[str, list[tuple[float, float]]]


def timed(args: list[str], root: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh interpreter running ``args`` in ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}  # -c: ``root``'s churnctl comes first
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    error = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{args[:2]} in {root}: {error.decode(errors='replace')[-300:]}")
    return wall, usage.ru_utime + usage.ru_stime


def cases(tmp: Path, before: Path | None) -> dict[str, tuple[list[str], Path]]:
    """Each case's arguments and the folder it runs in, the one-row file written first."""
    source = tmp / "one-row.csv"
    with (ROOT / "data/sample.csv").open("rb") as sample:  # its header and first row
        source.write_bytes(sample.readline() + sample.readline())
    state, model = ROOT / "models/churn_state.json", ROOT / "models/churn_mlp.onnx"
    script = [str(HERE / "polars_script.py"), str(state), str(model), str(source)]
    found = {"score": (["-c", CHURNCTL, "score", str(source), "-o", str(tmp / "s.csv")], ROOT)}
    if before is not None:
        before_output = str(tmp / "b.csv")
        found["score, before"] = (
            ["-c", CHURNCTL, "score", str(source), "-o", before_output],
            before,
        )
    found["polars script"] = ([*script, str(tmp / "p.csv")], ROOT)
    return found


def compile_bytecode(root: Path) -> None:
    """Write the bytecode of ``root``'s churnctl, as an installed package has it: a
    fresh checkout (or PYTHONDONTWRITEBYTECODE) would compile every module at each run."""
    command = [sys.executable, "-m", "compileall", "-q", str(root / "churnctl")]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def raw_of(path: Path) -> float:
    with path.open(newline="", encoding="utf-8") as handle:
        return float(next(csv.DictReader(handle))["raw"])


def measure(runs: dict[str, tuple[list[str], Path]], rounds: int) -> Times:
    """Every case ``rounds`` times, in turns: (wall, CPU) per run."""
    times: Times = {case: [] for case in runs}
    for _ in range(rounds):
        for case, (arguments, root) in runs.items():
            times[case].append(timed(arguments, root))
    return times


def report(times: Times, rounds: int) -> None:
    medians = {
        case: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
        for case, runs in times.items()
    }
    script_wall, script_cpu = medians["polars script"]
    print(f"a one-row file, medians of {rounds} rounds in turns:")
    for case, (wall, cpu) in medians.items():
        ratio = f"  / polars script: {wall / script_wall:.2f} wall, {cpu / script_cpu:.2f} CPU"
        print(f"  {case:<15} {wall:.3f} s wall, {cpu:.3f} s CPU" + ratio)
    print("  target: score / polars script <= 1.2 (wall)")
    for key, value in bench_report.machine(["pyarrow", "numpy", "onnxruntime", "polars"]).items():
        print(f"  {key}: {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--before", type=Path, help="another checkout, timed beside this one")
    parser.add_argument("--smoke", action="store_true", help="2 rounds: the script works")
    args = parser.parse_args()
    rounds = 2 if args.smoke else max(args.rounds, 1)
    with tempfile.TemporaryDirectory(prefix="bench-fixed-") as name:
        tmp = Path(name)
        runs = cases(tmp, args.before.resolve() if args.before else None)
        for root in {root for _, root in runs.values()}:
            compile_bytecode(root)
        try:
            times = measure(runs, rounds)
        except RuntimeError as exc:
            print(f"PROBLEM: {exc}", file=sys.stderr)
            return 1
        if abs(raw_of(tmp / "s.csv") - raw_of(tmp / "p.csv")) > 1e-6:
            print("PROBLEM: score and the polars script disagree on the row", file=sys.stderr)
            return 1
    report(times, rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
