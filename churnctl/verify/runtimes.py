"""Each runtime, run on the sample into a folder of its own, its outputs read back.

A runtime gives an ``Outcome``: its scored rows by sample row number (raw, exited) and
its rejects as (sample line, column, reason). The fused ONNX graph gives only whether a
row is valid: its rejects have a line but no column or reason (``lines_only``).
``RUNTIMES`` lists them in the order they are run and shown; the first, ``score_file``,
is the one the others are compared with. A runtime that cannot run here (Flink without
its extra or Java) is skipped, with the reason.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from churnctl.batch import pool
from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.batch.score_files import FilesRequest, score_files
from churnctl.errors import ChurnctlError
from churnctl.io.rejects import NO_LIMIT, RejectLimit
from churnctl.io.sources import ReadOptions
from churnctl.scoring.scorer import Scorer
from churnctl.verify.caller import graph_feed, read_part
from churnctl.verify.sample import ROW, Sample

RAN, SKIPPED, FAILED = "ran", "skipped", "failed"
Reject = tuple[int | None, str | None, str]  # (sample line, column, reason)
NOT_VALID, UNFED = "not valid", "not a record of the header's fields"  # the fused graph's


@dataclass
class Outcome:
    """What one runtime did with the sample."""

    name: str
    status: str = RAN
    reason: str | None = None  # why it was skipped or failed
    scored: dict[int, tuple[float, bool]] = field(default_factory=dict)
    rows: int = 0  # scored records written (a row written twice counts twice)
    rejects: list[Reject] = field(default_factory=list)
    seconds: float = 0.0
    error: ChurnctlError | None = field(default=None, repr=False)  # why it failed
    lines_only: bool = False  # its rejects name the line only (compared by line)


@dataclass(frozen=True)
class Run:
    """What every runtime is given: the scorer (keeping ``ROW``), the sample, its folder."""

    scorer: Scorer
    sample: Sample
    folder: Path
    read_options: ReadOptions
    max_rejects: RejectLimit = NO_LIMIT


@dataclass(frozen=True)
class Runtime:
    name: str
    run: Callable[[Run, Outcome], None]  # fills the outcome; may raise a ChurnctlError


def run_batch(run: Run, outcome: Outcome) -> None:
    """``score_file`` on each part, one after the other, in this process."""
    for part in run.sample.parts:
        output = run.folder / f"{part.path.stem}.scored.csv"
        request = ScoreRequest(
            input=str(part.path),
            output=str(output),
            scorer=run.scorer,
            max_rejects=run.max_rejects,
            read_options=run.read_options,
        )
        summary = score_file(request)
        read_scored(output, outcome)
        read_rejects(Path(summary.rejects or ""), run.sample, outcome)


def run_fused(run: Run, outcome: Outcome) -> None:
    """The fused ONNX graph, exported into the run's folder, run with ONNX Runtime on each part
    as a Java or C++ caller would feed it (``caller``); a row not ``valid`` is a reject."""
    import onnxruntime as ort

    from churnctl.fused.export import export_fused

    scorer = run.scorer
    path = export_fused(scorer.state, scorer.model, run.folder / "fused.onnx", logits=scorer.logits)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    schema = scorer.state.pipeline.input_schema
    outcome.lines_only = True
    for part in run.sample.parts:
        rows = read_part(part.path, [ROW, *schema.columns], run.read_options)
        outcome.rejects += [(run.sample.line(part.path.name, n), None, UNFED) for n in rows.unfed]
        if not rows.lines:
            continue
        raw, valid = session.run(["raw", "valid"], graph_feed(rows, schema, scorer.decimal))
        numbers = zip(rows.fields[ROW], rows.lines, raw, valid.tolist(), strict=True)
        for number, line, float32, ok in numbers:
            value = float(str(float32))  # as the others' CSV holds it: float32's shortest text
            if ok:
                outcome.rows += 1
                outcome.scored[int(number)] = (value, value > scorer.threshold)
            else:
                outcome.rejects.append((run.sample.line(part.path.name, line), None, NOT_VALID))


def run_workers(run: Run, outcome: Outcome) -> None:
    """``score_files`` with two workers, the parts joined into one output, every part scored
    in a pool process (the scorer pickled, its session opened there): left to itself, this
    process would score a small sample's two parts before the pool's worker has started."""
    output = run.folder / "scored.csv"
    request = FilesRequest(
        inputs=[str(p.path) for p in run.sample.parts],
        scorer=run.scorer,
        output=str(output),
        max_rejects=run.max_rejects,
        read_options=run.read_options,
        workers=2,
    )
    with _pool_only():
        summary = score_files(request)
    if os.getpid() in {r.process for r in summary.results}:
        raise ChurnctlError("score_files scored a part in this process, not in its pool")
    for result in summary.failed:
        raise result.error or ChurnctlError(f"{result.input}: failed")
    read_scored(output, outcome)
    read_rejects(Path(summary.rejects or ""), run.sample, outcome)


@contextlib.contextmanager
def _pool_only() -> Iterator[None]:
    """Only the pool's processes score, not this one, for the time of the block."""
    before = pool.MAIN_SCORES
    pool.MAIN_SCORES = False
    try:
        yield
    finally:
        pool.MAIN_SCORES = before


