"""Scoring one input file into one output file and its rejects file.

The I/O shell around ``Scorer``: read batches from a source, score each, write
the scored rows and the rejects (with their lines and original text), count,
and stop when the reject limit is exceeded. ``watch`` and the Flink job reuse
the same pieces (``Scorer``, sources, sinks, ``RejectLog``).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from churnctl.arguments import (
    PATH,
    PATH_TYPES,
    check_bool,
    check_optional,
    check_path,
    check_type,
)
from churnctl.atomic import check_distinct, publishing
from churnctl.batch.counts import RowCounts
from churnctl.batch.lineage_files import publish_sidecar, sidecar_path, with_lineage
from churnctl.batch.parallel import ordered_map, scoring_threads
from churnctl.faults import checkpoint
from churnctl.features.drift import (
    BatchCounts,
    DriftAccumulator,
    DriftReport,
    drift_accumulator,
)
from churnctl.io.coalesce import coalesced
from churnctl.io.read_ahead import read_ahead
from churnctl.io.rejects import (
    DEFAULT_LIMIT,
    STDERR,
    RejectLimit,
    RejectLog,
    as_reject_limit,
    check_limit,
    open_rejects,
    rejects_path,
)
from churnctl.io.sinks import (
    STDOUT,
    Encoded,
    EncodingWriter,
    TableWriter,
    open_sink,
    output_format,
)
from churnctl.io.sources import (
    STDIN,
    BatchSource,
    Columns,
    Progress,
    ReadOptions,
    SourceBatch,
    is_stream,
    open_source,
)
from churnctl.scoring.lineage import Lineage
from churnctl.scoring.scorer import ScoredBatch, Scorer, output_schema

OnProgress = Callable[[Progress], None]


@dataclass
class ScoreRequest:
    """Everything one file scoring run needs."""

    input: str
    output: str
    scorer: Scorer
    format: str | None = None
    rejects: str | None = None
    max_rejects: RejectLimit = DEFAULT_LIMIT
    read_options: ReadOptions = field(default_factory=ReadOptions)
    read_from: str | None = None  # where the bytes are read, when not ``input`` (see sources)
    sidecar: bool = True  # a CSV/JSONL output's lineage sidecar (batch.lineage_files)
    drift: bool = True  # compare the rows with the state's training profile (features.drift)

    def __post_init__(self) -> None:
        """Each field checked: a wrong type is one line naming it (issue 17)."""
        check_bool("ScoreRequest", "drift", self.drift)
        for name in ("input", "output"):
            check_path("ScoreRequest", name, getattr(self, name))
        check_type("ScoreRequest", "scorer", self.scorer, Scorer, "a Scorer")
        optional = {
            "format": (str, "a format name (csv, jsonl, parquet)"),
            "rejects": (PATH_TYPES, PATH),
            "read_from": (PATH_TYPES, PATH),
        }
        for name, (types, takes) in optional.items():
            check_optional("ScoreRequest", name, getattr(self, name), types, takes)
        self.max_rejects = as_reject_limit("ScoreRequest", self.max_rejects)
        check_type("ScoreRequest", "read_options", self.read_options, ReadOptions, "a ReadOptions")
        check_bool("ScoreRequest", "sidecar", self.sidecar)


@dataclass
class RunSummary:
    """Counts and timing of one run, and where its output and rejects went."""

    rows: RowCounts = field(default_factory=RowCounts)
    seconds: float = 0.0
    output: str = STDOUT
    rejects: str | None = None
    drift: DriftReport | None = None  # None: not checked (``drift`` off, or no profile)


def score_file(request: ScoreRequest, on_progress: OnProgress | None = None) -> RunSummary:
    """Score one input into one output and its rejects file, published together atomically.

    ``on_progress`` is called after each batch with the rows so far and, for a regular
    file, the share of it read (1.0 once all is read). ``rejects`` ``-`` writes the
    rejects CSV to stderr; without ``rejects`` they go beside
    a regular output file, else to stderr (``rejects.rejects_path``). Two of the run's
    files being one (an output naming the input, or the rejects naming the output) is
    refused first. The output records its lineage (``lineage_files``): a Parquet file in
    its metadata, else, unless ``request.sidecar`` is False, in a sidecar published with it.
    """
    check_type("score_file", "request", request, ScoreRequest, "a ScoreRequest")
    started = time.perf_counter()
    rejects = request.rejects or rejects_path(request.output)
    summary = RunSummary(output=request.output, rejects=rejects)
    check_distinct({"input": request.input}, {"output": request.output, "rejects": rejects})
    fmt = output_format(request.output, request.format)
    sidecar = _has_sidecar(request, rejects, fmt)
    scorer = request.scorer
    scored_at = datetime.now(UTC)
    source = None
    try:
        source = open_source(
            request.input,
            scorer.required_columns,
            request.read_options,
            read_from=request.read_from,
            columns=Columns(scorer.keep, every=scorer.keeps_all),
        )
        scorer = _typed(scorer.keeping(source.columns), source, fmt)
        schema = output_schema(scorer.keep, scorer.kept_types)
        lineage = Lineage.of(scorer, scored_at)
        schema = with_lineage(schema, lineage) if fmt == "parquet" else schema
        request = dataclasses.replace(request, scorer=scorer)
        with publishing() as publication:
            if sidecar:
                publish_sidecar(publication, request.output, lineage)
            rejects_sink = open_rejects(rejects, publication)
            with (  # rejects first: a bad rejects path fails before any row is written
                rejects_sink as rejects_writer,
                open_sink(request.output, schema, fmt, publication) as out,
            ):
                log = RejectLog.for_source(rejects_writer, source)
                drift = drift_accumulator(scorer.state) if request.drift else None
                _score_batches(source, request, summary, log, out, on_progress, drift)
                summary.drift = None if drift is None else drift.report()
    finally:
        if source is not None:
            source.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _has_sidecar(request: ScoreRequest, rejects: str, fmt: str) -> bool:
    """Whether the output gets a lineage sidecar (a CSV or JSON Lines file's: a Parquet
    file holds its own), its name checked as the output's is, before anything is written."""
    if not request.sidecar or fmt == "parquet":
        return False
    named = {"output": request.output, "rejects": rejects}
    check_distinct(
        {"input": request.input}, {**named, "lineage record": sidecar_path(request.output)}
    )
    return True


