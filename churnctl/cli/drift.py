"""The ``drift`` command, and the one-line drift warning ``score`` and ``watch`` print.

``drift`` calls ``drift_file`` and prints its report as a table, or ``--json``: one
document whose keys are listed in ``DRIFT_KEYS`` (docs/drift.md). Library modules are
imported inside the command (see ``cli.score``).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from churnctl.cli.app import command
from churnctl.cli.console import stderr, stdout
from churnctl.cli.documents import print_document
from churnctl.cli.options import DecimalOpt, Delimiter, Encoding, JsonOpt, StateOpt, text_value
from churnctl.cli.progress import progress
from churnctl.cli.report import add_text_row
from churnctl.samples.bundled import STATE, bundled

if TYPE_CHECKING:
    from rich.table import Table

    from churnctl.batch.drift_file import FileDrift
    from churnctl.features.drift import DriftReport

# The --json document's keys (stable: documented in docs/drift.md); each column's keys.
DRIFT_KEYS = (
    "input",
    "state",
    "rows",
    "malformed_lines",
    "training_rows",
    "verdict",
    "drifting",
    "columns",
)
COLUMN_KEYS = ("column", "kind", "psi", "verdict", "null_share", "unseen_share", "mean_shift")


FileArg = Annotated[
    str,
    typer.Argument(
        metavar="FILE", parser=text_value, help="CSV, CSV.gz or Parquet file; - reads stdin."
    ),
]


@command
def drift(
    input: FileArg,
    state: StateOpt = None,
    delimiter: Delimiter = ",",
    decimal: DecimalOpt = ".",
    encoding: Encoding = "utf-8",
    as_json: JsonOpt = False,
) -> None:
    """Compare FILE with the state's training distribution: PSI, unseen labels, mean shift."""
    from churnctl.batch.drift_file import drift_file
    from churnctl.cli.options import read_options
    from churnctl.features.state import load_state

    state_path = state or bundled(STATE)
    features = load_state(state_path)
    with progress("reading") as advance:
        found = drift_file(
            input,
            features,
            read_options=read_options(delimiter, encoding),
            decimal=decimal,
            on_progress=advance,
        )
    if as_json:
        print_document(drift_document(found, str(state_path)))
    else:
        stdout.print(drift_table(found.report, found.input))
        stdout.print(_summary(found), markup=False, soft_wrap=True)
    if state is None:
        stderr.print(
            "Note: compared with the bundled demo state's training data (synthetic); pass "
            "--state to compare with your own",
            markup=False,
        )


def drift_document(found: FileDrift, state: str) -> dict[str, Any]:
    """The --json document: ``DRIFT_KEYS``, each column with ``COLUMN_KEYS``."""
    report = found.report.to_dict()
    document = {
        "input": found.input,
        "state": state,
        "malformed_lines": found.malformed_lines,
        **report,
    }
    return {key: document[key] for key in DRIFT_KEYS}


def drift_table(report: DriftReport, input: str) -> Table:
    from rich.table import Table

    table = Table(
        "column", "kind", "PSI", "verdict", "unseen", "mean shift", title=f"Drift of {input}"
    )
    for column in report.columns:
        add_text_row(
            table,
            column.column,
            column.kind,
            _number(column.psi, "{:.3f}"),
            column.verdict,
            _number(column.unseen_share, "{:.1%}"),
            _number(column.mean_shift, "{:+.2f} sd"),
        )
    return table


def _number(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value if abs(value) >= 5e-4 else 0.0)


def _summary(found: FileDrift) -> str:
    report = found.report
    malformed = (
        f" ({found.malformed_lines:,} malformed lines apart)" if found.malformed_lines else ""
    )
    drifting = ", ".join(column.column for column in report.drifting) or "none"
    return (
        f"{report.rows:,} rows{malformed} against {report.training_rows:,} training rows: "
        f"{report.worst}; drifting: {drifting}"
    )


def drift_warning(input: str, report: DriftReport | None, state: str) -> str | None:
    """``FILE: drift from the training data: Age (PSI 1.65), ...``; None when nothing drifts.

    It ends with the ``drift`` command to run, as a shell takes it (``state``: the state's
    file, named unless it is the bundled one, which ``drift`` compares with by default).
    """
    if report is None or not report.drifting:
        return None
    parts = []
    for column in report.drifting:
        unseen = column.unseen_share
        seen = f", {unseen:.1%} unseen" if unseen else ""
        parts.append(f"{column.column} (PSI {column.psi:.2f}{seen})")
    command = ["churnctl", "drift", input]
    if Path(state).is_file() and Path(state).resolve() != bundled(STATE):
        command += ["--state", state]
    return f"{input}: drift from the training data: {', '.join(parts)}; see {shlex.join(command)}"


def warn_drift(input: str, report: DriftReport | None, state: str) -> None:
    """The drift warning on stderr, if any."""
    line = drift_warning(input, report, state)
    if line is not None:
        stderr.print(f"Warning: {line}", markup=False, soft_wrap=True)
