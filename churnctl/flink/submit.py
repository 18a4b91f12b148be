"""Running the Flink job: embedded (a local MiniCluster) or on a session cluster.

Everything that can refuse a run is checked before anything is written or started
(``preflight``: the folders' layout, Java (``flink.home``), the cluster's REST endpoint). The job is
written as a file (``flink.render``) and run as a process group of its own that
dies with this process (``flink.process``): ``PYTHON job.py`` for embedded Flink,
``flink run -m HOST:PORT -py job.py`` (the ``flink`` script shipped in the
apache-flink package) for a cluster. Its whole log goes to a file as it comes;
the run tells what happens through a callback (``flink.events``); a failure is
reported as its root cause in a line. A bounded job writes into a staging folder
first: its outputs are published (renamed into OUT_DIR) only when the reject
limit holds. The counts are read from the job's own output files.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from churnctl import interrupts
from churnctl.batch.lineage_files import write_folder_lineage
from churnctl.errors import (
    ChurnctlError,
    Fix,
    FlinkError,
    OutputError,
    TooManyRejectsError,
    UsageError,
)
from churnctl.features.state import load_state
from churnctl.flink.events import (
    FilesSoFar,
    FileWarning,
    FlinkEvent,
    JobStarting,
    JobSubmitted,
    Resuming,
    RowsSoFar,
    StaleStagingRemoved,
    web_ui,
)
from churnctl.flink.folders import remove_stale_staging, staging_folder
from churnctl.flink.home import (
    FlinkHome,
    cluster_command,
    flink_home,
    flink_uri,
)
from churnctl.flink.inputs import check_locations
from churnctl.flink.job import (
    FlinkJobSpec,
    latest_checkpoint,
    output_columns,
    write_schema,
)
from churnctl.flink.outputs import (
    FlinkResult,
    changed_after_read,
    count_outputs,
    finished_parts,
    record_changes,
)
from churnctl.flink.process import run_logged
from churnctl.flink.progress import embedded_rest_address, files_done
from churnctl.flink.render import render_job
from churnctl.flink.rest import cancel_job, check_rest, split_address
from churnctl.flink.resume import IDENTITY_FILE, check_same_job, prune_checkpoints
from churnctl.flink.scoring import OUTPUTS
from churnctl.io.listing import NameRules, list_inputs
from churnctl.io.rejects import DECIMAL_FIX, DEFAULT_LIMIT, RejectLimit
from churnctl.scoring.lineage import Lineage, model_digest_of, utc_text
from churnctl.version import package_version

WORK_FOLDER = ".churnctl-flink"  # under OUT_DIR: the job file, its log, the staging folder
JOB_ID = re.compile(r"JobID ([0-9a-f]{32})")
SAVEPOINT = re.compile(r"Savepoint completed\. Path: (\S+)")
PROGRESS_EVERY = 2.0  # seconds between two looks at the rows so far
UNREAD_AFTER = 60.0  # streaming: an input file still unread this long after it landed is told


@dataclass
class FlinkRequest:
    """One ``flink-submit`` run."""

    spec: FlinkJobSpec
    jobmanager: str | None = None  # HOST:PORT of a session cluster's REST endpoint
    from_savepoint: str | None = None
    max_rejects: RejectLimit = DEFAULT_LIMIT
    files: int | None = None  # a bounded job's input files, for its progress


def preflight(
    source: str,
    out_dir: str | Path,
    jobmanager: str | None = None,
    from_savepoint: str | None = None,
) -> FlinkHome:
    """What can refuse a run, checked before anything is written or started: the folders'
    layout and paths, a savepoint only with a cluster, the extra and Java, the cluster's
    REST endpoint."""
    check_locations(source, out_dir)
    if from_savepoint is not None and jobmanager is None:
        raise UsageError(
            "a savepoint is restored on a cluster only", fix=Fix("jobmanager", "HOST:PORT")
        )
    if jobmanager is not None:
        split_address(jobmanager)  # a malformed address before Java is looked for
    home = flink_home()
    if jobmanager is not None:
        check_rest(jobmanager)
    return home


def emit_job(spec: FlinkJobSpec, target: Path) -> Path:
    """Write the job file, executable where its first line names its Python; its path."""
    text = render_job(spec)
    try:
        target.write_text(text, encoding="utf-8")
        if text.startswith("#!"):
            mode = target.stat().st_mode
            target.chmod(mode | (mode & 0o444) >> 2)  # executable by whoever may read it
    except OSError as exc:
        raise OutputError(f"{target}: cannot write the job file ({exc.strerror or exc})") from None
    return target


def submit(
    request: FlinkRequest,
    *,
    home: FlinkHome | None = None,
    on_event: Callable[[FlinkEvent], None] | None = None,
) -> FlinkResult:
    """Run the job embedded (waiting for it) or submit it to ``request.jobmanager``.

    ``home``: what ``preflight`` gave for this request (checked here otherwise).
    ``on_event`` hears what happens as it happens (``flink.events``).
    """
    spec, tell = request.spec, on_event or _ignore
    home = home or preflight(spec.input, spec.out_dir, request.jobmanager, request.from_savepoint)
    out_dir = Path(spec.out_dir)
    work = out_dir / WORK_FOLDER
    if removed := remove_stale_staging(work):
        tell(StaleStagingRemoved(tuple(removed)))
    resuming = resumes(request)
    _check_out_dir(out_dir, resumable=resuming)
    if resuming and request.jobmanager is None and spec.checkpoint_dir is not None:
        tell(Resuming(latest_checkpoint(Path(spec.checkpoint_dir)) or Path(spec.checkpoint_dir)))
    work.mkdir(parents=True, exist_ok=True)
    scored_at = datetime.now(UTC)
    if spec.streaming:
        check_same_job(work / IDENTITY_FILE, spec, resuming)
        write_records(out_dir, spec, scored_at)
        prune_checkpoints(spec.checkpoint_dir)
    job = emit_job(spec, work / "job.py").resolve()  # as the user would run it again
    log = work / "job.log"
    started = time.perf_counter()
    if spec.streaming:
        job_id = _run(home, request, job, log, _JobWatch(tell, request, log.parent, out_dir))
        if request.jobmanager is not None:
            return FlinkResult(out_dir=out_dir, job_id=job_id, log=log, finished=False)
    else:
        with staging_folder(work) as staging:  # the run's own job file, pointing into it
            staged = emit_job(replace(spec, out_dir=str(staging)), staging / "job.py")
            job_id = _run(home, request, staged, log, _JobWatch(tell, request, log.parent, staging))
            _publish(staging, out_dir, request.max_rejects)
            write_records(out_dir, spec, scored_at)
    result = count_outputs(out_dir)
    result.seconds, result.job_id, result.log = time.perf_counter() - started, job_id, log
    if not spec.streaming:  # a streaming job's are told as they are seen (_JobWatch)
        result.changed = changed_after_read(result)
        record_changes(out_dir, result.changed)
    return result


def _ignore(event: FlinkEvent) -> None:
    return None


def write_records(out_dir: Path, spec: FlinkJobSpec, scored_at: datetime) -> None:
    """``_schema.json`` and ``_lineage.json``: the output folder's columns, what produced it."""
    write_schema(out_dir, output_columns(spec.keep))
    write_folder_lineage(out_dir, job_lineage(spec, scored_at))


