"""Throughput of the embedded Flink scoring job (`churnctl flink-submit`) against its floor.

    PYTHONPATH=. python benchmarks/bench_flink.py [--rows N] [--row-rows N] [--smoke]
                                                  [--markdown FILE]

Four variants, each run in its own fresh Python subprocess (so its own local
MiniCluster, JVM and Python workers), one after the other, on CSV files made by
``churnctl.generate`` (bundled state and model):

* ``s``: churnctl's job, ``run_job(FlinkJobSpec(...))``, parallelism 1;
* ``f``: the framework floor: the same source DDL (every column STRING, the
  ``file.path`` metadata column), the same projection, the same Arrow batch and
  bundle size, the same two sinks and INSERTs, but a no-op pandas UDF that
  returns the same output columns (a constant ``raw``); written here with
  PyFlink directly;
* ``r``: a row-at-a-time Python UDF (``udf(..., func_type="general")``, one call
  per row) scoring one row the way a user would write it by hand: parse the
  row's text, index, one-hot, assemble and scale it from the state's fitted
  numbers, and run the ONNX model on a 1-row matrix (checked against
  ``Scorer.score_aligned`` on the input's first rows before the run); it runs on
  ``--row-rows`` rows, being slow;
* ``s2``: churnctl's job with parallelism 2.

Each variant's wall time is that of its whole subprocess (Python and JVM
start-up, job graph, MiniCluster, workers, the job, shut-down); its job time is
the job's net runtime as Flink itself measured it (``JobExecutionResult``: from
submission to the end, Python workers included, no JVM or client start-up),
which is far less noisy. Its start-up is the same variant run on a
``--startup-rows`` (1,000) row file, once per variant (the variants load
different things: the scoring UDFs unpickle the state and open the ONNX model);
NET rows/s = rows / (job time - the small run's job time).

Each variant's main run is repeated ``--repeat`` (3) times, the variants
interleaved, and the median run is reported.

Correctness, cheaply: for every variant, scored + rejected part-file rows must
equal the input rows (the header line is dropped, as by the job). The script
exits 1 if a job fails, times out (its whole process group is killed) or its
counts do not add up; ``--check-targets`` also exits 1 when a target is missed.
``--smoke`` runs tiny sizes (2,000 rows, 500 for ``r``) and no start-up runs
(net = wall): the checks mean something, the figures do not.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the child runs this file by path
    sys.path.insert(0, str(ROOT))

import bench_report  # noqa: E402

import churnctl  # noqa: E402
from churnctl.bundled import MODEL, STATE, bundled  # noqa: E402
from churnctl.flink_job import ARROW_BATCH, HEADER, REJECTS, SCORED  # noqa: E402
from churnctl.scorer import Scorer  # noqa: E402

# name: (label, child kind, parallelism)
VARIANTS: dict[str, tuple[str, str, int]] = {
    "s": ("churnctl job, parallelism 1", "scoring", 1),
    "f": ("floor: no-op pandas UDF", "floor", 1),
    "r": ("row-at-a-time Python UDF", "row", 1),
    "s2": ("churnctl job, parallelism 2", "scoring", 2),
}
TARGETS = {"overhead": 1.3, "vs_row": 3.0, "scale": 1.6}


# --------------------------------------------------------------------------- the child


def child(kind: str, input_path: str, out_dir: str, parallelism: int) -> None:
    """Run one variant's job to its end (in this process's own MiniCluster)."""
    from churnctl.flink_job import FlinkJobSpec, run_job
    from churnctl.flink_submit import input_columns

    columns = input_columns(input_path)
    if kind == "scoring":
        spec = FlinkJobSpec(input=input_path, out_dir=out_dir, state=str(bundled(STATE)),
                            model=str(bundled(MODEL)), columns=columns,
                            parallelism=parallelism)  # fmt: skip
        report_job_time(run_job(spec))
        return
    scorer = Scorer(str(bundled(STATE)), str(bundled(MODEL)), threads=1)
    report_job_time(run_plain_job(kind, scorer, input_path, out_dir, columns, parallelism))


JOB_TIME = "job-net-runtime-ms="  # the child's last output line: Flink's own job duration


def report_job_time(result: Any) -> None:
    """Print the finished job's net runtime as Flink measured it (no JVM or client start-up)."""
    execution = result.get_job_client().get_job_execution_result().result()
    print(f"{JOB_TIME}{execution.get_net_runtime()}", flush=True)


