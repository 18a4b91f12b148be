"""Many inputs at once (issue 10): folders and globs, a pool of workers, one output or many.

Whatever ``workers`` is, the bytes written are the same: into an output folder (one
output and rejects file per input, named as ``watch`` names them) and into one output
(parts appended in input order). A bad file fails alone; the run exits 4 at the end.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cli_helpers
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from csv_rows import csv_bytes, text_rows

from churnctl.atomic import file_sha256, temporaries
from churnctl.batch import join, pool
from churnctl.batch.lineage_files import PARQUET_KEY
from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.batch.score_files import FilesRequest, FilesSummary, score_files
from churnctl.errors import InputError, SchemaError, TooManyRejectsError, UsageError
from churnctl.interrupts import Interrupted
from churnctl.io.listing import NameRules, expand_inputs
from churnctl.io.naming import derived_names
from churnctl.io.rejects import NO_LIMIT, rejects_path
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.samples.generate import COLUMNS, generate_files
from churnctl.scoring.lineage import read_lineage
from churnctl.scoring.scorer import Scorer
from churnctl.watch.watcher import Watcher, WatchSettings

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from churnctl.cli import run; run()"]
KEEP = ["CustomerId", "Surname"]  # Surname holds commas, quotes and line breaks: quoted CSV


# ------------------------------------------------------------------ inputs


def messy_rows(seed: int, n: int = 60) -> list[list[str]]:
    """Rows with 3 bad values (unseen category, non-number, empty) and awkward surnames."""
    rows = text_rows(n, seed)
    rows[3][COLUMNS.index("Geography")] = "Atlantis"
    rows[10][COLUMNS.index("CreditScore")] = "abc"
    rows[20][COLUMNS.index("Age")] = ""
    rows[5][COLUMNS.index("Surname")] = "Smith, Jr."
    rows[6][COLUMNS.index("Surname")] = "two\nlines"
    rows[7][COLUMNS.index("Surname")] = 'say "hi", twice'
    return rows


def messy_csv(seed: int) -> bytes:
    """messy_rows as CSV, then a row with a field too few and one with a quoted newline."""
    short = ",".join(text_rows(1, seed + 100)[0][:-1])
    return (
        csv_bytes(messy_rows(seed))
        + f"{short}\n".encode()
        + (b'1,2,"quoted\nnewline",600,France,Male,40,3,0,1,1,1,50000,0\n')
    )


def messy_parquet(path: Path, seed: int) -> Path:
    """messy_rows as a Parquet file of text columns (the bad values stay bad)."""
    columns = list(zip(*messy_rows(seed), strict=True))
    arrays = [pa.array(values, pa.string()) for values in columns]
    pq.write_table(pa.Table.from_arrays(arrays, names=list(COLUMNS)), path)
    return path


def make_inputs(folder: Path) -> Path:
    """Five inputs of every kind, plus names a folder listing must skip."""
    folder.mkdir()
    for seed in (1, 2):
        (folder / f"p{seed}.csv").write_bytes(messy_csv(seed))
    (folder / "p3.csv.gz").write_bytes(gzip.compress(messy_csv(3), mtime=0))
    messy_parquet(folder / "p4.parquet", 4)
    generate_files(folder / "p5.csv", n_rows=700, seed=5)
    (folder / ".hidden.csv").write_bytes(b"not,an,input\n")
    (folder / "p6.csv.part").write_bytes(b"not,an,input\n")
    (folder / "notes.txt").write_text("not an input")
    return folder


INPUT_NAMES = ["p1.csv", "p2.csv", "p3.csv.gz", "p4.parquet", "p5.csv"]
READ = 62 * 3 + 60 + 700  # 60 rows, a short one and a quoted newline per messy CSV
REJECTED = 4 * 3 + 3  # 3 bad values + the short row per messy CSV; 3 in the Parquet file


@pytest.fixture(scope="module")
def in_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_inputs(tmp_path_factory.mktemp("many") / "in")


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(bundled(STATE), bundled(MODEL), keep=KEEP)


def inputs_of(folder: Path) -> list[str]:
    return [str(folder / name) for name in INPUT_NAMES]


def files_of(folder: Path) -> dict[str, bytes]:
    """A folder's files (not hidden ones, nor lineage records: they hold the time of their
    run, and are test_lineage's) by name, with their bytes."""
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if not p.name.startswith(".") and not p.name.endswith("lineage.json")
    }


