"""The command line: a thin layer over the library. Only this module imports typer/rich.

What it prints goes through two consoles that show any control character of the text
(an escape sequence in a file name, a CSV header or a category label) as an escape such
as ``\\x1b``, never raw to the terminal. Usage errors, like library errors, are one
``Error: ...`` line with exit code 2; a reader of stdout that goes away (``| head``) ends
the run quietly, as Unix tools do.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from churnctl import __version__
from churnctl.binding import PairStatus, bind_file, short
from churnctl.bundled import MODEL, STATE, bundled
from churnctl.errors import ChurnctlError, Fix, UsageError
from churnctl.file_scoring import RunSummary, ScoreRequest, score_file
from churnctl.fitting import FitRequest, fit_file, fit_state
from churnctl.generate import MAX_FILES, generate_files
from churnctl.inspection import Report, inspect_pair
from churnctl.model import ChurnModel
from churnctl.paths import check_distinct
from churnctl.rejects import RejectLimit, rejects_path
from churnctl.scorer import Scorer
from churnctl.sources import ReadOptions
from churnctl.state import FeatureState, load_state

SIGPIPE_EXIT = 141  # 128 + SIGPIPE: the status a shell reports for a writer whose reader left
TERMINATED = 128 + signal.SIGTERM
F = TypeVar("F", bound=Callable[..., Any])

# ------------------------------------------------------------------ terminal-safe output

# C0, DEL, C1, lone surrogates, line/paragraph separators and bidirectional controls
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def printable(text: str) -> str:
    """``text`` safe for a terminal: each control character spelled as Python would (``\\x1b``)."""
    return _UNPRINTABLE.sub(_escape_character, text)


def _escape_character(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT_ESCAPES.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


class _SafeConsole(Console):
    """A rich Console that turns control characters into escapes in every string it renders.

    Rich renders each printed string, table cell and title through ``render_str``: the
    one place where text from files and names can be neutralised. Emoji codes
    (``:smile:``) in names stay text too.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(emoji=False, highlight=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(printable(text), **kwargs)

    def on_broken_pipe(self) -> None:
        """The reader went away: stop quietly (rich's default would exit with status 1)."""
        self.quiet = True
        _stop_quietly(self.file)


stderr = _SafeConsole(stderr=True, soft_wrap=True)
stdout = _SafeConsole()

# ------------------------------------------------------------------ errors and exits


def _fail(message: str, code: int) -> NoReturn:
    stderr.print(f"[bold red]Error:[/] {escape(message)}")
    raise typer.Exit(code) from None


def _is_closed_pipe(exc: OSError) -> bool:
    return isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE


def _stop_quietly(stream: IO[str] | None = None) -> NoReturn:
    """The reader of stdout (or ``stream``) has gone (``| head``): stop without a word.

    The stream is pointed at the null device, so that flushing what is still buffered
    at exit cannot fail ("Exception ignored ... BrokenPipeError").
    """
    with contextlib.suppress(OSError, ValueError):  # a test runner's stream has no descriptor
        fd = (stream or sys.stdout).fileno()
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    raise typer.Exit(SIGPIPE_EXIT)


def _usage_message(exc: typer.TyperException) -> str:
    """A usage error (unknown option, bad value, ...) as one line, with where to get help."""
    message = exc.format_message().strip()
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return message
    stop = "" if message.endswith((".", "?", "!")) else "."
    return f"{message}{stop} Try '{ctx.command_path} --help' for help."


@contextlib.contextmanager
def _clean_exits() -> Iterator[None]:
    """Usage errors become one `Error:` line (exit 2); a closed stdout pipe a quiet exit."""
    try:
        yield
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # help shown; typer tests the name too
            raise
        _fail(_usage_message(exc), exc.exit_code)
    except OSError as exc:
        if not _is_closed_pipe(exc):
            raise
        _stop_quietly()


def _tidy_metavars(params: list[Any]) -> list[Any]:
    """Help shows a flag with no value, an argument by name alone (not `<bool>`, `<str>`)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif param.param_type_name == "argument" and param.metavar is not None:
            param.display_type_rich = _no_type  # typer shows an argument's type beside its name
    return params


def _no_type(ctx: Any) -> None:
    return None


class _Command(TyperCommand):
    """A churnctl command: flags (``--help`` included) without a metavar."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _tidy_metavars(super().get_params(ctx))


class _Group(TyperGroup):
    """The churnctl group: parsing and running every command under ``_clean_exits``."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _clean_exits():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _clean_exits():
            return super().invoke(ctx)

    def get_params(self, ctx: Any) -> list[Any]:
        return _tidy_metavars(super().get_params(ctx))


app = typer.Typer(
    name="churnctl",
    cls=_Group,
    help="Score customer churn with one JSON feature-extractor state for every runtime.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def command(fn: F) -> F:
    """Register a command; the one place where ChurnctlError becomes `Error: ...` + exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ChurnctlError as exc:
            _fail(_with_flags(exc), exc.exit_code)
        except OSError as exc:  # the file system said no: still one actionable line
            if _is_closed_pipe(exc):
                _stop_quietly()
            _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), 1)

    app.command(fn.__name__.replace("_", "-"), cls=_Command)(wrapper)
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


