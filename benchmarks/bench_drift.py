"""The cost of the drift check in `score`: the same file scored with and without it.

    uv run python benchmarks/bench_drift.py [--rows 1000000] [--repeat 5] [--smoke]

On one generated CSV file (bundled state and model, in-process ``score_file``,
CSV output), scores with the drift check (``ScoreRequest.drift``, the default) and
without it (``--no-drift``), runs interleaved, and prints the median wall and CPU
seconds of each, their ratio, and the seconds spent in the check itself (its
``observe`` and ``report``, timed inside the runs with the check): the share of
``score``'s time the check costs (target: <= 5%). On a shared machine the wall
ratio is noisy; the check's own seconds are not.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from churnctl import Scorer
from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.features.drift import DriftAccumulator
from churnctl.io.rejects import NO_LIMIT
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.samples.generate import generate_files

INSIDE: list[float] = []  # seconds spent in the drift check, per run with it


def timed(method: Callable) -> Callable:
    """``method``, adding its seconds to the current run's ``INSIDE`` entry."""

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            INSIDE[-1] += time.perf_counter() - started

    return wrapper


DriftAccumulator.observe = timed(DriftAccumulator.observe)
DriftAccumulator.report = timed(DriftAccumulator.report)


def score_run(scorer: Scorer, source: Path, target: Path, drift: bool) -> tuple[float, float]:
    """Wall and CPU seconds of one in-process ``score`` run."""
    request = ScoreRequest(
        input=str(source), output=str(target), scorer=scorer, max_rejects=NO_LIMIT, drift=drift
    )
    if drift:
        INSIDE.append(0.0)
    cpu = time.process_time()
    summary = score_file(request)
    assert (summary.drift is not None) is drift
    return summary.seconds, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script")
    args = parser.parse_args()
    rows, repeat = (2_000, 2) if args.smoke else (args.rows, args.repeat)
    scorer = Scorer(bundled(STATE), bundled(MODEL))
    runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        source = generate_files(Path(tmp) / "in.csv", n_rows=rows, seed=1)[0]
        for _ in range(repeat):
            for drift in (False, True):
                runs[drift].append(score_run(scorer, source, Path(tmp) / "out.csv", drift))
    wall = {drift: statistics.median(w for w, _ in values) for drift, values in runs.items()}
    cpu = {drift: statistics.median(c for _, c in values) for drift, values in runs.items()}
    inside = statistics.median(INSIDE)
    print(f"rows: {rows:,} (median of {repeat} interleaved runs)")
    print(f"score --no-drift: {wall[False]:.3f} s wall, {cpu[False]:.3f} s CPU")
    print(f"score (drift):    {wall[True]:.3f} s wall, {cpu[True]:.3f} s CPU")
    print(
        f"drift / no-drift: {wall[True] / wall[False]:.3f} wall, {cpu[True] / cpu[False]:.3f} CPU"
    )
    print(
        f"in the check: {inside:.3f} s = {inside / wall[False]:.1%} of score's time (target <= 5%)"
    )


if __name__ == "__main__":
    main()
