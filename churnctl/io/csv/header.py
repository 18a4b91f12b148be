"""A CSV input's header: its first non-blank line read, and split into column names."""

from __future__ import annotations

import codecs
import re
from typing import BinaryIO

import pyarrow as pa

from churnctl.errors import InputError
from churnctl.io.csv.records import split_records
from churnctl.io.reading import ENCODING_FIX, ReadOptions, first_line

HEADER_LIMIT = 1 << 20
LINE_BREAK = re.compile(rb"[\r\n]")


def read_header_bytes(stream: BinaryIO, name: str) -> tuple[bytes, bool]:
    """The first bytes, up to a complete first non-blank line (or the end of input).

    Also says whether the header line is whole: False when it runs past HEADER_LIMIT.
    """
    chunks: list[bytes] = []
    size = 0
    read = getattr(stream, "read1", stream.read)  # a pipe: what has arrived, without waiting
    while True:
        prefix = b"".join(chunks)
        if _has_complete_line(prefix):
            return prefix, True
        if size > HEADER_LIMIT:
            return prefix, False
        try:
            chunk = read(1 << 16)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{name}: cannot read: {first_line(exc)}") from None
        if not chunk:
            return prefix, True
        chunks.append(chunk)
        size += len(chunk)


def _has_complete_line(prefix: bytes) -> bool:
    """Whether a non-blank line ends (with a line break) within ``prefix``."""
    start = 0
    while (found := LINE_BREAK.search(prefix, start)) is not None:
        if prefix[start : found.start()].strip():
            return True
        start = found.end()
    return False


def parse_header(
    prefix: bytes, name: str, options: ReadOptions, *, whole: bool = True
) -> list[str]:
    """Column names from the first non-blank line of a CSV file."""
    if b"\x00" in prefix[:4096]:
        raise InputError(
            f"{name}: binary content (NUL bytes), not {options.encoding} CSV text; "
            "a Parquet file needs a .parquet name, a gzip file a .gz name"
        )
    if not whole:
        raise InputError(
            f"{name}: the header line is longer than {HEADER_LIMIT >> 20} MiB (no line break in "
            f"its first {HEADER_LIMIT:,} bytes); keep only the needed columns, or check that "
            "this is a CSV file"
        )
    encoding = "utf-8-sig" if codecs.lookup(options.encoding).name == "utf-8" else options.encoding
    first = next((line for line in prefix.splitlines() if line.strip()), None)
    if first is None:
        raise InputError(f"{name}: the file is empty (no header line, no rows)")
    try:
        text = first.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError:
        raise InputError(
            f"{name}: header is not valid {options.encoding} text", fix=ENCODING_FIX
        ) from None
    split = next(split_records([text], delimiter=options.delimiter, cap=0))
    if split.cut:
        raise InputError(f"{name}: the header line has an unbalanced quote; fix the header")
    return split.fields
