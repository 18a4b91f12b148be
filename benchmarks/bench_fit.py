"""Wall time and peak memory of `churnctl fit` per training-file size, one process per fit.

    PYTHONPATH=. python benchmarks/bench_fit.py [--rows 1000000 10000000] [--smoke]

For each size, generates a CSV training file (`churnctl generate`'s rows, seed
0) in a temporary folder, runs `churnctl fit FILE -o STATE` in a subprocess and
prints its wall time and its own peak RSS (``VmHWM`` from ``/proc``, Linux
only), then deletes the file. The fit streams, so the peak RSS should stay
flat across sizes (target: <= 300 MB). ``--smoke`` runs two tiny sizes (for
the test suite). Exits 1 if a fit fails, or if ``--max-rss-mb`` is given and
a fit exceeds it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from churnctl.samples.generate import generate_files

# The child runs under peak_of.py, which writes its own peak (VmHWM) at exit: wait4's
# ru_maxrss of a child also counts the pages it shared with this process before exec.
PEAK_OF = str(Path(__file__).resolve().parent / "peak_of.py")
CLI = "import sys; from churnctl.cli import run; sys.exit(run())"


@dataclass(frozen=True)
class Measurement:
    rows: int
    file_mb: float
    seconds: float
    peak_mb: float


def measure(rows: int, folder: Path) -> Measurement:
    """Generate ``rows`` rows, fit on them in a child process, and delete the file."""
    train = generate_files(folder / f"fit{rows}.csv", n_rows=rows, seed=0)[0]
    state, peak = folder / "state.json", folder / "peak_kb"
    try:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, PEAK_OF, str(peak), "-c", CLI, "fit", str(train), "-o", str(state)],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"fit on {rows:,} rows failed ({done.returncode}):\n{done.stderr}")
        peak_mb = int(peak.read_text()) / 1024
        return Measurement(rows, train.stat().st_size / 1e6, seconds, peak_mb)
    finally:
        train.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument("--max-rss-mb", type=float, help="exit 1 when a fit's peak RSS is over")
    args = parser.parse_args()
    sizes = [2_000, 20_000] if args.smoke else args.rows
    results = []
    print(f"{'rows':>12} {'file MB':>9} {'wall s':>8} {'rows/s':>12} {'peak RSS MB':>12}")
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="bench_fit.") as tmp:
            result = measure(rows, Path(tmp))
        results.append(result)
        print(
            f"{result.rows:>12,} {result.file_mb:>9,.1f} {result.seconds:>8.2f} "
            f"{result.rows / result.seconds:>12,.0f} {result.peak_mb:>12,.0f}"
        )
    peaks = [r.peak_mb for r in results]
    print(f"peak RSS, largest / smallest size: {peaks[-1] / peaks[0]:.2f}")
    if args.max_rss_mb is not None and max(peaks) > args.max_rss_mb:
        sys.exit(
            f"PROBLEM: a fit's peak RSS {max(peaks):,.0f} MB is over {args.max_rss_mb:,.0f} MB"
        )


if __name__ == "__main__":
    main()
