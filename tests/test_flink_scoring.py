"""The Flink job's per-file function, without Flink: it scores a file exactly as ``score`` does.

``ScoreFiles`` is what every Flink worker runs on each input file, so the job's promise
(the same rows scored, the same rejects with the same lines and reasons, the same
spelling of every value) is checked here, on every kind of file, byte for byte. The
Flink tests then only have to show that the engine hands each file over once.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from pathlib import Path

import pytest

from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.flink.scoring import (
    CHANGED,
    FAILED,
    FILES,
    READ,
    REJECTS,
    SCORED,
    FileReading,
    ScoreFiles,
    TextTable,
    wait_until_quiet,
)
from churnctl.io.rejects import NO_LIMIT
from churnctl.io.sources import ReadOptions
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.scoring.scorer import Scorer
from tests.hostile_inputs import NOTE, write_hostile_folder

KEEP = ("CustomerId", NOTE)


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(bundled(STATE), bundled(MODEL), keep=KEEP)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_hostile_folder(tmp_path_factory.mktemp("hostile"), with_missing_column=True)


def outputs(function: ScoreFiles, path: Path) -> dict[str, str]:
    """The text each output gets for ``path``, as the sinks write it (a line break a chunk)."""
    texts = {SCORED: "", REJECTS: "", FILES: ""}
    for output, text in function((str(path), path.stat().st_size)):
        texts[output] += text + "\n"
    return texts


def by_score(scorer: Scorer, path: Path, folder: Path) -> tuple[str, str]:
    """``score``'s scored and rejects files for ``path``, without their header lines."""
    scored, rejects = folder / f"{path.name}.out.csv", folder / f"{path.name}.rejects.csv"
    score_file(
        ScoreRequest(str(path), str(scored), scorer, rejects=str(rejects), max_rejects=NO_LIMIT)
    )
    return tuple(p.read_text(encoding="utf-8").partition("\n")[2] for p in (scored, rejects))


def files_record(text: str) -> list[str]:
    [row] = list(csv.reader(io.StringIO(text)))
    return row


def test_each_file_is_scored_as_score_scores_it(
    scorer: Scorer, hostile: list[Path], tmp_path: Path
) -> None:
    """Own column orders, a BOM and CRLF, wrong field counts, multi-line kept values, gzip,
    Parquet: the job's text is score's, byte for byte, and its counts are records."""
    function = ScoreFiles(scorer, FileReading())
    for path in hostile:
        if path.name == "e.csv":
            continue
        texts = outputs(function, path)
        scored, rejects = by_score(scorer, path, tmp_path)
        assert (texts[SCORED], texts[REJECTS]) == (scored, rejects), path.name
        record = files_record(texts[FILES])
        n_scored = len(list(csv.reader(io.StringIO(scored))))
        n_rejected = len(list(csv.reader(io.StringIO(rejects))))
        assert record[0] == str(path) and record[5:] == [READ, ""]
        assert [int(v) for v in record[1:5]] == [
            path.stat().st_size,
            path.stat().st_mtime_ns,
            n_scored,
            n_rejected,
        ]
    messy = outputs(function, hostile[0])[REJECTS]
    reasons = [row[3] for row in csv.reader(io.StringIO(messy))]
    assert sum("expected 15 fields" in r for r in reasons) == 3  # too few, several, too many


def test_a_file_without_a_needed_column_is_rejected_whole(
    scorer: Scorer, hostile: list[Path]
) -> None:
    [path] = [p for p in hostile if p.name == "e.csv"]
    texts = outputs(ScoreFiles(scorer, FileReading()), path)
    assert texts[SCORED] == ""
    [reject] = list(csv.reader(io.StringIO(texts[REJECTS])))
    assert reject[0] == str(path) and reject[1:3] == ["", ""] and reject[4] == ""
    assert reject[3].startswith("not read: missing required column(s) Age")
    record = files_record(texts[FILES])
    assert record[3:6] == ["0", "0", FAILED] and record[6] == reject[3]


