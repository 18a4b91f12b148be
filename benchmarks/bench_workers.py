"""`churnctl score DIR --out-dir OUT` with --workers 1 against --workers 2, whole process wall.

    PYTHONPATH=. python benchmarks/bench_workers.py [--smoke] [--rows N] [--files N]
                                                    [--runs N] [--markdown FILE]

Generates ``--files`` CSV part files of ``--rows`` rows in all (default 8 files,
2,000,000 rows: ``churnctl generate -n 2000000 --files 8 -o DIR``), then runs the
real CLI in a subprocess, ``--runs`` times for each worker count, interleaved, and
reports each one's median wall time (start-up included) and the speed-up, with the
machine's busy cores during each run (the machine may be shared). Then the same for
``-o FILE`` (every input into one output). It also measures what a pool worker costs
before its first file (importing churnctl, loading a state), started by a forkserver
that preloads nothing (what churnctl uses) and with ``spawn`` (its fallback).

Every run's outputs are checked to be byte-identical to the ``--workers 1`` run's;
the script exits 1 if they are not, or a run fails. ``--check-targets`` also exits 1
when the speed-up target (>= 1.7x on 2 cores) is missed. ``--smoke`` runs tiny sizes
(for the test suite).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import bench_report

from churnctl.samples.generate import generate_files

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from churnctl.__main__ import main; main()"]
TARGET = 1.7  # speed-up of --workers 2 over --workers 1 on 2 cores, whole process wall
PACKAGES = ("pyarrow", "onnxruntime", "numpy")


def cli_env() -> dict[str, str]:
    """This checkout first on PYTHONPATH, so the subprocess runs the code benchmarked."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop("COLUMNS", None)
    return env


@dataclass
class Runs:
    """The wall times of one command line, and the machine's busy cores during each."""

    seconds: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def text(self) -> str:
        spread = "/".join(f"{s:.2f}" for s in self.seconds)
        busy = f"; {statistics.median(self.busy):.2f} cores busy" if self.busy else ""
        return f"{self.median:.2f} s (runs {spread}{busy})"


def digest(folder: Path) -> dict[str, str]:
    """Each file's SHA-256 by name; a lineage record's, without the time it was scored."""
    return {p.name: hashlib.sha256(content(p)).hexdigest() for p in sorted(folder.iterdir())}


def content(path: Path) -> bytes:
    """The file's bytes; a lineage sidecar's without ``scored_at`` (each run has its own)."""
    if not path.name.endswith(".lineage.json"):
        return path.read_bytes()
    record = json.loads(path.read_bytes())
    record.pop("scored_at")
    return json.dumps(record, sort_keys=True).encode()


def run_cli(args: list[str], runs: Runs, problems: list[str]) -> None:
    before = bench_report.cpu_jiffies()
    started = time.perf_counter()
    done = subprocess.run(
        [*CLI, *args],
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    runs.seconds.append(time.perf_counter() - started)
    busy = bench_report.busy_cores(before, bench_report.cpu_jiffies())
    if busy is not None:
        runs.busy.append(busy)
    if done.returncode != 0:
        problems.append(f"churnctl {' '.join(args)} exited {done.returncode}: {done.stderr}")


def compare(
    variants: dict[int, Runs],
    args_of: dict[int, list[str]],
    out_of: dict[int, Path],
    runs: int,
    problems: list[str],
) -> None:
    """Run each variant ``runs`` times, interleaved; check its outputs against the first's."""
    expected: dict[str, str] | None = None
    for _ in range(runs):
        for workers, timings in variants.items():
            out = out_of[workers]
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            run_cli(args_of[workers], timings, problems)
            found = digest(out)
            if expected is None:
                expected = found
            elif found != expected:
                problems.append(f"--workers {workers}: outputs differ from --workers 1's")


def ready() -> None:
    """What a pool worker does before its first file: import churnctl, load a state."""
    from churnctl.batch.score_files import score_files  # noqa: F401
    from churnctl.features.state import load_state
    from churnctl.samples.bundled import STATE, bundled

    load_state(bundled(STATE))  # pyarrow imports pandas here


def startup_seconds(method: str, workers: int) -> float:
    """Seconds until ``workers`` fresh workers (``method``) are ready and have exited again.

    Run in a fresh process (``--startup``): the forkserver is started once per process.
    """
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([])  # preloading would fork a process with threads
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=context, initializer=ready) as pool:
        for future in [pool.submit(os.getpid) for _ in range(workers)]:
            future.result()
    return time.perf_counter() - started


