"""Which streaming runs are one job: a run resumes from the checkpoints under its output
folder only if it reads, scores and writes as the run that made them did."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from churnctl.errors import OutputError
from churnctl.features.state import load_state
from churnctl.flink.job import FlinkJobSpec, latest_checkpoint

IDENTITY_FILE = "streaming-job.json"  # beside the checkpoints: what a resumed job must be


def check_same_job(path: Path, spec: FlinkJobSpec, resuming: bool) -> None:
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
        "input": spec.input,
        "state": load_state(Path(spec.state)).fingerprint,
        "model": _digest(spec.model),
        "keep": list(spec.keep),
        "threshold": spec.threshold,
        "logits": spec.logits,
        "delimiter": spec.delimiter,
        "decimal": spec.decimal,
        "encoding": spec.encoding,
    }


def _digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def prune_checkpoints(folder: str | None) -> list[Path]:
    """Remove the checkpoints of earlier runs but the one a new run resumes from (the
    newest complete one): at most two runs' checkpoints are ever kept. The removed."""
    if folder is None or (latest := latest_checkpoint(Path(folder))) is None:
        return []
    older = [job for job in Path(folder).iterdir() if job.is_dir() and job != latest.parent]
    for job in older:
        shutil.rmtree(job, ignore_errors=True)
    return older
