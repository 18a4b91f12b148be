"""The pool of processes that score files: this process and its workers, and their signals.

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
oversubscribe the cores. A worker unwinds on SIGTERM (its temporary files removed) and
ignores Ctrl-C, which reaches this process, which stops the workers.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import multiprocessing
import os
import queue
import signal
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pyarrow as pa

import churnctl.interrupts as interrupts
from churnctl.batch.jobs import FileDone, FileResult, Job, score_job
from churnctl.batch.parallel import usable_cores
from churnctl.errors import ChurnctlError
from churnctl.scoring.scorer import Scorer

# never fork a process that runs ONNX Runtime's or Arrow's threads: see the module docstring
START_METHOD = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
SOCKET_PATH_MAX = 107  # bytes in a Unix socket's path (sun_path, less its NUL, on Linux)
FORKSERVER_SOCKET_TAIL = len("/pymp-XXXXXXXX/listener-XXXXXXXX")  # multiprocessing's names
TERMINATED = 128 + signal.SIGTERM
POLL = 0.05  # seconds between looks at the pool's results
MAIN_SCORES = True  # this process scores files too while the pool runs (tests turn it off)


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


def _pool_job(job: Job) -> FileResult:
    try:
        with interrupts.steps():  # a worker's publication is one input's, never the run's
            return score_job(job, _worker["scorer"])
    except SystemExit:  # SIGTERM: score_file removed its temporary files on the way out
        os._exit(TERMINATED)


def run_jobs(
    jobs: list[Job],
    scorer: Scorer,
    workers: int | None,
    take: Callable[[int, FileResult], None],
    on_file: FileDone | None,
) -> tuple[list[FileResult], int]:
    """Every job's result in job order, and the number of processes that scored.

    ``workers``: processes in all, this one included (None: the usable cores); ``take``
    is called with each result as it is known, then ``on_file``.
    """
    workers = max(1, min(workers or usable_cores(), len(jobs)))
    results: list[FileResult | None] = [None] * len(jobs)

    def done(index: int, result: FileResult) -> None:
        results[index] = result
        take(index, result)
        if on_file is not None:
            on_file(result)

    if workers == 1:
        for job in jobs:
            done(job.index, score_job(job, scorer))
    else:
        _run_in_pool(jobs, scorer, workers, done)
    return [r for r in results if r is not None], workers


def _run_in_pool(
    jobs: list[Job], scorer: Scorer, workers: int, done: Callable[[int, FileResult], None]
) -> None:
    """This process and ``workers - 1`` pool processes take the jobs in order, as each is free."""
    threads = max(1, usable_cores() // workers)
    own = copy.copy(scorer)  # this process's copy: its own session, with its share of threads
    own.threads = threads
    todo = _Todo(jobs)
    pool = ProcessPoolExecutor(
        workers - 1,
        mp_context=_context(),
        initializer=_start_worker,
        initargs=(scorer, threads),
    )
    dispatcher = _Dispatcher(pool, workers - 1, todo)
    arrow_threads = pa.cpu_count()
    received = 0
    try:
        pa.set_cpu_count(threads)
        dispatcher.start()
        while MAIN_SCORES and (job := todo.next()) is not None:
            done(job.index, score_job(job, own))
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

    def __init__(self, jobs: list[Job]) -> None:
        self._jobs = collections.deque(jobs)
        self._lock = threading.Lock()

    def next(self) -> Job | None:
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
        in_flight: dict[Future[Any], Job | None] = {}
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


def _result_of(future: Future[Any], job: Job | None) -> Any:
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