def run_plain_job(
    kind: str, scorer: Scorer, input_path: str, out_dir: str, columns: tuple[str, ...], p: int
) -> Any:
    """The floor or row-at-a-time job: churnctl's job shape, written with PyFlink directly."""
    from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
    from pyflink.table.expressions import col
    from pyflink.table.udf import udf

    t_env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    settings = {
        "parallelism.default": str(p),
        "python.fn-execution.arrow.batch.size": str(ARROW_BATCH),
        "python.fn-execution.bundle.size": str(ARROW_BATCH),
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "pipeline.name": f"bench {kind} {Path(input_path).name}",
    }
    for key, value in settings.items():
        t_env.get_config().set(key, value)
    t_env.add_python_file(str(Path(churnctl.__file__).parent))
    typed = ", ".join(f"{quote(name)} STRING" for name in columns)
    t_env.execute_sql(
        f"CREATE TABLE source_files ({typed}, "
        "`source` STRING NOT NULL METADATA FROM 'file.path' VIRTUAL) WITH ("
        f"'connector' = 'filesystem', 'path' = {literal(input_path)}, 'format' = 'csv', "
        "'csv.ignore-parse-errors' = 'true')"
    )
    kept_types = ", ".join(f"{quote(name)} STRING" for name in scorer.keep)
    for name, schema in (
        (SCORED, f"{kept_types}, `raw` DOUBLE, exited BOOLEAN"),
        (REJECTS, "source STRING, line BIGINT, `column` STRING, reason STRING, text STRING"),
    ):
        path = str(Path(out_dir) / name)
        t_env.execute_sql(f"CREATE TABLE {name} ({schema}) WITH ('connector' = 'filesystem', "
                          f"'path' = {literal(path)}, 'format' = 'csv')")  # fmt: skip
    needed = scorer.required_columns
    fields = [DataTypes.FIELD(name, DataTypes.STRING()) for name in scorer.keep]
    fields += [DataTypes.FIELD("raw", DataTypes.DOUBLE()),
               DataTypes.FIELD("exited", DataTypes.BOOLEAN())]  # fmt: skip
    fields += [DataTypes.FIELD(name, DataTypes.STRING())
               for name in ("reject_column", "reject_reason", "source", "text")]  # fmt: skip
    result_type = DataTypes.ROW(fields)
    if kind == "floor":
        function = udf(NoOpBatch(needed, list(scorer.keep)), result_type=result_type,
                       func_type="pandas")  # fmt: skip
    else:
        function = udf(RowScore(scorer), result_type=result_type, func_type="general")
    table = t_env.from_path("source_files").select(*(col(n) for n in [*needed, "source"]))
    t_env.create_temporary_view("scored_rows", table.map(function))
    kept = ", ".join(quote(name) for name in scorer.keep)
    statements = t_env.create_statement_set()
    statements.add_insert_sql(f"INSERT INTO {SCORED} SELECT {kept}, `raw`, exited FROM "
                              "scored_rows WHERE reject_reason IS NULL")  # fmt: skip
    statements.add_insert_sql(
        f"INSERT INTO {REJECTS} SELECT source, CAST(NULL AS BIGINT), reject_column,"
        f" reject_reason, text FROM scored_rows WHERE reject_reason <> '{HEADER}'"
    )
    result = statements.execute()
    result.wait()
    return result


class NoOpBatch:
    """The floor's pandas UDF: the output columns, a constant ``raw``; only the header marked."""

    def __init__(self, needed: list[str], keep: list[str]) -> None:
        self.needed, self.keep = needed, keep

    def __call__(self, batch: Any) -> Any:
        import pandas as pd

        first = self.needed[0]
        header = (batch[first] == first).to_numpy()
        out = pd.DataFrame({name: batch[name] for name in self.keep})
        out["raw"] = 0.25
        out["exited"] = False
        out["reject_column"] = None
        out["reject_reason"] = pd.Series([HEADER if h else None for h in header], dtype=object)
        out["source"] = batch["source"].where(header, None)  # as the job: on rejects only
        out["text"] = None
        return out