@pytest.mark.parametrize("kind", ["gone", "symlink", "folder", "fifo", "empty", "binary"])
def test_whatever_the_entry_the_function_records_it(
    kind: str, scorer: Scorer, hostile: list[Path], tmp_path: Path
) -> None:
    """No entry breaks the job: each one it cannot read becomes a failed files record and
    one file-level reject saying why (symbolic links are never followed, as in watch)."""
    path = tmp_path / "x.csv"
    if kind == "symlink":
        path.symlink_to(hostile[1])
    elif kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "binary":
        path.write_bytes(b"\x80\x81\xfe\n" * 10)
    chunks = list(ScoreFiles(scorer, FileReading())((str(path), 0)))
    assert [output for output, _ in chunks] == [REJECTS, FILES]
    reject = files_record(chunks[0][1])
    assert reject[0] == str(path) and reject[3].startswith("not read: ")
    assert files_record(chunks[1][1])[5] == FAILED


def test_a_file_that_changes_while_read_is_recorded(scorer: Scorer, tmp_path: Path) -> None:
    """Rows appended after the file was taken are not read; the record and a reject say so."""
    path = tmp_path / "growing.csv"
    path.write_bytes(write_hostile_folder(tmp_path / "h")[1].read_bytes())
    chunks = ScoreFiles(scorer, FileReading())((str(path), 0))
    first = next(chunks)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("more,rows\n")
    rest = [first, *chunks]
    [reject] = [text for output, text in rest if output == REJECTS]
    assert "changed while it was read" in reject and "rename them into the folder" in reject
    record = files_record(rest[-1][1])
    assert record[5] == CHANGED and int(record[3]) == 30


def test_the_decimal_mark_and_delimiter_are_score_s(tmp_path: Path) -> None:
    """A European export (`;`, decimal commas, latin-1) reads as score reads it."""
    from churnctl.samples.generate import COLUMNS
    from tests.csv_rows import text_rows

    rows = [
        [
            v.replace(".", ",") if c != "Surname" else "Müller"
            for c, v in zip(COLUMNS, r, strict=True)
        ]
        for r in text_rows(12, 3)
    ]
    path = tmp_path / "euro.csv"
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\n").writerows([COLUMNS, *rows])
    path.write_bytes(buffer.getvalue().encode("latin-1"))
    scorer = Scorer(bundled(STATE), bundled(MODEL), keep=("CustomerId", "Surname"), decimal=",")
    options = ReadOptions(delimiter=";", encoding="latin-1")
    texts = outputs(ScoreFiles(scorer, FileReading(options)), path)
    scored = tmp_path / "s.csv"
    score_file(
        ScoreRequest(
            str(path), str(scored), scorer, rejects=str(tmp_path / "r.csv"), read_options=options
        )
    )
    assert texts[SCORED] == scored.read_text(encoding="utf-8").partition("\n")[2]
    assert texts[SCORED].count("Müller") == 12 and texts[REJECTS] == ""


def test_text_table_keeps_text_until_taken() -> None:
    import pyarrow as pa

    table = TextTable(pa.schema([("a", pa.string())]))
    assert table.take() == ""
    table.write_table(pa.table({"a": ["x", "y, z"]}))
    assert table.take() == 'x\n"y, z"'
    assert table.take() == ""


def test_a_file_written_in_place_is_read_once_quiet(tmp_path: Path) -> None:
    """Streaming: a file still being written is read only once it held still for the settle
    time; a file quiet for longer (by its mtime) is read at once."""
    path = tmp_path / "slow.csv"
    path.write_text("a,b\n", encoding="utf-8")
    old = time.time() - 10
    os.utime(path, (old, old))
    started = time.monotonic()
    wait_until_quiet(path, settle=0.5, max_wait=5)
    assert time.monotonic() - started < 0.3

    def writer() -> None:
        for i in range(6):
            time.sleep(0.15)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(f"{i},{i}\n")

    path.write_text("a,b\n", encoding="utf-8")  # being written now
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_until_quiet(path, settle=0.5, max_wait=10)
        assert not thread.is_alive()  # it waited for the writer to finish
        assert path.read_text(encoding="utf-8").count("\n") == 7
    finally:
        thread.join()
