"""The command line: a thin layer over the library. Only this module imports typer/rich."""

from __future__ import annotations

import contextlib
import functools
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from churnctl import __version__
from churnctl.binding import PairStatus, bind_file, short
from churnctl.bundled import MODEL, STATE, bundled
from churnctl.errors import ChurnctlError, Fix, UsageError
from churnctl.file_scoring import RunSummary, ScoreRequest, score_file
from churnctl.fitting import fit_state
from churnctl.generate import generate_files
from churnctl.inspection import Report, inspect_pair
from churnctl.model import ChurnModel
from churnctl.rejects import RejectLimit
from churnctl.scorer import Scorer
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
            _fail(_with_flags(exc), exc.exit_code)
        except OSError as exc:  # the file system said no: still one actionable line
            _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), 1)

    app.command(fn.__name__.replace("_", "-"))(wrapper)
    return fn


def _with_flags(exc: ChurnctlError) -> str:
    """The error's message, its structured fix spelled as this CLI's flag."""
    return exc.message if exc.fix is None else f"{exc.message}; {_flag_fix(exc.fix)}"


def _flag_fix(fix: Fix) -> str:
    flag = "--" + fix.setting.replace("_", "-")
    if fix.example is None or fix.example is True:
        text = f"pass {flag}"
    else:
        example = str(fix.example)
        text = f"pass {flag} {example if shlex.quote(example) == example else repr(example)}"
    return text if fix.note is None else f"{text} {fix.note}"


def _fail(message: str, code: int) -> None:
    stderr.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code) from None


Delimiter = Annotated[str, typer.Option(help="CSV field delimiter.")]
Encoding = Annotated[str, typer.Option(help="Text encoding of CSV input.")]
PipelineOpt = Annotated[
    str | None, typer.Option("--pipeline", help="Preset (reference, sklearn) or TOML/JSON spec.")
]
ModelOpt = Annotated[Path | None, typer.Option(help="ONNX model (default: bundled).")]
StateOpt = Annotated[Path | None, typer.Option(help="Fitted state (default: bundled).")]
AllowMismatch = Annotated[
    bool, typer.Option(help="Score even if the model is bound to another state (unsafe).")
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
    model: ModelOpt = None,
    keep: Annotated[list[str] | None, typer.Option(help="Pass-through column.")] = None,
    threshold: Annotated[float, typer.Option(help="exited = raw > threshold.")] = 0.5,
    format: Annotated[str | None, typer.Option(help="csv, jsonl or parquet.")] = None,
    rejects: Annotated[str | None, typer.Option(help="Rejects CSV file.")] = None,
    max_rejects: Annotated[str, typer.Option(help="Fail above N rows or P% rejected.")] = "5%",
    allow_state_mismatch: AllowMismatch = False,
    logits: Annotated[
        bool, typer.Option(help="The model outputs logits: raw is their sigmoid.")
    ] = False,
    delimiter: Delimiter = ",",
    encoding: Encoding = "utf-8",
) -> None:
    """Score INPUT with a model and a feature state; write raw probability and exited."""
    read_options = _read_options(delimiter, encoding)
    limit = parse_max_rejects(max_rejects)
    features = _state_for_scoring(state, train, save_state, pipeline, read_options)
    scorer = Scorer(
        features, model or bundled(MODEL), keep=keep or ["CustomerId"], threshold=threshold,
        allow_state_mismatch=allow_state_mismatch, logits=logits,
    )  # fmt: skip
    _warn_about_pair(scorer)
    request = ScoreRequest(
        input=input, output=output, scorer=scorer, format=format, rejects=rejects,
        max_rejects=limit, read_options=read_options,
    )  # fmt: skip
    with _progress() as advance:
        summary = score_file(request, on_progress=advance)
    if save_state is not None:
        features.save(save_state)
    _print_summary(summary, scorer)


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