def _typed(scorer: Scorer, source: BatchSource, fmt: str) -> Scorer:
    """The scorer with its kept columns' output types fixed before the first row is written.

    Already fixed (the joined output of several inputs): as they are. CSV output: text, as
    it always was. Else each kept column's type in the input's first batch (a CSV input is
    read as text; an input without rows: text).
    """
    if scorer.kept_types is not None:
        return scorer
    if fmt == "csv":
        return scorer.with_kept_types({})
    first = next(source.batches, None)
    if first is None:
        return scorer.with_kept_types({})
    source.batches = itertools.chain([first], source.batches)
    schema = first.rows.schema
    return scorer.with_kept_types({name: schema.field(name).type for name in scorer.keep})


def _score_batches(
    source: BatchSource,
    request: ScoreRequest,
    summary: RunSummary,
    log: RejectLog,
    out: TableWriter,
    on_progress: OnProgress | None,
    drift: DriftAccumulator | None = None,
) -> None:
    read_from = request.read_from or request.input
    for scored in score_batches(source, request.scorer, out, log, read_from, drift=drift):
        _count(summary, scored, log, request, final=False)
        checkpoint("batch-scored")
        if on_progress is not None:
            share = source.read_share
            fraction = share(summary.rows.read) if share is not None else None
            on_progress(Progress(summary.rows.read, fraction))
    _count(summary, 0, log, request, final=True)
    if on_progress is not None:
        on_progress(Progress(summary.rows.read, 1.0 if source.read_share is not None else None))


def score_batches(
    source: BatchSource,
    scorer: Scorer,
    out: TableWriter,
    log: RejectLog,
    name: str,
    *,
    drift: DriftAccumulator | None = None,
) -> Iterator[int]:
    """Score ``source`` batch by batch into ``out`` and ``log``; the rows scored, per batch.

    ``name`` is where the bytes are read (see ``open_source``'s ``read_from``). Once the
    generator is exhausted the input is read and every reject logged (``log.finish``).
    ``drift`` counts each batch's columns as the scorer parsed them. A regular file's
    batches are scored (and encoded, and counted) on ``scoring_threads`` threads at once;
    they are written, logged and added up here, in input order.
    """
    streamed = name == STDIN or is_stream(name)
    workers = 1 if streamed else scoring_threads(scorer.threads)
    if workers > 1:
        scorer.model  # noqa: B018 -- its session opened once, here, before the threads use it
    encoder = out if isinstance(out, EncodingWriter) else None
    work = functools.partial(_score_part, scorer, encoder, drift)
    for done in ordered_map(work, _batches(source, streamed), workers=workers):
        if done.counts is not None:
            drift.add(done.counts)  # type: ignore[union-attr]
        if done.encoded is None:
            out.write_table(done.result.scored)
        else:
            encoder.write_encoded(done.encoded)  # type: ignore[union-attr]
        log.record_batch(done.part, done.result.rejects)
        yield done.result.scored.num_rows
    log.finish()


class _Scored(NamedTuple):
    """One batch scored, with what a thread could make of it before it is written."""

    part: SourceBatch
    result: ScoredBatch
    encoded: Encoded | None  # the scored rows in the output's format, if it encodes apart
    counts: BatchCounts | None  # its drift counts, when drift is counted


def _score_part(
    scorer: Scorer,
    encoder: EncodingWriter | None,
    drift: DriftAccumulator | None,
    part: SourceBatch,
) -> _Scored:
    result = scorer.score(part.rows)
    encoded = None if encoder is None else encoder.encode(result.scored)
    counts = None if drift is None or result.parsed is None else drift.counted(result.parsed)
    return _Scored(part, result, encoded, counts)


def _batches(source: BatchSource, streamed: bool) -> Iterator[SourceBatch]:
    """The source's batches; a regular file's joined into batches of many rows (a wide
    file's blocks hold few) and read ahead in a thread (a stream's: as they come, scored
    one at a time, so that each is written as soon as it is scored)."""
    if streamed:
        return iter(source.batches)
    return read_ahead(coalesced(source.batches))


def _count(
    summary: RunSummary, scored: int, log: RejectLog, request: ScoreRequest, *, final: bool
) -> None:
    summary.rows = RowCounts.of(summary.rows.scored + scored, log.count)
    written = "nothing was written"
    if request.output == STDOUT and summary.rows.scored:
        rejects = "went to stderr" if summary.rejects == STDERR else "file was not written"
        written = (
            f"{summary.rows.scored:,} scored rows had already gone to stdout and the rejects "
            f"{rejects}"
        )
    check_limit(request.max_rejects, log, summary.rows.read, final=final, written=written)
