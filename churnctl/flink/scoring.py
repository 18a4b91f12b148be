"""Inside the Flink job: one input file in; its scored rows, rejects and one record of it out.

Flink's filesystem source names each input file once (its path and the size it
was listed with). This function reads the file with churnctl's own reader, by
the file's own header, and scores it exactly as ``score`` does (``open_source``,
``score_batches``, ``RejectLog``, ``CsvWriter``): the same rows scored, the same
rejects with their lines and reasons, the same spelling of every value. What it
gives back is text, one CSV chunk per batch, tagged with the output it goes to:
``scored``, ``rejects`` (score's rejects columns), or ``files`` (one record per
input file: what was read, the counts, and whether it changed while read).

A file that cannot be read (gone, not a regular file, no needed column ...) is
not an error of the job: it becomes a ``files`` record marked ``failed`` and a
file-level rejects record (no line, no column) that says why. Nothing here
imports PyFlink.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

import pyarrow as pa

from churnctl.batch.score_file import score_batches
from churnctl.errors import ChurnctlError
from churnctl.io.completeness import Pending, Readiness, readiness
from churnctl.io.held import HeldFile
from churnctl.io.rejects import REJECTS_SCHEMA, RejectLog, file_reject
from churnctl.io.sinks import CsvWriter, csv_line
from churnctl.io.sources import Columns, ReadOptions, open_source
from churnctl.scoring.scorer import Scorer, output_schema

SCORED, REJECTS, FILES = "scored", "rejects", "files"
OUTPUTS = (SCORED, REJECTS, FILES)
READ, CHANGED, FAILED = "read", "changed", "failed"  # a files record's status
WAIT_POLL = 0.1

Chunk = tuple[str, str]  # (output, CSV text without its last line break)


@dataclass(frozen=True)
class FileReading:
    """How the job reads a file: the CSV options, and (streaming) how long it must be quiet."""

    options: ReadOptions = field(default_factory=ReadOptions)
    settle: float = 0.0  # seconds a file's size and mtime must hold still before it is read
    max_wait: float = 60.0  # then it is read anyway (and a change while read is recorded)


class TextTable:
    """A ``TableWriter`` that keeps CSV text (``CsvWriter``'s spelling) until taken."""

    def __init__(self, schema: pa.Schema) -> None:
        self._buffer = io.BytesIO()
        self._writer = CsvWriter(self._buffer, schema)
        self.take()  # the header: the job's outputs have none (their schema is written beside)

    def write_table(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def close(self) -> None:
        pass

    def take(self) -> str:
        """The text written since the last take, without its last line break."""
        text = self._buffer.getvalue().decode("utf-8")
        self._buffer.seek(0)
        self._buffer.truncate()
        return text.removesuffix("\n")


@dataclass
class FileCounts:
    """What one input file gave."""

    source: str
    bytes: int = 0
    mtime_ns: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    status: str = READ
    detail: str = ""

    def as_csv(self) -> str:
        return csv_line([getattr(self, name) for name in FILES_COLUMNS])


FILES_COLUMNS = tuple(f.name for f in fields(FileCounts))  # a files record's columns


class ScoreFiles:
    """The job's scoring function: a file's path (and listed size) in, tagged CSV chunks out."""

    def __init__(self, scorer: Scorer, reading: FileReading) -> None:
        self.scorer, self.reading = scorer, reading

    def __call__(self, listed: tuple[str, int]) -> Iterator[Chunk]:
        path = str(listed[0])
        counts = FileCounts(source=path)
        try:
            yield from self._score(Path(path), counts)
        except (ChurnctlError, OSError) as exc:
            counts.status, counts.detail = FAILED, _reason(exc, counts)
        if counts.status != READ:
            yield REJECTS, csv_line(file_reject(path, counts.detail))
        yield FILES, counts.as_csv()

    def _score(self, path: Path, counts: FileCounts) -> Iterator[Chunk]:
        if self.reading.settle > 0:
            wait_until_quiet(path, self.reading.settle, self.reading.max_wait)
        with HeldFile.take(path) as held:
            counts.bytes, counts.mtime_ns = held.stat.st_size, held.stat.st_mtime_ns
            yield from self._score_held(held, counts)
            if not held.read_intact():
                now = os.fstat(held.fd)
                counts.status = CHANGED
                counts.detail = (
                    f"changed while it was read ({counts.bytes:,} bytes when taken, "
                    f"{now.st_size:,} now): rows written after that were not read; write "
                    "files elsewhere and rename them into the folder when complete"
                )

    def _score_held(self, held: HeldFile, counts: FileCounts) -> Iterator[Chunk]:
        scorer = self.scorer
        source = open_source(
            str(held.path),
            scorer.required_columns,
            self.reading.options,
            read_from=held.read_path,
            columns=Columns(scorer.keep, every=scorer.keeps_all),
        )
        try:
            scorer = scorer.keeping(source.columns).with_kept_types({})  # CSV text, as ever
            scored = TextTable(output_schema(scorer.keep))
            rejects = TextTable(REJECTS_SCHEMA)
            log = RejectLog.for_source(rejects, source)
            for rows in score_batches(source, scorer, scored, log, held.read_path):
                counts.rows_scored += rows
                counts.rows_rejected = log.count
                yield from _chunks(scored, rejects)
            counts.rows_rejected = log.count
            counts.detail = log.decimal_commas.note(log.count) or ""
            yield from _chunks(scored, rejects)
        finally:
            source.close()


def _chunks(scored: TextTable, rejects: TextTable) -> Iterator[Chunk]:
    for output, table in ((SCORED, scored), (REJECTS, rejects)):
        text = table.take()
        if text:
            yield output, text


def wait_until_quiet(path: Path, settle: float, max_wait: float) -> Readiness:
    """Wait (at most ``max_wait`` s) until ``path`` held still for ``settle`` s and ends as a
    complete file does (``io.completeness.readiness``); a file quiet by its mtime is ready at
    once."""
    pending, deadline = Pending(), time.monotonic() + max_wait
    while True:
        stat = os.stat(path, follow_symlinks=False)
        if pending.stat is None:
            pending.stat = (stat.st_size, stat.st_mtime_ns)
            if time.time() - stat.st_mtime >= settle:
                pending.stable_since -= settle  # quiet already: only its ending is left to check
        state = readiness(pending, stat, path, settle)
        if state is Readiness.READY or time.monotonic() >= deadline:
            return state
        time.sleep(WAIT_POLL)


def _reason(exc: BaseException, counts: FileCounts) -> str:
    """Why a file could not be (wholly) read, as one line."""
    what = f"{exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
    what = what.removeprefix(f"{counts.source}: ")
    done = counts.rows_scored + counts.rows_rejected
    if done:
        return f"not read to its end after {done:,} rows: {what}"
    return f"not read: {what}"