# ------------------------------------------------------------------ option values


def _text(value: str) -> str:
    """A path given as text: refuse the empty string (which would mean the current folder)."""
    if value == "":
        raise typer.BadParameter("the path is empty")
    return value


def _path(value: str) -> Path:
    return Path(_text(value))


_DELIMITER_NAMES = {"tab": "\t"}
_DELIMITER_ESCAPE = re.compile(r"\\(?:(t)|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|(\\))")


def parse_delimiter(spec: str) -> str:
    r"""``--delimiter``: one character, ``tab``, or an escape: ``\t``, ``\xHH``, ``\uHHHH``."""
    char = _DELIMITER_NAMES.get(spec.lower()) or _unescape(spec) or spec
    if len(char) != 1 or char in '"\r\n\x00':
        raise UsageError(
            "--delimiter must be one character other than a quote or a line break, tab, "
            f"or an escape such as \\t or \\x1f; got {spec!r}"
        )
    return char


def _unescape(spec: str) -> str | None:
    match = _DELIMITER_ESCAPE.fullmatch(spec)
    if match is None:
        return None
    tab, byte, code, backslash = match.groups()
    return "\t" if tab else "\\" if backslash else chr(int(byte or code, 16))


def _text_encoding(name: str) -> str:
    try:
        b"a".decode(name)
    except LookupError:  # unknown, or a bytes-to-bytes codec such as rot13 or zlib
        raise UsageError(
            f"--encoding {name!r} is not a text encoding (e.g. utf-8, latin-1, cp1252)"
        ) from None
    except UnicodeError:  # a text encoding all the same (utf-16 cannot decode one byte)
        pass
    return name


def _read_options(delimiter: str, encoding: str) -> ReadOptions:
    return ReadOptions(delimiter=parse_delimiter(delimiter), encoding=_text_encoding(encoding))


# ------------------------------------------------------------------ commands

Delimiter = Annotated[
    str,
    typer.Option(
        metavar="CHAR",
        help=r"CSV field delimiter: one character, tab, or an escape such as \t or \x1f.",
    ),
]
Encoding = Annotated[
    str, typer.Option(metavar="NAME", help="Text encoding of CSV input, e.g. latin-1.")
]
PipelineOpt = Annotated[
    str | None,
    typer.Option(
        "--pipeline", metavar="PRESET|FILE", help="Preset (reference, sklearn) or TOML/JSON spec."
    ),
]
ModelOpt = Annotated[
    Path | None,
    typer.Option(metavar="FILE", parser=_path, help="ONNX model (default: the bundled one)."),
]
StateOpt = Annotated[
    Path | None,
    typer.Option(metavar="FILE", parser=_path, help="Fitted state (default: the bundled one)."),
]
AllowMismatch = Annotated[
    bool,
    typer.Option(
        "--allow-state-mismatch",
        help="Score even if the model is bound to another state (unsafe).",
    ),
]


def _output_file(help: str) -> Any:
    return typer.Option("-o", "--output", metavar="FILE", parser=_path, help=help)


InputArg = Annotated[
    str,
    typer.Argument(
        metavar="INPUT", parser=_text, help="CSV, CSV.gz or Parquet file; - reads stdin."
    ),
]
ScoreOutput = Annotated[
    str,
    typer.Option(
        "-o", "--output", metavar="FILE", parser=_text,
        help="Output .csv, .jsonl or .parquet file; - writes CSV to stdout.",
    ),
]  # fmt: skip
TrainOpt = Annotated[
    str | None, typer.Option(metavar="FILE", parser=_text, help="Fit a state on this file first.")
]
SaveStateOpt = Annotated[
    Path | None,
    typer.Option(metavar="FILE", parser=_path, help="Save the state fitted by --train."),
]
KeepOpt = Annotated[
    list[str],
    typer.Option(
        metavar="COLUMN",
        help="Column copied to the output as text; repeat the option for more columns.",
    ),
]
KEEP_DEFAULT = ("CustomerId",)
LogitsOpt = Annotated[
    bool, typer.Option("--logits", help="The model outputs logits: raw is their sigmoid.")
]
ThresholdOpt = Annotated[
    float,
    typer.Option(metavar="P", help="exited = raw > P (a probability, 0 to 1)."),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        metavar="csv|jsonl|parquet",
        help="Output format (default: from the output's extension; CSV for -).",
    ),
]
RejectsOpt = Annotated[
    str | None,
    typer.Option(
        metavar="FILE", parser=_text,
        help="Rejects CSV (default: named after the output, beside it); - writes it to stderr.",
    ),
]  # fmt: skip
MaxRejects = Annotated[
    str,
    typer.Option(
        metavar="N|P%", help="Fail (exit 3) when over N rows or P% of the rows are rejected."
    ),
]


