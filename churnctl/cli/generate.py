"""The ``generate`` command: synthetic churn records (``samples.generate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnctl.cli.app import command
from churnctl.cli.console import stderr
from churnctl.cli.options import path_value
from churnctl.defaults import MAX_FILES


@command
def generate(
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            metavar="PATH",
            parser=path_value,
            help="A .csv, .csv.gz or .parquet file; with --files N, a directory for N CSV parts.",
        ),
    ],
    rows: Annotated[
        int, typer.Option("-n", "--rows", metavar="N", min=0, help="Number of rows.")
    ] = 10_000,
    files: Annotated[
        int,
        typer.Option(metavar="N", min=1, max=MAX_FILES, help="Split the rows into N part files."),
    ] = 1,
    seed: Annotated[
        int, typer.Option(metavar="N", min=0, help="Random seed (same seed, same bytes).")
    ] = 0,
) -> None:
    """Write synthetic churn records with the bank-churn schema (CSV, CSV.gz or Parquet)."""
    from churnctl.samples.generate import generate_files

    paths = generate_files(output, n_rows=rows, files=files, seed=seed)
    stderr.print(f"wrote {rows:,} rows to {len(paths)} file(s) under {output}", markup=False)
