"""Fitting a feature-extractor state on a training file, with its rejected rows accounted for.

Training rows are read through the same input policy as scoring. Rows that
cannot be used (a bad number, an empty category, a malformed line) go to a
rejects file like scoring's, and too many of them refuse the fit: a state
fitted on a fraction of a file would silently carry that file's problem into
every runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from churnctl.atomic import publishing
from churnctl.errors import InputError
from churnctl.extraction import features_of_frame, rejected_rows
from churnctl.frame import Frame
from churnctl.inputs import frame_from_batch
from churnctl.paths import check_distinct, file_sha256
from churnctl.pipeline import FeaturePipeline, load_pipeline_spec
from churnctl.rejects import DEFAULT_LIMIT, RejectLimit, RejectLog, check_limit, open_rejects
from churnctl.rejects import rejects_path as default_rejects_path
from churnctl.sinks import TableWriter
from churnctl.sources import STDIN, ReadOptions, SourceBatch, is_stream, open_source
from churnctl.state import FeatureState


class _Discard:
    """A rejects writer that keeps nothing (the count is kept by ``RejectLog``)."""

    def write_table(self, table: pa.Table) -> None:
        pass

    def close(self) -> None:
        pass


def fit_state(
    train: str | Path,
    *,
    pipeline: str | None = None,
    read_options: ReadOptions | None = None,
    max_rejects: RejectLimit = DEFAULT_LIMIT,
    rejects: TableWriter | None = None,
) -> FeatureState:
    """Fit a pipeline (preset name or spec file) on a training file.

    Rejected training rows go to ``rejects`` (with their lines and text); more of
    them than ``max_rejects`` allows refuses the fit (``TooManyRejectsError``).
    """
    if str(train) == STDIN or is_stream(train):
        raise InputError(
            f"{train}: training data must be a regular file (its SHA-256 goes into the state), "
            "not stdin or a pipe"
        )
    description, features = load_pipeline_spec(pipeline)
    options = read_options or ReadOptions()
    source = open_source(train, features.input_schema.columns, options)
    try:
        parts = list(source.batches)
        frame = _fit(features, parts, str(train))
        log = RejectLog(rejects or _Discard(), source.name, reread=source.reread, options=options)
        _log_rejects(log, parts, frame)
    finally:
        source.close()
    rows = log.count + int(frame.ok.sum())
    check_limit(max_rejects, log, rows, final=True, written="no state was written")
    provenance = {
        "training_file": Path(train).name,
        "training_sha256": file_sha256(Path(train)),
        "rows": rows,
        "rows_rejected": log.count,
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pipeline": description,
    }
    return FeatureState(features, provenance, source=f"the state fitted on {train}")


def _fit(features: FeaturePipeline, parts: list[SourceBatch], train: str) -> Frame:
    batches = [part.rows for part in parts if part.rows.num_rows]
    frame = None
    if batches:
        frame = frame_from_batch(pa.Table.from_batches(batches), features.input_schema)
    if frame is None or not frame.ok.any():
        read = sum(part.rows.num_rows + len(part.bad_lines) for part in parts)
        raise InputError(f"{train}: no valid training rows (read {read}); check the file")
    features.fit(frame)
    return frame


def _log_rejects(log: RejectLog, parts: list[SourceBatch], frame: Frame) -> None:
    """Log each part's rejected rows (after fitting, stage rejections included) in order."""
    fitted = features_of_frame(frame, np.empty((frame.n_rows, 0)))  # only the rejections
    start = 0
    for part in parts:
        rows = fitted.slice(start, part.rows.num_rows)
        log.record_batch(part, rejected_rows(part.rows, rows))
        start += part.rows.num_rows
    log.finish()


@dataclass
class FitRequest:
    """Everything one ``fit`` run needs: a training file, a state file, their rejects."""

    train: str
    output: str
    pipeline: str | None = None
    rejects: str | None = None  # default: beside the state; "-" for stderr
    max_rejects: RejectLimit = DEFAULT_LIMIT
    read_options: ReadOptions = field(default_factory=ReadOptions)


def fit_file(request: FitRequest) -> tuple[FeatureState, str]:
    """Fit, then publish the state and its rejects file together; return both."""
    rejects = request.rejects or default_rejects_path(request.output, request.train)
    check_distinct({"training file": request.train}, {"state": request.output, "rejects": rejects})
    with publishing() as publication:
        rejects_sink = open_rejects(rejects, publication)
        with rejects_sink as writer:
            state = fit_state(
                request.train, pipeline=request.pipeline, read_options=request.read_options,
                max_rejects=request.max_rejects, rejects=writer,
            )  # fmt: skip
        with publication.file(Path(request.output)) as path:
            path.write_text(state.dumps(), encoding="utf-8")
    return state, rejects