@command
def fit(
    train: Annotated[
        str,
        typer.Argument(metavar="TRAIN", parser=_text, help="Training CSV, CSV.gz or Parquet file."),
    ],
    output: Annotated[Path, _output_file("State JSON file to write.")],
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
        read_options=_read_options(delimiter, encoding),
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
    output: ScoreOutput = "-",
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
    """Score INPUT with a model and a feature state; write raw probability and exited."""
    check_distinct(
        {"input": input, "training file": train, "state": state, "model": model},
        {"output": output, "rejects": rejects or rejects_path(output, input),
         "saved state": save_state},
    )  # fmt: skip
    read_options = _read_options(delimiter, encoding)
    limit = parse_max_rejects(max_rejects)
    features = _state_for_scoring(state, train, save_state, pipeline, read_options)
    scorer = Scorer(
        features, model or bundled(MODEL), keep=list(keep), threshold=threshold,
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
        stderr.print(f"Warning: {scorer.check.message}", markup=False)


def _print_summary(summary: RunSummary, scorer: Scorer) -> None:
    target = "stdout" if summary.output == "-" else summary.output
    skipped = scorer.check.status is PairStatus.SKIPPED
    stderr.print(
        f"read {summary.rows_read:,} rows: {summary.rows_scored:,} scored, "
        f"{summary.rows_rejected:,} rejected in {summary.seconds:.2f} s "
        f"({summary.rows_per_second:,.0f} rows/s) → {target}; rejects → {summary.rejects}"
        + ("; model/state binding check SKIPPED (--allow-state-mismatch)" if skipped else ""),
        markup=False,
    )


@command
def bind(
    model: Annotated[Path, typer.Option(metavar="FILE", parser=_path, help="ONNX model to bind.")],
    state: Annotated[
        Path,
        typer.Option(metavar="FILE", parser=_path, help="The state the model was trained with."),
    ],
    output: Annotated[Path, _output_file("Bound model to write (not the input model).")],
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
    for table in _report_tables(report):
        stdout.print(table)
    for line in _binding_lines(report):
        stdout.print(line, markup=False, soft_wrap=True)
    verdict = "[green]compatible[/]" if report.compatible else "[red]NOT compatible[/]"
    stdout.print(f"{verdict}: {escape(report.verdict)}", soft_wrap=True)
    if not report.compatible:
        raise typer.Exit(2)


def _report_tables(report: Report) -> list[Table]:
    io = Table("role", "name", "type", "shape", title="Model")
    for role, nodes in (("input", report.model_inputs), ("output", report.model_outputs)):
        for node in nodes:
            _add_row(io, role, node.name, node.type, str(list(node.shape)))
    stages = Table("#", "stage", "params", "fitted", title="State stages")
    for i, stage in enumerate(report.stages, 1):
        params = ", ".join(f"{k}={v}" for k, v in stage.params.items())
        _add_row(stages, str(i), stage.type, params, stage.fitted)
    provenance = Table("key", "value", title="Provenance")
    for key, value in report.provenance.items():
        _add_row(provenance, key, str(value))
    return [io, stages, _features_table(report), provenance]


def _add_row(table: Table, *cells: str) -> None:
    """A row of plain text: brackets in names and values are not Rich markup."""
    table.add_row(*(escape(cell) for cell in cells))


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
            _add_row(features, str(i), name)
        if report.more_features:
            _add_row(features, "…", report.more_features)
        return features
    features = Table("#", "model (trained on)", "state (produces)", "", title="Feature order")
    model_names, state_names = report.model_feature_names or [], report.feature_names
    for i in range(max(len(model_names), len(state_names))):
        left = model_names[i] if i < len(model_names) else ""
        right = state_names[i] if i < len(state_names) else ""
        _add_row(features, str(i), left, right, "" if left == right else "≠")
    if report.more_features or report.more_model_features:
        _add_row(features, "…", report.more_model_features, report.more_features, "")
    return features


@command
def generate(
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            metavar="PATH",
            parser=_path,
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


def _version(value: bool) -> None:
    if value:
        stdout.print(f"churnctl {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """churnctl: batch and stream churn scoring without training/serving skew."""
    signal.signal(signal.SIGTERM, _terminate)


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C: temporary outputs and the stdin spool are removed."""
    raise SystemExit(TERMINATED)


def run() -> None:
    """The console script: the app, and after SIGTERM (once cleaned up) an immediate exit.

    Exiting at once skips interpreter finalisation, which would abort while an
    Arrow I/O thread is still blocked reading a pipe.
    """
    try:
        app()
    except SystemExit as exit:
        if exit.code != TERMINATED:
            raise
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(TERMINATED)
