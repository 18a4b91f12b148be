"""Throughput of `score` against a bare pyarrow read and write of the same file.

    uv run python benchmarks/bench_score.py [--rows 1000000] [--file PATH]

Prints rows/s for churnctl's batch scoring (bundled state and model), for a
bare streaming pyarrow CSV read + write of the same file, and their ratio.
The target (see DEVELOPERS.md) is >= 1M rows/s on 2 cores and a ratio <= 1.5.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import pyarrow.csv as pacsv

from churnctl import Scorer
from churnctl.bundled import MODEL, STATE, bundled
from churnctl.file_scoring import ScoreRequest, score_file
from churnctl.generate import generate_files
from churnctl.rejects import NO_LIMIT


def bare_pyarrow(source: Path, target: Path) -> float:
    """Seconds to stream-read the CSV and write it back with pyarrow alone."""
    started = time.perf_counter()
    reader = pacsv.open_csv(source)
    with pacsv.CSVWriter(target, reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
    return time.perf_counter() - started


def churnctl_score(source: Path, target: Path) -> float:
    scorer = Scorer(bundled(STATE), bundled(MODEL))
    request = ScoreRequest(
        input=str(source), output=str(target), scorer=scorer, max_rejects=NO_LIMIT
    )
    return score_file(request).seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--file", type=Path, help="score this file instead of a generated one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.file or generate_files(Path(tmp) / "in.csv", n_rows=args.rows, seed=1)[0]
        rows = sum(1 for _ in source.open("rb")) - 1
        bare = min(bare_pyarrow(source, Path(tmp) / "bare.csv") for _ in range(3))
        scored = min(churnctl_score(source, Path(tmp) / "out.csv") for _ in range(3))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows: {rows:,}")
    print(f"bare pyarrow read+write: {bare:.2f} s ({rows / bare:,.0f} rows/s)")
    print(f"churnctl score:          {scored:.2f} s ({rows / scored:,.0f} rows/s)")
    print(f"ratio score / bare:      {scored / bare:.2f}")
    print(f"peak RSS of this process: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