class RowScore:
    """What a user writes without churnctl's batch scorer: one row's features by hand, one
    1-row ONNX run. Covers the stages of the bundled state (StringIndexer, OneHotEncoder,
    VectorAssembler, StandardScaler); a row that does not parse is rejected, not scored."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.needed = scorer.required_columns
        state = json.loads(scorer.state.dumps())
        self.index: dict[str, tuple[str, dict[str, int]]] = {}  # output -> (input, label ids)
        self.onehot: dict[str, tuple[str, int]] = {}  # output -> (index column, size)
        self.assembled: list[str] = []
        self.mean: list[float] = []
        self.std: list[float] = []
        for stage in state["stages"]:
            kind, params, fitted = stage["type"], stage["params"], stage.get("fitted", {})
            if kind == "StringIndexer":
                for source, out, labels in zip(params["input_cols"], params["output_cols"],
                                               fitted["labels"], strict=True):  # fmt: skip
                    self.index[out] = (source, {label: i for i, label in enumerate(labels)})
            elif kind == "OneHotEncoder":
                for source, out, size in zip(params["input_cols"], params["output_cols"],
                                             fitted["category_sizes"], strict=True):  # fmt: skip
                    self.onehot[out] = (source, size)
            elif kind == "VectorAssembler":
                self.assembled = list(params["input_cols"])
            elif kind == "StandardScaler":
                self.mean = fitted["mean"] if params["with_mean"] else []
                self.std = fitted["std"] if params["with_std"] else []
            else:
                raise ValueError(f"the row-at-a-time UDF does not cover a {kind} stage")

    def score_values(self, values: dict[str, str | None]) -> tuple[float | None, str | None]:
        """(raw, None), or (None, the column of a rejection)."""
        import math

        import numpy as np

        indexes: dict[str, int] = {}
        for out, (source, labels) in self.index.items():
            found = labels.get(values.get(source) or "")
            if found is None:
                return None, source
            indexes[out] = found
        vector: list[float] = []
        for name in self.assembled:
            if name in self.onehot:
                source, size = self.onehot[name]
                vector += [1.0 if i == indexes[source] else 0.0 for i in range(size)]
            elif name in indexes:
                vector.append(float(indexes[name]))
            else:
                try:
                    number = float(values.get(name) or "")
                except ValueError:
                    return None, name
                if not math.isfinite(number):
                    return None, name
                vector.append(number)
        if self.mean:
            vector = [v - m for v, m in zip(vector, self.mean, strict=True)]
        if self.std:
            vector = [v / s if s > 0 else 0.0 for v, s in zip(vector, self.std, strict=True)]
        matrix = np.array([vector], dtype=np.float32)
        (raw,) = self.scorer.model.predict_proba(matrix)
        return float(raw), None

    def __call__(self, row: Any) -> Any:
        from pyflink.common import Row

        values = dict(zip([*self.needed, "source"], row, strict=True))
        kept = [values[name] for name in self.scorer.keep]
        if all(values[name] == name for name in self.needed):
            return Row(*kept, None, None, None, HEADER, values["source"], None)
        raw, bad = self.score_values(values)
        if bad is not None:
            text = ",".join(values[name] or "" for name in self.needed)
            return Row(*kept, None, None, bad, "invalid value", values["source"], text)
        return Row(*kept, raw, raw > self.scorer.threshold, None, None, None, None)


def check_row_udf(scorer: Scorer, csv_path: Path, rows: int = 200) -> str | None:
    """A problem if the hand-written row scoring differs from ``score_aligned`` on ``rows``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    needed = scorer.required_columns
    options = pcsv.ConvertOptions(column_types=dict.fromkeys(needed, pa.string()),
                                  include_columns=needed)  # fmt: skip
    table = pcsv.read_csv(csv_path, convert_options=options).slice(0, rows)
    expected = scorer.score_aligned(table).column("raw").to_numpy(zero_copy_only=False)
    by_hand = RowScore(scorer)
    got = [by_hand.score_values(row)[0] for row in table.to_pylist()]
    got_array = np.array([np.nan if g is None else g for g in got])
    if not np.allclose(got_array, expected, atol=1e-5, equal_nan=True):
        worst = float(np.nanmax(np.abs(got_array - expected)))
        return f"row-at-a-time scoring differs from score_aligned (max |diff| {worst:g})"
    return None


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --------------------------------------------------------------------------- the parent


