"""The batch commands, ``fit`` and ``score``: options in, the library's runtime, a summary out.

``fit`` calls ``fit_file``; ``score`` expands its inputs, loads or fits a state, builds
its scorer, then calls ``score_file`` (one input) or ``score_files`` (several).
Library modules are imported inside the commands: defining the commands (and so
``--help``) must not import NumPy, Arrow, ONNX Runtime or pandas.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from churnctl.atomic import check_distinct
from churnctl.cli.app import command, flag_message
from churnctl.cli.console import error_line, stderr
from churnctl.cli.documents import one_file, print_document, score_document
from churnctl.cli.drift import warn_drift
from churnctl.cli.options import (
    KEEP_DEFAULT,
    AllowMismatch,
    DecimalOpt,
    Delimiter,
    Encoding,
    FormatOpt,
    InputArg,
    JsonOpt,
    KeepOpt,
    LogitsOpt,
    MaxRejects,
    ModelOpt,
    NoDriftOpt,
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
    read_options,
    scorer_options,
    text_value,
)
from churnctl.cli.progress import progress
from churnctl.cli.report import (
    pair_label,
    print_demo_note,
    rows_text,
    warned_scorer,
)
from churnctl.errors import FilesFailedError, UsageError
from churnctl.samples.bundled import STATE, bundled

if TYPE_CHECKING:
    from churnctl.batch.score_file import RunSummary
    from churnctl.batch.score_files import FileResult, FilesSummary
    from churnctl.features.state import FeatureState
    from churnctl.io.rejects import RejectLimit
    from churnctl.io.sources import ReadOptions
    from churnctl.scoring.scorer import Scorer


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
    decimal: DecimalOpt = ".",
    encoding: Encoding = "utf-8",
) -> None:
    """Fit the feature extractor on TRAIN and write its JSON state."""
    from churnctl.batch.fit_file import FitRequest, fit_file

    request = FitRequest(
        train=train,
        output=str(output),
        pipeline=pipeline,
        rejects=rejects,
        max_rejects=parse_max_rejects(max_rejects),
        read_options=read_options(delimiter, encoding),
        decimal=decimal,
    )
    from churnctl.scoring.binding import short

    with progress("fitting") as advance:
        state, rejects_file = fit_file(request, on_progress=advance)
    prov = state.provenance
    stderr.print(
        f"fitted {len(state.feature_names)} features on {prov['rows']:,} rows "
        f"({prov['rows_rejected']:,} rejected) → {output} (state {short(state.fingerprint)}); "
        f"rejects → {_shown_rejects(rejects_file)}",
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
    decimal: DecimalOpt = ".",
    encoding: Encoding = "utf-8",
    as_json: JsonOpt = False,
    no_drift: NoDriftOpt = False,
) -> None:
    """Score INPUT (files, folders, globs) with a model and a state; write raw and exited."""
    from churnctl.io.listing import expand_inputs

    inputs = expand_inputs(input)
    one = len(inputs) == 1 and out_dir is None
    if as_json and out_dir is None and (output or "-") == "-":
        raise UsageError(
            "--json prints the run's summary on stdout, where the scored rows would go: "
            "write them to a file (-o FILE) or a folder (--out-dir DIR)"
        )
    _check_targets(
        inputs,
        one,
        output,
        out_dir,
        rejects,
        {"training file": train, "state": state, "model": model, "saved state": save_state},
    )
    options = read_options(delimiter, encoding)
    features = _state_for_scoring(state, train, save_state, pipeline, (options, decimal))
    flags = scorer_options(keep, threshold, allow_state_mismatch, logits, decimal)
    scorer = warned_scorer(features, model, flags)
    run = _Run(scorer, format, rejects, parse_max_rejects(max_rejects), options, not no_drift)
    if one:
        summary = _score_one(inputs[0], output or "-", run)
    else:
        outcome = _score_many(inputs, output, out_dir, workers, run)
    if save_state is not None:
        features.save(save_state)
    if one:
        warn_drift(inputs[0], summary.drift, scorer.state.source)
        _print_summary(summary, scorer)
        if as_json:
            _print_score_document([one_file(summary, inputs[0])], summary, scorer, 1, None, 0)
    else:
        _report_files(outcome, scorer, as_json)


def _print_score_document(
    files: list[FileResult],
    totals: RunSummary | FilesSummary,
    scorer: Scorer,
    workers: int,
    out_dir: str | None,
    exit_code: int,
) -> None:
    document = score_document(
        files,
        totals,
        scorer,
        workers=workers,
        out_dir=out_dir,
        exit_code=exit_code,
        message=flag_message,
    )
    print_document(document)


def _check_targets(
    inputs: list[str],
    one: bool,
    output: str | None,
    out_dir: Path | None,
    rejects: str | None,
    others: dict[str, str | Path | None],
) -> None:
    """Refuse, before any work, a file written that is a file read (or two writes in one)."""
    from churnctl.io.rejects import rejects_path

    if out_dir is not None and (output is not None or rejects is not None):
        raise UsageError(
            "--out-dir writes one output and one rejects file per input: drop -o and --rejects"
        )
    target = output or "-"
    read = {k: v for k, v in others.items() if k != "saved state"}
    for name in inputs:
        check_distinct(
            {"input": name, **read},
            {
                "output": None if out_dir else target,
                "rejects": rejects or (rejects_path(target) if one else None),
                "saved state": others["saved state"],
            },
        )


@dataclass(frozen=True)
class _Run:
    """What one ``score`` run and a many-file run share, besides their inputs and outputs."""

    scorer: Scorer
    format: str | None
    rejects: str | None
    max_rejects: RejectLimit
    read_options: ReadOptions
    drift: bool = True  # compare each input with the state's training profile


def _score_one(input: str, output: str, run: _Run) -> RunSummary:
    from churnctl.batch.score_file import ScoreRequest, score_file

    request = ScoreRequest(
        input=input,
        output=output,
        scorer=run.scorer,
        format=run.format,
        rejects=run.rejects,
        max_rejects=run.max_rejects,
        read_options=run.read_options,
        drift=run.drift,
    )
    with progress("scoring") as advance:
        return score_file(request, on_progress=advance)


def _score_many(
    inputs: list[str], output: str | None, out_dir: Path | None, workers: int | None, run: _Run
) -> FilesSummary:
    from churnctl.batch.score_files import FilesRequest, score_files

    files = FilesRequest(
        inputs=inputs,
        out_dir=out_dir,
        output=output,
        workers=workers,
        scorer=run.scorer,
        format=run.format,
        rejects=run.rejects,
        max_rejects=run.max_rejects,
        read_options=run.read_options,
        drift=run.drift,
    )
    with _files_progress(len(inputs)) as on_file:
        return score_files(files, on_file=on_file)


def _state_for_scoring(
    state: Path | None,
    train: str | None,
    save_state: Path | None,
    pipeline: str | None,
    reading: tuple[ReadOptions, str],  # how --train is read: options, decimal mark
) -> FeatureState:
    from churnctl.features.state import load_state

    if state is not None and train is not None:
        raise UsageError("pass either --state or --train, not both")
    if train is None:
        if save_state is not None or pipeline is not None:
            raise UsageError("--save-state and --pipeline need --train")
        return load_state(state or bundled(STATE))
    from churnctl.batch.fit_file import fit_state  # only to fit: scoring does not need it

    options, decimal = reading
    return fit_state(train, pipeline=pipeline, read_options=options, decimal=decimal)


@contextlib.contextmanager
def _files_progress(total: int) -> Iterator[Callable[[FileResult], None] | None]:
    """Files done so far, on stderr when it is a terminal; nothing otherwise."""
    if not stderr.is_terminal:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("{task.completed:,}/{task.total:,} files"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task("scoring", total=total)
        yield lambda result: bar.advance(task)


def _print_summary(summary: RunSummary, scorer: Scorer) -> None:
    where = f"{_shown(summary.output)}; rejects → {_shown_rejects(summary.rejects)}"
    _summary_line("", summary, where, scorer)


def _shown(output: str | None) -> str:
    return "stdout" if output == "-" else str(output)


def _shown_rejects(rejects: str | None) -> str:
    return "stderr" if rejects == "-" else str(rejects)


def _report_files(outcome: FilesSummary, scorer: Scorer, as_json: bool = False) -> None:
    """An ``Error:`` line per failed file (in input order), the summary, then exit 4 if any."""
    failed = outcome.failed
    for result in outcome.results:
        if result.summary is not None:
            warn_drift(result.input, result.summary.drift, scorer.state.source)
    for result in failed:
        if result.error is not None:
            error_line(result.message(flag_message(result.error)))
    if outcome.out_dir is not None:
        where = f"{outcome.out_dir} (an output and a rejects file per input)"
    else:
        where = f"{_shown(outcome.output)}; rejects → {_shown_rejects(outcome.rejects)}"
    files = f"{len(outcome.results):,} files" + (f" ({len(failed):,} failed)" if failed else "")
    _summary_line(f"{files}, {outcome.workers} worker(s): ", outcome, where, scorer)
    if as_json:
        code = FilesFailedError.exit_code if failed else 0
        _print_score_document(
            outcome.results, outcome, scorer, outcome.workers, outcome.out_dir, code
        )
    if failed:
        left = "the others are" if len(failed) < len(outcome.results) else "nothing is"
        raise FilesFailedError(
            f"{len(failed):,} of {len(outcome.results):,} files failed (see above); {left} "
            "scored and published"
        )


def _summary_line(
    prefix: str, summary: RunSummary | FilesSummary, where: str, scorer: Scorer
) -> None:
    from churnctl.scoring.binding import PairStatus

    skipped = scorer.check.status is PairStatus.SKIPPED
    print_demo_note(scorer.model_name, scorer.state.source)
    stderr.print(
        f"{prefix}{rows_text(summary.rows, summary.seconds)} → {where}; {pair_label(scorer)}"
        + ("; model/state binding check SKIPPED (--allow-state-mismatch)" if skipped else ""),
        markup=False,
    )