def job_lineage(spec: FlinkJobSpec, scored_at: datetime) -> Lineage:
    """The lineage record of a job's outputs (its state and model files, its options)."""
    return Lineage(
        state_fingerprint=load_state(Path(spec.state)).fingerprint,
        model_digest=model_digest_of(Path(spec.model)),
        threshold=spec.threshold,
        logits=spec.logits,
        keep=tuple(spec.keep),
        churnctl_version=package_version(),
        scored_at=utc_text(scored_at),
    )


class _JobWatch:
    """The job's output lines and the clock's ticks, as events: its id, the files and rows
    so far (files from Flink's metrics, rows from the committed ``files/`` records), and,
    streaming, each input file that changed after the job read it (also recorded)."""

    def __init__(
        self, tell: Callable[[FlinkEvent], None], request: FlinkRequest, work: Path, folder: Path
    ) -> None:
        self.tell, self.jobmanager, self.total = tell, request.jobmanager, request.files
        self.streaming, self.input = request.spec.streaming, Path(request.spec.input)
        self.work, self.folder = work, folder
        self.job_id: str | None = None
        self._rows, self._files, self._changed = (0, 0), 0, set[tuple[str, int, int]]()
        self._landed: dict[str, float] = {}  # streaming: when each input file was first seen
        self._told: set[str] = set()  # and those told as still unread

    def line(self, text: str) -> None:
        match = JOB_ID.search(text) if self.job_id is None else None
        if match is not None:
            self.job_id = match.group(1)
            self.tell(JobSubmitted(self.job_id, web_ui(self.jobmanager, self.job_id)))

    def tick(self) -> None:
        address = self.jobmanager or embedded_rest_address(self.work)
        done = files_done(address, self.job_id) if address and self.job_id else None
        if done is not None and done > self._files:
            self._files = done
            self.tell(FilesSoFar(done, self.total))
        try:
            counts = count_outputs(self.folder)
        except (OSError, ValueError, csv.Error):  # a part file renamed while read: next time
            return
        if (counts.rows.scored, counts.rows.rejected) != self._rows:
            self._rows = (counts.rows.scored, counts.rows.rejected)
            self.tell(RowsSoFar(*self._rows))
        if self.streaming:
            self._tell_changes(counts)
            self._tell_unread(counts)

    def _tell_changes(self, counts: FlinkResult) -> None:
        changed = [
            f
            for f in changed_after_read(counts)
            if (f.source, f.bytes, f.mtime_ns) not in self._changed
        ]
        self._changed.update((f.source, f.bytes, f.mtime_ns) for f in changed)
        record_changes(self.folder, changed)
        for file in changed:
            self.tell(FileWarning(file.source, file.detail))

    def _tell_unread(self, counts: FlinkResult) -> None:
        if not self.input.is_dir():
            return
        read, now = {f.source for f in counts.files}, time.monotonic()
        for name in sorted(list_inputs(self.input, NameRules())):
            path = str(self.input / name)
            landed = self._landed.setdefault(path, now)
            if path not in read and path not in self._told and now - landed >= UNREAD_AFTER:
                self._told.add(path)
                self.tell(
                    FileWarning(
                        path,
                        f"not read {UNREAD_AFTER:.0f} s after it landed: if "
                        "it was empty or still being written when Flink listed "
                        "it, Flink will never read it; write files elsewhere and "
                        "rename them into the folder when complete",
                    )
                )


