"""Scoring many input files at once: in this process and in a pool of worker processes.

``score_files`` scores each input with ``score_file``: the same ``Scorer``, input
policy, reject limit and atomic publication as one file. A file refused as a whole
(its own ``ChurnctlError``: unreadable, a missing column, too many rejects ...) does
not stop the others: its error is in its ``FileResult``. The outputs go either

* to ``out_dir``: one output and one rejects file per input, named as ``watch`` names
  them (``paths.derived_names``: the input's name and content hash), each pair
  published atomically as soon as it is scored; or
* to one ``output`` (``-``: stdout): every input is scored into temporary part files,
  then the parts are appended in input order (the CSV header once, JSON Lines as they
  are, Parquet row group by row group) and the output and one rejects file, whose
  ``source`` column names each reject's input, are published together. The good files'
  rows are published even when another file failed.

Either way the bytes written are the same whatever ``workers`` is.

``workers`` counts processes, this one included. No worker is a fork of this process,
which runs threads (ONNX Runtime's, Arrow's allocator): a fork would copy a lock one of
them may hold. Workers are forked by a forkserver, a fresh interpreter that imports
nothing else (no preloading: that would start those threads in it), or spawned where
there is no forkserver; the forkserver starts them a little faster (see
``benchmarks/bench_workers.py``). A worker imports pyarrow, ONNX Runtime and pandas and
unpickles the ``Scorer`` (settings, state JSON, model bytes) before its first file: most
of a second. So this process scores files too, from the start, and a worker is given a
file only once it has started, one file at a time, whenever it is free: no file waits
for a worker still starting up. Each process gets ``cores // workers`` ONNX Runtime
intra-op threads (and Arrow CPU threads), so that workers x threads does not
oversubscribe the cores.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import io
import multiprocessing
import os
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

import churnctl.interrupts as interrupts
from churnctl.atomic import (
    check_distinct,
    file_sha256,
    is_write_through,
    probe_writable,
    publishing,
)
from churnctl.batch.counts import RowCounts
from churnctl.batch.score_file import RunSummary, ScoreRequest, score_file
from churnctl.errors import ChurnctlError, InputError, OutputError, UsageError
from churnctl.io.formats import split_input_suffix
from churnctl.io.naming import derived_names
from churnctl.io.rejects import DEFAULT_LIMIT, REJECTS_SCHEMA, STDERR, RejectLimit, rejects_path
from churnctl.io.sinks import STDOUT, CsvWriter, open_stream, output_format
from churnctl.io.sources import STDIN, ReadOptions, check_input, is_stream, read_columns
from churnctl.names import fit_name, name_max
from churnctl.scoring.scorer import Scorer, output_schema

# never fork a process that runs ONNX Runtime's or Arrow's threads: see the module docstring
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
SOCKET_PATH_MAX = 107  # bytes in a Unix socket's path (sun_path, less its NUL, on Linux)
FORKSERVER_SOCKET_TAIL = len("/pymp-XXXXXXXX/listener-XXXXXXXX")  # multiprocessing's names
TERMINATED = 128 + signal.SIGTERM
DEFAULT_FORMAT = "csv"  # of each output in an output folder, as watch writes them
COPY_CHUNK = 1 << 20
PARTS_TAIL = len(".") + len(".XXXXXXXX.parts")  # what mkdtemp adds around the output's name
POLL = 0.05  # seconds between looks at the pool's results
MAIN_SCORES = True  # this process scores files too while the pool runs (tests turn it off)

FileDone = Callable[["FileResult"], None]


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


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


@dataclass(frozen=True)
class FileResult:
    """One input's outcome: its counts, or the error that refused it."""

    input: str
    output: str | None = None
    rejects: str | None = None
    summary: RunSummary | None = None
    error: ChurnctlError | None = None
    process: int = 0  # the id of the process that scored it

    @property
    def failed(self) -> bool:
        return self.error is not None

    def message(self, text: str | None = None) -> str:
        """``FILE: what went wrong``: the error's text (or ``text``), led by the input once."""
        text = str(self.error) if text is None else text
        return text if text.startswith(f"{self.input}:") else f"{self.input}: {text}"


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


# --------------------------------------------------------------------------- the two layouts


def _score_into_folder(request: FilesRequest, on_file: FileDone | None) -> FilesSummary:
    if request.output is not None or request.rejects is not None:
        raise UsageError("with an output folder each input gets its own output and rejects file")
    fmt = output_format(f"output.{request.format or DEFAULT_FORMAT}", request.format)
    out_dir = _writable_folder(Path(request.out_dir or "."))
    _check_distinct_names(request.inputs)
    jobs = [_job(request, i, name, out_dir, fmt, part=False)
            for i, name in enumerate(request.inputs)]  # fmt: skip
    results, workers = _run(jobs, request, lambda index, result: None, on_file)
    return FilesSummary(results, 0.0, workers, out_dir=str(out_dir))


