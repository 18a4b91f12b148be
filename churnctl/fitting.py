"""Fitting a feature-extractor state on a training file."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from churnctl.errors import InputError
from churnctl.inputs import frame_from_batch
from churnctl.pipeline import load_pipeline_spec
from churnctl.sources import STDIN, ReadOptions, is_stream, open_source
from churnctl.state import FeatureState


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fit_state(
    train: str | Path, *, pipeline: str | None = None, read_options: ReadOptions | None = None
) -> FeatureState:
    """Fit a pipeline (preset name or spec file) on a training file."""
    if str(train) == STDIN or is_stream(train):
        raise InputError(
            f"{train}: training data must be a regular file (its SHA-256 goes into the state), "
            "not stdin or a pipe"
        )
    description, features = load_pipeline_spec(pipeline)
    source = open_source(train, features.input_schema.columns, read_options or ReadOptions())
    parts = list(source.batches)
    rows = sum(part.rows.num_rows + len(part.bad_lines) for part in parts)
    batches = [part.rows for part in parts if part.rows.num_rows]
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
    return FeatureState(features, provenance, source=f"the state fitted on {train}")
