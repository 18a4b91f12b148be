"""The embedded Flink scoring job (`churnctl flink-submit`) against its floor and `churnctl score`.

    PYTHONPATH=. python benchmarks/bench_flink.py [--rows N] [--parts N] [--repeat N]
                                                  [--variants s,f,score,s1,s2] [--smoke]
                                                  [--markdown FILE]

Six variants, each run in its own fresh subprocess (so each Flink variant has its
own local MiniCluster, JVM and Python workers), on the same rows made by
``churnctl.samples.generate`` (bundled state and model), as one CSV file and as ``--parts``
(4) CSV files:

* ``s``: churnctl's job, ``run_job(FlinkJobSpec(...))``, parallelism 1, one file;
* ``f``: the framework's floor: the same graph built from the job's public pieces
  (``job_environment``, ``listed_files``, ``rebalance``, a Python ``flat_map``,
  ``write_outputs``), whose function only reads each file's bytes (counting its
  line breaks) and yields the file's ``files`` record: no parsing, no scoring. It
  is what the engine costs around churnctl's reading and scoring;
* ``score``: ``churnctl score FILE -o OUT``, a whole process, on the same file;
* ``cli``: ``churnctl flink-submit FILE --out OUT``, a whole process (its checks,
  ``python job.py`` as its own process, the publishing), on the same file: what a
  user waits for;
* ``s1``: churnctl's job, parallelism 1, on the ``--parts`` files;
* ``s2``: churnctl's job, parallelism 2, on the same ``--parts`` files. A file is
  the job's unit of work (one worker reads and scores a whole file), so the
  parallel figure compares ``s2`` with ``s1``: the same files, only the
  parallelism differs.

(There is no row-at-a-time UDF variant any more: the job runs ``score``'s own
reader and ``Scorer``, and ``benchmarks/run.py`` compares those with a
record-at-a-time loop.)

Each variant's wall time is that of its whole subprocess (Python and JVM start-up,
job graph, MiniCluster, workers, the job, shut-down); a Flink variant's job time
is the job's net runtime as Flink itself measured it (``JobExecutionResult``:
from submission to the end, Python workers included, no JVM or client start-up),
which is far less noisy (``run_job`` keeps its job client to itself: the child
records the one ``execute_async`` returns). The variants of ``--startup-variants``
(``s``, ``f``, ``score``, ``cli``) also run on ``--startup-rows`` (1,000) rows: their
start-up, and their net time (job time, or ``score``'s wall time, less the small
run's). There are ``--repeat`` (3) rounds; each runs the small runs, then the main
runs, the variants interleaved, so that a slow spell of the shared machine hits
them all; medians are reported.

Figures: the job time of ``s`` and the wall time of ``cli`` against ``score``'s
wall time on the same rows; the net rows/s of ``s`` and ``score``; ``s`` less the
floor (churnctl's reading, scoring and output in the job) and ``s`` over the floor
(target); how many workers wrote scored rows in ``s2`` (its part files' writers;
target: one per file up to the parallelism) and ``s2`` against ``s1`` (target).
Every Flink run's wall time is split around the job: when it was submitted (the
child prints it) and how long the process group took to end after it.

Correctness, cheaply, after every run: each Flink job wrote one ``files/`` record
per input file, each read whole, whose counts (``count_outputs``) add up to the
input rows (the floor's are its line counts); and the scored records of ``s``,
``s1``, ``s2``, ``cli`` and ``score`` are those of a reference ``churnctl score`` run on the
same rows, made before anything is timed (compared as an order-free multiset
digest of the parsed CSV records, without ``score``'s header). The script exits 1
if a run fails, times out (its whole process group is killed) or a check does not
hold; ``--check-targets`` also exits 1 when a target is missed. ``--smoke`` runs
2,000 rows once and no small runs: the checks mean something, the figures do not.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the child runs this file by path
    sys.path.insert(0, str(ROOT))

import bench_report  # noqa: E402

from churnctl.samples.bundled import MODEL, STATE, bundled  # noqa: E402


@dataclass(frozen=True)
class Variant:
    label: str
    kind: str  # "job" (run_job), "floor", "cli" (churnctl flink-submit) or "score"
    parallelism: int
    parts: bool  # on the --parts files, not the one file


VARIANTS: dict[str, Variant] = {
    "s": Variant("churnctl job, parallelism 1, 1 file", "job", 1, parts=False),
    "f": Variant("floor: read each file, no scoring", "floor", 1, parts=False),
    "score": Variant("`churnctl score FILE -o OUT`", "score", 1, parts=False),
    "cli": Variant("`churnctl flink-submit FILE --out OUT`", "cli", 1, parts=False),
    "s1": Variant("churnctl job, parallelism 1, 4 files", "job", 1, parts=True),
    "s2": Variant("churnctl job, parallelism 2, 4 files", "job", 2, parts=True),
}
TARGETS = {"engine": 1.5, "scale": 1.3}
CHURNCTL = ["-c", "from churnctl.__main__ import main; main()"]
JOB_TIME = "job-net-runtime-ms="  # the child's last output line: Flink's own job duration
SUBMITTED, DONE = "job-submitted-at=", "job-done-at="  # the child's clock (epoch seconds)


# --------------------------------------------------------------------------- the child


def child(kind: str, input_path: str, out_dir: str, parallelism: int) -> None:
    """Run one variant's job to its end (in this process's own MiniCluster); print its time,
    and when it was submitted and done (for the parent to split its wall time)."""
    from churnctl.flink.job import FlinkJobSpec, run_job

    spec = FlinkJobSpec(
        input=input_path,
        out_dir=out_dir,
        state=str(bundled(STATE)),
        model=str(bundled(MODEL)),
        parallelism=parallelism,
    )
    if kind == "job":
        with submitted_jobs() as clients:
            run_job(spec, on_submitted=lambda _: mark(SUBMITTED))
        execution = clients[-1].get_job_execution_result().result()
    else:
        execution = run_floor(spec)
    mark(DONE)
    print(f"{JOB_TIME}{execution.get_net_runtime()}", flush=True)


def mark(name: str) -> None:
    print(f"{name}{time.time():.3f}", flush=True)


@contextlib.contextmanager
def submitted_jobs() -> Iterator[list[Any]]:
    """The job clients of the jobs submitted meanwhile (``run_job`` keeps its own to itself):
    ``StreamExecutionEnvironment.execute_async`` wrapped to record what it returns."""
    from pyflink.datastream import StreamExecutionEnvironment

    clients: list[Any] = []
    original = StreamExecutionEnvironment.execute_async

    def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        clients.append(original(self, *args, **kwargs))
        return clients[-1]

    StreamExecutionEnvironment.execute_async = recorded  # type: ignore[method-assign]
    try:
        yield clients
    finally:
        StreamExecutionEnvironment.execute_async = original  # type: ignore[method-assign]


def run_floor(spec: Any) -> Any:
    """The floor: churnctl's graph from its public pieces, with ``ReadFile`` for ``ScoreFiles``."""
    from pyflink.common import Types

    from churnctl.flink.job import job_environment, listed_files, write_outputs

    env = job_environment(spec)
    chunks = (
        listed_files(env, spec)
        .rebalance()
        .flat_map(ReadFile(), Types.TUPLE([Types.STRING(), Types.STRING()]))
        .name("floor: read each file")
    )
    write_outputs(chunks, Path(spec.out_dir))
    client = env.execute_async(f"bench floor {Path(spec.input).name}")
    mark(SUBMITTED)
    return client.get_job_execution_result().result()


