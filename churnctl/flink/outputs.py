"""What a Flink job's outputs say: the counts of its ``files/`` records, and the input
files that changed after the job read them.

Each input file the job reads gives one ``files/`` record (``flink.scoring``): its
size and mtime as read, its rows scored and rejected, its status. The counts of a
run are those records' sums: records, counted by churnctl's own reader, not lines.
Only finished part files count (Flink keeps in-progress ones hidden).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from churnctl.batch.counts import RowCounts
from churnctl.flink.scoring import CHANGED, FAILED, FILES, OUTPUTS, READ, FileCounts
from churnctl.io.rejects import file_reject
from churnctl.io.sinks import csv_text

CHANGES_FILE = "changed-after-read.csv"  # in rejects/: files that changed after they were read


@dataclass
class FlinkResult:
    """What a run did: the counts of a finished job, or a submitted job."""

    rows: RowCounts = field(default_factory=RowCounts)
    seconds: float = 0.0
    out_dir: Path = Path()
    job_id: str | None = None
    log: Path | None = None
    finished: bool = True
    files: list[FileCounts] = field(default_factory=list)  # what each input file gave
    changed: list[FileCounts] = field(default_factory=list)  # changed after the job read them

    def add(self, counts: FileCounts) -> None:
        self.files.append(counts)
        self.rows += RowCounts.of(counts.rows_scored, counts.rows_rejected)

    @property
    def failed(self) -> list[FileCounts]:
        """The files not read (to their end), or changed while they were read."""
        return [f for f in self.files if f.status != READ]


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
            detail = (
                f"changed after the job read it ({done.bytes:,} bytes read, "
                f"{now.st_size:,} now): what changed was not scored; write files "
                "elsewhere and rename them into the folder when complete"
            )
            changed.append(
                replace(
                    done, bytes=now.st_size, mtime_ns=now.st_mtime_ns, status=CHANGED, detail=detail
                )
            )
    return changed


def record_changes(out_dir: Path, changed: list[FileCounts]) -> Path | None:
    """Append a file-level rejects record per changed file to ``rejects/CHANGES_FILE``."""
    if not changed:
        return None
    path = out_dir / OUTPUTS[1] / CHANGES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.write(csv_text(file_reject(f.source, f.detail) for f in changed))
    return path