def _score_into_one(request: FilesRequest, on_file: FileDone | None) -> FilesSummary:
    output = request.output or STDOUT
    fmt = output_format(output, request.format)
    rejects = request.rejects or rejects_path(output)
    for name in request.inputs:
        check_distinct({"input": name}, {"output": output, "rejects": rejects})
    if request.scorer.keeps_all:  # one output, one schema: the first input's columns
        columns = read_columns(request.inputs[0], request.read_options)
        request = dataclasses.replace(request, scorer=request.scorer.keeping(columns))
    schema = output_schema(request.scorer.keep)
    with contextlib.ExitStack() as stack:  # publishes on success, else discards; parts removed
        joined = _Joined(output, rejects, fmt, schema, stack)
        jobs = [_job(request, i, name, joined.parts, fmt, part=True)
                for i, name in enumerate(request.inputs)]  # fmt: skip
        with interrupts.steps():  # the parts: only the joined output ends the run
            results, workers = _run(jobs, request, joined.take, on_file)
        joined.close()
    results = [FileResult(r.input, output, rejects, r.summary, r.error, r.process)
               for r in results]  # fmt: skip
    return FilesSummary(results, 0.0, workers, output=output, rejects=rejects)


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


class _Joined:
    """One output and one rejects file, assembled from each input's parts in input order.

    The parts are scored into a temporary folder beside the output (or, for stdout or a
    special file, in the system's); each is appended as soon as every part before it
    is, then removed. The output and rejects are published together at the end.

    Each thing it makes is registered at once on the caller's ``stack``, whose end
    publishes the output and rejects, or discards them after any failure (a signal
    included, wherever it lands), and removes the parts folder: ``close`` the appenders
    last in the ``with`` block.
    """

    def __init__(
        self, output: str, rejects: str, fmt: str, schema: pa.Schema, stack: contextlib.ExitStack
    ) -> None:
        self._waiting: dict[int, FileResult] = {}
        self._next = 0
        publication = stack.enter_context(publishing())
        # rejects first: a bad rejects path fails before anything is written
        rejects_stream = open_stream(rejects, "csv", publication, dash=sys.stderr.buffer)
        self._rejects = _Appender(stack.enter_context(rejects_stream), REJECTS_SCHEMA, "csv",
                                  header_with_first_row=rejects == STDERR)  # fmt: skip
        output_stream = open_stream(output, fmt, publication)
        self._out = _Appender(stack.enter_context(output_stream), schema, fmt)
        with interrupts.deferred():  # made and held for removal, or neither
            self.parts = _parts_folder(output)
            stack.callback(_remove_folder, self.parts)

    def close(self) -> None:
        """Finish the output and the rejects (every part appended): ready to publish."""
        self._out.close()
        self._rejects.close()

    def take(self, index: int, result: FileResult) -> None:
        """Append every part whose turn has come, in input order."""
        self._waiting[index] = result
        while self._next in self._waiting:
            done = self._waiting.pop(self._next)
            if not done.failed:
                self._out.append(Path(str(done.output)))
                self._rejects.append(Path(str(done.rejects)))
            self._next += 1


def _remove_folder(folder: str) -> None:
    """Remove a temporary folder, never cut short by a signal."""
    with interrupts.cleaning():
        shutil.rmtree(folder, ignore_errors=True)


def _parts_folder(output: str) -> str:
    target = Path(output)
    beside = output != STDOUT and not is_write_through(target)
    where = target.parent if beside else None
    name = fit_name(target.name, "", name_max(where) - PARTS_TAIL) if where else "churnctl"
    try:
        return tempfile.mkdtemp(prefix=f".{name}.", suffix=".parts", dir=where)
    except OSError as exc:
        raise OutputError(f"{where or tempfile.gettempdir()}: cannot write here "
                          f"({exc.strerror or exc}); choose another path") from None  # fmt: skip


