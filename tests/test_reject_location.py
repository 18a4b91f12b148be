"""Rejects are located by rereading from a record boundary noted while reading, not the start.

The reference is the full reread (a ``RejectLog`` without an index): the rejects
file must be the same bytes, while far fewer bytes are read again.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from csv_rows import csv_bytes, text_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.features.columns import MAX_FIELD_CHARS
from churnctl.io.csv.records import QuoteGuard, RecordIndex, line_counts, split_records
from churnctl.io.rejects import NO_LIMIT, REJECTS_SCHEMA, RejectLog
from churnctl.io.sinks import CsvWriter
from churnctl.io.sources import ReadOptions, open_source
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.samples.generate import COLUMNS
from churnctl.scoring.scorer import Scorer

SCORER = Scorer(bundled(STATE), bundled(MODEL))


def located_rejects(
    path: Path, options: ReadOptions, *, indexed: bool, index: RecordIndex | None = None
) -> tuple[bytes, int]:
    """The rejects CSV of scoring ``path``, and the bytes read again to locate them.

    ``indexed``: with the source's index, or ``index`` if given; else the full reread.
    """
    source = open_source(path, SCORER.required_columns, options)
    out = io.BytesIO()
    rereading = source.rereading
    assert rereading is not None
    rereading = replace(rereading, index=(index or rereading.index) if indexed else None)
    log = RejectLog(CsvWriter(out, REJECTS_SCHEMA), source.name, rereading=rereading)
    try:
        for part in source.batches:
            log.record_batch(part, SCORER.score(part.rows).rejects)
        log.finish()
    finally:
        source.close()
    return out.getvalue(), log.reread_bytes


def with_bad_value(rows: list[list[str]], row: int, column: str = "Age") -> list[list[str]]:
    rows = [list(r) for r in rows]
    rows[row][COLUMNS.index(column)] = "not-a-number"
    return rows


def test_a_reject_in_the_last_batch_is_located_by_rereading_about_one_batch(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(csv_bytes(with_bad_value(text_rows(6_000, seed=2), -1)))
    options = ReadOptions(block_size=16 << 10)
    indexed, reread = located_rejects(path, options, indexed=True)
    full, full_reread = located_rejects(path, options, indexed=False)
    assert indexed == full
    assert b",6001,Age,not a number," in indexed
    assert full_reread >= path.stat().st_size > 20 * options.block_size
    assert reread <= 3 * options.block_size


def test_score_file_writes_the_rejects_the_full_reread_gives(tmp_path: Path) -> None:
    rows = with_bad_value(with_bad_value(text_rows(3_000, seed=4), 1_500), -1, "Geography")
    path = tmp_path / "in.csv"
    path.write_bytes(csv_bytes(rows).replace(b"\n", b"\r\n"))
    options = ReadOptions(block_size=8 << 10)
    request = ScoreRequest(
        str(path), str(tmp_path / "out.csv"), SCORER, max_rejects=NO_LIMIT, read_options=options
    )
    score_file(request)
    assert (tmp_path / "out.rejects.csv").read_bytes() == located_rejects(
        path, options, indexed=False
    )[0]


def test_a_malformed_line_early_makes_later_rejects_start_before_it(tmp_path: Path) -> None:
    rows = with_bad_value(text_rows(4_000, seed=5), -1)
    del rows[100][5:]  # too few fields: Arrow sets it aside, it must keep its place
    lines = csv_bytes(rows).split(b"\n")
    lines[2_001] = b'"' + lines[2_001]  # and a stray quote: an unbalanced-quote runaway
    path = tmp_path / "in.csv"
    path.write_bytes(b"\n".join(lines))
    options = ReadOptions(block_size=8 << 10)
    indexed, _ = located_rejects(path, options, indexed=True)
    assert indexed == located_rejects(path, options, indexed=False)[0]
    assert indexed.count(b"\n") == 4


@pytest.mark.parametrize("kind", ["gzip", "bom", "latin-1"])
def test_other_inputs_give_the_rejects_of_the_full_reread(tmp_path: Path, kind: str) -> None:
    rows = with_bad_value(text_rows(3_000, seed=6), -2)
    rows[-2][COLUMNS.index("Surname")] = 'Müller, "né"\nX'
    data = csv_bytes(rows)
    options = ReadOptions(block_size=8 << 10)
    path = tmp_path / "in.csv"
    if kind == "gzip":
        path = tmp_path / "in.csv.gz"
        path.write_bytes(gzip.compress(data))
    elif kind == "bom":
        path.write_bytes(codecs.BOM_UTF8 + data)
    else:
        path.write_bytes(data.decode().replace(",", ";").encode("latin-1"))
        options = ReadOptions(delimiter=";", encoding="latin-1", block_size=8 << 10)
    indexed, _ = located_rejects(path, options, indexed=True)
    assert indexed == located_rejects(path, options, indexed=False)[0]
    assert "Müller".encode() in indexed


FIELD = st.sampled_from(["", "a", "x y", "a,b", "\n", "\r\n", "ab\ncd", "é", '"', '""', "  "])


@st.composite
def messy_files(draw: st.DrawFn) -> bytes:
    """Churn rows with multi-line quoted fields, bad values, short rows, stray quotes, blanks."""
    rows = text_rows(draw(st.integers(1, 80)), seed=draw(st.integers(0, 9)))
    lines = []
    for row in rows:
        change = draw(st.sampled_from(["none"] * 5 + ["field", "bad", "short", "stray", "blank"]))
        i = COLUMNS.index(draw(st.sampled_from(["Surname", "Geography", "Age", "RowNumber"])))
        if change == "field":
            row[i] = draw(FIELD)
        elif change == "bad":
            row[i] = "?"
        elif change == "short":
            del row[i:]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(row)
        line = buffer.getvalue()
        lines.append(
            ('"' + line if change == "stray" else line) + ("\n" if change == "blank" else "")
        )
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = ",".join(COLUMNS) + "\n" + "".join(lines)
    return text.replace("\n", newline).encode()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=messy_files(), block_size=st.sampled_from([256, 1024, 4096]))
def test_on_messy_files_the_rejects_equal_those_of_the_full_reread(
    tmp_path_factory: pytest.TempPathFactory, content: bytes, block_size: int
) -> None:
    path = tmp_path_factory.mktemp("messy") / "in.csv"
    path.write_bytes(content)
    options = ReadOptions(block_size=block_size)
    full, _ = located_rejects(path, options, indexed=False)
    assert located_rejects(path, options, indexed=True)[0] == full
    every = every_boundary(content)  # a reject first in its batch tests the boundary exactly
    assert located_rejects(path, options, indexed=True, index=every)[0] == full


def every_boundary(content: bytes) -> RecordIndex:
    """An index with a checkpoint after every line that ends a record."""
    return guarded_index(content, chunk_size=1)


def guarded_index(content: bytes, *, chunk_size: int, cap: int = MAX_FIELD_CHARS) -> RecordIndex:
    """The checkpoints a quote guard notes as it reads ``content`` in ``chunk_size`` chunks."""
    index = RecordIndex()
    guard = QuoteGuard(
        io.BytesIO(content),
        delimiter=",",
        encoding="utf-8",
        width=len(COLUMNS),
        cap=cap,
        runaways={},
        chunk_size=chunk_size,
        index=index,
    )
    io.BufferedReader(guard).read()
    return index


def boundaries(data: bytes, cap: int, width: int) -> dict[int, tuple[int, int]]:
    """Byte offset of each record start → (physical lines, non-blank records) before it."""
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")
    found, offset, lines, records = {0: (0, 0)}, 0, 0, 0
    for split in split_records(text, delimiter=",", cap=cap, width=width):
        offset += sum(len(line.encode()) for line in split.lines)
        lines += len(split.lines)
        records += bool(split.fields or split.runaway)
        found[offset] = (lines, records)
    return found


@settings(max_examples=300, deadline=None)
@given(content=messy_files(), chunk_size=st.integers(1, 300), cap=st.sampled_from([5, 10_000]))
def test_every_checkpoint_counts_the_lines_and_records_before_it(
    content: bytes, chunk_size: int, cap: int
) -> None:
    index = guarded_index(content, chunk_size=chunk_size, cap=cap)
    expected = boundaries(content, cap, len(COLUMNS))
    for point in index.points():
        assert expected.get(point.offset) == (point.lines, point.records), point


def counted_lines(data: bytes) -> tuple[int, int]:
    """``line_counts`` the slow way: each line end (\\n, \\r\\n, a lone \\r), and the
    lines with something before their end."""
    lines = data.decode("latin-1").splitlines(keepends=True)
    return len(lines), sum(1 for line in lines if line.rstrip("\r\n"))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="a\n\r", max_size=40).map(lambda text: text.encode() + b"\n"))
def test_line_counts_count_line_ends_and_the_non_blank_lines(data: bytes) -> None:
    assert line_counts(data) == counted_lines(data)
    buffer = np.frombuffer(data, np.uint8)  # the breaks a quote scan found, handed over
    breaks = np.flatnonzero((buffer == ord("\n")) | (buffer == ord("\r")))
    if b"\r" not in data:
        breaks = np.flatnonzero(buffer == ord("\n"))
    assert line_counts(data, breaks) == counted_lines(data)


BOM = codecs.BOM_UTF8


def checkpoints(content: bytes, chunk_size: int) -> list[tuple[int, int, int]]:
    return [tuple(point) for point in guarded_index(content, chunk_size=chunk_size).points()]


@settings(max_examples=100, deadline=None)
@given(content=messy_files(), chunk_size=st.integers(1, 300))
def test_a_byte_order_mark_moves_the_checkpoints_by_its_bytes_alone(
    content: bytes, chunk_size: int
) -> None:
    """Counted by NumPy or from a quote scan's breaks, the mark is never a line's content."""
    marked = {offset - 3: counts for offset, *counts in checkpoints(BOM + content, chunk_size)}
    plain = {offset: counts for offset, *counts in checkpoints(content, chunk_size)}
    both = marked.keys() & plain.keys()  # the reads are cut in other places: 3 bytes apart
    assert both and all(marked[offset] == plain[offset] for offset in both)