def run_watch(run: Run, outcome: Outcome) -> None:
    """A ``Watcher`` run once over a landing folder the parts are copied into."""
    from churnctl.watch.watcher import Watcher, WatchSettings

    landing, out = run.folder / "landing", run.folder / "out"
    landing.mkdir()
    for part in run.sample.parts:
        shutil.copyfile(part.path, landing / part.path.name)
    settings = WatchSettings(
        in_dir=landing,
        out_dir=out,
        scorer=run.scorer,
        max_rejects=run.max_rejects,
        read_options=run.read_options,
        settle=0.0,
        once=True,
    )
    report = Watcher(settings).run()
    if report.failed:
        raise ChurnctlError(f"the watcher failed {report.failed} of the sample's files")
    for path in sorted(out.glob("*.scored.csv")):
        read_scored(path, outcome)
    for path in sorted(out.glob("*.rejects.csv")):
        read_rejects(path, run.sample, outcome)


def flink_available() -> str | None:
    """Why the embedded Flink job cannot run here (None: it can)."""
    from churnctl.flink.home import flink_home

    try:
        flink_home()
    except ChurnctlError as exc:
        return exc.message
    return None


def run_flink(run: Run, outcome: Outcome) -> None:
    """The embedded Flink job (a local MiniCluster) over a folder holding the parts."""
    from churnctl.flink.job import FlinkJobSpec
    from churnctl.flink.submit import FlinkRequest, submit

    landing, out = run.folder / "landing", run.folder / "out"
    landing.mkdir()
    for part in run.sample.parts:
        shutil.copyfile(part.path, landing / part.path.name)
    options = run.scorer.options
    spec = FlinkJobSpec(
        input=str(landing.resolve()),
        out_dir=str(out.resolve()),
        state=str(_state_file(run)),
        model=str(_model_file(run)),
        keep=options.keep,
        threshold=options.threshold,
        logits=options.logits,
        allow_state_mismatch=options.allow_state_mismatch,
        decimal=options.decimal,
        delimiter=run.read_options.delimiter,
        encoding=run.read_options.encoding,
        python_executable=sys.executable,
    )
    submit(FlinkRequest(spec, max_rejects=run.max_rejects, files=len(run.sample.parts)))
    names = [ROW, "raw", "exited"]
    for path in sorted(p for p in (out / "scored").iterdir() if not p.name.startswith((".", "_"))):
        read_scored(path, outcome, names)
    for path in sorted(p for p in (out / "rejects").iterdir() if not p.name.startswith((".", "_"))):
        read_rejects(path, run.sample, outcome, header=False)


def _state_file(run: Run) -> Path:
    path = run.folder / "state.json"
    run.scorer.state.save(path)
    return path.resolve()


def _model_file(run: Run) -> Path:
    path = run.folder / "model.onnx"
    path.write_bytes(run.scorer.model.data)
    return path.resolve()


RUNTIMES: list[Runtime] = [
    Runtime("score", run_batch),
    Runtime("workers", run_workers),
    Runtime("watch", run_watch),
    Runtime("flink", run_flink),
    Runtime("fused", run_fused),
]
REFERENCE = RUNTIMES[0].name
AVAILABLE: dict[str, Callable[[], str | None]] = {"flink": flink_available}


def run_runtime(runtime: Runtime, run: Run) -> Outcome:
    """One runtime's outcome: skipped, failed with its error's message, or what it scored."""
    outcome = Outcome(runtime.name)
    check = AVAILABLE.get(runtime.name)
    why = check() if check is not None else None
    if why is not None:
        outcome.status, outcome.reason = SKIPPED, why
        return outcome
    started = time.perf_counter()
    try:
        runtime.run(run, outcome)
    except ChurnctlError as exc:
        outcome.status, outcome.reason, outcome.error = FAILED, str(exc), exc
    outcome.seconds = time.perf_counter() - started
    return outcome


def read_scored(path: Path, outcome: Outcome, names: list[str] | None = None) -> None:
    """Add a scored CSV's rows (by their sample row number) to the outcome."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        columns = names or next(rows)
        row, raw, exited = (columns.index(c) for c in (ROW, "raw", "exited"))
        for record in rows:
            outcome.rows += 1
            outcome.scored[int(record[row])] = (float(record[raw]), record[exited] == "true")


def read_rejects(path: Path, sample: Sample, outcome: Outcome, *, header: bool = True) -> None:
    """Add a rejects CSV's records, as (sample line, column, reason), to the outcome."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        if header:
            next(rows, None)
        for source, line, column, reason, _ in rows:
            number = sample.line(source, int(line)) if line else None
            outcome.rejects.append((number, column or None, reason))