@dataclass
class Timing:
    """One subprocess: its wall time, its output counts, or what went wrong."""

    seconds: float = 0.0
    scored: int = 0
    rejected: int = 0
    problem: str | None = None
    busy_cores: float | None = None  # the machine's busy cores, on average, while it ran
    job_seconds: float | None = None  # the job's net runtime as Flink measured it


def run_variant(key: str, csv_path: Path, rows: int, out_dir: Path, timeout: float) -> Timing:
    """The variant as its own process group, killed whole on timeout; counts checked."""
    from churnctl.flink_submit import count_outputs, root_cause

    _, kind, parallelism = VARIANTS[key]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    log = out_dir.parent / f"{out_dir.name}.log"
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind,
               "--input", str(csv_path), "--out", str(out_dir),
               "--parallelism", str(parallelism)]  # fmt: skip
    started, jiffies = time.perf_counter(), bench_report.cpu_jiffies()
    with log.open("wb") as handle:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            return Timing(timeout, problem=f"{key}: timed out after {timeout:.0f} s (killed)")
        finally:
            stop_group(proc)  # the JVM and Python workers it may have left behind
    timing = Timing(
        time.perf_counter() - started,
        busy_cores=bench_report.busy_cores(jiffies, bench_report.cpu_jiffies()),
    )
    if code != 0:
        output = log.read_text(errors="replace")
        timing.problem = f"{key}: exited {code}: {root_cause(output)} (log: {log})"
        return timing
    timing.job_seconds = job_time(log.read_text(errors="replace"))
    counts = count_outputs(out_dir)
    timing.scored, timing.rejected = counts.rows_scored, counts.rows_rejected
    if counts.rows_read != rows:
        timing.problem = (f"{key}: {counts.rows_scored:,} scored + {counts.rows_rejected:,} "
                          f"rejected rows != {rows:,} input rows")  # fmt: skip
    return timing


