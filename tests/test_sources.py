"""Sources: batches with their malformed lines, and fields longer than a read block."""

from __future__ import annotations

import csv
import gzip
import os
import tempfile
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_helpers import run
from csv_rows import csv_bytes, text_rows

import churnctl.io.csv.reader
from churnctl.errors import InputError
from churnctl.io.sources import ReadOptions, SourceBatch, open_source
from churnctl.samples.generate import COLUMNS, generate_table

REQUIRED = ["CustomerId", "Geography", "Age"]


def read_all(path: Path | str, options: ReadOptions) -> list[SourceBatch]:
    source = open_source(path, REQUIRED, options)
    try:
        return list(source.batches)
    finally:
        source.close()


def ids(parts: list[SourceBatch]) -> list[str]:
    return [v for part in parts for v in part.rows.column("CustomerId").to_pylist()]


def bad_texts(parts: list[SourceBatch]) -> list[str]:
    """The malformed lines' text (Arrow gives no line number with quoted newlines allowed)."""
    return [bad.text for part in parts for bad in part.bad_lines]


@pytest.fixture
def rows() -> list[list[str]]:
    return text_rows(600, seed=3)


def test_each_batch_carries_the_malformed_lines_read_with_it(
    tmp_path: Path, rows: list[list[str]]
) -> None:
    broken = [list(r) for r in rows]
    for i in (5, 250, 599):
        broken[i] = [*broken[i], "extra"]
    path = tmp_path / "in.csv"
    path.write_bytes(csv_bytes(broken))
    parts = read_all(path, ReadOptions(block_size=4096))
    assert len(parts) > 3
    assert sum(p.rows.num_rows for p in parts) == 597
    assert bad_texts(parts) == [",".join(broken[i]) for i in (5, 250, 599)]
    assert ids(parts) == [r[1] for i, r in enumerate(rows) if i not in (5, 250, 599)]


@pytest.mark.parametrize("column", ["Surname", "Geography"])
def test_a_field_longer_than_a_block_restarts_without_losing_or_repeating(
    tmp_path: Path, rows: list[list[str]], column: str
) -> None:
    """Small blocks, a long field mid-file, malformed lines before and after it."""
    data = [list(r) for r in rows]
    data[400][COLUMNS.index(column)] = "x" * 20_000
    data[100] = [*data[100], "extra"]
    data[500] = [*data[500], "extra"]
    path = tmp_path / "in.csv"
    path.write_bytes(csv_bytes(data))
    parts = read_all(path, ReadOptions(block_size=2048))
    assert ids(parts) == [r[1] for i, r in enumerate(rows) if i not in (100, 500)]
    assert bad_texts(parts) == [",".join(data[i]) for i in (100, 500)]