def startup(method: str, workers: int, runs: int) -> Runs:
    """``startup_seconds`` in a fresh process each time."""
    timings = Runs()
    for _ in range(runs):
        args = [sys.executable, __file__, "--startup", method, str(workers)]
        done = subprocess.run(args, env=cli_env(), capture_output=True, text=True, check=True)
        timings.seconds.append(float(done.stdout))
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown", type=Path, help="append the figures to this file")
    parser.add_argument("--check-targets", action="store_true")
    parser.add_argument("--startup", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.startup:
        print(f"{startup_seconds(args.startup[0], int(args.startup[1])):.3f}")
        return 0
    if args.smoke:
        args.rows, args.files, args.runs = 2_000, 4, 1
    began = time.perf_counter()
    problems: list[str] = []
    figures: list[bench_report.Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        root = Path(tmp)
        data = root / "in"
        generate_files(data, n_rows=args.rows, files=args.files, seed=1)
        folders = {w: Runs() for w in (1, 2)}
        outs = {w: root / f"out-{w}" for w in (1, 2)}
        compare(
            folders,
            {
                w: ["score", str(data), "--out-dir", str(outs[w]), "--workers", str(w)]
                for w in (1, 2)
            },
            outs,
            args.runs,
            problems,
        )
        joined = {w: Runs() for w in (1, 2)}
        ones = {w: root / f"one-{w}" for w in (1, 2)}
        compare(
            joined,
            {
                w: ["score", str(data), "-o", str(ones[w] / "all.csv"), "--workers", str(w)]
                for w in (1, 2)
            },
            ones,
            args.runs,
            problems,
        )
    starts = {(m, n): startup(m, n, args.runs) for n in (1, 2) for m in ("spawn", "forkserver")}
    speedup = folders[1].median / folders[2].median
    joined_speedup = joined[1].median / joined[2].median
    rows = f"{args.rows:,} rows in {args.files} files"
    figures += [
        (f"--out-dir, --workers 1 ({rows})", folders[1].text(), "", None),
        (f"--out-dir, --workers 2 ({rows})", folders[2].text(), "", None),
        (
            "--out-dir speed-up, workers 2 / 1",
            f"{speedup:.2f}x",
            f">= {TARGET}x",
            speedup >= TARGET,
        ),
        ("-o FILE, --workers 1", joined[1].text(), "", None),
        ("-o FILE, --workers 2", joined[2].text(), "", None),
        ("-o FILE speed-up, workers 2 / 1", f"{joined_speedup:.2f}x", "", None),
        *(
            (f"worker start-up, {m}, {n} worker(s)", s.text(), "", None)
            for (m, n), s in starts.items()
        ),
    ]
    width = max(len(f[0]) for f in figures)
    for name, measured, target, met in figures:
        verdict = "" if met is None else ("  (met)" if met else "  (MISSED)")
        print(f"{name:<{width}}  {measured}" + (f"  target {target}{verdict}" if target else ""))
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    if args.markdown is not None:
        command = "python benchmarks/bench_workers.py" + (" --smoke" if args.smoke else "")
        notes = [
            "Whole-process wall times (start-up included), median of the runs; runs "
            "interleaved. Busy cores: the whole machine's, on average, during each run."
        ]
        text = bench_report.markdown(
            "score --workers",
            command,
            time.perf_counter() - began,
            PACKAGES,
            figures,
            notes,
            problems,
        )
        with args.markdown.open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")
    if problems:
        return 1
    return 1 if args.check_targets and speedup < TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