def resumes(request: FlinkRequest) -> bool:
    """Whether a streaming job continues an earlier one: from the latest checkpoint kept
    under its ``checkpoint_dir`` (embedded), or from the savepoint it is given."""
    spec = request.spec
    if not spec.streaming:
        return False
    if request.jobmanager is not None:
        return request.from_savepoint is not None
    kept = spec.checkpoint_dir
    return kept is not None and latest_checkpoint(Path(kept)) is not None


def _run(
    home: FlinkHome, request: FlinkRequest, job: Path, log: Path, watch: _JobWatch
) -> str | None:
    """Run the job file embedded, or ``flink run`` it on the cluster; the job's id if seen.

    Interrupted (or failed) on a cluster once the job had its id, the job is cancelled
    there: an attached job would outlive its client.
    """
    spec, jobmanager = request.spec, request.jobmanager
    if jobmanager is None:
        command, what = [spec.python_executable, str(job)], "the embedded Flink job"
    else:
        savepoint = None if request.from_savepoint is None else flink_uri(request.from_savepoint)
        command = cluster_command(
            home.flink,
            jobmanager,
            job,
            spec.python_executable,
            detached=spec.streaming,
            savepoint=savepoint,
        )
        what = f"the Flink job on {jobmanager}"
    watch.tell(JobStarting(jobmanager, spec.streaming, log))
    try:
        _logged(command, home, log, what, on_line=watch.line, on_tick=watch.tick)
    except BaseException:
        if jobmanager is not None and watch.job_id is not None:
            with interrupts.cleaning():
                cancel_job(jobmanager, watch.job_id)
        raise
    return watch.job_id