def timeless(files: dict[str, bytes]) -> dict[str, object]:
    """Files by name, as their bytes; a Parquet file as its rows, schema and lineage record
    without its time (the one thing two runs' Parquet outputs differ by)."""
    seen: dict[str, object] = {}
    for name, data in files.items():
        if name.endswith(".parquet"):
            parquet = pq.ParquetFile(io.BytesIO(data))
            record = parquet.schema_arrow.metadata[PARQUET_KEY.encode()]
            rows = parquet.read().replace_schema_metadata(None)
            seen[name] = (
                rows.to_pydict(),
                rows.schema,
                replace(read_lineage(record, name), scored_at=""),
            )
        else:
            seen[name] = data
    return seen


def into_folder(in_dir: Path, out: Path, scorer: Scorer, workers: int) -> FilesSummary:
    request = FilesRequest(
        inputs=inputs_of(in_dir), scorer=scorer, out_dir=out, max_rejects=NO_LIMIT, workers=workers
    )
    return score_files(request)


# ------------------------------------------------------------------ which files


def test_folders_globs_and_files_are_one_sorted_list_without_duplicates(in_dir: Path) -> None:
    expected = inputs_of(in_dir)
    assert expand_inputs([str(in_dir)]) == expected
    again = [str(in_dir / "p5.csv"), str(in_dir / "p*.csv"), str(in_dir), str(in_dir / "p1.csv")]
    assert expand_inputs(again) == expected  # a quoted glob is expanded here
    spelled = [str(in_dir / "p2.csv"), f"{in_dir}/./p2.csv", str(in_dir / "p1.csv")]
    assert expand_inputs(spelled) == [str(in_dir / "p1.csv"), str(in_dir / "p2.csv")]
    link = in_dir.parent / "a-link-to-p1.csv"
    link.symlink_to(in_dir / "p1.csv")
    for names in ([str(link), str(in_dir / "p1.csv")], [str(in_dir / "p1.csv"), str(link)]):
        assert expand_inputs(names) == [str(in_dir / "p1.csv")]  # the shorter spelling
    assert expand_inputs([f"{in_dir}/*.parquet", f"{in_dir}/*.gz"]) == [
        str(in_dir / "p3.csv.gz"),
        str(in_dir / "p4.parquet"),
    ]
    # a glob matching a folder means the folder's inputs; a file named outright is taken
    assert expand_inputs([f"{in_dir.parent}/i*"]) == expected
    assert expand_inputs([str(in_dir / "notes.txt"), str(in_dir / "p1.csv")]) == [
        str(in_dir / "notes.txt"),
        str(in_dir / "p1.csv"),
    ]
    # one plain name is the single input of today: returned as it is, once it exists
    assert expand_inputs([str(in_dir / "notes.txt")]) == [str(in_dir / "notes.txt")]
    with pytest.raises(InputError, match=r"nope\.csv: input file not found"):
        expand_inputs(["nope.csv"])
    assert expand_inputs(["-"]) == ["-"]
    assert NameRules().is_input("p1.csv") and not NameRules().is_input(".hidden.csv")


def test_a_name_folder_or_pattern_that_matches_nothing_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "a.csv").write_text("x\n")
    with pytest.raises(InputError, match="no input file matches it as a pattern"):
        expand_inputs([str(tmp_path / "*.parquet")])
    with pytest.raises(InputError, match="is a directory with no input file in it"):
        expand_inputs([str(tmp_path / "empty"), str(tmp_path / "a.csv")])
    with pytest.raises(InputError, match=r"nope\.csv: input file not found"):
        expand_inputs([str(tmp_path / "a.csv"), str(tmp_path / "nope.csv")])
    with pytest.raises(UsageError, match="stdin"):
        expand_inputs(["-", str(tmp_path / "a.csv")])


