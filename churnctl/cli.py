"""The command line: a thin layer over the library. Only this module imports typer/rich."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from churnctl import __version__
from churnctl.batch import RunSummary, ScoreRequest, fit_state, score_file
from churnctl.bundled import MODEL, STATE, bundled
from churnctl.errors import ChurnctlError, UsageError
from churnctl.generate import generate_files
from churnctl.inspection import Report, inspect_pair
from churnctl.model import ChurnModel
from churnctl.rejects import DEFAULT_MAX_REJECTS
from churnctl.sources import ReadOptions
from churnctl.state import FeatureState, load_state

app = typer.Typer(
    help="Score customer churn with one JSON feature-extractor state for every runtime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True)
stdout = Console()
F = TypeVar("F", bound=Callable[..., Any])


def command(fn: F) -> F:
    """Register a command; the one place where ChurnctlError becomes `Error: ...` + exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ChurnctlError as exc:
            _fail(str(exc), exc.exit_code)
        except OSError as exc:  # the file system said no: still one actionable line
            _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), 1)

    app.command(fn.__name__.replace("_", "-"))(wrapper)
    return fn


def _fail(message: str, code: int) -> None:
    stderr.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code) from None


Delimiter = Annotated[str, typer.Option(help="CSV field delimiter.")]
Encoding = Annotated[str, typer.Option(help="Text encoding of CSV input.")]
PipelineOpt = Annotated[
    str | None, typer.Option("--pipeline", help="Preset (reference, sklearn) or TOML/JSON spec.")
]


def _read_options(delimiter: str, encoding: str) -> ReadOptions:
    if len(delimiter) != 1:
        raise UsageError(f"--delimiter must be one character, got {delimiter!r}")
    return ReadOptions(delimiter=delimiter, encoding=encoding)


