"""Fitting a feature-extractor state on a training file, with its rejected rows accounted for.

Training rows are read through the same input policy as scoring, one batch at
a time: the fit streams, one pass over the file per fitting level. Rows that
cannot be used (a bad number, an empty category, a malformed line) go to a
rejects file like scoring's, and too many of them refuse the fit: a state
fitted on a fraction of a file would silently carry that file's problem into
every runtime.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc

from churnctl.arguments import PATH, check_callable, check_has, check_path, check_type
from churnctl.atomic import check_distinct, file_sha256, publishing
from churnctl.errors import InputError, NoValidRowsError, PipelineSpecError, listing
from churnctl.features.columns import as_text
from churnctl.features.extraction import features_of_frame, rejected_rows
from churnctl.features.frame import Frame
from churnctl.features.input_policy import arrow_batch, check_decimal, frame_from_batch
from churnctl.features.pipeline import FeaturePipeline, StreamingFit
from churnctl.features.profile import ParsedColumns, ProfileAccumulator, label_modes
from churnctl.features.spec import load_pipeline_spec
from churnctl.features.state import FeatureState
from churnctl.io.rejects import (
    DECIMAL_FIX,
    DEFAULT_LIMIT,
    STDERR,
    DecimalCommas,
    RejectLimit,
    RejectLog,
    as_reject_limit,
    check_limit,
    open_rejects,
)
from churnctl.io.rejects import rejects_path as default_rejects_path
from churnctl.io.sinks import STDOUT, TableWriter, open_stream
from churnctl.io.sources import (
    STDIN,
    BatchSource,
    Progress,
    ReadOptions,
    SourceBatch,
    check_input,
    is_stream,
    open_source,
)

if TYPE_CHECKING:
    import pandas as pd


class _Discard:
    """A rejects writer that keeps nothing (the count is kept by ``RejectLog``)."""

    def write_table(self, table: pa.Table) -> None:
        pass

    def close(self) -> None:
        pass


def fit_state(
    train: str | Path | pa.Table | pa.RecordBatch | pd.DataFrame,
    *,
    pipeline: str | None = None,
    read_options: ReadOptions | None = None,
    max_rejects: RejectLimit = DEFAULT_LIMIT,
    rejects: TableWriter | None = None,
    decimal: str = ".",
    on_progress: Callable[[Progress], None] | None = None,
) -> FeatureState:
    """Fit a pipeline (preset name or spec file) on a training file, in constant memory.

    ``train``: a CSV, CSV.gz or Parquet file, or the data itself: a pandas ``DataFrame``
    or a pyarrow ``Table``/``RecordBatch`` (read as ``Scorer.score`` reads a batch; the
    state's provenance names it ``<DataFrame>`` and holds the SHA-256 of its training
    columns as an Arrow IPC stream). The data is read once per fitting level (see
    ``StreamingFit``; three times for the presets). Rejected training rows go to
    ``rejects`` (with their lines and text); more of them than ``max_rejects`` allows
    refuses the fit (``TooManyRejectsError``). ``decimal``: the decimal mark of numbers
    in text, ``.`` or ``,``. ``on_progress`` is called after each batch with the pass
    (``pass_number`` of ``passes``) and the share of the file read in it.
    """
    _check_arguments(train, pipeline, read_options, rejects, on_progress)
    max_rejects = as_reject_limit("fit_state", max_rejects)
    check_decimal(decimal)
    description, features = load_pipeline_spec(pipeline)
    training = _training(train, features.input_schema.columns)
    options = read_options or ReadOptions()
    profiling = ProfileAccumulator(features.input_schema, label_modes(features.stages))
    fitting = StreamingFit(features)
    passes = _Passes(fitting, options, rejects or _Discard(), decimal, on_progress, profiling)
    log, kept = _fit_passes(training, passes)
    rows = log.count + kept
    check_limit(max_rejects, log, rows, final=True, written="no state was written")
    profile = profiling.profile(features.vocabularies(), rows, log.count)
    provenance = {
        "training_file": training.label,
        "training_sha256": training.digest(),
        "rows": rows,
        "rows_rejected": log.count,
        "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pipeline": description,
    }
    source = f"the state fitted on {training.name}"
    return FeatureState(features, provenance, source=source, profile=profile)


@dataclass(frozen=True)
class _Training:
    """Training data: a file, read anew in each pass, or a table held in memory."""

    name: str  # in messages
    label: str  # in the provenance
    path: Path | None = None
    table: pa.Table | None = None
    columns: tuple[str, ...] = ()  # the table's training columns, which its digest covers

    def open(self, required: Sequence[str], options: ReadOptions) -> BatchSource:
        if self.table is None:
            return open_source(self.name, required, options)
        batches = self.table.to_batches(max_chunksize=MEMORY_BATCH_ROWS)
        total = max(self.table.num_rows, 1)
        return BatchSource(
            self.name,
            self.table.column_names,
            iter([SourceBatch(batch) for batch in batches]),
            read_share=lambda rows: min(rows / total, 1.0),
        )

    def identity(self) -> object:
        """What changes when a file is written to meanwhile (a table in memory: nothing)."""
        return None if self.path is None else _file_identity(self.path)

    def digest(self) -> str:
        """SHA-256 of the file, or of the table as an Arrow IPC stream."""
        if self.path is not None:
            return file_sha256(self.path)
        table = self.table.select(list(self.columns)).replace_schema_metadata(None)
        sink = _Hashing()
        with pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), table.schema) as writer:
            writer.write_table(table)
        return sink.hash.hexdigest()


class _Hashing:
    """A write-only file that keeps only the SHA-256 of what is written to it."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.closed = False

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _training(train: Any, columns: Sequence[str]) -> _Training:
    """The training data: a regular file, or a DataFrame/Table with the input ``columns``."""
    if isinstance(train, str | os.PathLike):
        if str(train) == STDIN or is_stream(train):
            raise InputError(
                f"{train}: training data must be a regular file (its SHA-256 goes into the "
                "state), not stdin or a pipe"
            )
        return _Training(str(train), Path(train).name, path=Path(train))
    label = "<DataFrame>" if not isinstance(train, pa.Table | pa.RecordBatch) else "<Table>"
    table = arrow_batch(train, columns, name=f"train {label}")
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    return _Training(f"the training {label[1:-1]}", label, table=table, columns=tuple(columns))