def test_over_the_largest_block_is_a_clear_error(
    tmp_path: Path, rows: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(churnctl.io.csv.reader, "MAX_BLOCK_SIZE", 1 << 15)
    data = [list(r) for r in rows]
    data[10][COLUMNS.index("Surname")] = "x" * 100_000
    path = tmp_path / "in.csv"
    path.write_bytes(csv_bytes(data))
    with pytest.raises(InputError) as info:
        read_all(path, ReadOptions(block_size=2048))
    assert str(info.value) == f"{path}: a field is longer than 0 MiB; split or remove it"
    assert "straddl" not in str(info.value)


# ------------------------------------------------------------------ through the CLI


def _score(args: list[str], stdin: bytes | None = None) -> tuple[int, str]:
    result = run(args, input=stdin)
    return result.exit_code, result.stderr


def _score_with_a_long_field(
    tmp_path: Path, rows: list[list[str]], column: str, text: str, *, via_stdin: bool
) -> tuple[list[list[str]], Path, str]:
    """Score the rows, row 300 holding ``text`` in ``column``; return rows, output, stderr."""
    data = [list(r) for r in rows]
    data[300][COLUMNS.index(column)] = text
    content = csv_bytes(data)
    path, out = tmp_path / "in.csv", tmp_path / "out.csv"
    path.write_bytes(content)
    source = "-" if via_stdin else str(path)
    code, err = _score(["score", source, "-o", str(out)], content if via_stdin else None)
    assert code == 0, err
    return data, out, err


@pytest.mark.parametrize("via_stdin", [False, True], ids=["file", "stdin"])
def test_a_5_mb_field_in_an_unused_column_is_scored(
    tmp_path: Path, rows: list[list[str]], via_stdin: bool
) -> None:
    long_text = "free text " * 500_000
    _, out, err = _score_with_a_long_field(
        tmp_path, rows, "Surname", long_text, via_stdin=via_stdin
    )
    assert "read 600 rows: 600 scored, 0 rejected" in err
    clean = tmp_path / "clean.csv"
    clean.write_bytes(csv_bytes(rows))
    assert _score(["score", str(clean), "-o", str(tmp_path / "c.csv")])[0] == 0
    assert out.read_bytes() == (tmp_path / "c.csv").read_bytes()


@pytest.mark.parametrize("via_stdin", [False, True], ids=["file", "stdin"])
def test_a_5_mb_field_in_a_used_column_is_quarantined(
    tmp_path: Path, rows: list[list[str]], via_stdin: bool
) -> None:
    long_text = "y" * 5_000_000
    data, _, err = _score_with_a_long_field(
        tmp_path, rows, "Geography", long_text, via_stdin=via_stdin
    )
    assert "read 600 rows: 599 scored, 1 rejected" in err
    with (tmp_path / "out.rejects.csv").open(newline="") as handle:
        (reject,) = list(csv.DictReader(handle))
    assert (reject["line"], reject["column"]) == ("302", "Geography")
    assert reject["reason"] == "field longer than 10,000 characters"
    assert reject["text"] == ",".join(data[300])


def test_the_empty_final_batch_holds_trailing_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(csv_bytes([]) + b"1,2,3\n")
    parts = read_all(path, ReadOptions())
    assert sum(p.rows.num_rows for p in parts) == 0
    assert bad_texts(parts) == ["1,2,3"]
    assert all(isinstance(p.rows, pa.RecordBatch) for p in parts)


# ------------------------------------------------------------------ reading again


def _through_fifo(tmp_path: Path, content: bytes) -> tuple[Path, threading.Thread]:
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as pipe:
            pipe.write(content)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    return fifo, writer


@pytest.mark.parametrize("kind", ["file", "gzip", "fifo", "gzip-fifo"])
def test_a_csv_source_reads_its_bytes_again_and_a_stream_releases_its_spool(
    tmp_path: Path, rows: list[list[str]], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the input, ``rereading`` gives its text again, whole, after the batches;
    a stream's spool (its copy for that) lives as long as the source."""
    spools = tmp_path / "spools"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    content = csv_bytes(rows)
    stored = gzip.compress(content) if "gzip" in kind else content
    writer = None
    if "fifo" in kind:
        path, writer = _through_fifo(tmp_path, stored)
    else:
        path = tmp_path / ("in.csv.gz" if kind == "gzip" else "in.csv")
        path.write_bytes(stored)
    source = open_source(path, REQUIRED, ReadOptions(block_size=4096))
    try:
        assert sum(part.rows.num_rows for part in source.batches) == len(rows)
        assert source.rereading is not None
        with source.rereading.open() as again:
            assert again.read() == content
        assert source.rereading.width == len(COLUMNS)
        assert source.rereading.index is not None and source.rereading.index.points()
        assert len(list(spools.iterdir())) == ("fifo" in kind)
    finally:
        source.close()
        if writer is not None:
            writer.join(timeout=10)
    assert list(spools.iterdir()) == []


def test_a_parquet_source_has_no_bytes_to_read_again(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pq.write_table(generate_table(50, seed=1), path)
    source = open_source(path, REQUIRED)
    try:
        assert sum(part.rows.num_rows for part in source.batches) == 50
        assert source.rereading is None
    finally:
        source.close()
