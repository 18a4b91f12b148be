"""Scoring many input files at once: in this process and in a pool of worker processes.

``score_files`` scores each input with ``score_file``: the same ``Scorer``, input
policy, reject limit and atomic publication as one file. A file refused as a whole
(its own ``ChurnctlError``: unreadable, a missing column, too many rejects ...) does
not stop the others: its error is in its ``FileResult``. The outputs go either

* to ``out_dir``: one output and one rejects file per input, named as ``watch`` names
  them (``naming.derived_names``: the input's name and content hash), each pair
  published atomically as soon as it is scored; or
* to one ``output`` (``-``: stdout): every input is scored into temporary part files,
  then the parts are appended (``join``) in input order (the CSV header once, JSON Lines as they
  are, Parquet row group by row group) and the output and one rejects file, whose
  ``source`` column names each reject's input, are published together. The good files'
  rows are published even when another file failed.

Either way the bytes written are the same whatever ``workers`` is: ``workers`` counts
processes, this one included (``pool``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

import churnctl.interrupts as interrupts
from churnctl.arguments import (
    PATH,
    PATH_TYPES,
    check_bool,
    check_callable,
    check_optional,
    check_path,
    check_type,
    wrong,
)
from churnctl.atomic import check_distinct, file_sha256, probe_writable
from churnctl.batch.counts import RowCounts
from churnctl.batch.jobs import FileDone, FileResult, Job
from churnctl.batch.join import Joined
from churnctl.batch.lineage_files import sidecar_path
from churnctl.batch.parallel import usable_cores
from churnctl.batch.pool import run_jobs
from churnctl.errors import UsageError
from churnctl.io.formats import is_parquet, split_input_suffix
from churnctl.io.rejects import DEFAULT_LIMIT, RejectLimit, as_reject_limit, rejects_path
from churnctl.io.sinks import STDOUT, output_format
from churnctl.io.sources import STDIN, ReadOptions, check_input, is_stream, read_columns
from churnctl.scoring.kept import agreed_types
from churnctl.scoring.lineage import Lineage
from churnctl.scoring.scorer import Scorer, output_schema

__all__ = ["FileResult", "FilesRequest", "FilesSummary", "score_files", "usable_cores"]

DEFAULT_FORMAT = "csv"  # of each output in an output folder, as watch writes them


@dataclass
class FilesRequest:
    """Several inputs, scored each into ``out_dir``, or all into one ``output``."""

    inputs: Sequence[str]
    scorer: Scorer
    out_dir: str | Path | None = None
    output: str | None = None  # without out_dir: the one output (default: stdout)
    format: str | None = None
    rejects: str | None = None  # the one rejects file (not with out_dir)
    max_rejects: RejectLimit = DEFAULT_LIMIT  # for each input on its own
    read_options: ReadOptions = field(default_factory=ReadOptions)
    workers: int | None = None  # processes in all, this one included; None: usable cores
    drift: bool = True  # compare each input with the state's training profile (per file)

    def __post_init__(self) -> None:
        """Each field checked: a wrong type is one line naming it."""
        check_bool("FilesRequest", "drift", self.drift)
        listed = isinstance(self.inputs, Sequence) and not isinstance(self.inputs, str | bytes)
        if not listed:
            raise wrong("FilesRequest", "inputs", self.inputs, f"a list of paths ({PATH})")
        for name in self.inputs:
            check_path("FilesRequest", "inputs", name, f"a list of paths ({PATH})")
        check_type("FilesRequest", "scorer", self.scorer, Scorer, "a Scorer")
        optional = {
            "out_dir": (PATH_TYPES, PATH),
            "output": (PATH_TYPES, PATH),
            "format": (str, "a format name (csv, jsonl, parquet)"),
            "rejects": (PATH_TYPES, PATH),
            "workers": (int, "a whole number"),
        }
        for name, (types, takes) in optional.items():
            check_optional("FilesRequest", name, getattr(self, name), types, takes)
        self.max_rejects = as_reject_limit("FilesRequest", self.max_rejects)
        check_type("FilesRequest", "read_options", self.read_options, ReadOptions, "a ReadOptions")


@dataclass
class FilesSummary:
    """What one run did: each input's result in input order, the time, the processes."""

    results: list[FileResult]
    seconds: float
    workers: int
    output: str | None = None  # the one output, or None with an output folder
    rejects: str | None = None
    out_dir: str | None = None

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.failed]

    @property
    def rows(self) -> RowCounts:
        """The sum of the scored inputs' counts (a failed input counts none)."""
        return sum((r.summary.rows for r in self.results if r.summary), RowCounts())


