"""Rendering reports: the ``inspect`` tables and lines, the model/state pair warning, a
run's row counts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from churnctl.cli.console import stderr
from churnctl.cli.remedies import spell_step
from churnctl.errors import UsageError
from churnctl.samples.bundled import MODEL, STATE, bundled

if TYPE_CHECKING:
    from churnctl.batch.counts import RowCounts
    from churnctl.features.state import FeatureState
    from churnctl.scoring.inspection import Report
    from churnctl.scoring.scorer import Scorer, ScorerOptions


def warned_scorer(
    state: FeatureState | Path | None, model: Path | None, flags: ScorerOptions
) -> Scorer:
    """The scorer of ``state`` and ``model`` (the bundled ones where not given), its pair
    warned about on stderr: how ``score``, ``watch``, ``evaluate`` and ``verify`` build it."""
    from churnctl.scoring.scorer import scorer_from

    given = state if state is not None else bundled(STATE)
    scorer = scorer_from(given, model or bundled(MODEL), flags)
    pair_warning(scorer, stderr)
    return scorer


def pair_warning(scorer: Scorer, console: Console) -> None:
    """Warn when the model is not bound to the state (unbound, or the check skipped), and
    when it has a fixed batch size (scored in chunks: slower)."""
    from churnctl.scoring.binding import PairStatus

    check = scorer.check
    if check.status is not PairStatus.BOUND:
        step = "" if check.step is None else f"; {spell_step(check.step)}"
        console.print(f"Warning: {check.problem}{step}", markup=False)
    note = scorer.model.fixed_batch_note
    if note is not None:
        console.print(f"Warning: {note}", markup=False, soft_wrap=True)


def _demo_note(model: str | Path, state: str | Path) -> str | None:
    """The note that the bundled demo model and/or state stood in for the user's own."""
    demo = " and ".join(
        name
        for name, path, relative in (("model", model, MODEL), ("state", state, STATE))
        if _is_bundled(path, relative)
    )
    if not demo:
        return None
    return (
        f"Note: used the bundled demo {demo} (trained on synthetic data, not on your "
        "customers); pass --model and --state to score with your own"
    )


def print_demo_note(model: str | Path, state: str | Path) -> None:
    """On stderr, the note that the bundled demo model and/or state stood in, if they did.

    ``model`` and ``state``: their paths (a scorer's ``model_name`` and ``state.source``).
    """
    note = _demo_note(model, state)
    if note is not None:
        stderr.print(note, markup=False)


def _is_bundled(path: str | Path, relative: str) -> bool:
    try:
        return Path(path).resolve() == bundled(relative)
    except (OSError, UsageError):  # not a path, or nothing bundled installed
        return False


def pair_label(scorer: Scorer) -> str:
    """``model churn_mlp.onnx, state 3f2a9c1b7d4e``: what a summary line scored with."""
    from churnctl.scoring.binding import short

    return f"model {Path(scorer.model_name).name}, state {short(scorer.state.fingerprint)}"


def rows_text(rows: RowCounts, seconds: float) -> str:
    """``read 10,000 rows: 9,990 scored, 10 rejected in 1.20 s (8,333 rows/s)``."""
    return (
        f"read {rows.read:,} rows: {rows.scored:,} scored, {rows.rejected:,} rejected in "
        f"{seconds:.2f} s ({rows.per_second(seconds):,.0f} rows/s)"
    )


def report_tables(report: Report) -> list[Table]:
    io = Table("role", "name", "type", "shape", title="Model")
    for role, nodes in (("input", report.model_inputs), ("output", report.model_outputs)):
        for node in nodes:
            add_text_row(io, role, node.name, node.type, str(list(node.shape)))
    stages = Table("#", "stage", "params", "fitted", title="State stages")
    for i, stage in enumerate(report.stages, 1):
        params = ", ".join(f"{k}={v}" for k, v in stage.params.items())
        add_text_row(stages, str(i), stage.type, params, stage.fitted)
    provenance = Table("key", "value", title="Provenance")
    for key, value in report.provenance.items():
        add_text_row(provenance, key, str(value))
    return [io, stages, _features_table(report), provenance]


def add_text_row(table: Table, *cells: str) -> None:
    """A row of plain text: brackets in names and values are not Rich markup."""
    table.add_row(*(escape(cell) for cell in cells))


def binding_lines(report: Report) -> list[str]:
    bound_to = report.model_fingerprint or "(none)"
    return [
        f"model binding: {report.binding}; bound to state {bound_to}",
        f"state fingerprint: {report.state_fingerprint}",
    ]


def _features_table(report: Report) -> Table:
    if not report.orders_differ:
        features = Table("#", "feature", title="Feature order")
        for i, name in enumerate(report.feature_names):
            add_text_row(features, str(i), name)
        if report.more_features:
            add_text_row(features, "…", report.more_features)
        return features
    return orders_table(
        report.model_feature_names or [],
        report.feature_names,
        more_model=report.more_model_features,
        more_state=report.more_features,
    )


def orders_table(
    model_names: Sequence[str],
    state_names: Sequence[str],
    *,
    more_model: str = "",
    more_state: str = "",
) -> Table:
    """A model's and a state's feature orders side by side, differences marked ``≠``.

    Without ``more_*`` (already cut lists), long orders are cut here, as ``inspect`` cuts them.
    """
    if not (more_model or more_state):
        model_names, more_model = _cut(model_names)
        state_names, more_state = _cut(state_names)
    features = Table("#", "model (trained on)", "state (produces)", "", title="Feature order")
    for i in range(max(len(model_names), len(state_names))):
        left = model_names[i] if i < len(model_names) else ""
        right = state_names[i] if i < len(state_names) else ""
        add_text_row(features, str(i), left, right, "" if left == right else "≠")
    if more_model or more_state:
        add_text_row(features, "…", more_model, more_state, "")
    return features


def _cut(names: Sequence[str]) -> tuple[Sequence[str], str]:
    from churnctl.scoring.inspection import FEATURES_SHOWN

    if len(names) <= FEATURES_SHOWN:
        return names, ""
    return names[:FEATURES_SHOWN], f"{len(names) - FEATURES_SHOWN:,} more features"
