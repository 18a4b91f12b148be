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
from churnctl.rejects import (
    DEFAULT_MAX_REJECTS,
    REJECTS_SCHEMA,
    RejectLimit,
    RejectLog,
    check_limit,
    parse_max_rejects,
)
from churnctl.scoring import output_schema, score_batch
from churnctl.sinks import STDOUT, open_sink, output_format
from churnctl.sources import STDIN, ReadOptions, open_source
from churnctl.state import FeatureState

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
    max_rejects: str = DEFAULT_MAX_REJECTS
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
        return str(out.with_name(_stem(out) + ".rejects.csv"))
    return ("stdin" if input == STDIN else _stem(Path(input))) + ".rejects.csv"


def _stem(path: Path) -> str:
    """The name without its format suffix (and compression suffix): a.b.csv.gz → a.b."""
    return Path(path.stem).stem if path.suffix.lower() == ".gz" else path.stem


def score_file(request: ScoreRequest, on_progress: Progress | None = None) -> RunSummary:
    """Score one input into one output and its rejects file, both published atomically."""
    started = time.perf_counter()
    request.model.check_compatible(request.state.pipeline.n_features)
    limit = parse_max_rejects(request.max_rejects)
    keep = list(dict.fromkeys(request.keep))
    required = list(dict.fromkeys([*request.state.pipeline.input_schema.columns, *keep]))
    fmt = output_format(request.output, request.format)
    source = open_source(request.input, required, request.read_options)
    summary = RunSummary(output=request.output)
    summary.rejects = request.rejects or rejects_path(request.output, request.input)
    try:
        # the output is published first: if that fails, the rejects file is not published either
        with open_sink(summary.rejects, REJECTS_SCHEMA, "csv") as rejects, \
                open_sink(request.output, output_schema(keep), fmt) as out:  # fmt: skip
            log = RejectLog(rejects, source, request.read_options)
            for batch in source.batches:
                scored = score_batch(
                    request.state, request.model, batch, keep=keep, threshold=request.threshold
                )
                out.write_table(scored.scored)
                log.record_batch(batch, scored.rejects)
                _count(summary, scored.scored.num_rows, log, limit, source.name, final=False)
                if on_progress is not None:
                    on_progress(summary.rows_read)
            log.finish()
            _count(summary, 0, log, limit, source.name, final=True)
    finally:
        source.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _count(
    summary: RunSummary, scored: int, log: RejectLog, limit: RejectLimit, name: str, *, final: bool
) -> None:
    summary.rows_scored += scored
    summary.rows_rejected = log.count
    check_limit(limit, log, summary.rows_read, final=final, name=name)