def job_time(output: str) -> float | None:
    """The job's net runtime in seconds from the child's output, if it printed one."""
    lines = [line for line in output.splitlines() if line.startswith(JOB_TIME)]
    return int(lines[-1].removeprefix(JOB_TIME)) / 1000 if lines else None


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's process group (its own session), then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.poll() is not None and not group_alive(proc.pid):
                return
            time.sleep(0.1)
    proc.wait(timeout=10)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Run:
    rows: list[tuple[str, str, str, bool | None]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def figure(self, name: str, measured: str, target: str = "", met: bool | None = None) -> None:
        self.rows.append((name, measured, target, met))
        mark = "" if met is None else ("  [met]" if met else "  [NOT MET]")
        print(f"  {name}: {measured}" + (f"  (target {target})" if target else "") + mark,
              flush=True)  # fmt: skip


@dataclass
class Result:
    key: str
    rows: int
    wall: Timing  # the median run
    startup: Timing
    runs: list[Timing] = field(default_factory=list)  # every main run, in order

    @property
    def net(self) -> float:
        """The job's own runtime less that of the small run (Flink's clock when it has both)."""
        job, small = self.wall.job_seconds, self.startup.job_seconds
        if job is not None and (small is not None or self.startup.seconds == 0):
            return job - (small or 0.0)
        return self.wall.seconds - self.startup.seconds

    @property
    def rate(self) -> float | None:
        """NET rows/s; None when the net time is not positive (too few rows to tell)."""
        return self.rows / self.net if self.net > 0 else None


def markdown(run: Run, command: str, seconds: float) -> str:
    notes = [
        "Each variant ran alone in a fresh subprocess (its own MiniCluster); wall is that "
        "process's whole life; job is the job's net runtime as Flink measured it; start-up "
        "is the same variant's job time on a 1,000-row file, measured once per variant; "
        "net rows/s = rows / (job - start-up); the median of the repeated runs."
    ]
    return bench_report.markdown(
        "`churnctl flink-submit` (embedded Flink) benchmark",
        command,
        seconds,
        ("pyarrow", "apache-flink", "onnxruntime"),
        run.rows,
        notes,
        run.problems,
    )


def busy_text(cores: float | None) -> str:
    """The machine's average busy cores during the run (the cores a wider job could use)."""
    return "" if cores is None else f", {cores:.2f} of {os.cpu_count()} cores busy"


def spread_text(result: Result) -> str:
    """The job times of all runs when there were several."""
    if len(result.runs) < 2:
        return ""
    return "; job times " + ", ".join(seconds_text(t.job_seconds) for t in result.runs) + " s"


def seconds_text(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.1f}"


def rate_text(rate: float | None) -> str:
    return "n/a (net time <= 0)" if rate is None else f"{rate:,.0f} rows/s"


def report(run: Run, results: dict[str, Result], smoke: bool) -> None:
    print(f"\n{'variant':<34}{'rows':>10}{'wall s':>9}{'job s':>8}{'start-up s':>12}"
          f"{'net s':>8}{'net rows/s':>13}")  # fmt: skip
    for key, r in results.items():
        rate = "n/a" if r.rate is None else f"{r.rate:,.0f}"
        print(f"{key + ': ' + VARIANTS[key][0]:<34}{r.rows:>10,}{r.wall.seconds:>9.1f}"
              f"{seconds_text(r.wall.job_seconds):>8}{seconds_text(r.startup.job_seconds):>12}"
              f"{r.net:>8.1f}{rate:>13}")  # fmt: skip
    print(flush=True)
    for key, r in results.items():
        busy = busy_text(r.wall.busy_cores)
        run.figure(f"{key} ({VARIANTS[key][0]}): net rows/s", rate_text(r.rate) +
                   f" ({r.rows:,} rows, wall {r.wall.seconds:.1f} s, job "
                   f"{seconds_text(r.wall.job_seconds)} s, start-up job "
                   f"{seconds_text(r.startup.job_seconds)} s{busy}{spread_text(r)})")  # fmt: skip

    def judged(met: bool) -> bool | None:
        return None if smoke else met

    note = " (--smoke: start-up only, meaningless)" if smoke else ""

    s, f, row, s2 = (results.get(k) for k in ("s", "f", "r", "s2"))
    if s and f and s.net > 0 and f.net > 0:
        # per row, since the two may differ in rows only if asked; same rows by default
        ratio = (s.net / s.rows) / (f.net / f.rows)
        run.figure("scoring net time / floor net time", f"{ratio:.2f}" + note,
                   f"≤ {TARGETS['overhead']}", judged(ratio <= TARGETS["overhead"]))  # fmt: skip
    if s and row and s.rate and row.rate:
        ratio = s.rate / row.rate
        run.figure("scoring rows/s / row-at-a-time rows/s", f"{ratio:.1f}" + note,
                   f"≥ {TARGETS['vs_row']:g}", judged(ratio >= TARGETS["vs_row"]))  # fmt: skip
    if s and s2 and s.rate and s2.rate:
        ratio = s2.rate / s.rate
        run.figure("parallelism 2 rows/s / parallelism 1", f"{ratio:.2f}" + note,
                   f"≥ {TARGETS['scale']}", judged(ratio >= TARGETS["scale"]))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for s, f and s2")
    parser.add_argument("--row-rows", type=int, default=100_000, help="rows for r")
    parser.add_argument(
        "--parts", type=int, default=4, help="the s, f, s2 rows as this many CSV files in a folder"
    )
    parser.add_argument("--startup-rows", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3, help="main runs per variant (median)")
    parser.add_argument("--variants", default="s,f,r,s2", help="comma-separated, of s,f,r,s2")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per subprocess")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; checks counts only")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write a markdown section")
    parser.add_argument("--check-targets", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--tmp", type=Path, help="parent of the temporary folder")
    parser.add_argument("--child", choices=("scoring", "floor", "row"), help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--parallelism", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.input, args.out, args.parallelism)
        return 0
    if args.smoke:
        args.rows, args.row_rows, args.startup_rows, args.repeat = 2_000, 500, 0, 1
        args.timeout = min(args.timeout, 300)
    keys = [k.strip() for k in args.variants.split(",") if k.strip()]
    unknown = [k for k in keys if k not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    return bench(args, keys)


def measure(
    args: argparse.Namespace, keys: list[str], files: dict[str, Path], tmp: Path, run: Run
) -> dict[str, Result]:
    """Each variant's start-up run, then ``--repeat`` rounds of main runs, variants interleaved
    (so that a slow spell of the shared machine hits them all); the median run of each."""
    startups: dict[str, Timing] = {}
    for key in keys:
        if args.smoke:  # no start-up run: the same code as the main run, and as slow
            startups[key] = Timing()
            continue
        print(f"{key} ({VARIANTS[key][0]}): start-up run ...", flush=True)
        startups[key] = run_variant(key, files["startup"], args.startup_rows,
                                    tmp / f"{key}-startup", args.timeout)  # fmt: skip
        print(f"  {startups[key].seconds:.1f} s", flush=True)
    walls: dict[str, list[Timing]] = {key: [] for key in keys}
    for round_ in range(args.repeat):
        for key in keys:
            rows = args.row_rows if key == "r" else args.rows
            print(f"{key} ({VARIANTS[key][0]}): {rows:,} rows, run {round_ + 1} ...", flush=True)
            main_file = files["row"] if key == "r" else files["main"]
            wall = run_variant(key, main_file, rows, tmp / f"{key}-main-{round_}", args.timeout)
            print(f"  {wall.seconds:.1f} s, job {seconds_text(wall.job_seconds)} s "
                  f"({wall.scored:,} scored, {wall.rejected:,} rejected)", flush=True)  # fmt: skip
            walls[key].append(wall)
    results = {}
    for key in keys:
        timings = [startups[key], *walls[key]]
        run.problems += [t.problem for t in timings if t.problem]
        if not any(t.problem for t in timings):
            rows = args.row_rows if key == "r" else args.rows
            results[key] = Result(key, rows, median_run(walls[key]), startups[key], walls[key])
    return results


def median_run(timings: list[Timing]) -> Timing:
    """The run with the median job time (or wall time when Flink gave none)."""
    ordered = sorted(timings, key=lambda t: t.seconds if t.job_seconds is None else t.job_seconds)
    return ordered[(len(ordered) - 1) // 2]


def bench(args: argparse.Namespace, keys: list[str]) -> int:
    from churnctl.generate import generate_files

    run, started = Run(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-flink-", dir=args.tmp) as name:
        tmp = Path(name)
        sizes = {"main": args.rows, "row": args.row_rows, "startup": args.startup_rows}
        files = {}
        for label, rows in sizes.items():
            if rows == 0:
                continue
            if label == "main" and args.parts > 1:  # a folder: Flink splits work by file
                generate_files(tmp / "main", n_rows=rows, files=args.parts, seed=7)
                files[label] = tmp / "main"
                continue
            (files[label],) = generate_files(tmp / f"{label}-{rows}.csv", n_rows=rows, seed=7)
        startup = (f"{args.startup_rows:,} rows (start-up of each variant)" if not args.smoke
                   else "no start-up runs (--smoke)")  # fmt: skip
        print(f"inputs: {args.rows:,} rows in {args.parts} file(s) (s, f, s2), "
              f"{args.row_rows:,} rows (r), {startup}",
              flush=True)  # fmt: skip
        if "r" in keys:
            scorer = Scorer(str(bundled(STATE)), str(bundled(MODEL)), threads=1)
            problem = check_row_udf(scorer, files["row"])
            if problem:
                run.problems.append(f"r: {problem}")
        results = measure(args, keys, files, tmp, run)
        report(run, results, args.smoke)
    seconds = time.perf_counter() - started
    print(f"total {seconds:.0f} s")
    if args.markdown:
        command = " ".join(["python", *sys.argv])
        args.markdown.write_text(markdown(run, command, seconds) + "\n", encoding="utf-8")
    for problem in run.problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    if run.problems:
        return 1
    missed = [name for name, _, _, met in run.rows if met is False]
    return 1 if args.check_targets and missed else 0


if __name__ == "__main__":
    sys.exit(main())