class ReadFile:
    """The floor's function: read the file's bytes, yield its ``files`` record (its line
    breaks less the header's as rows: the generated files quote no line break)."""

    def __call__(self, listed: tuple[str, int]) -> Iterator[tuple[str, str]]:
        from churnctl.flink.scoring import FILES, FileCounts

        path = str(listed[0])
        counts = FileCounts(source=path)
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                counts.bytes += len(block)
                counts.rows_scored += block.count(b"\n")
        counts.rows_scored = max(counts.rows_scored - 1, 0)
        yield FILES, counts.as_csv()


# --------------------------------------------------------------------------- one run


@dataclass
class Inputs:
    """The same rows as one file and as several; their reference scoring by ``score``."""

    one: Path
    parts: Path  # a folder
    rows: int
    files: int  # in ``parts``
    digest: tuple[int, int] = (0, 0)  # the reference's scored records (count, sum)

    def of(self, variant: Variant) -> tuple[Path, int]:
        """A variant's input and its number of files."""
        return (self.parts, self.files) if variant.parts else (self.one, 1)


@dataclass
class Timing:
    """One subprocess: its wall time, its output counts, or what went wrong."""

    seconds: float = 0.0
    scored: int = 0
    rejected: int = 0
    problem: str | None = None
    busy_cores: float | None = None  # the machine's busy cores, on average, while it ran
    job_seconds: float | None = None  # the job's net runtime as Flink measured it
    submitted: float | None = None  # seconds from the process's start to the job's submission
    after: float | None = None  # seconds from the job's end to the process's
    workers: int = 0  # the scoring job's workers that wrote scored rows (part-file writers)