def test_nothing_matched_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    result = cli_helpers.run(["score", tmp_path / "*.csv", "--out-dir", tmp_path / "out"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "*.csv: input file not found, and no input file matches it as a pattern" in lines[0]
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ the same bytes


def test_an_output_folder_holds_what_watch_writes_whatever_the_workers(
    in_dir: Path, scorer: Scorer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serial = into_folder(in_dir, tmp_path / "serial", scorer, workers=1)
    mixed = into_folder(in_dir, tmp_path / "mixed", scorer, workers=2)
    monkeypatch.setattr(pool, "MAIN_SCORES", False)
    parallel = into_folder(in_dir, tmp_path / "parallel", scorer, workers=3)
    assert (serial.workers, mixed.workers, parallel.workers) == (1, 2, 3)
    assert {r.process for r in serial.results} == {os.getpid()}
    assert os.getpid() not in {r.process for r in parallel.results}  # all in pool workers
    written = files_of(tmp_path / "serial")
    assert written == files_of(tmp_path / "mixed") == files_of(tmp_path / "parallel")
    names = set()
    for name in INPUT_NAMES:
        names |= set(derived_names(name, file_sha256(in_dir / name), "csv"))
    assert set(written) == names
    watched = tmp_path / "watched"
    settings = WatchSettings(
        in_dir=in_dir, out_dir=watched, scorer=scorer, once=True, settle=0.0, max_rejects=NO_LIMIT
    )
    Watcher(settings).run()
    assert files_of(watched) == written
    for summary in (serial, mixed, parallel):
        assert not summary.failed
        assert (summary.rows.read, summary.rows.rejected) == (READ, REJECTED)
        assert summary.rows.scored == sum(
            r.summary.rows.scored for r in summary.results if r.summary
        )
        assert [r.input for r in summary.results] == inputs_of(in_dir)


@pytest.mark.parametrize(
    "failure",
    [OSError(28, "No space left on device"), Interrupted(15)],
    ids=["disk full", "signal"],
)
def test_a_failure_while_closing_one_output_leaves_nothing_behind(
    in_dir: Path,
    scorer: Scorer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure: BaseException,
) -> None:
    """The joined output's last step (closing it) fails: no output, no temporary, no parts."""

    def close(self: object) -> None:
        raise failure

    monkeypatch.setattr(join.Appender, "close", close)
    out = tmp_path / "out"
    request = FilesRequest(
        inputs=inputs_of(in_dir),
        scorer=scorer,
        output=str(out / "all.csv"),
        max_rejects=NO_LIMIT,
        workers=1,
    )
    with pytest.raises(type(failure)):
        score_files(request)
    assert list(out.iterdir()) == []  # parts folder, temporary output and rejects all gone


def test_workers_start_under_a_temporary_folder_too_long_for_a_socket(
    in_dir: Path, scorer: Scorer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long TMPDIR has no room for the forkserver's socket: the workers are spawned."""
    long = tmp_path / ("t" * (110 - len(str(tmp_path))))
    long.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long))
    monkeypatch.setattr(pool, "MAIN_SCORES", False)
    summary = into_folder(in_dir, tmp_path / "out", scorer, workers=2)
    assert not summary.failed and summary.rows.read == READ
    assert os.getpid() not in {r.process for r in summary.results}


@pytest.mark.parametrize("suffix", ["csv", "jsonl", "parquet", "csv.gz"])
def test_one_output_is_the_inputs_in_order_whatever_the_workers(
    in_dir: Path, scorer: Scorer, tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "MAIN_SCORES", False)  # the pool scores every file
    outputs = {}
    for workers in (1, 2):
        output = tmp_path / f"w{workers}" / f"all.{suffix}"
        request = FilesRequest(
            inputs=inputs_of(in_dir),
            scorer=scorer,
            output=str(output),
            max_rejects=NO_LIMIT,
            workers=workers,
        )
        summary = score_files(request)
        assert (summary.rows.read, summary.rows.rejected, summary.failed) == (READ, REJECTED, [])
        beside = "all.rejects.csv" if suffix == "csv" else f"all.{suffix}.rejects.csv"
        assert summary.rejects == rejects_path(str(output)) == str(output.with_name(beside))
        assert (os.getpid() in {r.process for r in summary.results}) == (workers == 1)
        outputs[workers] = files_of(output.parent)
        assert not [p for p in output.parent.iterdir() if p.name.startswith(".")]  # parts gone
    assert timeless(outputs[1]) == timeless(outputs[2])  # byte for byte
    # the same rows, in input order, as each input scored on its own
    alone = tmp_path / "alone"
    singles = [
        score_file(
            ScoreRequest(
                input=name, output=str(alone / f"{i}.{suffix}"), scorer=scorer, max_rejects=NO_LIMIT
            )
        )
        for i, name in enumerate(inputs_of(in_dir))
    ]
    joined = outputs[1]
    output_name = f"all.{suffix}"
    if suffix == "csv":
        pieces = [Path(s.output).read_bytes() for s in singles]
        header = pieces[0].split(b"\n", 1)[0] + b"\n"
        assert joined[output_name] == header + b"".join(p[len(header) :] for p in pieces)
    elif suffix == "parquet":
        table = pq.read_table(io.BytesIO(joined[output_name]))
        assert table.equals(pa.concat_tables(pq.read_table(s.output) for s in singles))
    elif suffix == "jsonl":
        assert joined[output_name] == b"".join(Path(s.output).read_bytes() for s in singles)
    rejects_name = next(n for n in joined if n.endswith(".rejects.csv"))
    rejects = list(csv.DictReader(io.StringIO(joined[rejects_name].decode())))
    assert len(rejects) == REJECTED
    sources = list(dict.fromkeys(r["source"] for r in rejects))
    assert sources == inputs_of(in_dir)[:4]  # p5 has no rejects; each reject names its input
    expected_rejects = b"".join(
        Path(s.rejects or "").read_bytes().split(b"\n", 1)[1] for s in singles
    )
    assert joined[rejects_name].split(b"\n", 1)[1] == expected_rejects


# ------------------------------------------------------------------ bad files


def bad_inputs(folder: Path) -> Path:
    """Two good files, one without a needed column, one with too many rejects."""
    folder.mkdir()
    (folder / "a.csv").write_bytes(csv_bytes(text_rows(50, 7)))
    (folder / "b-no-age.csv").write_bytes(b"CustomerId,Surname\n1,x\n")
    (folder / "c-rejects.csv").write_bytes(messy_csv(8))  # 4 of 62 rows: over 5%
    (folder / "d.csv").write_bytes(csv_bytes(text_rows(30, 9)))
    return folder


def test_a_bad_file_fails_alone(
    scorer: Scorer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = bad_inputs(tmp_path / "in")
    out = tmp_path / "out"
    monkeypatch.setattr(pool, "MAIN_SCORES", False)  # errors come from the pool
    request = FilesRequest(
        inputs=expand_inputs([str(folder)]), scorer=scorer, out_dir=out, workers=2
    )
    summary = score_files(request)
    failed = {Path(r.input).name: r.error for r in summary.failed}
    assert set(failed) == {"b-no-age.csv", "c-rejects.csv"}
    assert isinstance(failed["b-no-age.csv"], SchemaError)
    assert isinstance(failed["c-rejects.csv"], TooManyRejectsError)
    assert failed["c-rejects.csv"].fix is not None  # the remedy came back from the worker
    assert (summary.rows.read, summary.rows.scored, summary.rows.rejected) == (80, 80, 0)
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 6 and all(n.startswith(("a.", "d.")) for n in written)  # no .tmp
    message = summary.failed[0].message()
    assert message.startswith(f"{folder / 'b-no-age.csv'}: ")
    assert message.count(str(folder / "b-no-age.csv")) == 1  # named once
    # into one output: the good files' rows are published, in order
    joined = tmp_path / "all.csv"
    request = FilesRequest(
        inputs=expand_inputs([str(folder)]), scorer=scorer, output=str(joined), workers=1
    )
    summary = score_files(request)
    assert len(summary.failed) == 2 and summary.rows.scored == 80
    assert sum(1 for _ in joined.open()) == 1 + 80


def test_two_inputs_that_would_write_one_output_are_refused(scorer: Scorer, tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.csv").write_bytes(csv_bytes(text_rows(5, 1)))
    request = FilesRequest(
        inputs=[str(tmp_path / "a" / "x.csv"), str(tmp_path / "b" / "x.csv")],
        scorer=scorer,
        out_dir=tmp_path / "out",
    )
    with pytest.raises(UsageError, match="same name and content"):
        score_files(request)
    (tmp_path / "b" / "x.csv").write_bytes(csv_bytes(text_rows(6, 1)))  # new content: new names
    assert len(score_files(request).results) == 2


def test_settings_that_cannot_work_are_refused_before_scoring(
    scorer: Scorer, tmp_path: Path
) -> None:
    two = [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    cases = [
        ({"out_dir": tmp_path / "o", "output": "x.csv"}, "its own output"),
        ({"output": "-", "format": "parquet"}, "Parquet cannot be written to stdout"),
        ({"output": two[0]}, "is the same file as the input"),
        ({"workers": 0}, "workers must be >= 1"),
    ]
    for path in two:
        Path(path).write_bytes(csv_bytes(text_rows(5, 2)))
    for settings, message in cases:
        with pytest.raises(UsageError, match=message):
            score_files(FilesRequest(inputs=two, scorer=scorer, **settings))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="stdin"):
        score_files(FilesRequest(inputs=["-", two[0]], scorer=scorer))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]


# ------------------------------------------------------------------ the command


def cli_env() -> dict[str, str]:
    env = cli_helpers.cli_env()
    env.pop("COLUMNS", None)
    return env


SUMMARY = re.compile(
    r"^(\d+) files \((\d+) failed\), (\d+) worker\(s\): read ([\d,]+) rows: ([\d,]+) scored, "
    r"([\d,]+) rejected in [\d.]+ s \([\d,]+ rows/s\) → (.+) \(an output and a rejects file "
    r"per input\); model \S+, state [0-9a-f]{12}$"
)


def test_the_command_scores_a_folder_and_a_glob_and_exits_4_for_a_bad_file(
    in_dir: Path, tmp_path: Path
) -> None:
    folder = bad_inputs(tmp_path / "in")
    out = tmp_path / "out"
    args = [
        "score",
        str(folder),
        f"{in_dir}/p[12].csv",
        str(folder / "a.csv"),
        "--out-dir",
        str(out),
        "--workers",
        "2",
        "--keep",
        "CustomerId",
        "--max-rejects",
        "10%",
    ]
    done = subprocess.run(
        [*CLI, *args],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 4, done.stderr
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    bad = str(folder / "b-no-age.csv")
    assert [line for line in errors if bad in line] == [errors[0]]
    assert errors[0].startswith(f"Error: {bad}: ") and "Age" in errors[0]
    assert (
        errors[1] == "Error: 1 of 6 files failed (see above); the others are scored and published"
    )
    summary = SUMMARY.match(next(line for line in lines if " files (" in line))
    assert summary is not None, done.stderr
    files, failed, workers, read, scored, rejected, where = summary.groups()
    assert (files, failed, workers, where) == ("6", "1", "2", str(out))
    read, scored, rejected = (int(n.replace(",", "")) for n in (read, scored, rejected))
    assert read == scored + rejected == 50 + 62 + 30 + 62 + 62
    assert rejected == 4 * 3
    expected = set()
    for path in [
        folder / "a.csv",
        folder / "c-rejects.csv",
        folder / "d.csv",
        in_dir / "p1.csv",
        in_dir / "p2.csv",
    ]:
        expected |= set(derived_names(path.name, file_sha256(path), "csv"))
    assert set(files_of(out)) == expected


def test_sigterm_stops_the_workers_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    # enough work (several seconds even on a fast machine) that SIGTERM lands mid-run: with
    # 400,000 rows the newest releases finished the run before the signal was sent
    generate_files(folder, n_rows=2_400_000, files=16, seed=3)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*CLI, "score", str(folder), "--out-dir", str(out), "--workers", "2"],
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    children: set[int] = set()
    deadline = time.monotonic() + 120
    while not temporaries(out) or len(children) < 3:  # forkserver, worker, tracker
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended too soon"
        children |= set(_children(proc.pid))
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert b"Traceback" not in err
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in children):
        assert time.monotonic() < deadline, f"worker processes left running: {children}"
        time.sleep(0.05)
    assert not list(out.glob(".*")), sorted(p.name for p in out.iterdir())


def _children(pid: int) -> list[int]:
    """The processes under ``pid``: the forkserver, its workers, the resource tracker."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found + [grandchild for child in found for grandchild in _children(child)]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_one_output_through_the_command(in_dir: Path, tmp_path: Path) -> None:
    """-o with several inputs: one output, one rejects file; stdout holds CSV's header once."""
    output = tmp_path / "all.jsonl"
    result = cli_helpers.run(
        ["score", str(in_dir), "-o", str(output), "--workers", "1", "--max-rejects", "100%"]
    )
    assert result.exit_code == 0, result.output
    assert f"5 files, 1 worker(s): read {READ:,} rows" in result.stderr
    assert f"→ {output}; rejects → {tmp_path / 'all.jsonl.rejects.csv'}" in result.stderr
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(rows) == READ - REJECTED
    result = cli_helpers.run(
        [
            "score",
            f"{in_dir}/p[15].csv",
            "--workers",
            "1",
            "--max-rejects",
            "100%",
            "--rejects",
            "-",
        ]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("CustomerId,raw,exited") == 1
    assert result.stdout.count("\n") == 1 + 58 + 700
    assert "stdout; rejects → stderr" in result.stderr
    assert result.stderr.count("source,line,column,reason,text") == 1


def test_out_dir_with_one_input_and_conflicting_options(in_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli_helpers.run(["score", str(in_dir / "p5.csv"), "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 files, 1 worker(s)" in result.stderr
    assert set(files_of(out)) == set(derived_names("p5.csv", file_sha256(in_dir / "p5.csv"), "csv"))
    result = cli_helpers.run(["score", str(in_dir), "--out-dir", str(out), "-o", "x.csv"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --out-dir writes one output")
    shutil.rmtree(out)
