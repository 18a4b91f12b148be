"""Rendering the ``inspect`` report as tables and lines."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from churnctl.inspection import Report


def report_tables(report: Report) -> list[Table]:
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
