"""Option values: parsers, and the annotated option types the commands share.

Typer reads these types when the commands are defined, for ``--help`` too: this
module imports no library module that would bring in Arrow or NumPy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from churnctl.errors import UsageError

if TYPE_CHECKING:
    from churnctl.io.rejects import RejectLimit
    from churnctl.io.sources import ReadOptions
    from churnctl.scoring.scorer import ScorerOptions


def text_value(value: str) -> str:
    """A path given as text: refuse the empty string (which would mean the current folder)."""
    if value == "":
        raise typer.BadParameter("the path is empty")
    return value


def path_value(value: str) -> Path:
    return Path(text_value(value))


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


def read_options(delimiter: str, encoding: str) -> ReadOptions:
    from churnctl.io.sources import ReadOptions

    return ReadOptions(delimiter=parse_delimiter(delimiter), encoding=encoding)


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


def decimal_value(value: str) -> str:
    """``--decimal``: the decimal mark of numbers in text, ``.`` or ``,``."""
    if value not in (".", ","):
        raise typer.BadParameter(f"the decimal mark is . or , (got {value!r})")
    return value


DecimalOpt = Annotated[
    str,
    typer.Option(
        metavar=".|,",
        parser=decimal_value,
        help="Decimal mark of numbers in text input: . or , (101348,88); no thousands separators.",
    ),
]
PipelineOpt = Annotated[
    str | None,
    typer.Option(
        "--pipeline", metavar="PRESET|FILE", help="Preset (reference, sklearn) or TOML/JSON spec."
    ),
]
ModelOpt = Annotated[
    Path | None,
    typer.Option(metavar="FILE", parser=path_value, help="ONNX model (default: the bundled one)."),
]
StateOpt = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE", parser=path_value, help="Fitted state (default: the bundled one)."
    ),
]
AllowMismatch = Annotated[
    bool,
    typer.Option(
        "--allow-state-mismatch",
        help="Score even if the model is bound to another state (unsafe).",
    ),
]


def output_file(help: str) -> Any:
    return typer.Option("-o", "--output", metavar="FILE", parser=path_value, help=help)


InputArg = Annotated[
    list[str],
    typer.Argument(
        metavar="INPUT",
        parser=text_value,
        show_default=False,
        help="CSV, CSV.gz or Parquet files, folders of them, or glob patterns; - reads stdin.",
    ),
]
ScoreOutput = Annotated[
    str | None,
    typer.Option(
        "-o",
        "--output",
        metavar="FILE",
        parser=text_value,
        show_default=False,
        help="Output .csv, .jsonl or .parquet file, all inputs in order; - (the default) writes "
        "CSV to stdout.",
    ),
]
OutDirOpt = Annotated[
    Path | None,
    typer.Option(
        metavar="DIR",
        parser=path_value,
        help="One output and one rejects file per input here, named as watch names them.",
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        min=1,
        show_default=False,
        help="Processes scoring files at once (default: the number of cores; 1: one after the "
        "other, in this process).",
    ),
]
TrainOpt = Annotated[
    str | None,
    typer.Option(metavar="FILE", parser=text_value, help="Fit a state on this file first."),
]
SaveStateOpt = Annotated[
    Path | None,
    typer.Option(metavar="FILE", parser=path_value, help="Save the state fitted by --train."),
]
KeepOpt = Annotated[
    list[str],
    typer.Option(
        metavar="COLUMN",
        help="Columns copied to the output as text: repeat the option, or separate names with "
        "commas; '*' keeps every input column, '' none.",
    ),
]
KEEP_DEFAULT = ("CustomerId",)


def parse_keep(values: Sequence[str]) -> list[str]:
    """``--keep``: names, repeated or comma-separated (``a,b``); ``*`` for all; ``''`` for none."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def scorer_options(
    keep: Sequence[str], threshold: float, allow_state_mismatch: bool, logits: bool, decimal: str
) -> ScorerOptions:
    """The scoring flags that ``score``, ``watch`` and ``flink-submit`` share, as one group."""
    from churnctl.scoring.scorer import ScorerOptions

    return ScorerOptions(
        keep=tuple(parse_keep(keep)),
        threshold=threshold,
        allow_state_mismatch=allow_state_mismatch,
        logits=logits,
        decimal=decimal,
    )


SettleMs = Annotated[
    int,
    typer.Option(metavar="MS", help="A file written in place must stay unchanged this long."),
]
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
        metavar="FILE",
        parser=text_value,
        help="Rejects CSV (default: named after the output, beside it); - writes it to stderr.",
    ),
]
MaxRejects = Annotated[
    str,
    typer.Option(
        metavar="N|P%", help="Fail (exit 3) when over N rows or P% of the rows are rejected."
    ),
]


def parse_max_rejects(spec: str) -> RejectLimit:
    """``--max-rejects``: ``N`` (a count) or ``P%`` (0 ≤ P ≤ 100, a share of rows read)."""
    from churnctl.io.rejects import RejectLimit

    count = re.fullmatch(r"\s*(\d+)\s*", spec)
    share = re.fullmatch(r"\s*(\d+(\.\d*)?)\s*%\s*", spec)
    if count is not None:
        return RejectLimit(count=int(count.group(1)))
    if share is not None and float(share.group(1)) <= 100:
        return RejectLimit(fraction=float(share.group(1)) / 100)
    raise UsageError(
        f"--max-rejects must be a count (e.g. 100) or a percentage (e.g. 5%), got {spec!r}"
    )


JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout (keys: see the README)."),
]
NoDriftOpt = Annotated[
    bool,
    typer.Option(
        "--no-drift", help="Do not compare the rows with the state's training distribution."
    ),
]
