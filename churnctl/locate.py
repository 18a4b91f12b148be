"""Physical line numbers and original text of CSV records, for the rejects file.

Arrow's fast reader does not report where a record came from. When a batch has
rejected rows, a second, lazy pass over the same bytes with Python's ``csv``
module (same dialect) finds each record's first line number and its original
text. It only ever reads as far as the last rejected record, so files without
rejects are never read twice.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

FIELD_SIZE_LIMIT = 1 << 30


@dataclass(frozen=True)
class Record:
    """One CSV record: first physical line (1-based), fields and original text."""

    line: int
    fields: list[str]
    text: str


def iter_records(stream: BinaryIO, *, delimiter: str, encoding: str) -> Iterator[Record]:
    """Non-blank records of a CSV byte stream, header included, with their lines and text."""
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        for line in text:
            consumed.append(line)
            yield line

    csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))
    reader = csv.reader(lines(), delimiter=delimiter)
    line_no = 0
    for fields in reader:
        raw = "".join(consumed)
        start, line_no = line_no + 1, line_no + len(consumed)
        consumed.clear()
        if fields:
            yield Record(start, fields, raw.rstrip("\r\n"))


class RecordLocator:
    """Maps data-record positions to (line, text), reading lazily and only forward.

    A record is *valid* when it has as many fields as the header; Arrow returns
    exactly those as rows, and hands the others to its invalid-row handler.
    """

    def __init__(self, stream: BinaryIO, *, delimiter: str, encoding: str) -> None:
        self._records = iter_records(stream, delimiter=delimiter, encoding=encoding)
        header = next(self._records, None)
        self._width = len(header.fields) if header else 0
        self._valid_seen = 0
        self._located: dict[int, Record] = {}
        self.invalid: list[Record] = []

    def advance(self, n_valid: int, wanted: set[int] | None = None) -> None:
        """Read until ``n_valid`` valid records are seen, keeping the ``wanted`` ones."""
        while self._valid_seen < n_valid:
            record = next(self._records, None)
            if record is None:
                return
            if len(record.fields) != self._width:
                self.invalid.append(record)
                continue
            if wanted is None or self._valid_seen in wanted:
                self._located[self._valid_seen] = record
            self._valid_seen += 1

    def drain(self) -> None:
        """Read to the end of the input, collecting the remaining invalid records."""
        self.advance(1 << 62, wanted=set())

    def pop(self, valid_index: int) -> Record | None:
        """The located record at ``valid_index`` (0-based among valid records), once."""
        return self._located.pop(valid_index, None)
