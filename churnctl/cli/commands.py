"""The commands: each parses its options and calls one library function."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from churnctl.binding import PairStatus, bind_file, short
from churnctl.bundled import MODEL, STATE, bundled
from churnctl.cli.app import command, flag_message
from churnctl.cli.console import error_line, stderr, stdout
from churnctl.cli.options import (
    KEEP_DEFAULT,
    AllowMismatch,
    Delimiter,
    Encoding,
    FormatOpt,
    InputArg,
    KeepOpt,
    LogitsOpt,
    MaxRejects,
    ModelOpt,
    OutDirOpt,
    PipelineOpt,
    RejectsOpt,
    SaveStateOpt,
    ScoreOutput,
    StateOpt,
    ThresholdOpt,
    TrainOpt,
    WorkersOpt,
    output_file,
    parse_max_rejects,
    path_value,
    read_options,
    text_value,
)  # fmt: skip
from churnctl.cli.report import binding_lines, pair_warning, report_tables
from churnctl.errors import FilesFailedError, UsageError
from churnctl.file_scoring import RowRates, RunSummary, ScoreRequest, score_file
from churnctl.fitting import FitRequest, fit_file, fit_state
from churnctl.generate import MAX_FILES, generate_files
from churnctl.input_set import expand_inputs
from churnctl.inspection import inspect_pair
from churnctl.model import ChurnModel
from churnctl.parallel_scoring import FileResult, FilesRequest, FilesSummary, score_files
from churnctl.paths import check_distinct
from churnctl.rejects import rejects_path
from churnctl.scorer import Scorer
from churnctl.sources import ReadOptions
from churnctl.state import FeatureState, load_state


@command
def fit(
    train: Annotated[
        str,
        typer.Argument(
            metavar="TRAIN", parser=text_value, help="Training CSV, CSV.gz or Parquet file."
        ),
    ],
    output: Annotated[Path, output_file("State JSON file to write.")],
    pipeline: PipelineOpt = None,
    rejects: RejectsOpt = None,
    max_rejects: MaxRejects = "5%",
    delimiter: Delimiter = ",",
    encoding: Encoding = "utf-8",
) -> None:
    """Fit the feature extractor on TRAIN and write its JSON state."""
    request = FitRequest(
        train=train, output=str(output), pipeline=pipeline, rejects=rejects,
        max_rejects=parse_max_rejects(max_rejects),
        read_options=read_options(delimiter, encoding),
    )  # fmt: skip
    state, rejects_file = fit_file(request)
    prov = state.provenance
    stderr.print(
        f"fitted {len(state.feature_names)} features on {prov['rows']:,} rows "
        f"({prov['rows_rejected']:,} rejected) → {output}; rejects → {rejects_file}",
        markup=False,
        soft_wrap=True,
    )


@command
def score(
    input: InputArg,
    output: ScoreOutput = None,
    out_dir: OutDirOpt = None,
    workers: WorkersOpt = None,
    state: StateOpt = None,
    train: TrainOpt = None,
    save_state: SaveStateOpt = None,
    pipeline: PipelineOpt = None,
    model: ModelOpt = None,
    keep: KeepOpt = KEEP_DEFAULT,  # a tuple: an immutable default, shown by --help
    threshold: ThresholdOpt = 0.5,
    format: FormatOpt = None,
    rejects: RejectsOpt = None,
    max_rejects: MaxRejects = "5%",
    allow_state_mismatch: AllowMismatch = False,
    logits: LogitsOpt = False,
    delimiter: Delimiter = ",",
    encoding: Encoding = "utf-8",
) -> None:
    """Score INPUT (files, folders, globs) with a model and a state; write raw and exited."""
    if out_dir is not None and (output is not None or rejects is not None):
        raise UsageError(
            "--out-dir writes one output and one rejects file per input: drop -o and --rejects"
        )
    inputs = expand_inputs(input)
    one = len(inputs) == 1 and out_dir is None
    target = output or "-"
    for name in inputs:  # every file written against every file read, before any work
        check_distinct(
            {"input": name, "training file": train, "state": state, "model": model},
            {"output": None if out_dir else target,
             "rejects": rejects or (rejects_path(target, name) if one else None),
             "saved state": save_state},
        )  # fmt: skip
    options = read_options(delimiter, encoding)
    limit = parse_max_rejects(max_rejects)
    features = _state_for_scoring(state, train, save_state, pipeline, options)
    scorer = Scorer(
        features, model or bundled(MODEL), keep=list(keep), threshold=threshold,
        allow_state_mismatch=allow_state_mismatch, logits=logits,
    )  # fmt: skip
    pair_warning(scorer, stderr)
    if one:
        request = ScoreRequest(
            input=inputs[0], output=target, scorer=scorer, format=format, rejects=rejects,
            max_rejects=limit, read_options=options,
        )  # fmt: skip
        with _progress() as advance:
            summary = score_file(request, on_progress=advance)
        if save_state is not None:
            features.save(save_state)
        _print_summary(summary, scorer)
        return
    files = FilesRequest(
        inputs=inputs, scorer=scorer, out_dir=out_dir, output=output, format=format,
        rejects=rejects, max_rejects=limit, read_options=options, workers=workers,
    )  # fmt: skip
    with _files_progress(len(inputs)) as on_file:
        outcome = score_files(files, on_file=on_file)
    if save_state is not None:
        features.save(save_state)
    _report_files(outcome, scorer)


def _state_for_scoring(
    state: Path | None,
    train: str | None,
    save_state: Path | None,
    pipeline: str | None,
    options: ReadOptions,
) -> FeatureState:
    if state is not None and train is not None:
        raise UsageError("pass either --state or --train, not both")
    if train is None:
        if save_state is not None or pipeline is not None:
            raise UsageError("--save-state and --pipeline need --train")
        return load_state(state or bundled(STATE))
    return fit_state(train, pipeline=pipeline, read_options=options)


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[int], None] | None]:
    """A rich progress display on stderr when it is a terminal; nothing otherwise."""
    if not stderr.is_terminal:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.completed:,} rows"), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task("scoring", total=None)
        yield lambda rows: bar.update(task, completed=rows)


@contextlib.contextmanager
def _files_progress(total: int) -> Iterator[Callable[[FileResult], None] | None]:
    """Files done so far, on stderr when it is a terminal; nothing otherwise."""
    if not stderr.is_terminal:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.completed:,}/{task.total:,} files"),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task("scoring", total=total)
        yield lambda result: bar.advance(task)


def _print_summary(summary: RunSummary, scorer: Scorer) -> None:
    _summary_line("", summary, f"{_shown(summary.output)}; rejects → {summary.rejects}", scorer)


def _shown(output: str | None) -> str:
    return "stdout" if output == "-" else str(output)


def _report_files(outcome: FilesSummary, scorer: Scorer) -> None:
    """An ``Error:`` line per failed file (in input order), the summary, then exit 4 if any."""
    failed = outcome.failed
    for result in failed:
        if result.error is not None:
            error_line(result.message(flag_message(result.error)))
    if outcome.out_dir is not None:
        where = f"{outcome.out_dir} (an output and a rejects file per input)"
    else:
        where = f"{_shown(outcome.output)}; rejects → {outcome.rejects}"
    files = f"{len(outcome.results):,} files" + (f" ({len(failed):,} failed)" if failed else "")
    _summary_line(f"{files}, {outcome.workers} worker(s): ", outcome, where, scorer)
    if failed:
        left = "the others are" if len(failed) < len(outcome.results) else "nothing is"
        raise FilesFailedError(
            f"{len(failed):,} of {len(outcome.results):,} files failed (see above); {left} "
            "scored and published"
        )


def _summary_line(prefix: str, counts: RowRates, where: str, scorer: Scorer) -> None:
    skipped = scorer.check.status is PairStatus.SKIPPED
    stderr.print(
        f"{prefix}read {counts.rows_read:,} rows: {counts.rows_scored:,} scored, "
        f"{counts.rows_rejected:,} rejected in {counts.seconds:.2f} s "
        f"({counts.rows_per_second:,.0f} rows/s) → {where}"
        + ("; model/state binding check SKIPPED (--allow-state-mismatch)" if skipped else ""),
        markup=False,
    )


@command
def bind(
    model: Annotated[
        Path, typer.Option(metavar="FILE", parser=path_value, help="ONNX model to bind.")
    ],
    state: Annotated[
        Path,
        typer.Option(
            metavar="FILE", parser=path_value, help="The state the model was trained with."
        ),
    ],
    output: Annotated[Path, output_file("Bound model to write (not the input model).")],
) -> None:
    """Write MODEL bound to STATE: every runtime then refuses any other state."""
    check_distinct({"model": model, "state": state}, {"output": output})
    binding = bind_file(model, load_state(state), output)
    stderr.print(
        f"bound {model} to state {short(binding.fingerprint)} "
        f"({len(binding.feature_names)} features) → {output}",
        markup=False,
    )


@command
def inspect(model: ModelOpt = None, state: StateOpt = None) -> None:
    """Show a model's inputs and outputs, a state's stages, and whether they fit together."""
    report = inspect_pair(ChurnModel(model or bundled(MODEL)), load_state(state or bundled(STATE)))
    for table in report_tables(report):
        stdout.print(table)
    for line in binding_lines(report):
        stdout.print(line, markup=False, soft_wrap=True)
    verdict = "[green]compatible[/]" if report.compatible else "[red]NOT compatible[/]"
    stdout.print(f"{verdict}: {escape(report.verdict)}", soft_wrap=True)
    if not report.compatible:
        raise typer.Exit(2)


@command
def generate(
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            metavar="PATH",
            parser=path_value,
            help="A .csv, .csv.gz or .parquet file; with --files N, a directory for N CSV parts.",
        ),
    ],
    rows: Annotated[
        int, typer.Option("-n", "--rows", metavar="N", min=0, help="Number of rows.")
    ] = 10_000,
    files: Annotated[
        int,
        typer.Option(metavar="N", min=1, max=MAX_FILES, help="Split the rows into N part files."),
    ] = 1,
    seed: Annotated[
        int, typer.Option(metavar="N", min=0, help="Random seed (same seed, same bytes).")
    ] = 0,
) -> None:
    """Write synthetic churn records with the bank-churn schema (CSV, CSV.gz or Parquet)."""
    paths = generate_files(output, n_rows=rows, files=files, seed=seed)
    stderr.print(f"wrote {rows:,} rows to {len(paths)} file(s) under {output}", markup=False)