@dataclass(frozen=True)
class _Passes:
    """How the training file is read and fitted, pass after pass."""

    fitting: StreamingFit
    options: ReadOptions
    writer: TableWriter  # the rejected rows, logged in the last pass
    decimal: str = "."
    on_progress: Callable[[Progress], None] | None = None
    profiling: ProfileAccumulator | None = None  # the training profile, gathered in the last pass


def _fit_passes(train: _Training, passes: _Passes) -> tuple[RejectLog, int]:
    """Every pass over the data, which must not change meanwhile: (reject log, rows kept)."""
    before = train.identity()
    tally = _Tally()
    try:
        for _ in range(passes.fitting.passes):
            _fit_pass(train, passes, tally)
    except (InputError, PipelineSpecError) as exc:  # too few rows, a stage that cannot fit
        raise _explained(exc, train.name, tally) from None
    if train.identity() != before:
        raise InputError(
            f"{train}: the training file changed while it was read "
            f"({passes.fitting.passes} passes); fit a copy that nothing writes to"
        )
    if tally.log is None:  # cannot happen: the last pass always logs
        raise AssertionError("the streaming fit ended without its logging pass")
    return tally.log, tally.kept


def _explained(exc: InputError | PipelineSpecError, train: str, tally: _Tally) -> Exception:
    """The error naming the training file; its remedy the decimal mark, if that is the cause."""
    message = exc.message if isinstance(exc, InputError) else f"{train}: {exc.message}"
    note = tally.decimal_commas.note(tally.rejected)
    if note is not None:
        return type(exc)(f"{message}; {note}", fix=DECIMAL_FIX)
    return type(exc)(message, fix=exc.fix, step=exc.step)


def _file_identity(path: str | Path) -> tuple[int, int, int]:
    info = Path(path).stat()
    return info.st_ino, info.st_size, info.st_mtime_ns


