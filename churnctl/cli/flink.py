"""``flink-submit``: the scoring job on embedded Flink or a Flink session cluster.

The Flink modules and the scorer are imported inside the command, not to slow ``--help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from churnctl.bundled import MODEL, STATE, bundled
from churnctl.cli.app import command
from churnctl.cli.console import stderr, stdout
from churnctl.cli.options import (
    KEEP_DEFAULT,
    AllowMismatch,
    DecimalOpt,
    Delimiter,
    KeepOpt,
    MaxRejects,
    ModelOpt,
    StateOpt,
    ThresholdOpt,
    TrainOpt,
    parse_delimiter,
    parse_keep,
    parse_max_rejects,
    path_value,
)  # fmt: skip
from churnctl.cli.report import pair_label, pair_warning, print_demo_note
from churnctl.errors import UsageError

if TYPE_CHECKING:
    from churnctl.flink_submit import FlinkResult


def _opt(metavar: str, help: str, *names: str, **kwargs: Any) -> Any:
    return typer.Option(*names, metavar=metavar, help=help, **kwargs)


FlinkInput = Annotated[
    str | None, typer.Argument(metavar="INPUT", help="CSV file, or a folder of CSV files.")
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
    delimiter: Delimiter = ",",
    decimal: DecimalOpt = ".",
    streaming: Streaming = False,
    parallelism: Parallelism = 1,
    monitor_interval: Monitor = "1 s",
    jobmanager: JobManager = None,
    emit: Emit = None,
    stop: Stop = None,
    savepoint: Savepoint = None,
    from_savepoint: FromSavepoint = None,
) -> None:
    """Score INPUT with the same Scorer inside an Apache Flink job (embedded, or a cluster)."""
    from churnctl.flink_job import FlinkJobSpec
    from churnctl.flink_submit import FlinkRequest, emit_job, input_columns, submit
    from churnctl.scorer import Scorer
    from churnctl.sources import check_header

    if stop is not None:
        return _stop(stop, jobmanager, savepoint)
    if input is None or out is None:
        raise UsageError("flink-submit needs INPUT and --out DIR")
    char = parse_delimiter(delimiter)
    columns = input_columns(input, char)  # INPUT, then the training file: before --out is made
    state_path = _state_path(state, train, out, (char, decimal))
    scorer = Scorer(
        state_path, (model or bundled(MODEL)).resolve(), keep=parse_keep(keep),
        threshold=threshold, allow_state_mismatch=allow_state_mismatch, decimal=decimal,
    ).keeping(columns)  # fmt: skip
    check_header(input, columns, scorer.required_columns, kept=scorer.keep)  # before Flink
    spec = FlinkJobSpec(
        input=str(Path(input).resolve()), out_dir=str(out.resolve()), state=str(state_path),
        model=scorer.model_name, columns=columns, delimiter=char, decimal=decimal,
        keep=scorer.keep, threshold=threshold, allow_state_mismatch=allow_state_mismatch,
        streaming=streaming, parallelism=parallelism, monitor_interval=monitor_interval,
    )  # fmt: skip
    pair_warning(scorer, stderr)
    if emit is not None:
        emit_job(spec, emit)
        print_demo_note(scorer.model_name, scorer.state.source)
        stderr.print(f"wrote {emit}: run it with python {emit}", markup=False)
        return None
    request = FlinkRequest(spec, jobmanager=jobmanager, from_savepoint=from_savepoint,
                           max_rejects=parse_max_rejects(max_rejects))  # fmt: skip
    result = submit(request)
    print_demo_note(scorer.model_name, scorer.state.source)
    _report(result, jobmanager, pair_label(scorer))
    return None


def _state_path(state: Path | None, train: str | None, out: Path, reading: tuple[str, str]) -> Path:
    """The state the job reads: given, bundled, or fitted now on ``train`` and saved.

    ``reading``: the training file's delimiter and decimal mark (those of the input).
    """
    from churnctl.fitting import fit_state
    from churnctl.flink_submit import WORK_FOLDER
    from churnctl.sources import ReadOptions

    if train is None:
        return (state or bundled(STATE)).resolve()
    if state is not None:
        raise UsageError("pass either --state or --train, not both")
    delimiter, decimal = reading
    fitted_state = fit_state(train, read_options=ReadOptions(delimiter=delimiter), decimal=decimal)
    fitted = out / WORK_FOLDER / "state.json"
    fitted.parent.mkdir(parents=True, exist_ok=True)
    fitted_state.save(fitted)
    return fitted.resolve()


def _report(result: FlinkResult, jobmanager: str | None, pair: str) -> None:
    from churnctl.flink_job import REJECTS, SCORED

    if not result.finished:
        stdout.print(result.job_id or "", markup=False, soft_wrap=True)
        url = f"http://{jobmanager}/#/job/running/{result.job_id}/overview"
        stderr.print(f"submitted streaming job {result.job_id}: {url}; log: {result.log}; {pair}",
                     markup=False)  # fmt: skip
        return
    stderr.print(
        f"read {result.rows_read:,} rows: {result.rows_scored:,} scored, "
        f"{result.rows_rejected:,} rejected in {result.seconds:.2f} s "
        f"({result.rows_per_second:,.0f} rows/s) → {result.out_dir / SCORED}; "
        f"rejects → {result.out_dir / REJECTS}; {pair}",
        markup=False, soft_wrap=True,
    )  # fmt: skip
    missing = (result.input_records or result.rows_read) - result.rows_read
    if missing > 0:
        stderr.print(
            f"Warning: the input holds {result.input_records:,} records but the job read "
            f"{result.rows_read:,}: Flink's CSV reader skips {missing:,} record(s) with too "
            "many fields; churnctl score reports them in its rejects file", markup=False,
        )  # fmt: skip


def _stop(job_id: str, jobmanager: str | None, savepoint: str | None) -> None:
    from churnctl.flink_submit import stop_job

    if jobmanager is None or savepoint is None:
        raise UsageError("--stop JOB_ID needs --jobmanager HOST:PORT and --savepoint DIR")
    log = Path(savepoint) / "stop.log"
    Path(savepoint).mkdir(parents=True, exist_ok=True)
    path = stop_job(jobmanager, job_id, str(Path(savepoint).resolve()), log)
    stdout.print(path, markup=False, soft_wrap=True)  # a long path must stay one line
    stderr.print(f"stopped job {job_id} with savepoint {path}", markup=False)