def command_of(key: str, source: Path, out_dir: Path) -> list[str]:
    variant = VARIANTS[key]
    if variant.kind == "score":
        out_dir.mkdir(parents=True)
        return [sys.executable, *CHURNCTL, "score", str(source), "-o", str(out_dir / "out.csv")]
    if variant.kind == "cli":
        return [sys.executable, *CHURNCTL, "flink-submit", str(source), "--out", str(out_dir)]
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        variant.kind,
        "--input",
        str(source),
        "--out",
        str(out_dir),
        "--parallelism",
        str(variant.parallelism),
    ]


def run_variant(key: str, inputs: Inputs, out_dir: Path, timeout: float) -> Timing:
    """The variant as its own process group, killed whole on timeout; its outputs checked."""
    from churnctl.flink.submit import root_cause

    source, _ = inputs.of(VARIANTS[key])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    log = out_dir.parent / f"{out_dir.name}.log"
    command = command_of(key, source, out_dir)
    started, jiffies, epoch = time.perf_counter(), bench_report.cpu_jiffies(), time.time()
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            return Timing(timeout, problem=f"{key}: timed out after {timeout:.0f} s (killed)")
        finally:
            stop_group(proc)  # the JVM and Python workers it may have left behind
    ended = time.time()
    timing = Timing(
        time.perf_counter() - started,
        busy_cores=bench_report.busy_cores(jiffies, bench_report.cpu_jiffies()),
    )
    output = log.read_text(errors="replace")
    if code != 0:
        timing.problem = f"{key}: exited {code}: {root_cause(output)} (log: {log})"
        return timing
    timing.job_seconds = job_time(output)
    submitted, done = printed(output, SUBMITTED), printed(output, DONE)
    timing.submitted = None if submitted is None else submitted - epoch
    timing.after = None if done is None else ended - done
    problem = check_outputs(key, inputs, out_dir, timing)
    timing.problem = problem and f"{key}: {problem} (log: {log})"
    return timing


def check_outputs(key: str, inputs: Inputs, out_dir: Path, timing: Timing) -> str | None:
    """A problem if the counts do not add up or the scored records are not the reference's."""
    from churnctl.flink.submit import count_outputs, finished_parts

    variant = VARIANTS[key]
    _, files = inputs.of(variant)
    if variant.kind == "score":
        scored = [out_dir / "out.csv"]
        timing.scored = records_digest(scored, header=True)[0]
    else:
        counts = count_outputs(out_dir)
        timing.scored, timing.rejected = counts.rows.scored, counts.rows.rejected
        if len(counts.files) != files or counts.failed:
            return (
                f"{len(counts.files)} files/ records ({len(counts.failed)} not read whole) "
                f"for {files} input file(s)"
            )
        scored = finished_parts(out_dir / "scored")
        timing.workers = len({part.name.rsplit("-", 1)[0] for part in scored})  # part-UUID-N
    if timing.scored + timing.rejected != inputs.rows:
        return (
            f"{timing.scored:,} scored + {timing.rejected:,} rejected rows != "
            f"{inputs.rows:,} input rows"
        )
    if variant.kind == "floor":
        return None
    got = records_digest(scored, header=variant.kind == "score")
    if got != inputs.digest:
        return (
            f"scored records differ from the reference `churnctl score` run's "
            f"({got[0]:,} records against {inputs.digest[0]:,})"
        )
    return None


def records_digest(paths: list[Path], *, header: bool) -> tuple[int, int]:
    """(count, sum of their hashes): equal for the same CSV records in any order."""
    count, total = 0, 0
    for path in paths:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            if header:
                next(reader, None)
            for record in reader:
                digest = hashlib.blake2b("\x1f".join(record).encode(), digest_size=16).digest()
                total = (total + int.from_bytes(digest, "little")) & ((1 << 128) - 1)
                count += 1
    return count, total