def score_files(request: FilesRequest, on_file: FileDone | None = None) -> FilesSummary:
    """Score every input; ``on_file`` is called with each result as it is known.

    Errors of the run as a whole (bad settings, an output that cannot be written) are
    raised; an input's own error is its result's ``error``. Workers import the main
    module afresh: a script that calls this with ``workers`` > 1 needs
    ``if __name__ == "__main__":``.
    """
    check_type("score_files", "request", request, FilesRequest, "a FilesRequest")
    check_callable("score_files", "on_file", on_file, "None or a function of a FileResult")
    started = time.perf_counter()
    if not request.inputs:
        raise UsageError("name at least one input file")
    if request.workers is not None and request.workers < 1:
        raise UsageError(f"workers must be >= 1, got {request.workers}")
    if STDIN in request.inputs:
        raise UsageError("stdin (-) can only be scored alone, into one output; name files instead")
    for name in request.inputs:  # before any output, output folder or part is made
        check_input(name)
    if request.out_dir is not None:
        with interrupts.steps():  # each input's pair is published on its own
            summary = _score_into_folder(request, on_file)
    else:
        summary = _score_into_one(request, on_file)
    summary.seconds = time.perf_counter() - started
    return summary


def _score_into_folder(request: FilesRequest, on_file: FileDone | None) -> FilesSummary:
    if request.output is not None or request.rejects is not None:
        raise UsageError("with an output folder each input gets its own output and rejects file")
    fmt = output_format(f"output.{request.format or DEFAULT_FORMAT}", request.format)
    out_dir = _writable_folder(Path(request.out_dir or "."))
    _check_distinct_names(request.inputs)
    jobs = [
        _job(request, i, name, out_dir, fmt, part=False) for i, name in enumerate(request.inputs)
    ]
    results, workers = run_jobs(jobs, request.scorer, request.workers, _ignore, on_file)
    return FilesSummary(results, 0.0, workers, out_dir=str(out_dir))


def _score_into_one(request: FilesRequest, on_file: FileDone | None) -> FilesSummary:
    output = request.output or STDOUT
    fmt = output_format(output, request.format)
    rejects = request.rejects or rejects_path(output)
    record = sidecar_path(output) if fmt != "parquet" else None
    for name in request.inputs:
        check_distinct(
            {"input": name}, {"output": output, "rejects": rejects, "lineage record": record}
        )
    scored_at = datetime.now(UTC)
    if request.scorer.keeps_all:  # one output, one schema: the first input's columns
        columns = read_columns(request.inputs[0], request.read_options)
        request = dataclasses.replace(request, scorer=request.scorer.keeping(columns))
    scorer = request.scorer.with_kept_types(
        {}
        if fmt == "csv"
        else agreed_types(input_types(name, request.scorer.keep) for name in request.inputs)
    )
    request = dataclasses.replace(request, scorer=scorer)
    schema = output_schema(scorer.keep, scorer.kept_types)
    with contextlib.ExitStack() as stack:  # publishes on success, else discards; parts removed
        joined = Joined(output, rejects, fmt, schema, stack, Lineage.of(scorer, scored_at))
        jobs = [
            _job(request, i, name, joined.parts, fmt, part=True)
            for i, name in enumerate(request.inputs)
        ]
        with interrupts.steps():  # the parts: only the joined output ends the run
            results, workers = run_jobs(jobs, request.scorer, request.workers, joined.take, on_file)
        joined.close()
    results = [FileResult(r.input, output, rejects, r.summary, r.error, r.process) for r in results]
    return FilesSummary(results, 0.0, workers, output=output, rejects=rejects)


def input_types(name: str, keep: Sequence[str]) -> dict[str, pa.DataType]:
    """The types of an input's ``keep`` columns as a scorer gets them: a Parquet file's own
    (read from its footer); text from a CSV file (read as text) or an input that can be
    read only once."""
    types = dict.fromkeys(keep, pa.string())
    if not is_parquet(name) or is_stream(name):
        return types
    import pyarrow.parquet as pq  # here: 10-40 ms that a CSV run need not pay

    try:
        schema = pq.read_schema(name)
    except (OSError, pa.ArrowException):  # that input fails on its own, saying why
        return types
    return {**types, **{f.name: f.type for f in schema if f.name in types}}


def _writable_folder(folder: Path) -> Path:
    """The output folder, made if need be, refused at once if it cannot be written to."""
    with contextlib.suppress(OSError):  # the probe says why it cannot be written to
        folder.mkdir(parents=True, exist_ok=True)
    probe_writable(folder, "; choose another folder")
    return folder


def _check_distinct_names(inputs: Sequence[str]) -> None:
    """Refuse two inputs whose outputs would be one file: same name stem, same content."""
    by_stem: dict[str, list[str]] = {}
    for name in inputs:
        by_stem.setdefault(split_input_suffix(Path(name).name)[0], []).append(name)
    for names in (names for names in by_stem.values() if len(names) > 1):
        seen: dict[str, str] = {}
        for name in names:
            with contextlib.suppress(OSError):  # unreadable: that file fails on its own
                other = seen.setdefault(file_sha256(Path(name)), name)
                if other != name:
                    raise UsageError(
                        f"{other} and {name} have the same name and content: their outputs in "
                        "the output folder would be one file; score only one of them"
                    )


def _job(
    request: FilesRequest, index: int, name: str, folder: str | Path, fmt: str, *, part: bool
) -> Job:
    return Job(
        index,
        name,
        str(folder),
        fmt,
        part,
        request.max_rejects,
        request.read_options,
        request.drift,
    )


def _ignore(index: int, result: FileResult) -> None:
    """Nothing to join: each input's pair is published on its own."""
