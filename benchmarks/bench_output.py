"""Throughput of `score` by output format, and the cost of one rejected row at the end.

    uv run python benchmarks/bench_output.py [--rows 1000000] [--smoke]

On one generated CSV file (bundled state and model, in-process ``score_file``,
median of 3 interleaved runs each), prints rows/s writing CSV and JSON Lines
and their ratio (target: JSONL >= 0.6 x CSV), then the seconds for the clean
file and for the same file with one bad value in its last row, and their ratio
(target: <= 1.15: a reject is located by rereading its batch, not the file).
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from churnctl import Scorer
from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.io.rejects import NO_LIMIT
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.samples.generate import generate_files

CPU: dict[Path, list[float]] = {}  # CPU seconds of each run, by target: less noisy when shared


def score_seconds(scorer: Scorer, source: Path, target: Path) -> float:
    """Wall seconds of one in-process ``score`` run (its CPU seconds go to ``CPU``)."""
    request = ScoreRequest(
        input=str(source), output=str(target), scorer=scorer, max_rejects=NO_LIMIT
    )
    cpu = time.process_time()
    seconds = score_file(request).seconds
    CPU.setdefault(target, []).append(time.process_time() - cpu)
    return seconds


def with_bad_last_row(source: Path, target: Path, column: str = "Age") -> None:
    """A copy of ``source`` whose last row holds ``not-a-number`` in ``column``."""
    data = source.read_bytes()
    start = data.rstrip(b"\r\n").rfind(b"\n") + 1
    header = next(csv.reader([data[: data.find(b"\n")].decode()]))
    fields = next(csv.reader([data[start:].decode().rstrip("\r\n")]))
    fields[header.index(column)] = "not-a-number"
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(fields)
    target.write_bytes(data[:start] + line.getvalue().encode())


def medians(runs: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """The median seconds of each run, the runs interleaved ``repeat`` times."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            seconds[name].append(run())
    return {name: statistics.median(values) for name, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script")
    args = parser.parse_args()
    rows = 2_000 if args.smoke else args.rows
    scorer = Scorer(bundled(STATE), bundled(MODEL))
    with tempfile.TemporaryDirectory() as tmp:
        clean = generate_files(Path(tmp) / "in.csv", n_rows=rows, seed=1)[0]
        bad = Path(tmp) / "bad.csv"
        with_bad_last_row(clean, bad)
        out = Path(tmp)
        formats = medians(
            {
                fmt: lambda fmt=fmt: score_seconds(scorer, clean, out / f"o.{fmt}")
                for fmt in ("csv", "jsonl")
            },
            repeat=3,
        )
        rejects = medians(
            {
                "clean": lambda: score_seconds(scorer, clean, out / "c.csv"),
                "bad": lambda: score_seconds(scorer, bad, out / "b.csv"),
            },
            repeat=3,
        )
        assert (out / "b.rejects.csv").read_text().count("\n") == 2, "expected one reject"
    cpu = {target.name: statistics.median(values) for target, values in CPU.items()}
    csv_rate, jsonl_rate = rows / formats["csv"], rows / formats["jsonl"]
    print(f"rows: {rows:,} (median of 3)")
    print(f"score -> CSV:   {formats['csv']:.2f} s ({csv_rate:,.0f} rows/s)")
    print(f"score -> JSONL: {formats['jsonl']:.2f} s ({jsonl_rate:,.0f} rows/s)")
    print(f"JSONL / CSV rows/s: {jsonl_rate / csv_rate:.2f} (target >= 0.6)")
    print(f"  CPU seconds: CSV {cpu['o.csv']:.2f}, JSONL {cpu['o.jsonl']:.2f}")
    print(f"clean file:               {rejects['clean']:.2f} s")
    print(f"one bad value, last row:  {rejects['bad']:.2f} s")
    print(f"bad / clean: {rejects['bad'] / rejects['clean']:.2f} (target <= 1.15)")
    print(f"  CPU seconds: clean {cpu['c.csv']:.2f}, bad {cpu['b.csv']:.2f}")


if __name__ == "__main__":
    main()
