"""``flink-submit``: the scoring job on embedded Flink or a Flink session cluster.

The Flink modules and the scorer are imported inside the command, not to slow ``--help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from churnctl.bundled import MODEL, STATE, bundled
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
    parse_keep,
    parse_max_rejects,
    path_value,
    read_options,
)  # fmt: skip
from churnctl.cli.report import pair_label, pair_warning, print_demo_note
from churnctl.errors import UsageError

if TYPE_CHECKING:
    from churnctl.flink_submit import FlinkResult
    from churnctl.scorer import Scorer
    from churnctl.sources import ReadOptions


def _opt(metavar: str, help: str, *names: str, **kwargs: Any) -> Any:
    return typer.Option(*names, metavar=metavar, help=help, **kwargs)


FlinkInput = Annotated[
    str | None, typer.Argument(metavar="INPUT", help="A CSV or Parquet file, or a folder of them.")
]
OutDir = Annotated[Path | None, _opt("DIR", "Folder for scored/ and rejects/.", "--out",
                                     parser=path_value)]  # fmt: skip
Streaming = Annotated[bool, typer.Option(help="Keep reading new files in the folder.")]
Parallelism = Annotated[int, _opt("N", "Parallel scoring workers.", min=1)]
JobManager = Annotated[str | None, _opt("HOST:PORT", "Submit to this session cluster.")]
Emit = Annotated[Path | None, _opt("FILE", "Write the job file, do not run it.", parser=path_value)]
Stop = Annotated[str | None, _opt("JOB_ID", "Stop this streaming job with a savepoint.")]
Savepoint = Annotated[str | None, _opt("DIR", "Folder for the savepoint of --stop.")]
FromSavepoint = Annotated[str | None, _opt("DIR", "Resume a streaming job from a savepoint.")]
Monitor = Annotated[str, _opt("DURATION", "--streaming: list the folder this often.")]


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
) -> None:
    """Score INPUT with the same Scorer inside an Apache Flink job (embedded, or a cluster)."""
    from churnctl.flink_submit import FlinkRequest, emit_job, submit
    from churnctl.scorer import Scorer

    if stop is not None:
        return _stop(stop, jobmanager, savepoint)
    if input is None or out is None:
        raise UsageError("flink-submit needs INPUT and --out DIR")
    options = read_options(delimiter, encoding)
    state_path = _state_path(state, train, out, (options, decimal))
    scorer = _scorer(input, options, Scorer(
        state_path, (model or bundled(MODEL)).resolve(), keep=parse_keep(keep),
        threshold=threshold, allow_state_mismatch=allow_state_mismatch, logits=logits,
        decimal=decimal,
    ))  # fmt: skip
    spec = _spec(input, out, scorer, options, state=str(state_path), streaming=streaming,
                 parallelism=parallelism, monitor_interval=monitor_interval,
                 settle=settle / 1000)  # fmt: skip
    pair_warning(scorer, stderr)
    _check_inputs(spec, scorer)
    if emit is not None:
        emit_job(spec, emit)
        print_demo_note(scorer.model_name, scorer.state.source)
        stderr.print(f"wrote {emit}: run it with python {emit}", markup=False)
        return None
    request = FlinkRequest(spec, jobmanager=jobmanager, from_savepoint=from_savepoint,
                           max_rejects=parse_max_rejects(max_rejects))  # fmt: skip
    _say_if_resuming(request)
    result = submit(request)
    print_demo_note(scorer.model_name, scorer.state.source)
    _report(result, jobmanager, pair_label(scorer))
    return None


def _scorer(input: str, options: ReadOptions, scorer: Scorer) -> Scorer:
    """The scorer with ``--keep '*'`` spelled out by the first input file's header: the
    part files of every input share one set of columns."""
    from churnctl.input_set import expand_inputs
    from churnctl.sources import read_columns

    if not scorer.keeps_all:
        return scorer
    first = next(iter(expand_inputs([input])), None)
    return scorer.keeping(read_columns(first, options) if first else [])


def _spec(input: str, out: Path, scorer: Scorer, options: ReadOptions, **job: Any) -> Any:
    from churnctl.flink_job import FlinkJobSpec
    from churnctl.flink_submit import WORK_FOLDER

    checkpoints = str((out / WORK_FOLDER / "checkpoints").resolve()) if job["streaming"] else None
    return FlinkJobSpec(
        input=str(Path(input).resolve()), out_dir=str(out.resolve()),
        model=scorer.model_name, keep=scorer.keep,
        threshold=scorer.threshold, logits=scorer.logits,
        allow_state_mismatch=scorer.allow_state_mismatch, delimiter=options.delimiter,
        decimal=scorer.decimal, encoding=options.encoding, checkpoint_dir=checkpoints, **job,
    )  # fmt: skip


def _say_if_resuming(request: Any) -> None:
    from churnctl.flink_job import latest_checkpoint
    from churnctl.flink_submit import resumes

    if request.jobmanager is None and resumes(request):
        latest = latest_checkpoint(Path(request.spec.checkpoint_dir))
        stderr.print(f"resuming from the latest checkpoint, {latest}: the files read before it "
                     "are not read again", markup=False, soft_wrap=True)  # fmt: skip


def _check_inputs(spec: Any, scorer: Scorer) -> None:
    """A bounded job's inputs, each checked as ``score`` would (before Flink starts); and a
    note when there are fewer files than workers (one file is scored by one worker)."""
    from churnctl.flink_submit import check_inputs, check_paths

    check_paths(spec)
    if spec.streaming:
        return
    files = check_inputs(spec, scorer)
    if len(files) < spec.parallelism:
        stderr.print(
            f"Note: {len(files)} input file(s) for --parallelism {spec.parallelism}: each file "
            "is scored by one worker; split large files to use more workers", markup=False,
        )  # fmt: skip


def _state_path(
    state: Path | None, train: str | None, out: Path, reading: tuple[ReadOptions, str]
) -> Path:
    """The state the job reads: given, bundled, or fitted now on ``train`` and saved.

    ``reading``: the training file's delimiter and decimal mark (those of the input).
    """
    from churnctl.fitting import fit_state
    from churnctl.flink_submit import WORK_FOLDER

    if train is None:
        return (state or bundled(STATE)).resolve()
    if state is not None:
        raise UsageError("pass either --state or --train, not both")
    options, decimal = reading
    fitted_state = fit_state(train, read_options=options, decimal=decimal)
    fitted = out / WORK_FOLDER / "state.json"
    fitted.parent.mkdir(parents=True, exist_ok=True)
    fitted_state.save(fitted)
    return fitted.resolve()


def _report(result: FlinkResult, jobmanager: str | None, pair: str) -> None:
    """The summary of a finished job (after an ``Error:`` line per file it could not read
    whole, and a warning per file changed after it was read; exit 4 then); or, for a
    submitted streaming job, its id."""
    from churnctl.errors import FilesFailedError
    from churnctl.flink_job import REJECTS, SCORED

    if not result.finished:
        stdout.print(result.job_id or "", markup=False, soft_wrap=True)
        url = f"http://{jobmanager}/#/job/running/{result.job_id}/overview"
        stderr.print(f"submitted streaming job {result.job_id}: {url}; log: {result.log}; {pair}",
                     markup=False)  # fmt: skip
        return
    for file in result.failed:
        error_line(f"{file.source}: {file.detail}")
    for file in result.changed:
        stderr.print(f"Warning: {file.source}: {file.detail}", markup=False, soft_wrap=True)
    failed = f" ({len(result.failed)} failed)" if result.failed else ""
    files = f"{len(result.files):,} file(s){failed}"
    stderr.print(
        f"{files}: read {result.rows_read:,} rows: {result.rows_scored:,} scored, "
        f"{result.rows_rejected:,} rejected in {result.seconds:.2f} s "
        f"({result.rows_per_second:,.0f} rows/s) → {result.out_dir / SCORED}; "
        f"rejects → {result.out_dir / REJECTS}; {pair}",
        markup=False, soft_wrap=True,
    )  # fmt: skip
    if result.failed:
        raise FilesFailedError(
            f"{len(result.failed):,} of {len(result.files):,} files were "
            "not read whole (see above); the rest are scored and published"
        )


def _stop(job_id: str, jobmanager: str | None, savepoint: str | None) -> None:
    from churnctl.flink_submit import stop_job

    if jobmanager is None or savepoint is None:
        raise UsageError("--stop JOB_ID needs --jobmanager HOST:PORT and --savepoint DIR")
    log = Path(savepoint) / "stop.log"
    Path(savepoint).mkdir(parents=True, exist_ok=True)
    path = stop_job(jobmanager, job_id, str(Path(savepoint).resolve()), log)
    stdout.print(path, markup=False, soft_wrap=True)  # a long path must stay one line
    stderr.print(f"stopped job {job_id} with savepoint {path}", markup=False)
