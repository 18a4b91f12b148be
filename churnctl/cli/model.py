"""The model commands: ``bind`` (a model to its state) and ``inspect`` (a model and a state).

Library modules are imported inside the commands (see ``cli.score``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from churnctl.atomic import check_distinct
from churnctl.cli.app import command, flag_message
from churnctl.cli.console import error_line, stderr, stdout
from churnctl.cli.documents import inspect_document, print_document
from churnctl.cli.options import JsonOpt, ModelOpt, StateOpt, output_file, path_value
from churnctl.cli.report import binding_lines, orders_table, print_demo_note, report_tables
from churnctl.samples.bundled import MODEL, STATE, bundled

if TYPE_CHECKING:
    from churnctl.scoring.inspection import Report


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
    rebind: Annotated[
        bool,
        typer.Option(
            "--rebind", help="Replace the binding of a model already bound to another state."
        ),
    ] = False,
) -> None:
    """Write MODEL bound to STATE: every runtime then refuses any other state."""
    from churnctl.features.state import load_state
    from churnctl.scoring.binding import BindStatus, RebindError, bind_file, short

    check_distinct({"model": model, "state": state}, {"output": output})
    try:
        outcome = bind_file(model, load_state(state), output, rebind=rebind)
    except RebindError as exc:
        error_line(flag_message(exc))
        stderr.print(orders_table(exc.bound.feature_names, exc.requested.feature_names))
        raise typer.Exit(exc.exit_code) from None
    binding = outcome.binding
    if outcome.status is BindStatus.REBOUND and outcome.previous is not None:
        stderr.print(
            f"Warning: rebound {model} from state {short(outcome.previous.fingerprint)} to "
            f"{short(binding.fingerprint)} (--rebind): a model's weights encode the feature "
            "order it was trained on; its scores are right only if it was trained with this "
            "state",
            markup=False,
        )
    what = f"state {short(binding.fingerprint)} ({len(binding.feature_names)} features)"
    if outcome.status is BindStatus.UNCHANGED:
        line = f"{model} is already bound to {what}: binding unchanged → {output}"
    else:
        line = f"bound {model} to {what} → {output}"
    stderr.print(line, markup=False)


OutputArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="[OUTPUT]",
        parser=path_value,
        show_default=False,
        help="An output file or folder: show its lineage (what produced it) instead.",
    ),
]


@command
def inspect(
    output: OutputArg = None,
    model: ModelOpt = None,
    state: StateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a model's inputs and outputs, a state's stages, and whether they fit together.

    Given OUTPUT: what produced it (its lineage record), and, with --model or --state,
    whether it was scored by them.
    """
    if output is not None:
        _inspect_output(output, model, state, as_json)
        return
    import hashlib

    from churnctl.features.state import load_state
    from churnctl.scoring.inspection import inspect_pair
    from churnctl.scoring.model import ChurnModel

    model, state = model or bundled(MODEL), state or bundled(STATE)
    opened = ChurnModel(model)
    report = inspect_pair(opened, load_state(state))
    if as_json:
        digest = hashlib.sha256(opened.data).hexdigest()
        print_document(inspect_document(report, opened.name, digest))
    else:
        _print_report(report)
    print_demo_note(model, state)
    if not report.compatible:
        raise typer.Exit(2)


def _print_report(report: Report) -> None:
    for table in report_tables(report):
        stdout.print(table)
    for line in binding_lines(report):
        stdout.print(line, markup=False, soft_wrap=True)
    verdict = "[green]compatible[/]" if report.compatible else "[red]NOT compatible[/]"
    stdout.print(f"{verdict}: {escape(report.verdict)}", soft_wrap=True)


def _inspect_output(output: Path, model: Path | None, state: Path | None, as_json: bool) -> None:
    """Print OUTPUT's lineage, and whether the given model and state produced it (exit 2 if not)."""
    from churnctl.batch.lineage_files import read_output_lineage
    from churnctl.features.state import load_state
    from churnctl.scoring.lineage import model_digest_of

    lineage = read_output_lineage(output)
    checks: dict[str, bool] = {}
    if model is not None:
        checks["model"] = model_digest_of(model) == lineage.model_digest
    if state is not None:
        checks["state"] = load_state(state).fingerprint == lineage.state_fingerprint
    if as_json:
        document = {"output": str(output), "lineage": lineage.document(), "scored_by": checks}
        print_document({"command": "inspect", **document})
    else:
        table = Table("lineage", title=f"lineage of {escape(str(output))}")
        table.add_column("value", overflow="fold")
        for key, value in lineage.document().items():
            shown = ", ".join(value) if isinstance(value, list) else str(value)
            table.add_row(key, escape(shown))
        stdout.print(table)
        for what, given in (("model", model), ("state", state)):
            if what in checks:
                verdict = "yes" if checks[what] else "[red]NO[/]"
                stdout.print(f"scored with the {what} {escape(str(given))}: {verdict}")
    if not all(checks.values()):
        raise typer.Exit(2)