class _Appender:
    """Appends part files of one format to an open output stream."""

    def __init__(
        self, stream: BinaryIO, schema: pa.Schema, fmt: str, *, header_with_first_row: bool = False
    ) -> None:
        """``header_with_first_row``: a CSV header only once a row follows it (stderr)."""
        self._stream = stream
        self._header = b""
        self._header_due = False
        self._parquet: pq.ParquetWriter | None = None
        if fmt == "csv":
            header = io.BytesIO()
            CsvWriter(header, schema)  # type: ignore[arg-type]
            self._header = header.getvalue()
            self._header_due = True
            if not header_with_first_row:
                self._write_header()
        elif fmt == "parquet":
            self._parquet = pq.ParquetWriter(stream, schema)

    def append(self, part: Path) -> None:
        if self._parquet is not None:
            parquet = pq.ParquetFile(part)
            for group in range(parquet.num_row_groups):
                self._parquet.write_table(parquet.read_row_group(group))
            part.unlink()
            return
        with part.open("rb") as handle:
            if handle.read(len(self._header)) != self._header:
                raise OutputError(f"{part}: a part file does not start with the CSV header")
            rows = handle.read(COPY_CHUNK)
            if rows:
                self._write_header()
                self._stream.write(rows)
                shutil.copyfileobj(handle, self._stream, COPY_CHUNK)  # type: ignore[misc]
        part.unlink()

    def _write_header(self) -> None:
        if self._header_due:
            self._stream.write(self._header)
            self._header_due = False

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self._stream.flush()


# --------------------------------------------------------------------------- one file


@dataclass(frozen=True)
class _Job:
    """One input to score, and where its output and rejects go; pickled to a worker."""

    index: int
    input: str
    folder: str
    format: str
    part: bool  # named by index (a part of one output), else as watch names it
    max_rejects: RejectLimit
    read_options: ReadOptions


def _job(request: FilesRequest, index: int, name: str, folder: str | Path, fmt: str,
         *, part: bool) -> _Job:  # fmt: skip
    return _Job(index, name, str(folder), fmt, part, request.max_rejects, request.read_options)


def _score_job(job: _Job, scorer: Scorer) -> FileResult:
    """Score one input; its own ``ChurnctlError`` becomes its result."""
    try:
        output, rejects = _targets(job)
        summary = score_file(ScoreRequest(
            input=job.input, output=output, scorer=scorer, format=job.format, rejects=rejects,
            max_rejects=job.max_rejects, read_options=job.read_options,
        ))  # fmt: skip
    except ChurnctlError as exc:
        return FileResult(job.input, error=exc, process=os.getpid())
    return FileResult(job.input, output, rejects, summary, process=os.getpid())


def _targets(job: _Job) -> tuple[str, str]:
    folder = Path(job.folder)
    if job.part:
        stem = folder / f"{job.index:06d}"
        return f"{stem}.{job.format}", f"{stem}.rejects.csv"
    if is_stream(job.input):
        raise InputError(
            f"{job.input}: not a regular file: an output folder names each output by its "
            "input's content hash, and a pipe or device can be read only once"
        )
    try:
        sha = file_sha256(Path(job.input))
    except OSError as exc:
        raise InputError(f"{job.input}: cannot read: {exc.strerror or exc}") from None
    output, rejects = derived_names(Path(job.input).name, sha, job.format)
    return str(folder / output), str(folder / rejects)


# --------------------------------------------------------------------------- the processes

_worker: dict[str, Scorer] = {}  # a pool worker's own Scorer, set by _start_worker


def _start_worker(scorer: Scorer, threads: int) -> None:
    """In each worker: its Scorer and thread counts; SIGTERM unwinds (temporaries removed).

    The Scorer arrives pickled (settings, state JSON, model bytes); its ONNX Runtime
    session opens on its first batch, with ``threads`` intra-op threads.
    """
    interrupts.install()  # SIGTERM: Interrupted, a SystemExit, which ends a worker quietly
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    pa.set_cpu_count(threads)
    scorer.threads = threads
    _worker["scorer"] = scorer


def _pool_job(job: _Job) -> FileResult:
    try:
        with interrupts.steps():  # a worker's publication is one input's, never the run's
            return _score_job(job, _worker["scorer"])
    except SystemExit:  # SIGTERM: score_file removed its temporary files on the way out
        os._exit(TERMINATED)


def _run(
    jobs: list[_Job],
    request: FilesRequest,
    take: Callable[[int, FileResult], None],
    on_file: FileDone | None,
) -> tuple[list[FileResult], int]:
    """Every job's result in job order, and the number of processes that scored."""
    workers = max(1, min(request.workers or usable_cores(), len(jobs)))
    results: list[FileResult | None] = [None] * len(jobs)

    def done(index: int, result: FileResult) -> None:
        results[index] = result
        take(index, result)
        if on_file is not None:
            on_file(result)

    if workers == 1:
        for job in jobs:
            done(job.index, _score_job(job, request.scorer))
    else:
        _run_in_pool(jobs, request.scorer, workers, done)
    return [r for r in results if r is not None], workers