def parse_max_rejects(spec: str) -> RejectLimit:
    """``--max-rejects``: ``N`` (a count) or ``P%`` (0 ≤ P ≤ 100, a share of rows read)."""
    count = re.fullmatch(r"\s*(\d+)\s*", spec)
    share = re.fullmatch(r"\s*(\d+(\.\d*)?)\s*%\s*", spec)
    if count is not None:
        return RejectLimit(count=int(count.group(1)))
    if share is not None and float(share.group(1)) <= 100:
        return RejectLimit(fraction=float(share.group(1)) / 100)
    raise UsageError(
        f"--max-rejects must be a count (e.g. 100) or a percentage (e.g. 5%), got {spec!r}"
    )


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


def _warn_about_pair(scorer: Scorer) -> None:
    if scorer.check.status is not PairStatus.BOUND:
        stderr.print(
            f"Warning: {scorer.check.message}", markup=False, highlight=False, soft_wrap=True
        )


def _print_summary(summary: RunSummary, scorer: Scorer) -> None:
    target = "stdout" if summary.output == "-" else summary.output
    skipped = scorer.check.status is PairStatus.SKIPPED
    stderr.print(
        f"read {summary.rows_read:,} rows: {summary.rows_scored:,} scored, "
        f"{summary.rows_rejected:,} rejected in {summary.seconds:.2f} s "
        f"({summary.rows_per_second:,.0f} rows/s) → {target}; rejects → {summary.rejects}"
        + ("; model/state binding check SKIPPED (--allow-state-mismatch)" if skipped else ""),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@command
def bind(
    model: Annotated[Path, typer.Option(help="ONNX model to bind.")],
    state: Annotated[Path, typer.Option(help="The state the model was trained with.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Bound model to write.")],
) -> None:
    """Write MODEL bound to STATE: every runtime then refuses any other state."""
    binding = bind_file(model, load_state(state), output)
    stderr.print(
        f"bound {model} to state {short(binding.fingerprint)} "
        f"({len(binding.feature_names)} features) → {output}",
        highlight=False,
        markup=False,
    )


@command
def inspect(model: ModelOpt = None, state: StateOpt = None) -> None:
    """Show a model's inputs and outputs, a state's stages, and whether they fit together."""
    report = inspect_pair(ChurnModel(model or bundled(MODEL)), load_state(state or bundled(STATE)))
    for table in _report_tables(report):
        stdout.print(table)
    for line in _binding_lines(report):
        stdout.print(line, highlight=False, markup=False, soft_wrap=True)
    verdict = "[green]compatible[/]" if report.compatible else "[red]NOT compatible[/]"
    stdout.print(f"{verdict}: {escape(report.verdict)}", highlight=False, soft_wrap=True)
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
    provenance = Table("key", "value", title="Provenance")
    for key, value in report.provenance.items():
        provenance.add_row(key, escape(str(value)))
    return [io, stages, _features_table(report), provenance]


def _binding_lines(report: Report) -> list[str]:
    bound_to = report.model_fingerprint or "(none)"
    return [
        f"model binding: {report.binding}; bound to state {bound_to}",
        f"state fingerprint: {report.state_fingerprint}",
    ]


def _features_table(report: Report) -> Table:
    if not report.orders_differ:
        features = Table("#", "feature", title="Feature order")
        for i, name in enumerate(report.feature_names):
            features.add_row(str(i), escape(name))
        if report.more_features:
            features.add_row("…", report.more_features)
        return features
    features = Table("#", "model (trained on)", "state (produces)", "", title="Feature order")
    model_names, state_names = report.model_feature_names or [], report.feature_names
    for i in range(max(len(model_names), len(state_names))):
        left = model_names[i] if i < len(model_names) else ""
        right = state_names[i] if i < len(state_names) else ""
        features.add_row(str(i), escape(left), escape(right), "" if left == right else "≠")
    if report.more_features or report.more_model_features:
        features.add_row("…", report.more_model_features, report.more_features, "")
    return features


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
