"""Reading input files as a stream of Arrow record batches, in constant memory.

CSV (optionally compressed, e.g. ``.csv.gz``), Parquet, or ``-`` for CSV on
stdin; a pipe or FIFO (``<(zcat x.gz)``) is read as a stream, like stdin. The
public entry points: ``open_source`` opens an input as a ``BatchSource`` (its
header checked first), ``read_columns`` reads a header only, ``check_input``
refuses a missing input before anything is created. The work is done by
``csv.reader`` (with ``csv.header``), ``parquet``, ``stream`` (raw bytes,
decompression) and ``spool`` (a streamed input kept to be read again); the
values they share live in ``reading`` and are importable from here.
Unreadable input is an ``InputError`` naming the file.
"""

from __future__ import annotations

import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from churnctl.errors import InputError
from churnctl.io.csv.reader import open_csv
from churnctl.io.formats import is_parquet
from churnctl.io.parquet import open_parquet
from churnctl.io.reading import (
    STDIN,
    BadLine,
    BatchSource,
    Columns,
    Progress,
    ReadOptions,
    Rereading,
    SourceBatch,
    check_read_options,
    parse_error,
    read_error,
)

__all__ = [
    "STDIN",
    "BadLine",
    "BatchSource",
    "Columns",
    "Progress",
    "ReadOptions",
    "Rereading",
    "SourceBatch",
    "check_input",
    "check_read_options",
    "is_stream",
    "open_source",
    "parse_error",
    "read_columns",
    "read_error",
]


def open_source(
    source: str | Path,
    required: Sequence[str],
    options: ReadOptions = ReadOptions(),
    *,
    read_from: str | Path | None = None,
    columns: Columns = Columns(),
) -> BatchSource:
    """Open ``source`` and check its header; batches carry only ``required`` columns.

    A pipe, FIFO or device (``<(zcat x.gz)``) is read once, as a stream, like stdin.
    ``read_from`` is where the bytes are read when not ``source`` itself (a held
    descriptor's ``/proc/self/fd/N``): the format and the compression still come from
    ``source``'s name, and every message names ``source``. ``columns`` says which of
    the required columns are only kept, and whether batches carry every column.
    """
    name = "<stdin>" if str(source) == STDIN else str(source)
    where = source if read_from is None else read_from
    streamed = str(source) == STDIN or is_stream(where)
    if is_parquet(source):
        return open_parquet(Path(source), required, columns, streamed=streamed, where=Path(where))
    check_read_options(name, options)
    return open_csv(source, name, required, options, columns, streamed=streamed, where=where)


def read_columns(source: str | Path, options: ReadOptions = ReadOptions()) -> list[str]:
    """The columns of an input file's header (a regular file: it is read again later)."""
    if str(source) == STDIN or is_stream(source):
        raise InputError(
            f"{source}: not a regular file: its header is read first, and a pipe can be read "
            "only once"
        )
    opened = open_source(source, (), options)
    opened.close()
    return opened.columns


def is_stream(source: str | Path) -> bool:
    """Whether an existing input is a pipe, FIFO or device rather than a regular file."""
    name = str(source)
    try:
        mode = Path(source).stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{name}: input file not found") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot open: {exc.strerror or exc}") from None
    except (UnicodeError, ValueError):  # a lone surrogate, a NUL: no file can have that name
        raise InputError(
            f"the input {name} is not a valid file name here (it cannot be encoded as "
            f"{sys.getfilesystemencoding()}); use another name"
        ) from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{name}: is a directory, not a CSV or Parquet file")
    return not stat.S_ISREG(mode)


def check_input(source: str | Path) -> None:
    """Refuse an input that is missing, unreadable or a folder: before anything is created.

    Every run checks each of its inputs with this first, so that a wrong name never
    leaves an output folder, a temporary file or a state behind. Stdin always exists.
    """
    if str(source) != STDIN:
        is_stream(source)
