"""One input's job: score it into its output and rejects file, or say why it was refused.

A job is pickled to a pool worker (``pool``) or run in this process; either way its
outcome is a ``FileResult``: its counts, or its own ``ChurnctlError``, which does not
stop the other inputs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from churnctl.atomic import file_sha256
from churnctl.batch.score_file import RunSummary, ScoreRequest, score_file
from churnctl.errors import ChurnctlError, InputError
from churnctl.io.naming import derived_names
from churnctl.io.rejects import RejectLimit
from churnctl.io.sources import ReadOptions, is_stream
from churnctl.scoring.scorer import Scorer

FileDone = Callable[["FileResult"], None]


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


@dataclass(frozen=True)
class Job:
    """One input to score, and where its output and rejects go; pickled to a worker."""

    index: int
    input: str
    folder: str
    format: str
    part: bool  # named by index (a part of one output), else as watch names it
    max_rejects: RejectLimit
    read_options: ReadOptions
    drift: bool = True  # compare the input with the state's training profile


def score_job(job: Job, scorer: Scorer) -> FileResult:
    """Score one input; its own ``ChurnctlError`` becomes its result."""
    try:
        output, rejects = _targets(job)
        summary = score_file(
            ScoreRequest(
                input=job.input,
                output=output,
                scorer=scorer,
                format=job.format,
                rejects=rejects,
                max_rejects=job.max_rejects,
                read_options=job.read_options,
                sidecar=not job.part,  # a part's is the joined output's
                drift=job.drift,
            )
        )
    except ChurnctlError as exc:
        return FileResult(job.input, error=exc, process=os.getpid())
    return FileResult(job.input, output, rejects, summary, process=os.getpid())


def _targets(job: Job) -> tuple[str, str]:
    """Where a job's output and rejects go: a part's by index, else named as watch names them."""
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