def _run_in_pool(
    jobs: list[_Job], scorer: Scorer, workers: int, done: Callable[[int, FileResult], None]
) -> None:
    """This process and ``workers - 1`` pool processes take the jobs in order, as each is free."""
    threads = max(1, usable_cores() // workers)
    own = copy.copy(scorer)  # this process's copy: its own session, with its share of threads
    own.threads = threads
    todo = _Todo(jobs)
    pool = ProcessPoolExecutor(
        workers - 1, mp_context=_context(), initializer=_start_worker, initargs=(scorer, threads),
    )  # fmt: skip
    dispatcher = _Dispatcher(pool, workers - 1, todo)
    arrow_threads = pa.cpu_count()
    received = 0
    try:
        pa.set_cpu_count(threads)
        dispatcher.start()
        while MAIN_SCORES and (job := todo.next()) is not None:
            done(job.index, _score_job(job, own))
            received += 1 + dispatcher.hand_on(done, block=False)
        while received < len(jobs):
            received += dispatcher.hand_on(done, block=True)
    except BaseException:
        todo.clear()
        _stop(pool)
        raise
    finally:
        dispatcher.finish()
        if dispatcher.starting:
            _stop(pool)  # a worker still starting up, with nothing left to score: no wait
        pool.shutdown(wait=True, cancel_futures=True)
        pa.set_cpu_count(arrow_threads)


def _context() -> Any:
    """The multiprocessing context workers start from: a forkserver that preloads nothing.

    The forkserver listens on a socket in the temporary folder; where that folder's path
    is too long for a socket's (a long ``TMPDIR``), workers are spawned instead.
    """
    method = START_METHOD if _socket_fits(tempfile.gettempdir()) else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([])  # the default, __main__, may be churnctl's CLI
    return context


def _socket_fits(folder: str) -> bool:
    """Whether the forkserver's socket, ``FOLDER/pymp-XXXXXXXX/listener-XXXXXXXX``, fits."""
    return len(os.fsencode(folder)) + FORKSERVER_SOCKET_TAIL <= SOCKET_PATH_MAX


class _Todo:
    """The jobs not taken yet, shared by this process and the dispatcher, in input order."""

    def __init__(self, jobs: list[_Job]) -> None:
        self._jobs = collections.deque(jobs)
        self._lock = threading.Lock()

    def next(self) -> _Job | None:
        with self._lock:
            return self._jobs.popleft() if self._jobs else None

    def empty(self) -> bool:
        with self._lock:
            return not self._jobs

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()


Outcome = tuple[int, FileResult] | BaseException


class _Dispatcher(threading.Thread):
    """Gives the pool a job whenever one of its workers is free, never before it has started.

    A worker first runs ``_ready`` (its start-up: a second or more); only then does it
    get jobs, one at a time, so that no job waits for a worker still starting while this
    process could score it. The results (or an error of the pool) go to a queue that this
    process reads between its own files.
    """

    def __init__(self, pool: ProcessPoolExecutor, size: int, todo: _Todo) -> None:
        super().__init__(name="churnctl-pool-dispatcher", daemon=True)
        self._pool, self._size, self._todo = pool, size, todo
        self._outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self.starting = True  # a worker has not finished starting up

    def run(self) -> None:
        in_flight: dict[Future[Any], _Job | None] = {}
        try:
            for _ in range(self._size):
                in_flight[self._pool.submit(_ready)] = None
            while in_flight and not self._stopping.is_set():
                finished, _ = wait(in_flight, timeout=POLL, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = in_flight.pop(future)
                    result = _result_of(future, job)
                    if job is not None:
                        self._outcomes.put((job.index, result))
                    next_job = self._todo.next()
                    if next_job is not None:
                        in_flight[self._pool.submit(_pool_job, next_job)] = next_job
                if all(job is None for job in in_flight.values()) and self._todo.empty():
                    break  # only workers still starting up are left: they are not needed
        except BaseException as exc:
            self._outcomes.put(exc)
        finally:
            self.starting = None in in_flight.values()

    def hand_on(self, done: Callable[[int, FileResult], None], *, block: bool) -> int:
        """Pass the pool's results on to ``done`` (waiting for one if ``block``); how many."""
        count = 0
        while True:
            waiting = POLL if block and count == 0 else 0.0
            try:
                outcome = self._outcomes.get(timeout=waiting)
            except queue.Empty:
                if waiting:
                    continue
                return count
            if isinstance(outcome, BaseException):
                raise outcome
            done(*outcome)
            count += 1

    def finish(self) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join()


def _result_of(future: Future[Any], job: _Job | None) -> Any:
    try:
        return future.result()
    except BrokenProcessPool:
        doing = f"scoring {job.input}" if job is not None else "starting up"
        raise ChurnctlError(
            f"a worker process died while {doing} (killed, or out of memory?); score with "
            "fewer workers"
        ) from None


def _ready() -> int:
    """A worker's first task: it has started (imported churnctl, unpickled its Scorer)."""
    return os.getpid()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop the workers now: each removes its temporary files and exits."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14
    if terminate is not None:
        terminate()
        return
    processes: dict[int, Any] = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.terminate()
