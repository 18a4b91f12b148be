"""``--keep``: every way of naming the columns to keep, in every runtime.

``--keep a,b`` and ``--keep a --keep b`` keep a and b; ``--keep '*'`` every input
column, in the input's order, as text exactly as it appears; ``--keep ''`` none. A
kept column the input lacks is one error naming ``--keep``.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from cli_helpers import run
from csv_rows import csv_bytes, text_rows

from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.samples.generate import COLUMNS as HEADER
from churnctl.scoring.scorer import Scorer

OWN = ["raw", "exited"]
COLUMNS = list(HEADER)


def header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    rows = text_rows(40, seed=3)
    rows[5][COLUMNS.index("Surname")] = 'O\'Brien, "Jr"'  # kept exactly, quotes and all
    rows[6][COLUMNS.index("Balance")] = " 1.50e3 "  # a number kept as its text
    path = tmp_path / "in.csv"
    path.write_bytes(csv_bytes(rows))
    return path


@pytest.mark.parametrize(
    ("keep", "kept"),
    [
        (["CustomerId"], ["CustomerId"]),
        (["CustomerId,Surname"], ["CustomerId", "Surname"]),
        (["CustomerId", "Surname"], ["CustomerId", "Surname"]),
        (["Surname, CustomerId", "Age"], ["Surname", "CustomerId", "Age"]),
        (["CustomerId,CustomerId"], ["CustomerId"]),
        ([""], []),
        (["*"], COLUMNS),
        ([" * "], COLUMNS),
    ],
    ids=["one", "commas", "repeated", "both", "twice", "none", "all", "all-spaced"],
)
def test_every_way_of_naming_the_kept_columns(
    data: Path, tmp_path: Path, keep: list[str], kept: list[str]
) -> None:
    out = tmp_path / "out.csv"
    result = run(["score", data, "-o", out, *(a for k in keep for a in ("--keep", k))])
    assert result.exit_code == 0, result.output
    assert header(out) == [*kept, *OWN]
    source = {row[COLUMNS.index("CustomerId")]: row for row in rows(data)}
    for row in rows(out):  # each kept value is the input's text, in the input's row
        original = source[row[kept.index("CustomerId")]] if "CustomerId" in kept else None
        for name, value in zip(kept, row, strict=False):
            assert original is None or value == original[COLUMNS.index(name)]
    assert len(rows(out)) == 40


def test_all_columns_of_a_parquet_input_are_kept_as_text(tmp_path: Path, data: Path) -> None:
    table = pacsv.read_csv(data)  # typed columns: integers, floats, strings
    pq.write_table(table, tmp_path / "in.parquet")
    out = tmp_path / "out.csv"
    assert run(["score", tmp_path / "in.parquet", "-o", out, "--keep", "*"]).exit_code == 0
    assert header(out) == [*table.column_names, *OWN]
    for kept, column in zip(rows(out)[0], table.columns, strict=False):  # text reading back
        value = column[0].as_py()  # as the same value: whole numbers without a ".0"
        assert kept == value if isinstance(value, str) else float(kept) == value, (kept, value)


def test_every_column_is_kept_in_an_output_folder_and_by_watch(tmp_path: Path, data: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    pacsv.write_csv(pacsv.read_csv(data).select(COLUMNS[::-1]), landing / "reversed.csv")
    shutil.copy(data, landing / "in.csv")
    watch = ["watch", landing, "--out", tmp_path / "w", "--once", "--settle", "0"]
    for args in (["score", landing, "--out-dir", tmp_path / "dir"], watch):
        result = run([*args, "--keep", "*"])
        assert result.exit_code == 0, result.output
        folder = args[3]
        outputs = {p.name.split(".")[0]: p for p in Path(folder).glob("*.scored.csv")}
        assert header(outputs["in"]) == [*COLUMNS, *OWN]  # each file keeps its own order
        assert header(outputs["reversed"]) == [*COLUMNS[::-1], *OWN]


def test_one_output_keeps_the_first_inputs_columns(tmp_path: Path, data: Path) -> None:
    lacking = tmp_path / "b-lacking.csv"
    table = pacsv.read_csv(data)
    pacsv.write_csv(table.drop_columns(["Surname"]), lacking)
    shutil.copy(data, tmp_path / "a.csv")
    out = tmp_path / "out.csv"
    result = run(["score", tmp_path / "a.csv", lacking, "-o", out, "--keep", "*"])
    assert result.exit_code == 4, result.output
    assert "missing column(s) Surname named to keep" in result.stderr
    assert "pass --keep with only columns the input has" in result.stderr
    assert header(out) == [*COLUMNS, *OWN] and len(rows(out)) == 40


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--keep", "Nope"], 2, "missing column(s) Nope named to keep"),
        (["--keep", "CustomerId,Nope"], 2, "missing column(s) Nope named to keep"),
        (["--keep", "*", "--keep", "Age"], 2, "keep '*' keeps every input column"),
        (["--keep", "raw"], 2, "cannot keep column 'raw'"),
    ],
)
def test_a_bad_keep_is_one_error_naming_the_option(
    data: Path, tmp_path: Path, args: list[str], code: int, fragment: str
) -> None:
    flink = ["flink-submit", data, "--out", tmp_path / "f", "--emit", tmp_path / "j.py"]
    for command in (["score", data, "-o", tmp_path / "o.csv"], flink):
        result = run([*command, *args])
        assert result.exit_code == code, result.output
        err = " ".join(result.stderr.split())
        assert err.startswith("Error: ") and fragment in err and "--keep" in err, err
        assert err.count("Error:") == 1


def test_an_input_with_a_column_named_like_an_output_cannot_be_kept_whole(tmp_path: Path) -> None:
    scored = tmp_path / "scored.csv"
    scored.write_bytes(csv_bytes(text_rows(5, seed=1)).replace(b",Exited\n", b",raw\n", 1))
    result = run(["score", scored, "-o", tmp_path / "again.csv", "--keep", "*"])
    assert result.exit_code == 2, result.output
    assert "the input has a column 'raw'" in result.stderr


def test_the_flink_job_keeps_the_header_it_finds(data: Path, tmp_path: Path) -> None:
    job = tmp_path / "job.py"
    result = run(["flink-submit", data, "--out", tmp_path / "f", "--emit", job, "--keep", "*"])
    assert result.exit_code == 0, result.output
    assert f"keep={tuple(COLUMNS)!r}" in job.read_text(encoding="utf-8")


def test_the_scorer_keeps_every_column_of_each_batch() -> None:
    frame = pacsv.read_csv(io.BytesIO(csv_bytes(text_rows(8, seed=2)))).to_pandas()
    scorer = Scorer(bundled(STATE), bundled(MODEL), keep=["*"])
    scored = scorer.score(frame).scored
    assert scored.column_names == [*COLUMNS, *OWN]
    assert scorer.score_aligned(frame[COLUMNS[::-1]]).column_names[:3] == COLUMNS[::-1][:3]
    assert scorer.keeping(["CustomerId", "Age"]).keep == ("CustomerId", "Age")
