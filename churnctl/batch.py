"""Batch orchestration: fit a state from a file, score a file into an output file.

This is the I/O shell around the pure ``score_batch``; ``watch`` and the Flink
job reuse the same pieces file by file.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from churnctl.errors import InputError
from churnctl.inputs import frame_from_batch
from churnctl.model import ChurnModel
from churnctl.pipeline import load_pipeline_spec
from churnctl.scoring import ScoredBatch, output_schema, score_batch
from churnctl.sinks import STDOUT, TableWriter, open_sink, output_format
from churnctl.sources import STDIN, BadLine, ReadOptions, open_source
from churnctl.state import FeatureState

REJECTS_SCHEMA = pa.schema(
    [("source", pa.string()), ("row", pa.int64()), ("line", pa.int64()),
     ("column", pa.string()), ("reason", pa.string()), ("text", pa.string())]
)  # fmt: skip

Progress = Callable[[int], None]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fit_state(
    train: str | Path, *, pipeline: str | None = None, read_options: ReadOptions | None = None
) -> FeatureState:
    """Fit a pipeline (preset name or spec file) on a training file."""
    if str(train) == STDIN:
        raise InputError("training data must be a file (its SHA-256 goes into the state), not -")
    description, features = load_pipeline_spec(pipeline)
    source = open_source(train, features.input_schema.columns, read_options or ReadOptions())
    batches = list(source.batches)
    rows = sum(b.num_rows for b in batches) + len(source.bad_lines)
    table = pa.Table.from_batches(batches) if batches else None
    frame = frame_from_batch(table, features.input_schema) if table is not None else None
    if frame is None or not frame.ok.any():
        raise InputError(f"{train}: no valid training rows (read {rows}); check the file")
    features.fit(frame)
    provenance = {
        "training_file": Path(train).name,
        "training_sha256": file_sha256(Path(train)),
        "rows": rows,
        "rows_rejected": rows - int(frame.ok.sum()),
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pipeline": description,
    }
    return FeatureState(features, provenance)


@dataclass
class ScoreRequest:
    """Everything one batch scoring run needs."""

    input: str
    output: str
    state: FeatureState
    model: ChurnModel
    keep: Sequence[str] = ("CustomerId",)
    threshold: float = 0.5
    format: str | None = None
    rejects: str | None = None
    read_options: ReadOptions = field(default_factory=ReadOptions)


@dataclass
class RunSummary:
    """Counts and timing of one run; ``rows_read == rows_scored + rows_rejected``."""

    rows_scored: int = 0
    rows_rejected: int = 0
    seconds: float = 0.0
    output: str = STDOUT
    rejects: str | None = None

    @property
    def rows_read(self) -> int:
        return self.rows_scored + self.rows_rejected

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


def rejects_path(output: str, input: str) -> str:
    """Default rejects file: ``<output stem>.rejects.csv`` beside the output."""
    if output != STDOUT:
        out = Path(output)
        return str(out.with_name(out.name.split(".")[0] + ".rejects.csv"))
    stem = "stdin" if input == STDIN else Path(input).name.split(".")[0]
    return f"{stem}.rejects.csv"


def score_file(request: ScoreRequest, on_progress: Progress | None = None) -> RunSummary:
    """Score one input into one output (and its rejects file), atomically."""
    started = time.perf_counter()
    request.model.check_compatible(request.state.pipeline.n_features)
    keep = list(dict.fromkeys(request.keep))
    required = list(dict.fromkeys([*request.state.pipeline.input_schema.columns, *keep]))
    source = open_source(request.input, required, request.read_options)
    fmt = output_format(request.output, request.format)
    summary = RunSummary(output=request.output)
    summary.rejects = request.rejects or rejects_path(request.output, request.input)
    with open_sink(request.output, output_schema(keep), fmt) as out, \
            open_sink(summary.rejects, REJECTS_SCHEMA, "csv") as rejects:  # fmt: skip
        for batch in source.batches:
            scored = score_batch(
                request.state, request.model, batch, keep=keep, threshold=request.threshold
            )
            _write_batch(scored, out, rejects, source.name, summary)
            _write_bad_lines(source.bad_lines, rejects, source.name, summary)
            if on_progress is not None:
                on_progress(summary.rows_read)
        _write_bad_lines(source.bad_lines, rejects, source.name, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _write_batch(
    scored: ScoredBatch, out: TableWriter, rejects: TableWriter, name: str, summary: RunSummary
) -> None:
    out.write_table(scored.scored)
    if scored.rejects.num_rows:
        rows = pa.compute.add(scored.rejects.column("row"), summary.rows_read + 1)
        n = scored.rejects.num_rows
        rejects.write_table(pa.Table.from_arrays(
            [pa.array([name] * n), rows, pa.nulls(n, pa.int64()), scored.rejects.column("column"),
             scored.rejects.column("reason"), scored.rejects.column("value")],
            schema=REJECTS_SCHEMA,
        ))  # fmt: skip
    summary.rows_scored += scored.scored.num_rows
    summary.rows_rejected += scored.rejects.num_rows


def _write_bad_lines(
    bad_lines: list[BadLine], rejects: TableWriter, name: str, summary: RunSummary
) -> None:
    if not bad_lines:
        return
    n = len(bad_lines)
    rejects.write_table(pa.Table.from_arrays(
        [pa.array([name] * n), pa.nulls(n, pa.int64()), pa.array([b.line for b in bad_lines]),
         pa.nulls(n, pa.string()), pa.array([b.reason for b in bad_lines]),
         pa.array([b.text for b in bad_lines])],
        schema=REJECTS_SCHEMA,
    ))  # fmt: skip
    summary.rows_rejected += n
    bad_lines.clear()
