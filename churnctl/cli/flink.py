"""``flink-submit``: the scoring job on embedded Flink or a Flink session cluster.

The Flink modules and the scorer are imported inside the command, not to slow ``--help``.
What the run tells as it goes (``flink.events``) is printed on stderr, one line each.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from churnctl.cli.app import command
from churnctl.cli.console import error_line, stderr, stdout
from churnctl.cli.options import (
    KEEP_DEFAULT,
    AllowMismatch,
    DecimalOpt,
    Delimiter,
    Encoding,
    KeepOpt,
    LogitsOpt,
    MaxRejects,
    ModelOpt,
    SettleMs,
    StateOpt,
    ThresholdOpt,
    TrainOpt,
    parse_max_rejects,
    path_value,
    read_options,
    scorer_options,
)
from churnctl.cli.report import pair_label, pair_warning, print_demo_note, rows_text
from churnctl.errors import UsageError
from churnctl.samples.bundled import MODEL, STATE, bundled

if TYPE_CHECKING:
    from churnctl.features.state import FeatureState
    from churnctl.flink.events import FlinkEvent
    from churnctl.flink.job import FlinkJobSpec
    from churnctl.flink.outputs import FlinkResult
    from churnctl.io.sources import ReadOptions
    from churnctl.scoring.scorer import Scorer, ScorerOptions


def _opt(metavar: str, help: str, *names: str, **kwargs: Any) -> Any:
    return typer.Option(*names, metavar=metavar, help=help, **kwargs)


FlinkInput = Annotated[
    str | None, typer.Argument(metavar="INPUT", help="A CSV or Parquet file, or a folder of them.")
]
OutDir = Annotated[
    Path | None, _opt("DIR", "Folder for scored/ and rejects/.", "--out", parser=path_value)
]
Streaming = Annotated[bool, typer.Option(help="Keep reading new files in the folder.")]
Parallelism = Annotated[int, _opt("N", "Parallel scoring workers.", min=1)]
JobManager = Annotated[str | None, _opt("HOST:PORT", "Submit to this session cluster.")]
Emit = Annotated[Path | None, _opt("FILE", "Write the job file, do not run it.", parser=path_value)]
Stop = Annotated[str | None, _opt("JOB_ID", "Stop this streaming job with a savepoint.")]
Savepoint = Annotated[str | None, _opt("DIR", "Folder for the savepoint of --stop.")]
FromSavepoint = Annotated[str | None, _opt("DIR", "Resume a streaming job from a savepoint.")]
Monitor = Annotated[str, _opt("DURATION", "--streaming: list the folder this often.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="Print the summary only, no progress.")]


@command
def flink_submit(
    input: FlinkInput = None,
    out: OutDir = None,
    state: StateOpt = None,
    model: ModelOpt = None,
    train: TrainOpt = None,
    keep: KeepOpt = KEEP_DEFAULT,
    threshold: ThresholdOpt = 0.5,
    max_rejects: MaxRejects = "5%",
    allow_state_mismatch: AllowMismatch = False,
    logits: LogitsOpt = False,
    delimiter: Delimiter = ",",
    decimal: DecimalOpt = ".",
    encoding: Encoding = "utf-8",
    streaming: Streaming = False,
    parallelism: Parallelism = 1,
    monitor_interval: Monitor = "1 s",
    settle: SettleMs = 1000,
    jobmanager: JobManager = None,
    emit: Emit = None,
    stop: Stop = None,
    savepoint: Savepoint = None,
    from_savepoint: FromSavepoint = None,
    quiet: Quiet = False,
) -> None:
    """Score INPUT with the same Scorer inside an Apache Flink job (embedded, or a cluster)."""
    from churnctl.flink.submit import FlinkRequest, preflight, submit

    if stop is not None:
        return _stop(stop, jobmanager, savepoint)
    if input is None or out is None:
        raise UsageError("flink-submit needs INPUT and --out DIR")
    options = read_options(delimiter, encoding)
    inputs = _inputs(input, out, streaming)  # INPUT first, then the training file
    given = _state(state, train, (options, decimal))
    flags = scorer_options(keep, threshold, allow_state_mismatch, logits, decimal)
    scorer = _scorer(inputs, options, given, model, flags)
    _check_files(inputs, scorer, options, parallelism, streaming)
    # Java and the cluster last, and all before anything is written into --out
    home = None if emit is not None else preflight(input, out, jobmanager, from_savepoint)
    spec = _spec(
        input,
        out,
        scorer,
        options,
        state=str(_state_file(given, out)),
        streaming=streaming,
        parallelism=parallelism,
        monitor_interval=monitor_interval,
        settle=settle / 1000,
    )
    pair_warning(scorer, stderr)
    if emit is not None:
        return _emit(emit, spec, scorer, jobmanager)
    request = FlinkRequest(
        spec,
        jobmanager=jobmanager,
        from_savepoint=from_savepoint,
        max_rejects=parse_max_rejects(max_rejects),
        files=None if streaming else len(inputs),
    )
    result = submit(request, home=home, on_event=_event_printer(quiet))
    print_demo_note(scorer.model_name, scorer.state.source)
    return _report(result, jobmanager, pair_label(scorer))


def _emit(job: Path, spec: FlinkJobSpec, scorer: Scorer, jobmanager: str | None) -> None:
    """Write the job file (nothing runs), and say how to run it."""
    from churnctl.flink.submit import emit_job

    emit_job(spec, job)
    print_demo_note(scorer.model_name, scorer.state.source)
    _run_hint(job, spec, jobmanager)


def _inputs(input: str, out: Path, streaming: bool) -> list[str]:
    """The input files now there (``score``'s listing), after the folders' layout and paths
    are checked; a streaming job may start on an empty folder."""
    from churnctl.flink.inputs import check_locations
    from churnctl.io.listing import expand_inputs

    check_locations(input, out)  # folders that feed back, paths Flink misreads: first
    if streaming and Path(input).is_dir():
        return expand_inputs([input]) if _has_inputs(Path(input)) else []
    return expand_inputs([input])


def _has_inputs(folder: Path) -> bool:
    from churnctl.io.listing import NameRules, list_inputs

    return bool(list_inputs(folder, NameRules()))


def _scorer(
    inputs: list[str],
    options: ReadOptions,
    state: Path | FeatureState,
    model: Path | None,
    flags: ScorerOptions,
) -> Scorer:
    """The scorer, with ``--keep '*'`` spelled out by the first input file's header: the
    part files of every input share one set of columns."""
    from churnctl.io.sources import read_columns
    from churnctl.scoring.scorer import scorer_from

    scorer = scorer_from(state, (model or bundled(MODEL)).resolve(), flags)
    if not scorer.keeps_all:
        return scorer
    if not inputs:
        raise UsageError(
            "--keep '*' keeps the columns of the input files, and there is none "
            "yet: name the columns to keep"
        )
    return scorer.keeping(read_columns(inputs[0], options))


def _check_files(
    inputs: list[str], scorer: Scorer, options: ReadOptions, parallelism: int, streaming: bool
) -> None:
    """A bounded job's inputs, each checked as ``score`` would (before Flink starts); and a
    note when there are fewer files than workers (one file is scored by one worker)."""
    from churnctl.flink.inputs import check_inputs

    if streaming:
        return
    check_inputs(inputs, scorer, options)
    if len(inputs) < parallelism:
        stderr.print(
            f"Note: {len(inputs)} input file(s) for --parallelism {parallelism}: each file "
            "is scored by one worker; split large files to use more workers",
            markup=False,
        )


def _spec(input: str, out: Path, scorer: Scorer, options: ReadOptions, **job: Any) -> Any:
    from churnctl.flink.job import FlinkJobSpec
    from churnctl.flink.submit import WORK_FOLDER

    checkpoints = str((out / WORK_FOLDER / "checkpoints").resolve()) if job["streaming"] else None
    return FlinkJobSpec(
        input=str(Path(input).resolve()),
        out_dir=str(out.resolve()),
        model=scorer.model_name,
        delimiter=options.delimiter,
        encoding=options.encoding,
        checkpoint_dir=checkpoints,
        **asdict(scorer.options),
        **job,
    )


def _run_hint(job: Path, spec: FlinkJobSpec, jobmanager: str | None) -> None:
    """How to run the emitted job, as commands to paste (every word shell-quoted)."""
    from churnctl.flink.home import run_commands

    embedded, cluster = run_commands(job, spec, jobmanager)
    stderr.print(
        f"wrote {job}; run it embedded with: {shlex.join(embedded)}", markup=False, soft_wrap=True
    )
    stderr.print(
        f"or on a Flink session cluster with: {shlex.join(cluster)}", markup=False, soft_wrap=True
    )


def _event_printer(quiet: bool) -> Callable[[FlinkEvent], None]:
    """One stderr line per event; ``quiet``: only the removal of stale staging folders."""
    from churnctl.flink.events import (
        FilesSoFar,
        FileWarning,
        JobStarting,
        JobSubmitted,
        Resuming,
        RowsSoFar,
        StaleStagingRemoved,
    )

    def show(event: FlinkEvent) -> None:
        match event:
            case FileWarning(source, detail):  # shown even when quiet
                line = f"Warning: {source}: {detail}"
            case StaleStagingRemoved(folders):
                line = (
                    f"removed {len(folders)} staging folder(s) of earlier runs that ended "
                    f"without cleaning up: {', '.join(map(str, folders))}"
                )
            case _ if quiet:
                return
            case JobStarting(None, streaming, log):
                line = f"starting Flink (embedded local MiniCluster); log: {log}"
                if streaming:
                    line += "; it reads new files as they land until you stop it with Ctrl-C"
            case JobStarting(jobmanager, _, log):
                line = f"submitting to the Flink cluster at {jobmanager}; log: {log}"
            case Resuming(checkpoint):
                line = (
                    f"resuming from the latest checkpoint, {checkpoint}: the files read "
                    "before it are not read again"
                )
            case JobSubmitted(job_id, web_ui):
                line = f"job {job_id} submitted" + (f"; web UI: {web_ui}" if web_ui else "")
            case FilesSoFar(done, total):
                line = f"files scored so far: {done:,}" + (f" of {total:,}" if total else "")
            case RowsSoFar(scored, rejected):
                line = f"rows so far: {scored:,} scored, {rejected:,} rejected"
            case _:
                return
        stderr.print(line, markup=False, soft_wrap=True)

    return show


def _state(
    state: Path | None, train: str | None, reading: tuple[ReadOptions, str]
) -> Path | FeatureState:
    """The state the job reads: given, bundled, or fitted now on ``train`` (not saved yet).

    ``reading``: the training file's reading options and decimal mark (those of the input).
    """
    from churnctl.batch.fit_file import fit_state

    if train is None:
        return (state or bundled(STATE)).resolve()
    if state is not None:
        raise UsageError("pass either --state or --train, not both")
    options, decimal = reading
    return fit_state(train, read_options=options, decimal=decimal)


def _state_file(state: Path | FeatureState, out: Path) -> Path:
    """The state as a file the job reads: a fitted one saved under ``out``'s work folder."""
    from churnctl.flink.submit import WORK_FOLDER

    if isinstance(state, Path):
        return state
    fitted = out / WORK_FOLDER / "state.json"
    fitted.parent.mkdir(parents=True, exist_ok=True)
    state.save(fitted)
    return fitted.resolve()


def _report(result: FlinkResult, jobmanager: str | None, pair: str) -> None:
    """The summary of a finished job (after an ``Error:`` line per file it could not read
    whole, and a warning per file changed after it was read; exit 4 then); or, for a
    submitted streaming job, its id."""
    from churnctl.errors import FilesFailedError
    from churnctl.flink.job import REJECTS, SCORED

    if not result.finished:
        stdout.print(result.job_id or "", markup=False, soft_wrap=True)
        url = f"http://{jobmanager}/#/job/running/{result.job_id}/overview"
        stop = shlex.join(
            [
                "churnctl",
                "flink-submit",
                "--stop",
                result.job_id or "JOB_ID",
                "--savepoint",
                "DIR",
                "--jobmanager",
                str(jobmanager),
            ]
        )
        stderr.print(
            f"submitted streaming job {result.job_id}: {url}; log: {result.log}; "
            f"{pair}; stop it with: {stop}",
            markup=False,
            soft_wrap=True,
        )
        return
    for file in result.failed:
        error_line(f"{file.source}: {file.detail}")
    for file in result.changed:
        stderr.print(f"Warning: {file.source}: {file.detail}", markup=False, soft_wrap=True)
    failed = f" ({len(result.failed)} failed)" if result.failed else ""
    files = f"{len(result.files):,} file(s){failed}"
    stderr.print(
        f"{files}: {rows_text(result.rows, result.seconds)} → {result.out_dir / SCORED}; "
        f"rejects → {result.out_dir / REJECTS}; {pair}",
        markup=False,
        soft_wrap=True,
    )
    if result.failed:
        raise FilesFailedError(
            f"{len(result.failed):,} of {len(result.files):,} files were "
            "not read whole (see above); the rest are scored and published"
        )


def _stop(job_id: str, jobmanager: str | None, savepoint: str | None) -> None:
    from churnctl.flink.submit import stop_job

    if jobmanager is None or savepoint is None:
        raise UsageError("--stop JOB_ID needs --jobmanager HOST:PORT and --savepoint DIR")
    path = stop_job(jobmanager, job_id, savepoint)  # a URI as it is, a path made absolute
    stdout.print(path, markup=False, soft_wrap=True)  # a long path must stay one line
    stderr.print(f"stopped job {job_id} with savepoint {path}", markup=False)
