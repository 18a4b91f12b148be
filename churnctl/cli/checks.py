"""The commands that check a model and its runtimes: ``evaluate`` and ``verify``.

``evaluate`` scores a labelled file (``batch.evaluate_file``) and prints its figures;
``verify`` scores a sample through every runtime (``verify.verify_runtimes``) and
prints how each compares with ``score``, exiting 5 when one differs. Library modules
are imported inside the commands (``--help`` imports no NumPy or Arrow).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from churnctl.cli.app import command
from churnctl.cli.console import stderr, stdout
from churnctl.cli.documents import print_document
from churnctl.cli.options import (
    AllowMismatch,
    DecimalOpt,
    Delimiter,
    Encoding,
    JsonOpt,
    LogitsOpt,
    ModelOpt,
    StateOpt,
    ThresholdOpt,
    read_options,
    scorer_options,
    text_value,
)
from churnctl.cli.report import add_text_row, pair_label, print_demo_note, warned_scorer
from churnctl.errors import RuntimesDisagreeError

if TYPE_CHECKING:
    from churnctl.batch.evaluate_file import Evaluation
    from churnctl.scoring.scorer import Scorer
    from churnctl.verify.compare import RuntimeResult, VerifyReport

DataArg = Annotated[
    str,
    typer.Argument(
        metavar="DATA", parser=text_value, help="CSV, CSV.gz or Parquet file with the labels."
    ),
]
SampledArg = Annotated[
    str,
    typer.Argument(
        metavar="DATA",
        parser=text_value,
        help="CSV, CSV.gz or Parquet file to score through every runtime.",
    ),
]
LabelOpt = Annotated[
    str, typer.Option(metavar="COLUMN", help="The column that holds 0 or 1 (1: exited).")
]
RowsOpt = Annotated[
    int | None,
    typer.Option(
        metavar="N", min=1, show_default=False, help="Verify the first N rows (default: all)."
    ),
]
ToleranceOpt = Annotated[
    float, typer.Option(metavar="D", min=0.0, help="Largest |Δ raw| allowed against score.")
]
SkipOpt = Annotated[
    list[str],
    typer.Option(
        metavar="RUNTIME", help="A runtime not to run: workers, watch, flink or fused (repeat)."
    ),
]
EVALUATE_KEYS = (
    "command",
    "input",
    "label",
    "rows_read",
    "rows",
    "rejected",
    "positives",
    "threshold",
    "auc",
    "log_loss",
    "confusion",
    "precision",
    "recall",
    "deciles",
    "model",
    "state",
)
VERIFY_KEYS = ("command", "input", "rows", "tolerance", "passed", "exit_code", "runtimes")


@command
def evaluate(
    data: DataArg,
    label: LabelOpt = "Exited",
    state: StateOpt = None,
    model: ModelOpt = None,
    threshold: ThresholdOpt = 0.5,
    allow_state_mismatch: AllowMismatch = False,
    logits: LogitsOpt = False,
    delimiter: Delimiter = ",",
    decimal: DecimalOpt = ".",
    encoding: Encoding = "utf-8",
    as_json: JsonOpt = False,
) -> None:
    """Score labelled DATA; print AUC, log-loss, the confusion matrix and deciles."""
    from churnctl.batch.evaluate_file import evaluate_file

    flags = scorer_options((), threshold, allow_state_mismatch, logits, decimal)
    scorer = warned_scorer(state, model, flags)
    options = read_options(delimiter, encoding)
    evaluation = evaluate_file(data, scorer, label=label, read_options=options)
    if as_json:
        print_document(evaluate_document(evaluation, scorer))
    else:
        for table in _evaluation_tables(evaluation):
            stdout.print(table)
    print_demo_note(scorer.model_name, scorer.state.source)
    stderr.print(
        f"{evaluation.read:,} rows read: {evaluation.metrics.rows:,} evaluated, "
        f"{evaluation.rejected:,} rejected and left out; {pair_label(scorer)}",
        markup=False,
    )


def evaluate_document(evaluation: Evaluation, scorer: Scorer) -> dict[str, Any]:
    """``evaluate --json``: ``EVALUATE_KEYS``, in this order."""
    from dataclasses import asdict

    m = evaluation.metrics
    document = {
        "command": "evaluate",
        "input": evaluation.input,
        "label": evaluation.label,
        "rows_read": evaluation.read,
        "rows": m.rows,
        "rejected": evaluation.rejected,
        "positives": m.positives,
        "threshold": m.threshold,
        "auc": m.auc,
        "log_loss": m.log_loss,
        "confusion": asdict(m.confusion),
        "precision": m.precision,
        "recall": m.recall,
        "deciles": [asdict(d) for d in m.deciles],
        "model": {"name": scorer.model_name, "sha256": scorer.model_digest},
        "state": {"fingerprint": scorer.state.fingerprint},
    }
    return {key: document[key] for key in EVALUATE_KEYS}


def _evaluation_tables(evaluation: Evaluation) -> list[Table]:
    m, c = evaluation.metrics, evaluation.metrics.confusion
    figures = Table("figure", "value", title=f"{evaluation.input} ({evaluation.label})")
    auc = "n/a (one class only)" if m.auc is None else f"{m.auc:.4f}"
    for name, value in (
        ("rows evaluated", f"{m.rows:,}"),
        ("rows rejected (left out)", f"{evaluation.rejected:,}"),
        ("exited (label 1)", f"{m.positives:,} ({m.positives / m.rows:.1%})"),
        ("AUC", auc),
        ("log-loss", f"{m.log_loss:.4f}"),
        (f"precision at raw > {m.threshold:g}", f"{m.precision:.4f}"),
        (f"recall at raw > {m.threshold:g}", f"{m.recall:.4f}"),
    ):
        add_text_row(figures, name, value)
    confusion = Table("", "predicted stays", "predicted exits", title="Confusion matrix")
    add_text_row(confusion, "stayed (0)", f"{c.tn:,}", f"{c.fp:,}")
    add_text_row(confusion, "exited (1)", f"{c.fn:,}", f"{c.tp:,}")
    deciles = Table(
        "decile",
        "rows",
        "raw from",
        "raw to",
        "mean raw",
        "exited",
        "rate",
        "lift",
        title="Calibration by decile (1: highest raw)",
    )
    for d in m.deciles:
        add_text_row(
            deciles,
            str(d.decile),
            f"{d.rows:,}",
            f"{d.raw_min:.4f}",
            f"{d.raw_max:.4f}",
            f"{d.raw_mean:.4f}",
            f"{d.exited:,}",
            f"{d.rate:.4f}",
            f"{d.lift:.2f}",
        )
    return [figures, confusion, deciles]


@command
def verify(
    data: SampledArg,
    state: StateOpt = None,
    model: ModelOpt = None,
    rows: RowsOpt = None,
    tolerance: ToleranceOpt = 1e-6,
    skip: SkipOpt = (),  # type: ignore[assignment]
    threshold: ThresholdOpt = 0.5,
    allow_state_mismatch: AllowMismatch = False,
    logits: LogitsOpt = False,
    delimiter: Delimiter = ",",
    decimal: DecimalOpt = ".",
    encoding: Encoding = "utf-8",
    as_json: JsonOpt = False,
) -> None:
    """Score DATA through every runtime; exit 5 if one differs from score."""
    from churnctl.verify import verify_runtimes

    flags = scorer_options((), threshold, allow_state_mismatch, logits, decimal)
    scorer = warned_scorer(state, model, flags)
    options = read_options(delimiter, encoding)
    names = [name.strip() for value in skip for name in value.split(",") if name.strip()]
    with stderr.status("scoring the sample through every runtime", spinner="dots"):
        report = verify_runtimes(
            data, scorer, rows=rows, tolerance=tolerance, read_options=options, skip=names
        )
    failure = _disagreement(report)
    if as_json:
        code = 0 if failure is None else failure.exit_code
        print_document(verify_document(report, code))
    else:
        stdout.print(_verify_table(report))
        _print_notes(report)
    print_demo_note(scorer.model_name, scorer.state.source)
    if failure is not None:
        raise failure
    stderr.print(
        f"every runtime that ran agrees with score on {report.rows:,} rows "
        f"(|Δ raw| ≤ {report.tolerance:g}, same rejects); {pair_label(scorer)}",
        markup=False,
    )


def _disagreement(report: VerifyReport) -> RuntimesDisagreeError | None:
    """The error that names each runtime that failed or differs, or None."""
    reasons = [_why(result, report.tolerance) for result in report.disagreeing]
    if not reasons:
        return None
    return RuntimesDisagreeError("runtimes disagree with score: " + "; ".join(reasons))


def _why(result: RuntimeResult, tolerance: float) -> str:
    if result.status == "failed":
        return f"{result.runtime} failed: {result.reason}"
    found = []
    if result.max_delta is not None and result.max_delta > tolerance:
        found.append(f"max |Δ raw| {result.max_delta:.3g} > {tolerance:g}")
    if result.flipped:
        found.append(f"{result.flipped:,} decisions flipped")
    if not result.same_rejects:
        found.append("other rejects")
    if result.missing or result.extra:
        found.append(f"{result.missing:,} rows missing, {result.extra:,} extra")
    return f"{result.runtime}: {', '.join(found)}"


def verify_document(report: VerifyReport, exit_code: int) -> dict[str, Any]:
    """``verify --json``: ``VERIFY_KEYS``, in this order; one entry per runtime."""
    from dataclasses import asdict

    document = {
        "command": "verify",
        "input": report.input,
        "rows": report.rows,
        "tolerance": report.tolerance,
        "passed": report.passed,
        "exit_code": exit_code,
        "runtimes": [_runtime_document(asdict(result)) for result in report.results],
    }
    return {key: document[key] for key in VERIFY_KEYS}


def _runtime_document(fields: dict[str, Any]) -> dict[str, Any]:
    """One runtime's entry: its counts as ``rows_scored`` and ``rows_rejected``, in place."""
    rows = fields.pop("rows")
    head = {key: fields.pop(key) for key in ("runtime", "status", "reason")}
    return {**head, "rows_scored": rows["scored"], "rows_rejected": rows["rejected"], **fields}


def _verify_table(report: VerifyReport) -> Table:
    table = Table(
        "runtime",
        "rows",
        "rejects",
        "max |Δ raw|",
        "flipped",
        "same rejects",
        "verdict",
        title=f"{report.input}: {report.rows:,} rows against score",
    )
    for r in report.results:
        ran = r.status == "ran"
        delta = "" if r.max_delta is None else f"{r.max_delta:.3g}"
        same = "" if r.same_rejects is None else "yes" if r.same_rejects else "NO"
        verdict = {True: "agrees", False: "DIFFERS", None: r.status}[r.agrees]
        add_text_row(
            table,
            r.runtime,
            f"{r.rows.scored:,}" if ran else "",
            f"{r.rows.rejected:,}" if ran else "",
            delta,
            f"{r.flipped:,}" if ran else "",
            same,
            verdict,
        )
    return table


def _print_notes(report: VerifyReport) -> None:
    """Why each runtime that did not run did not."""
    for r in report.results:
        if r.status != "ran" and r.reason:
            stdout.print(f"{r.runtime}: {r.status}: {r.reason}", markup=False, soft_wrap=True)
