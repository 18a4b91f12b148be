"""Parquet inputs as a source of batches: the header checked, only needed columns read.

A streamed Parquet input (a pipe) is copied to a spool first: Parquet needs random
access. Progress counts the row groups' rows.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from churnctl.errors import InputError
from churnctl.features.schema_check import check_header
from churnctl.io.reading import BatchSource, Columns, SourceBatch, first_line
from churnctl.io.spool import copy_into, held_spool, remove_spool
from churnctl.io.stream import Meter

if TYPE_CHECKING:
    import pyarrow.parquet as pq


def open_parquet(
    path: Path, required: Sequence[str], columns: Columns, *, streamed: bool, where: Path
) -> BatchSource:
    """Open the Parquet file ``path`` (read at ``where``) and check its schema."""
    with held_spool(streamed, ".parquet") as spool:
        if spool is not None:
            copy_into(where, path, spool)
        try:
            import pyarrow.parquet as pq  # here: 10-40 ms that a CSV run need not pay

            parquet = pq.ParquetFile(spool or where)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: not a readable Parquet file: {first_line(exc)}") from None
        schema = parquet.schema_arrow
        check_header(str(path), schema, required, kept=columns.kept)
        if columns.every:
            check_header(str(path), schema, schema.names)  # nested columns cannot be kept
            required = schema.names
        meter = Meter(parquet.metadata.num_rows)
        return BatchSource(
            str(path),
            parquet.schema_arrow.names,
            _parquet_batches(parquet, str(path), required),
            read_share=None if streamed else meter.share,
            release=None if spool is None else functools.partial(remove_spool, spool),
        )


def _parquet_batches(
    parquet: pq.ParquetFile, name: str, required: Sequence[str]
) -> Iterator[SourceBatch]:
    batches = parquet.iter_batches(batch_size=65_536, columns=list(required))
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{name}: corrupt Parquet data: {first_line(exc)}") from None
        yield SourceBatch(batch)