@dataclass
class _Tally:
    """Rows of one pass: read, valid as input, kept after fitting; the last pass's reject log.

    Also the pass's rejected rows, how many of them hold a number with a decimal comma,
    and the first such number: what a fit that fails for want of rows is told.
    """

    read: int = 0
    valid: int = 0
    kept: int = 0
    log: RejectLog | None = None
    rejected: int = 0
    decimal_commas: DecimalCommas = field(default_factory=DecimalCommas)

    def start_pass(self) -> None:
        self.read = self.valid = self.kept = self.rejected = 0
        self.decimal_commas = DecimalCommas()

    def note_rejects(self, part: SourceBatch, frame: Frame) -> None:
        """Count the frame's rejected rows, and those rejected for a decimal comma."""
        self.rejected += int(frame.rejected.sum())
        if frame.reject_reason is None:
            return
        batch = part.rows
        for name in set(frame.reject_column[frame.rejected]) - {None}:
            reasons = np.where(frame.reject_column == name, frame.reject_reason, None)
            self.decimal_commas.add(pa.array(reasons, pa.string()), _text(batch, name))


def _text(batch: pa.RecordBatch, name: str) -> pa.Array:
    return as_text(batch.column(name)) if name in batch.schema.names else pa.nulls(len(batch))


def _fit_pass(train: _Training, passes: _Passes, tally: _Tally) -> None:
    """One pass over the training data; the last one logs the rejected rows."""
    fitting, options = passes.fitting, passes.options
    source = train.open(fitting.pipeline.input_schema.columns, options)
    try:
        _check_unshadowed(train.name, source.columns, fitting.pipeline)
        log = None
        if fitting.last_pass:
            log = RejectLog.for_source(passes.writer, source)
        tally.start_pass()
        for part in source.batches:
            _fit_batch(passes, part, log, tally)
            _report(tally, passes, source.read_share)
        if not tally.kept:  # none valid, or all rejected by the stages fitted so far
            raise _no_valid_rows(train, passes, tally, log)
        if log is not None:
            log.finish()
        _report(tally, passes, lambda records: 1.0)
        fitting.end_pass()
        tally.log = log
    finally:
        source.close()


def _no_valid_rows(
    train: _Training, passes: _Passes, tally: _Tally, log: RejectLog | None
) -> NoValidRowsError:
    """The error of a pass with no valid row, quoting its first rejects, which are logged."""
    if log is None:  # a pass before the logging one: log the rows it rejected now
        log = _log_input_rejects(train, passes)
    else:
        log.finish()
    first = f"; first: {'; '.join(log.examples)}" if log.examples else ""
    return NoValidRowsError(
        f"{train.name}: no valid training rows (read {tally.read}{first}); check the "
        f"{'file' if train.path is not None else 'data'}"
    )


def _log_input_rejects(train: _Training, passes: _Passes) -> RejectLog:
    """Log the rows the input policy and the stages fitted so far reject: one more pass."""
    source = train.open(passes.fitting.pipeline.input_schema.columns, passes.options)
    try:
        log = RejectLog.for_source(passes.writer, source)
        fitting = passes.fitting
        fitted = [
            s
            for s, at in zip(fitting.pipeline.stages, fitting.levels, strict=True)
            if at < fitting.pass_index
        ]
        for part in source.batches:
            frame = frame_from_batch(
                part.rows, fitting.pipeline.input_schema, decimal=passes.decimal
            )
            for stage in fitted:
                stage.transform(frame)
            rejections = features_of_frame(frame, np.empty((frame.n_rows, 0)))
            log.record_batch(part, rejected_rows(part.rows, rejections))
        log.finish()
        return log
    finally:
        source.close()


def _check_unshadowed(train: str, header: list[str], pipeline: FeaturePipeline) -> None:
    """Refuse a stage output named like a training data column (two meanings, one name)."""
    for position, stage in enumerate(pipeline.stages, start=1):
        shadowed = [col for col in stage.output_columns() if col in header]
        if shadowed:
            raise PipelineSpecError(
                f"stage {position}: {stage.TYPE}: output column(s) "
                f"{listing(shadowed)} shadow a column of the training data; give each "
                "output a name the data does not use"
            )


def _report(tally: _Tally, passes: _Passes, share: Callable[[int], float] | None) -> None:
    if passes.on_progress is not None:
        fraction = share(tally.read) if share is not None else None
        fitting = passes.fitting
        passes.on_progress(Progress(tally.read, fraction, fitting.pass_index + 1, fitting.passes))


