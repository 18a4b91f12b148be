"""The output folder as published: row counts read back from its files, temporaries removed."""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from churnctl.atomic import temporaries
from churnctl.batch.counts import RowCounts
from churnctl.io.sinks import output_format


def remove_temporaries(out_dir: Path) -> int:
    """Remove the temporary files a killed run left in ``out_dir``; how many."""
    removed = 0
    for leftover in temporaries(Path(out_dir)):
        leftover.unlink(missing_ok=True)
        removed += 1
    return removed


def published_counts(output: Path, rejects: Path) -> RowCounts:
    """The row counts of a published output and rejects file, read back from them."""
    fmt = output_format(str(output), None)
    if fmt == "parquet":
        scored = pq.ParquetFile(output).metadata.num_rows
    elif fmt == "jsonl":
        with output.open("rb") as handle:
            scored = sum(1 for _ in handle)
    else:
        scored = _csv_rows(output)
    rejected = _csv_rows(rejects)
    return RowCounts.of(scored, rejected)


def _csv_rows(path: Path) -> int:
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    return pa_csv.read_csv(path, parse_options=parse).num_rows