def job_time(output: str) -> float | None:
    """The job's net runtime in seconds from the child's output, if it printed one."""
    milliseconds = printed(output, JOB_TIME)
    return None if milliseconds is None else milliseconds / 1000


def printed(output: str, name: str) -> float | None:
    """The last value the child printed as ``NAME<number>``, if any."""
    lines = [line for line in output.splitlines() if line.startswith(name)]
    return float(lines[-1].removeprefix(name)) if lines else None


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


# --------------------------------------------------------------------------- results


@dataclass
class Run:
    rows: list[tuple[str, str, str, bool | None]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def figure(self, name: str, measured: str, target: str = "", met: bool | None = None) -> None:
        self.rows.append((name, measured, target, met))
        mark = "" if met is None else ("  [met]" if met else "  [NOT MET]")
        print(
            f"  {name}: {measured}" + (f"  (target {target})" if target else "") + mark, flush=True
        )


@dataclass
class Result:
    """A variant's runs: the main ones and (if it had them) the small ones."""

    key: str
    rows: int
    runs: list[Timing]  # every main run, in order
    startups: list[Timing] = field(default_factory=list)  # every small run, in order

    @property
    def main(self) -> Timing:
        return median_run(self.runs)

    @property
    def startup(self) -> Timing | None:
        return median_run(self.startups) if self.startups else None

    @property
    def time(self) -> float:
        """The median job time as Flink measured it; ``score``'s median wall time."""
        return time_of(self.main)

    @property
    def net(self) -> float | None:
        """The time less that of the small run, if it had small runs (none with ``--smoke``)."""
        return None if self.startup is None else self.time - time_of(self.startup)

    @property
    def rate(self) -> float | None:
        """NET rows/s; None without small runs or when the net time is not positive."""
        return self.rows / self.net if self.net is not None and self.net > 0 else None


def time_of(timing: Timing) -> float:
    """A run's job time as Flink measured it, or its wall time when it is not a Flink job."""
    return timing.seconds if timing.job_seconds is None else timing.job_seconds


def median_run(timings: list[Timing]) -> Timing:
    """The run with the median job time (or wall time when Flink gave none)."""
    return sorted(timings, key=time_of)[(len(timings) - 1) // 2]


def markdown(run: Run, command: str, seconds: float, inputs: Inputs) -> str:
    notes = [
        f"The same {inputs.rows:,} generated rows as one CSV file (`s`, `f`, `score`, `cli`) "
        f"and as {inputs.files} files (`s1`, `s2`): a file is the job's unit of work, so "
        "parallelism is judged on the same files. Each variant ran in a fresh subprocess (a "
        "Flink variant in its own MiniCluster); wall is that process's whole life (for a "
        "Flink variant: when the job was submitted, and how long the process took to end "
        "after it); job is the job's net runtime as Flink measured it (no JVM or client "
        "start-up). Start-up is the same variant on 1,000 rows; net rows/s = rows / (job - "
        "start-up job), for `score` rows / (wall - start-up wall). Rounds of small runs then "
        "main runs, the variants interleaved; medians. The floor `f` is churnctl's graph from "
        "its public pieces (`job_environment`, `listed_files`, `write_outputs`) whose "
        "function only reads each file's bytes and yields its `files/` record. Every run was "
        "checked: one `files/` record per input file, whose counts add up to the input rows, "
        "and the scored records of `s`, `s1`, `s2`, `cli` and `score` equal to a reference "
        "`churnctl score` run's. `score` uses ONNX Runtime's default threads and reads ahead "
        "in a thread; a Flink worker scores on one thread. Busy cores are the whole "
        "machine's (shared with other jobs) during the run."
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


def times_text(timings: list[Timing]) -> str:
    """Each run's job time (wall time when it is not a Flink job)."""
    return ", ".join(f"{time_of(t):.1f}" for t in timings)


def seconds_text(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.1f}"


def variant_table(results: dict[str, Result]) -> None:
    print(
        f"\n{'variant':<42}{'rows':>10}{'wall s':>9}{'job s':>8}{'start-up s':>12}"
        f"{'net s':>8}{'net rows/s':>13}"
    )
    for key, r in results.items():
        small = None if r.startup is None else time_of(r.startup)
        rate = "n/a" if r.rate is None else f"{r.rate:,.0f}"
        print(
            f"{key + ': ' + VARIANTS[key].label:<42}{r.rows:>10,}{r.main.seconds:>9.1f}"
            f"{seconds_text(r.main.job_seconds):>8}{seconds_text(small):>12}"
            f"{seconds_text(r.net):>8}{rate:>13}"
        )
    print(flush=True)


def run_text(timing: Timing) -> str:
    """A run's job and wall time; where its wall time went around the job."""
    if timing.job_seconds is None:
        return f"wall {timing.seconds:.1f} s"
    text = f"job {timing.job_seconds:.1f} s, wall {timing.seconds:.1f} s"
    if timing.submitted is not None and timing.after is not None:
        text += f" (submitted at {timing.submitted:.1f} s, exited {timing.after:.1f} s after)"
    return text


def variant_figure(run: Run, key: str, r: Result) -> None:
    """A variant's median main run (and small run): its times, its spread, the machine's load."""
    what = "wall" if r.main.job_seconds is None else "job"
    measured = run_text(r.main) + busy_text(r.main.busy_cores)
    if len(r.runs) > 1:
        measured += f"; {what} times {times_text(r.runs)} s"
    if r.startup is not None:
        measured += f"; start-up: {run_text(r.startup)}, {what} times {times_text(r.startups)} s"
        if r.rate is not None:
            measured += f"; net {r.rate:,.0f} rows/s"
    if VARIANTS[key].kind in ("job", "cli"):
        measured += f"; scored rows written by {r.main.workers} worker(s)"
    run.figure(f"{key}: {VARIANTS[key].label}, {r.rows:,} rows", measured)


def report(run: Run, results: dict[str, Result], inputs: Inputs, smoke: bool) -> None:
    variant_table(results)
    for key, result in results.items():
        variant_figure(run, key, result)

    def judged(met: bool) -> bool | None:
        return None if smoke else met

    note = " (--smoke: meaningless)" if smoke else ""
    s, f, score, cli, s1, s2 = (results.get(k) for k in ("s", "f", "score", "cli", "s1", "s2"))
    if s and score:
        run.figure(
            f"`s` job time / `score` wall, {s.rows:,} rows",
            f"{s.time / score.time:.1f} ({s.time:.1f} s against {score.time:.1f} s; "
            f"`s` wall {s.main.seconds:.1f} s){note}",
        )
    if cli and score:
        run.figure(
            f"`flink-submit` wall / `score` wall, {cli.rows:,} rows",
            f"{cli.time / score.time:.1f} ({cli.time:.1f} s against {score.time:.1f} s)" + note,
        )
    if s and score and s.rate and score.rate:
        run.figure(
            "net rows/s, `s` / `score`",
            f"{s.rate / score.rate:.2f} ({s.rate:,.0f} against {score.rate:,.0f} rows/s){note}",
        )
    if s and f:
        run.figure(
            "churnctl's reading, scoring and output in the job: `s` job - floor job",
            f"{s.time - f.time:.1f} s" + note,
        )
        ratio = s.time / f.time
        run.figure(
            "`s` job time / floor job time",
            f"{ratio:.2f}" + note,
            f"≤ {TARGETS['engine']:g}",
            judged(ratio <= TARGETS["engine"]),
        )
    if s2:
        wanted = min(VARIANTS["s2"].parallelism, inputs.files)
        workers = [t.workers for t in s2.runs]
        run.figure(
            f"`s2`: workers that wrote scored rows, parallelism 2, {inputs.files} files",
            f"{min(workers)} (each run: {', '.join(map(str, workers))})",
            f"≥ {wanted}",
            min(workers) >= wanted,
        )
    if s1 and s2:
        ratio = s1.time / s2.time
        run.figure(
            f"parallelism 2 / 1 speed-up, job time, {inputs.files} files",
            f"{ratio:.2f} ({s2.time:.1f} s against {s1.time:.1f} s){note}",
            f"≥ {TARGETS['scale']:g}",
            judged(ratio >= TARGETS["scale"]),
        )


# --------------------------------------------------------------------------- the parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=4, help="files of s1 and s2 (the same rows)")
    parser.add_argument("--startup-rows", type=int, default=1_000)
    parser.add_argument("--startup-variants", default="s,f,score,cli", help="those with small runs")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of runs (medians)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per subprocess")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; checks only")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write a markdown section")
    parser.add_argument("--check-targets", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--tmp", type=Path, help="parent of the temporary folder")
    parser.add_argument("--child", choices=("job", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--parallelism", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.input, args.out, args.parallelism)
        return 0
    if args.smoke:
        args.rows, args.startup_rows, args.repeat = 2_000, 0, 1
        args.timeout = min(args.timeout, 300)
    args.keys = names(args.variants)
    small_keys = [] if args.startup_rows == 0 else names(args.startup_variants)
    unknown = [k for k in {*args.keys, *small_keys} if k not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    args.small_keys = [k for k in small_keys if k in args.keys]  # small runs of those measured
    if args.parts < 2:
        parser.error("--parts must be at least 2")
    return bench(args)


def names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def make_inputs(tmp: Path, rows: int, parts: int, label: str) -> Inputs:
    """``rows`` rows as one file and as ``parts`` files; the reference ``score`` run's digest."""
    from churnctl.samples.generate import generate_files

    (one,) = generate_files(tmp / f"{label}.csv", n_rows=rows, seed=7)
    generate_files(tmp / f"{label}-parts", n_rows=rows, files=parts, seed=7)
    inputs = Inputs(one, tmp / f"{label}-parts", rows, parts)
    reference = tmp / f"{label}-reference.csv"
    done = subprocess.run(
        [sys.executable, *CHURNCTL, "score", str(one), "-o", str(reference)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise SystemExit(f"the reference `churnctl score` run failed: {done.stderr.strip()}")
    inputs.digest = records_digest([reference], header=True)
    return inputs


def measure(
    args: argparse.Namespace, inputs: dict[str, Inputs], tmp: Path, run: Run
) -> dict[str, Result]:
    """``--repeat`` rounds: in each, the small runs then the main runs, variants interleaved
    (so that a slow spell of the shared machine hits them all); the median runs of each."""
    timings: dict[tuple[str, str], list[Timing]] = {}
    for round_ in range(args.repeat):
        for size, keys in (("startup", args.small_keys), ("main", args.keys)):
            for key in keys:
                timing = timed_run(key, inputs[size], tmp / f"{key}-{size}-{round_}", args)
                timings.setdefault((key, size), []).append(timing)
    results = {}
    for key in args.keys:
        mains, smalls = timings[(key, "main")], timings.get((key, "startup"), [])
        problems = [t.problem for t in [*smalls, *mains] if t.problem]
        run.problems += problems
        if not problems:
            results[key] = Result(key, args.rows, mains, smalls)
    return results


def timed_run(key: str, inputs: Inputs, out_dir: Path, args: argparse.Namespace) -> Timing:
    print(f"{key} ({VARIANTS[key].label}): {inputs.rows:,} rows, {out_dir.name} ...", flush=True)
    timing = run_variant(key, inputs, out_dir, args.timeout)
    print(
        f"  wall {timing.seconds:.1f} s, job {seconds_text(timing.job_seconds)} s "
        f"({timing.scored:,} scored, {timing.rejected:,} rejected)",
        flush=True,
    )
    return timing


def bench(args: argparse.Namespace) -> int:
    run, started = Run(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-flink-", dir=args.tmp) as name:
        tmp = Path(name)
        inputs = {"main": make_inputs(tmp, args.rows, args.parts, "main")}
        if args.small_keys:
            inputs["startup"] = make_inputs(tmp, args.startup_rows, args.parts, "startup")
        small = (
            f"{args.startup_rows:,} rows for the start-up of {', '.join(args.small_keys)}"
            if args.small_keys
            else "no start-up runs"
        )
        print(
            f"inputs: {args.rows:,} rows as 1 file and as {args.parts} files; {small}; "
            "each scored by `churnctl score` for reference",
            flush=True,
        )
        results = measure(args, inputs, tmp, run)
        report(run, results, inputs["main"], args.smoke)
    seconds = time.perf_counter() - started
    print(f"total {seconds:.0f} s")
    if args.markdown:
        command = " ".join(["python", *sys.argv])
        text = markdown(run, command, seconds, inputs["main"])
        args.markdown.write_text(text + "\n", encoding="utf-8")
    for problem in run.problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    if run.problems:
        return 1
    missed = [name for name, _, _, met in run.rows if met is False]
    return 1 if args.check_targets and missed else 0


if __name__ == "__main__":
    sys.exit(main())