def _fit_batch(passes: _Passes, part: SourceBatch, log: RejectLog | None, tally: _Tally) -> None:
    schema = passes.fitting.pipeline.input_schema
    frame = frame_from_batch(part.rows, schema, decimal=passes.decimal)
    tally.read += part.rows.num_rows + len(part.bad_lines)
    tally.valid += int(frame.ok.sum())
    if log is not None and passes.profiling is not None:  # the last pass: profile its rows
        passes.profiling.update(ParsedColumns.of(frame))
    if part.rows.num_rows:
        passes.fitting.update(frame)
    tally.kept += int(frame.ok.sum())
    tally.note_rejects(part, frame)
    if log is not None:
        rejections = features_of_frame(frame, np.empty((frame.n_rows, 0)))  # no features needed
        log.record_batch(part, rejected_rows(part.rows, rejections))


@dataclass
class FitRequest:
    """Everything one ``fit`` run needs: a training file, a state file, their rejects."""

    train: str
    output: str
    pipeline: str | None = None
    rejects: str | None = None  # default: beside a regular state file, else stderr ("-")
    max_rejects: RejectLimit = DEFAULT_LIMIT
    read_options: ReadOptions = field(default_factory=ReadOptions)
    decimal: str = "."  # the decimal mark of numbers in text: "." or ","


def fit_file(
    request: FitRequest, on_progress: Callable[[Progress], None] | None = None
) -> tuple[FeatureState, str]:
    """Fit, then publish the state and its rejects file together; return both.

    ``output`` ``-`` writes the state to stdout.
    """
    check_input(request.train)  # before the state's folder or a temporary file is made
    rejects = request.rejects or default_rejects_path(request.output)
    check_distinct({"training file": request.train}, {"state": request.output, "rejects": rejects})
    with publishing() as publication:
        rejects_sink = open_rejects(rejects, publication)
        failure: NoValidRowsError | None = None
        with rejects_sink as writer:
            try:
                state = fit_state(
                    request.train,
                    pipeline=request.pipeline,
                    read_options=request.read_options,
                    max_rejects=request.max_rejects,
                    rejects=writer,
                    decimal=request.decimal,
                    on_progress=on_progress,
                )
            except NoValidRowsError as exc:
                failure = exc
        if failure is not None:  # the rejects say why: published alone (no state)
            publication.commit()
            where = "" if rejects == STDERR else f"; the rejected rows are in {rejects}"
            raise NoValidRowsError(
                f"{failure.message}{where}", fix=failure.fix, step=failure.step
            ) from None
        if request.output == STDOUT:
            with open_stream(STDOUT, "json") as handle:
                handle.write(state.dumps().encode("utf-8"))
        else:
            with publication.file(Path(request.output)) as path:
                path.write_text(state.dumps(), encoding="utf-8")
    return state, rejects


def _check_arguments(
    train: Any, pipeline: Any, read_options: Any, rejects: Any, on_progress: Any
) -> None:
    """``fit_state``'s arguments, each refused in one line naming it (issue 17)."""
    if not _in_memory(train):
        check_path("fit_state", "train", train, TRAIN_TAKES)
    if pipeline is not None:
        check_path("fit_state", "pipeline", pipeline, PIPELINE_TAKES)
    if read_options is not None:
        check_type("fit_state", "read_options", read_options, ReadOptions, "a ReadOptions")
    if rejects is not None:
        check_has("fit_state", "rejects", rejects, "write_table", "a writer with write_table")
    check_callable("fit_state", "on_progress", on_progress, "a function of a Progress")


def _in_memory(train: Any) -> bool:
    """Whether ``train`` is data in memory: a pyarrow Table or RecordBatch, a DataFrame."""
    pandas = sys.modules.get("pandas")  # not imported: the object cannot be a DataFrame
    frame = pandas is not None and isinstance(train, pandas.DataFrame)
    return frame or isinstance(train, pa.Table | pa.RecordBatch)


TRAIN_TAKES = f"{PATH} to a CSV, CSV.gz or Parquet file, a pandas DataFrame or a pyarrow Table"
MEMORY_BATCH_ROWS = 65_536  # rows per batch of training data held in memory
PIPELINE_TAKES = f"a preset name (reference, sklearn) or {PATH} to a spec file"
