"""Running the Flink job: embedded (a local MiniCluster) or on a session cluster.

The job is written as a file (``flink_render``) and run as its own process:
``python job.py`` for embedded Flink, ``flink run -m HOST:PORT -py job.py``
(the ``flink`` script shipped in the apache-flink package) for a cluster. Its
whole log goes to a file; a failure is reported as its root cause in a line.
A bounded job writes into a staging folder first: its outputs are published
(renamed into OUT_DIR) only when the reject limit holds. The counts are read
from the job's own output files.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from churnctl.arrivals import NameRules, scan_folder
from churnctl.errors import (
    ChurnctlError,
    Fix,
    InputError,
    OutputError,
    TooManyRejectsError,
    UsageError,
)  # fmt: skip
from churnctl.file_scoring import RunSummary
from churnctl.flink_job import (
    FlinkJobSpec,
    latest_checkpoint,
    output_columns,
    write_schema,
)  # fmt: skip
from churnctl.flink_render import render_job
from churnctl.flink_scoring import CHANGED, FAILED, FILES, OUTPUTS, READ, FileCounts
from churnctl.held import kind_of
from churnctl.input_set import expand_inputs
from churnctl.rejects import DECIMAL_FIX, DEFAULT_LIMIT, RejectLimit
from churnctl.scorer import Scorer
from churnctl.sources import Columns, open_source
from churnctl.state import load_state

WORK_FOLDER = ".churnctl-flink"  # under OUT_DIR: the job file, its log, the staging folder
CHANGES_FILE = "changed-after-read.csv"  # in rejects/: files that changed after they were read
IDENTITY_FILE = "streaming-job.json"  # beside the checkpoints: what a resumed job must be
JOB_ID = re.compile(r"JobID ([0-9a-f]{32})")
SAVEPOINT = re.compile(r"Savepoint completed\. Path: (\S+)")
CONNECT_TIMEOUT = 3.0


class FlinkError(ChurnctlError):
    """Flink is missing, unreachable, or the job failed."""

    exit_code = 1


@dataclass
class FlinkRequest:
    """One ``flink-submit`` run."""

    spec: FlinkJobSpec
    jobmanager: str | None = None  # HOST:PORT of a session cluster's REST endpoint
    from_savepoint: str | None = None
    max_rejects: RejectLimit = DEFAULT_LIMIT


@dataclass
class FlinkResult(RunSummary):
    """What a run did: the counts of a finished job (``RunSummary``'s), or a submitted job."""

    out_dir: Path = Path()
    job_id: str | None = None
    log: Path | None = None
    finished: bool = True
    files: list[FileCounts] = field(default_factory=list)  # what each input file gave
    changed: list[FileCounts] = field(default_factory=list)  # changed after the job read them

    def add(self, counts: FileCounts) -> None:
        self.files.append(counts)
        self.rows_scored += counts.rows_scored
        self.rows_rejected += counts.rows_rejected

    @property
    def failed(self) -> list[FileCounts]:
        """The files not read (to their end), or changed while they were read."""
        return [f for f in self.files if f.status != READ]


@dataclass
class FlinkHome:
    """The apache-flink package's Flink distribution: its ``flink`` script, its jars."""

    root: Path
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def flink(self) -> Path:
        return self.root / "bin" / "flink"


def flink_home() -> FlinkHome:
    """The installed apache-flink package, with Java checked; a clear error otherwise."""
    found = importlib.util.find_spec("pyflink")
    if found is None or found.origin is None:
        raise FlinkError("Flink is not installed: install churnctl's Flink extra, "
                         "pip install 'churnctl[flink]'")  # fmt: skip
    check_java()
    root = Path(found.origin).parent
    return FlinkHome(root, {**os.environ, "FLINK_HOME": str(root)})


def check_java() -> None:
    """Java 11 or newer (Flink 2 runs on 11, 17 or 21)."""
    java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else None
    command = str(java) if java and java.exists() else shutil.which("java")
    if command is None:
        raise FlinkError("Java not found: Flink needs Java 17; install it or set JAVA_HOME")
    done = subprocess.run([command, "-version"], capture_output=True, text=True, timeout=30)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr)
    major = int(match.group(1)) if match else 0
    major = int(match.group(2) or 0) if major == 1 and match else major
    if major < 11:
        raise FlinkError(f"{command} is Java {major or 'of an unknown version'}: Flink needs "
                         "Java 17 (11 or newer); install it or set JAVA_HOME")  # fmt: skip


