"""``--json``: one JSON document on stdout for ``score``, ``inspect`` and ``watch-status``.

The keys are stable and documented in the README ("Automation"); each document
lists its keys in the same order every time, whatever the run did (a missing
value is ``null``). Nothing else goes to stdout with ``--json``.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from churnctl.batch.score_file import RunSummary
    from churnctl.batch.score_files import FileResult, FilesSummary
    from churnctl.features.drift import DriftReport
    from churnctl.scoring.inspection import Report
    from churnctl.scoring.scorer import Scorer
    from churnctl.watch.manifest import Entry, ManifestSummary

FILE_KEYS = (
    "input",
    "output",
    "rejects",
    "rows_read",
    "rows_scored",
    "rows_rejected",
    "seconds",
    "error",
    "exit_code",
    "drift",
)
SCORE_KEYS = (
    "command",
    "rows_read",
    "rows_scored",
    "rows_rejected",
    "seconds",
    "output",
    "rejects",
    "out_dir",
    "workers",
    "files",
    "failed",
    "exit_code",
    "model",
    "state",
    "binding",
    "binding_check_skipped",
)
INSPECT_KEYS = (
    "command",
    "compatible",
    "verdict",
    "model",
    "state",
    "binding",
    "feature_names",
    "n_features",
    "stages",
    "provenance",
)
STATUS_KEYS = (
    "command",
    "out_dir",
    "by_state",
    "rows_read",
    "rows_scored",
    "rows_rejected",
    "manifest_bytes",
    "last",
    "failures",
)
ENTRY_KEYS = (
    "input",
    "sha256",
    "state",
    "output",
    "rejects",
    "rows_read",
    "rows_scored",
    "rows_rejected",
    "latency_ms",
    "attempts",
    "error",
)


def print_document(document: dict[str, Any]) -> None:
    """The document as one line of JSON on stdout (not through rich: no wrapping, no markup)."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def one_file(summary: RunSummary, input: str) -> FileResult:
    from churnctl.batch.score_files import FileResult

    return FileResult(input, summary.output, summary.rejects, summary)


def score_document(
    files: list[FileResult],
    totals: RunSummary | FilesSummary,
    scorer: Scorer,
    *,
    workers: int,
    out_dir: str | None,
    exit_code: int,
    message: Any = str,
) -> dict[str, Any]:
    """``score --json``: the run's counts and targets, each input's result, the model pair."""
    from churnctl.scoring.binding import PairStatus

    document = {
        "command": "score",
        "rows_read": totals.rows.read,
        "rows_scored": totals.rows.scored,
        "rows_rejected": totals.rows.rejected,
        "seconds": round(totals.seconds, 6),
        "output": None if out_dir is not None else getattr(totals, "output", None),
        "rejects": None if out_dir is not None else getattr(totals, "rejects", None),
        "out_dir": out_dir,
        "workers": workers,
        "files": [_file(result, message) for result in files],
        "failed": sum(1 for result in files if result.failed),
        "exit_code": exit_code,
        "model": {"name": scorer.model.name, "sha256": scorer.model_digest},
        "state": {"fingerprint": scorer.state.fingerprint},
        "binding": scorer.check.status.value,
        "binding_check_skipped": scorer.check.status is PairStatus.SKIPPED,
    }
    return {key: document[key] for key in SCORE_KEYS}


def _file(result: FileResult, message: Any) -> dict[str, Any]:
    summary = result.summary
    counts = (
        (summary.rows.read, summary.rows.scored, summary.rows.rejected, round(summary.seconds, 6))
        if summary is not None
        else (None, None, None, None)
    )
    error = None if result.error is None else result.message(message(result.error))
    code = 0 if result.error is None else result.error.exit_code
    drift = None if summary is None or summary.drift is None else drift_record(summary.drift)
    values = (result.input, result.output, result.rejects, *counts, error, code, drift)
    return dict(zip(FILE_KEYS, values, strict=True))


def drift_record(report: DriftReport) -> dict[str, Any]:
    """A file's drift in ``score --json`` and watch's JSON log: the worst verdict, the
    drifting columns' PSI."""
    return {
        "verdict": report.worst,
        "drifting": {column.column: column.psi for column in report.drifting},
    }


def inspect_document(report: Report, model_name: str, model_sha256: str) -> dict[str, Any]:
    """``inspect --json``: the model's tensors, the state's stages, whether they fit."""
    document = {
        "command": "inspect",
        "compatible": report.compatible,
        "verdict": report.verdict,
        "model": {
            "name": model_name,
            "sha256": model_sha256,
            "inputs": [_tensor(node) for node in report.model_inputs],
            "outputs": [_tensor(node) for node in report.model_outputs],
            "probability_output": report.probability_output,
            "bound_to": report.model_fingerprint,
        },
        "state": {"fingerprint": report.state_fingerprint},
        "binding": report.binding,
        "feature_names": report.feature_names,
        "n_features": report.n_features,
        "stages": [
            {"type": stage.type, "params": stage.params, "fitted": stage.fitted}
            for stage in report.stages
        ],
        "provenance": report.provenance,
    }
    return json.loads(json.dumps({key: document[key] for key in INSPECT_KEYS}, default=str))


def _tensor(node: Any) -> dict[str, Any]:
    return {"name": node.name, "type": node.type, "shape": list(node.shape)}


def status_document(out_dir: str, summary: ManifestSummary) -> dict[str, Any]:
    """``watch-status --json``: the manifest's counts by state, the last files, the failures."""
    document = {
        "command": "watch-status",
        "out_dir": out_dir,
        "by_state": dict(summary.by_state),
        "rows_read": summary.rows.read,
        "rows_scored": summary.rows.scored,
        "rows_rejected": summary.rows.rejected,
        "manifest_bytes": summary.size_bytes,
        "last": [_entry(entry) for entry in summary.last],
        "failures": [_entry(entry) for entry in summary.failures],
    }
    return {key: document[key] for key in STATUS_KEYS}


def _entry(entry: Entry) -> dict[str, Any]:
    values = (
        entry.name,
        entry.sha256,
        entry.state,
        entry.output,
        entry.rejects,
        entry.rows_read,
        entry.rows_scored,
        entry.rows_rejected,
        getattr(entry, "latency_ms", None),
        entry.attempts,
        entry.error,
    )
    return dict(zip(ENTRY_KEYS, values, strict=True))
