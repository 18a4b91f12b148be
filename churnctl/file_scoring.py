"""Scoring one input file into one output file and its rejects file.

The I/O shell around ``Scorer``: read batches from a source, score each, write
the scored rows and the rejects (with their lines and original text), count,
and stop when the reject limit is exceeded. ``watch`` and the Flink job reuse
the same pieces (``Scorer``, sources, sinks, ``RejectLog``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from churnctl.rejects import (
    DEFAULT_LIMIT,
    REJECTS_SCHEMA,
    RejectLimit,
    RejectLog,
    check_limit,
    rejects_path,
)
from churnctl.scorer import Scorer, output_schema
from churnctl.sinks import STDOUT, open_sink, output_format
from churnctl.sources import ReadOptions, open_source

Progress = Callable[[int], None]


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


def score_file(request: ScoreRequest, on_progress: Progress | None = None) -> RunSummary:
    """Score one input into one output and its rejects file, both published atomically."""
    started = time.perf_counter()
    scorer, options = request.scorer, request.read_options
    fmt = output_format(request.output, request.format)
    source = open_source(request.input, scorer.required_columns, options)
    summary = RunSummary(output=request.output)
    summary.rejects = request.rejects or rejects_path(request.output, request.input)
    try:
        # the output is published first: if that fails, the rejects file is not published either
        with open_sink(summary.rejects, REJECTS_SCHEMA, "csv") as rejects, \
                open_sink(request.output, output_schema(scorer.keep), fmt) as out:  # fmt: skip
            log = RejectLog(rejects, source.name, reread=source.reread, options=options)
            for part in source.batches:
                result = scorer.score(part.rows)
                out.write_table(result.scored)
                log.record_batch(part, result.rejects)
                _count(summary, result.scored.num_rows, log, request, final=False)
                if on_progress is not None:
                    on_progress(summary.rows_read)
            log.finish()
            _count(summary, 0, log, request, final=True)
    finally:
        source.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _count(
    summary: RunSummary, scored: int, log: RejectLog, request: ScoreRequest, *, final: bool
) -> None:
    summary.rows_scored += scored
    summary.rows_rejected = log.count
    written = "nothing was written"
    if request.output == STDOUT and summary.rows_scored:
        written = (
            f"{summary.rows_scored:,} scored rows had already gone to stdout and the rejects "
            "file was not written"
        )
    check_limit(request.max_rejects, log, summary.rows_read, final=final, written=written)
