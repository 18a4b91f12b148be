"""What a Flink run tells while it works, as it happens: the CLI prints it, the library never.

``submit`` hands each event to its ``on_event`` callback, in this order: stale staging
folders removed (if any), the checkpoint an embedded streaming job resumes from (if
any), the job starting, its id once Flink gives it, then the files
and the rows so far whenever they change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StaleStagingRemoved:
    """Staging folders of earlier runs that ended without cleaning up (killed), now removed."""

    folders: tuple[Path, ...]


@dataclass(frozen=True)
class JobStarting:
    """The job is being started: embedded (``jobmanager`` None) or on a session cluster."""

    jobmanager: str | None
    streaming: bool
    log: Path


@dataclass(frozen=True)
class Resuming:
    """An embedded streaming job resumes from this checkpoint: files read before it are not
    read again."""

    checkpoint: Path


@dataclass(frozen=True)
class JobSubmitted:
    """Flink gave the job its id; ``web_ui`` is its page on a cluster's web UI."""

    job_id: str
    web_ui: str | None


@dataclass(frozen=True)
class RowsSoFar:
    """Rows committed so far to the job's outputs."""

    scored: int
    rejected: int


@dataclass(frozen=True)
class FilesSoFar:
    """Input files scored so far, as Flink's metrics count them (``total``: a bounded job's)."""

    done: int
    total: int | None


@dataclass(frozen=True)
class FileWarning:
    """An input file of a streaming job that may not be read whole: it changed after the
    job read it, or it is still not read long after it landed (it may have been empty or
    still written when Flink listed it: Flink lists a file once)."""

    source: str
    detail: str


FlinkEvent = (
    StaleStagingRemoved
    | JobStarting
    | Resuming
    | JobSubmitted
    | RowsSoFar
    | FilesSoFar
    | FileWarning
)


def web_ui(jobmanager: str | None, job_id: str) -> str | None:
    """The job's page on the cluster's web UI (an embedded MiniCluster serves none)."""
    return None if jobmanager is None else f"http://{jobmanager}/#/job/running/{job_id}/overview"