def emit_job(spec: FlinkJobSpec, target: Path) -> Path:
    """Write the job file; its path."""
    try:
        target.write_text(render_job(spec), encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{target}: cannot write the job file ({exc.strerror or exc})") from None
    return target


def submit(request: FlinkRequest) -> FlinkResult:
    """Run the job embedded (waiting for it) or submit it to ``request.jobmanager``."""
    home = flink_home()
    out_dir = Path(request.spec.out_dir)
    work = out_dir / WORK_FOLDER
    bounded = not request.spec.streaming
    resuming = resumes(request)
    _check_out_dir(out_dir, resumable=resuming)
    work.mkdir(parents=True, exist_ok=True)
    if not bounded:
        _check_same_job(work / IDENTITY_FILE, request.spec, resuming)
    staging = work / f"staging-{os.getpid()}"
    spec = replace(request.spec, out_dir=str(staging)) if bounded else request.spec
    if not bounded:
        write_schema(out_dir, output_columns(spec.keep))
    job = emit_job(spec, work / "job.py")
    log = work / "job.log"
    started = time.perf_counter()
    with _staging(staging if bounded else None):
        job_id = _run(home, request, job.resolve(), log)
        if not bounded and request.jobmanager is not None:
            return FlinkResult(out_dir=out_dir, job_id=job_id, log=log, finished=False)
        if bounded:
            _publish(staging, out_dir, request.max_rejects)
            write_schema(out_dir, output_columns(spec.keep))
    result = count_outputs(out_dir)
    result.seconds, result.job_id, result.log = time.perf_counter() - started, job_id, log
    result.changed = changed_after_read(result)
    record_changes(out_dir, result.changed)
    return result


def _check_same_job(path: Path, spec: FlinkJobSpec, resuming: bool) -> None:
    """A streaming job resumes only the job it is (same input, state, model and outputs):
    its identity is kept beside its checkpoints."""
    identity = job_identity(spec)
    if resuming and path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in identity if before.get(k) != identity[k])
        if changed:
            raise OutputError(
                f"{spec.out_dir}: holds the outputs and checkpoints of a streaming job with "
                f"another {', '.join(changed)}; resuming it would mix two jobs' rows; choose "
                "another output folder (or run the earlier job again)"
            )
    path.write_text(json.dumps(identity, indent=2) + "\n", encoding="utf-8")


def job_identity(spec: FlinkJobSpec) -> dict[str, object]:
    """What makes two streaming runs one job: what they read, score with, and write."""
    return {
        "input": spec.input, "state": load_state(Path(spec.state)).fingerprint,
        "model": _digest(spec.model),
        "keep": list(spec.keep), "threshold": spec.threshold, "logits": spec.logits,
        "delimiter": spec.delimiter, "decimal": spec.decimal, "encoding": spec.encoding,
    }  # fmt: skip


def _digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


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


def _run(home: FlinkHome, request: FlinkRequest, job: Path, log: Path) -> str | None:
    if request.jobmanager is None:
        if request.from_savepoint is not None:
            raise UsageError("a savepoint is restored on a cluster only",
                             fix=Fix("jobmanager", "HOST:PORT"))  # fmt: skip
        _logged([sys.executable, str(job)], home, log, "the embedded Flink job")
        return None
    check_reachable(request.jobmanager)
    python = request.spec.python_executable  # runs job.py (-pyclientexec) and the workers
    command = [str(home.flink), "run", "-m", request.jobmanager, "-py", str(job),
               "-pyclientexec", python, "-pyexec", python]  # fmt: skip
    if request.spec.streaming:
        command.insert(2, "-d")
    if request.from_savepoint is not None:
        command[2:2] = ["-s", request.from_savepoint]
    output = _logged(command, home, log, f"the Flink job on {request.jobmanager}")
    match = JOB_ID.search(output)
    return match.group(1) if match else None


def stop_job(jobmanager: str, job_id: str, savepoint_dir: str, log: Path) -> str:
    """Stop a streaming job with a savepoint; the savepoint's path."""
    home = flink_home()
    check_reachable(jobmanager)
    command = [str(home.flink), "stop", "-m", jobmanager, "--savepointPath", savepoint_dir, job_id]
    output = _logged(command, home, log, f"stopping job {job_id} on {jobmanager}")
    match = SAVEPOINT.search(output)
    if match is None:
        raise FlinkError(f"job {job_id} stopped but no savepoint path was reported; see {log}")
    return match.group(1)


def check_reachable(jobmanager: str) -> None:
    """Refuse an address no Flink REST endpoint answers on, naming it."""
    host, _, port = jobmanager.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"the job manager must be HOST:PORT, got {jobmanager!r}",
                         fix=Fix("jobmanager", "127.0.0.1:8081"))  # fmt: skip
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        raise FlinkError(f"cannot reach the Flink cluster at {jobmanager} "
                         f"({exc.strerror or exc}); is it running?") from None  # fmt: skip


