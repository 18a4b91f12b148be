"""Physical line numbers and original text of CSV records, for the rejects file.

Arrow's fast reader does not report where a record came from. When a batch has
rejected rows, a second, lazy pass over the same bytes with Python's ``csv``
module (same dialect, same cap on runaway quoted fields, see ``records``) finds
each record's first line number and its original text. It only ever reads as
far as the last rejected record, so files without rejects are never read twice.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from typing import BinaryIO, NamedTuple

from churnctl.records import split_records


class Record(NamedTuple):
    """One CSV record: first physical line (1-based), fields and original text.

    A runaway record (see ``records``) is its first line alone, with no fields.
    """

    line: int
    fields: list[str]
    text: str
    runaway: bool = False


def iter_records(stream: BinaryIO, *, delimiter: str, encoding: str, cap: int) -> Iterator[Record]:
    """Non-blank records of a CSV byte stream, header included, with their lines and text."""
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"
    text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
    line_no = 0
    for split in split_records(text, delimiter=delimiter, cap=cap):
        start, line_no = line_no + 1, line_no + len(split.lines)
        if split.fields or split.runaway:
            yield Record(start, split.fields, "".join(split.lines).rstrip("\r\n"), split.runaway)


class RecordLocator:
    """Maps data-record positions to (line, text), reading lazily and only forward.

    A record is *valid* when it has as many fields as the header (and is not a
    runaway); Arrow returns exactly those as rows, and hands the others to its
    invalid-row handler.
    """

    def __init__(self, stream: BinaryIO, *, delimiter: str, encoding: str, cap: int) -> None:
        self._records = iter_records(stream, delimiter=delimiter, encoding=encoding, cap=cap)
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
            if record.runaway or len(record.fields) != self._width:
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