@command
def fit(
    train: Annotated[str, typer.Argument(help="Training CSV or Parquet file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="State file to write.")],
    pipeline: PipelineOpt = None,
    delimiter: Delimiter = ",",
    encoding: Encoding = "utf-8",
) -> None:
    """Fit the feature extractor on TRAIN and write its JSON state."""
    state = fit_state(train, pipeline=pipeline, read_options=_read_options(delimiter, encoding))
    state.save(output)
    prov = state.provenance
    stderr.print(
        f"fitted {len(state.feature_names)} features on {prov['rows']:,} rows "
        f"({prov['rows_rejected']:,} rejected) → {output}",
        highlight=False,
        markup=False,
    )


@command
def score(
    input: Annotated[str, typer.Argument(help="CSV, CSV.gz or Parquet file; - for stdin.")],
    output: Annotated[str, typer.Option("-o", "--output", help="Output file; - for stdout.")] = "-",
    state: Annotated[Path | None, typer.Option(help="Fitted state (default: bundled).")] = None,
    train: Annotated[str | None, typer.Option(help="Fit a state on this file first.")] = None,
    save_state: Annotated[Path | None, typer.Option(help="Save the --train state.")] = None,
    pipeline: PipelineOpt = None,
    model: Annotated[Path | None, typer.Option(help="ONNX model (default: bundled).")] = None,
    keep: Annotated[list[str] | None, typer.Option(help="Pass-through column.")] = None,
    threshold: Annotated[float, typer.Option(help="exited = raw > threshold.")] = 0.5,
    format: Annotated[str | None, typer.Option(help="csv, jsonl or parquet.")] = None,
    rejects: Annotated[str | None, typer.Option(help="Rejects CSV file.")] = None,
    max_rejects: Annotated[str, typer.Option(help="Fail above N rows or P% rejected.")] = (
        DEFAULT_MAX_REJECTS
    ),
    delimiter: Delimiter = ",",
    encoding: Encoding = "utf-8",
) -> None:
    """Score INPUT with a model and a feature state; write raw probability and exited."""
    read_options = _read_options(delimiter, encoding)
    features = _state_for_scoring(state, train, save_state, pipeline, read_options)
    request = ScoreRequest(
        input=input, output=output, state=features, model=ChurnModel(model or bundled(MODEL)),
        keep=keep or ["CustomerId"], threshold=threshold, format=format, rejects=rejects,
        max_rejects=max_rejects, read_options=read_options,
    )  # fmt: skip
    with _progress() as advance:
        summary = score_file(request, on_progress=advance)
    if save_state is not None:
        features.save(save_state)
    _print_summary(summary)


def _state_for_scoring(
    state: Path | None,
    train: str | None,
    save_state: Path | None,
    pipeline: str | None,
    read_options: ReadOptions,
) -> FeatureState:
    if state is not None and train is not None:
        raise UsageError("pass either --state or --train, not both")
    if train is None:
        if save_state is not None or pipeline is not None:
            raise UsageError("--save-state and --pipeline need --train")
        return load_state(state or bundled(STATE))
    return fit_state(train, pipeline=pipeline, read_options=read_options)


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


def _print_summary(summary: RunSummary) -> None:
    target = "stdout" if summary.output == "-" else summary.output
    stderr.print(
        f"read {summary.rows_read:,} rows: {summary.rows_scored:,} scored, "
        f"{summary.rows_rejected:,} rejected in {summary.seconds:.2f} s "
        f"({summary.rows_per_second:,.0f} rows/s) → {target}; rejects → {summary.rejects}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@command
def inspect(
    model: Annotated[Path | None, typer.Option(help="ONNX model (default: bundled).")] = None,
    state: Annotated[Path | None, typer.Option(help="Fitted state (default: bundled).")] = None,
) -> None:
    """Show a model's inputs and outputs, a state's stages, and whether they fit together."""
    report = inspect_pair(ChurnModel(model or bundled(MODEL)), load_state(state or bundled(STATE)))
    for table in _report_tables(report):
        stdout.print(table)
    verdict = "[green]compatible[/]" if report.compatible else "[red]NOT compatible[/]"
    stdout.print(f"{verdict}: {escape(report.verdict)}", highlight=False)
    if not report.compatible:
        raise typer.Exit(2)


def _report_tables(report: Report) -> list[Table]:
    io = Table("role", "name", "type", "shape", title="Model")
    for role, nodes in (("input", report.model_inputs), ("output", report.model_outputs)):
        for node in nodes:
            io.add_row(role, escape(node.name), node.type, escape(str(list(node.shape))))
    stages = Table("#", "stage", "params", "fitted", title="State stages")
    for i, stage in enumerate(report.stages, 1):
        params = ", ".join(f"{k}={v}" for k, v in stage.params.items())
        stages.add_row(str(i), stage.type, escape(params), escape(stage.fitted))
    features = Table("#", "feature", title="Feature order")
    for i, name in enumerate(report.feature_names):
        features.add_row(str(i), escape(name))
    provenance = Table("key", "value", title="Provenance")
    for key, value in report.provenance.items():
        provenance.add_row(key, escape(str(value)))
    return [io, stages, features, provenance]


@command
def generate(
    output: Annotated[Path, typer.Option("-o", "--output", help="File, or dir if --files>1.")],
    rows: Annotated[int, typer.Option("-n", "--rows", min=0, help="Number of rows.")] = 10_000,
    files: Annotated[int, typer.Option(min=1, help="Split into this many files.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same bytes).")] = 0,
) -> None:
    """Write synthetic churn records with the bank-churn schema (CSV, CSV.gz or Parquet)."""
    paths = generate_files(output, n_rows=rows, files=files, seed=seed)
    stderr.print(f"wrote {rows:,} rows to {len(paths)} file(s) under {output}", markup=False)


def _version(value: bool) -> None:
    if value:
        stdout.print(f"churnctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """churnctl: batch and stream churn scoring without training/serving skew."""