def _logged(command: list[str], home: FlinkHome, log: Path, what: str) -> str:
    """Run ``command`` with its output appended to ``log``; its output, or a FlinkError."""
    # Flink's own log files beside ours, not in the package's log/ (FLINK_LOG_DIR wins)
    env = {"FLINK_LOG_DIR": str(log.parent), **home.environment}
    done = subprocess.run(command, env=env, capture_output=True, text=True,
                          errors="replace", stdin=subprocess.DEVNULL)  # fmt: skip
    output = done.stdout + done.stderr
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(command)}\n{output}\n")
    if done.returncode != 0:
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


def count_outputs(out_dir: Path) -> FlinkResult:
    """What a job's ``files/`` records say: rows scored and rejected, and the files read."""
    result = FlinkResult(out_dir=out_dir)
    for part in finished_parts(out_dir / FILES):
        with part.open(encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle):
                result.add(_file_counts(row))
    return result


def _file_counts(row: list[str]) -> FileCounts:
    source, size, mtime, scored, rejected, status, detail = row
    return FileCounts(source, int(size), int(mtime), int(scored), int(rejected), status, detail)


def finished_parts(folder: Path) -> list[Path]:
    """Finished part files (Flink keeps in-progress ones hidden, with a leading dot)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith((".", "_")))


def check_paths(spec: FlinkJobSpec) -> None:
    """Refuse a path Flink would read as another one (it takes a backslash for a slash)."""
    for what, path in (("input", spec.input), ("output folder", spec.out_dir)):
        if "\\" in path:
            raise UsageError(f"{path}: Flink reads a backslash in a path as '/', so it cannot "
                             f"use this {what}; rename it without a backslash")  # fmt: skip


def check_inputs(spec: FlinkJobSpec, scorer: Scorer) -> list[str]:
    """Before a bounded job: the files it will read, each refused now if ``score`` would refuse
    it (no needed column by its own header, unreadable, not a regular file ...)."""
    root = Path(spec.input)
    if root.is_dir():
        others = scan_folder(root, NameRules()).others
        for name, stat in sorted(others.items()):
            raise InputError(f"{root / name}: is a {kind_of(stat.st_mode)}, not a regular file: "
                             "Flink would read it; move it out of the input folder")  # fmt: skip
    files = expand_inputs([spec.input])
    for file in files:
        opened = open_source(file, scorer.required_columns, spec.read_options,
                             columns=Columns(scorer.keep))  # fmt: skip
        opened.close()
    return files


def changed_after_read(result: FlinkResult) -> list[FileCounts]:
    """The input files read whole whose size or mtime is not what the job read: each with
    what it is now (``bytes``, ``mtime_ns``) and why it matters (``detail``)."""
    changed = []
    for done in result.files:
        try:
            now = os.stat(done.source, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed after it was read: nothing of it is lost
        if done.status != FAILED and (now.st_size, now.st_mtime_ns) != (done.bytes, done.mtime_ns):
            detail = (f"changed after the job read it ({done.bytes:,} bytes read, "
                      f"{now.st_size:,} now): what changed was not scored; write files "
                      "elsewhere and rename them into the folder when complete")  # fmt: skip
            changed.append(replace(done, bytes=now.st_size, mtime_ns=now.st_mtime_ns,
                                   status=CHANGED, detail=detail))  # fmt: skip
    return changed


def record_changes(out_dir: Path, changed: list[FileCounts]) -> Path | None:
    """Append a file-level rejects record per changed file to ``rejects/CHANGES_FILE``."""
    if not changed:
        return None
    path = out_dir / OUTPUTS[1] / CHANGES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(
            [f.source, "", "", f.detail, ""] for f in changed)  # fmt: skip
    return path


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
    if limit.exceeded(counts.rows_rejected, counts.rows_read, final=True):
        raise _too_many(counts, limit)
    for name in OUTPUTS:
        (staging / name).mkdir(exist_ok=True)
        shutil.rmtree(out_dir / name, ignore_errors=True)  # empty: checked before the job
        os.replace(staging / name, out_dir / name)


def _too_many(counts: FlinkResult, limit: RejectLimit) -> ChurnctlError:
    note = "; ".join(f.detail for f in counts.files if "decimal comma" in f.detail)
    return TooManyRejectsError(
        f"{counts.rows_rejected:,} of {counts.rows_read:,} rows rejected, over the limit of "
        f"{limit}; nothing was published" + (f" ({note})" if note else ""),
        fix=DECIMAL_FIX if note else Fix("max_rejects", "100%", "to never fail on rejects"),
    )


@contextlib.contextmanager
def _staging(staging: Path | None) -> Iterator[None]:
    """A bounded job's staging folder, removed whatever happens."""
    try:
        yield
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