def stop_job(jobmanager: str, job_id: str, savepoint_dir: str) -> str:
    """Stop a streaming job with a savepoint under ``savepoint_dir`` (a path or a URI, see
    ``flink_uri``); the savepoint's path.

    Nothing but the savepoint is written there: the client's log goes to a temporary
    folder, removed on success, named in the error otherwise.
    """
    split_address(jobmanager)
    home = flink_home()
    check_rest(jobmanager)
    logs = Path(tempfile.mkdtemp(prefix="churnctl-flink-stop-"))
    log = logs / "stop.log"
    command = [
        str(home.flink),
        "stop",
        "-m",
        jobmanager,
        "--savepointPath",
        flink_uri(savepoint_dir),
        job_id,
    ]
    output = _logged(command, home, log, f"stopping job {job_id} on {jobmanager}")
    match = SAVEPOINT.search(output)
    if match is None:
        raise FlinkError(f"job {job_id} stopped but no savepoint path was reported; see {log}")
    shutil.rmtree(logs, ignore_errors=True)
    return match.group(1)


def _logged(
    command: list[str],
    home: FlinkHome,
    log: Path,
    what: str,
    *,
    on_line: Callable[[str], None] | None = None,
    on_tick: Callable[[], None] | None = None,
) -> str:
    """Run ``command`` with its output appended to ``log`` as it comes; the tail of its
    output, or a FlinkError with its root cause."""
    # Flink's own log files beside ours, not in the package's log/ (FLINK_LOG_DIR wins)
    env = {"FLINK_LOG_DIR": str(log.parent), **home.environment}
    with log.open("ab") as handle:
        handle.write(f"$ {shlex.join(command)}\n".encode("utf-8", "backslashreplace"))
        code, output = run_logged(
            command, env, handle, on_line=on_line, on_tick=on_tick, every=PROGRESS_EVERY
        )
    if code != 0:
        raise FlinkError(f"{what} failed: {root_cause(output)} (full log: {log})")
    return output


_PYTHON_ERROR = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception): .+$", re.MULTILINE)
# "Caused by: ..." in a Java stack; py4j puts the Java exception on a line of its own,
# after "py4j.protocol.Py4JJavaError: An error occurred while calling o92.select."
_CAUSED_BY = re.compile(r"^(?:Caused by: |: (?=[\w.$]+(?:Exception|Error)\b))(.+)$", re.MULTILINE)
_PYTHON_EXITED = "Python process exits with code"  # `flink run`: says less than the traceback


def root_cause(output: str) -> str:
    """The line of a Flink failure worth reading: churnctl's own error, else the deepest cause."""
    ours = [m for m in _PYTHON_ERROR.findall(output) if m.startswith("churnctl.")]
    causes = [c for c in _CAUSED_BY.findall(output) if _PYTHON_EXITED not in c]
    errors = [e for e in _PYTHON_ERROR.findall(output) if _PYTHON_EXITED not in e]
    last = output.strip().splitlines()[-1:] or ["no output"]
    line = (ours or causes or errors or last)[-1]
    return line if len(line) <= 400 else line[:400] + "…"


def _check_out_dir(out_dir: Path, resumable: bool) -> None:
    """Refuse an output folder with an earlier job's outputs, unless this job resumes it."""
    if resumable:
        return
    for name in OUTPUTS:
        if finished_parts(out_dir / name):
            raise OutputError(
                f"{out_dir / name}: holds the part files of an earlier job; a new job would "
                "mix its rows with them; choose an empty output folder"
            )


def _publish(staging: Path, out_dir: Path, limit: RejectLimit) -> None:
    """Check the reject limit on the staged outputs, then rename them into ``out_dir``."""
    counts = count_outputs(staging)
    if limit.exceeded(counts.rows.rejected, counts.rows.read, final=True):
        raise _too_many(counts, limit)
    with interrupts.publishing_renames():  # a signal now waits until all are published
        for name in OUTPUTS:
            (staging / name).mkdir(exist_ok=True)
            shutil.rmtree(out_dir / name, ignore_errors=True)  # empty: checked before the job
            os.replace(staging / name, out_dir / name)


def _too_many(counts: FlinkResult, limit: RejectLimit) -> ChurnctlError:
    note = "; ".join(f.detail for f in counts.files if "decimal comma" in f.detail)
    return TooManyRejectsError(
        f"{counts.rows.rejected:,} of {counts.rows.read:,} rows rejected, over the limit of "
        f"{limit}; nothing was published" + (f" ({note})" if note else ""),
        fix=DECIMAL_FIX if note else Fix("max_rejects", "100%", "to never fail on rejects"),
    )
