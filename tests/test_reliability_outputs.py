"""Never lose a user's data: distinct run files, special targets, SIGTERM, concurrent runs.

Each refusal asserts the exit code, the one-line message, that no input changed
(a hash before and after) and that no temporary file is left behind.
"""

from __future__ import annotations

import csv
import fcntl
import gzip
import hashlib
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from cli_helpers import cli_env, run
from csv_rows import csv_bytes, text_rows

from churnctl import atomic
from churnctl.atomic import temporaries
from churnctl.batch.fit_file import fit_state
from churnctl.errors import TooManyRejectsError
from churnctl.features.state import load_state
from churnctl.io.rejects import RejectLimit
from churnctl.samples.generate import COLUMNS, generate_files

ROOT = Path(__file__).resolve().parents[1]
CHURNCTL = [sys.executable, "-c", "from churnctl.cli import run; run()"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_rows(path: Path) -> list[list[str]]:
    """The rows of a CSV file, header left out."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def leftovers(folder: Path) -> list[Path]:
    return temporaries(folder, recursive=True)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    rows = text_rows(200, seed=4)
    rows[7][COLUMNS.index("Age")] = "old"  # one reject, so every run writes a rejects row
    (tmp_path / "in.csv").write_bytes(csv_bytes(rows))
    (tmp_path / "train.csv").write_bytes(csv_bytes(text_rows(300, seed=5)))
    assert run(["fit", tmp_path / "train.csv", "-o", tmp_path / "state.json"]).exit_code == 0
    return tmp_path


# ------------------------------------------------------------------ an output naming an input

SAME_FILE: list[tuple[str, Callable[[Path], list[str | Path]], str]] = [
    (
        "score -o input",
        lambda w: ["score", w / "in.csv", "-o", w / "in.csv"],
        "the output {w}/in.csv is the same file as the input",
    ),
    (
        "fit -o training file",
        lambda w: ["fit", w / "train.csv", "-o", w / "train.csv"],
        "the state {w}/train.csv is the same file as the training file",
    ),
    (
        "--rejects input",
        lambda w: ["score", w / "in.csv", "-o", w / "o.csv", "--rejects", w / "in.csv"],
        "the rejects {w}/in.csv is the same file",
    ),
    (
        "--save-state input",
        lambda w: [
            "score",
            w / "in.csv",
            "--train",
            w / "train.csv",
            "--save-state",
            w / "in.csv",
            "-o",
            w / "o.csv",
        ],
        "the saved state {w}/in.csv is the same file as the input",
    ),
    (
        "--save-state training file",
        lambda w: [
            "score",
            w / "in.csv",
            "--train",
            w / "train.csv",
            "--save-state",
            w / "train.csv",
            "-o",
            w / "o.csv",
        ],
        "the saved state {w}/train.csv is the same file as the training file",
    ),
    (
        "-o state",
        lambda w: [
            "score",
            w / "in.csv",
            "--state",
            w / "state.json",
            "-o",
            w / "state.json",
            "--format",
            "csv",
        ],
        "the output {w}/state.json is the same file as the state",
    ),
    (
        "output and rejects",
        lambda w: ["score", w / "in.csv", "-o", w / "both.csv", "--rejects", w / "both.csv"],
        "the rejects {w}/both.csv is the same file as the output",
    ),
    (
        "default rejects name is the input",
        lambda w: ["score", w / "x.rejects.csv", "-o", w / "x.csv"],
        "the rejects {w}/x.rejects.csv is the same file as the input",
    ),
    (
        "hard link to the input",
        lambda w: ["score", w / "in.csv", "-o", w / "hard.csv"],
        "the output {w}/hard.csv is the same file as the input",
    ),
    (
        "symbolic link to the input",
        lambda w: ["score", w / "in.csv", "-o", w / "soft.csv"],
        "the output {w}/soft.csv is the same file as the input",
    ),
    (
        "relative spelling",
        lambda w: ["score", w / "in.csv", "-o", w / "sub" / ".." / "in.csv"],
        "is the same file as the input",
    ),
    (
        "bind -o model",
        lambda w: [
            "bind",
            "--model",
            ROOT / "models/churn_mlp.onnx",
            "--state",
            w / "state.json",
            "-o",
            w / "state.json",
        ],
        "the output {w}/state.json is the same file as the state",
    ),
]


@pytest.mark.parametrize(
    ("args", "message"), [pytest.param(a, m, id=name) for name, a, m in SAME_FILE]
)
def test_an_output_naming_an_input_is_refused_before_anything_is_read(
    work: Path, args: Callable[[Path], list[str | Path]], message: str
) -> None:
    (work / "x.rejects.csv").write_bytes((work / "in.csv").read_bytes())
    os.link(work / "in.csv", work / "hard.csv")
    (work / "soft.csv").symlink_to(work / "in.csv")
    (work / "sub").mkdir()
    before = {p.name: digest(p) for p in work.iterdir() if p.is_file()}
    result = run(args(work))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert message.format(w=work) in result.stderr
    assert "choose another path" in result.stderr
    assert {p.name: digest(p) for p in work.iterdir() if p.is_file()} == before
    assert leftovers(work) == []
    assert not (work / "o.csv").exists()


def test_score_and_train_on_one_file_is_fine(work: Path) -> None:
    """Inputs may share a file; only outputs must be distinct. Every row is scored or
    rejected, as with two files."""
    result = run(
        [
            "score",
            work / "in.csv",
            "--train",
            work / "in.csv",
            "-o",
            work / "o.csv",
            "--allow-state-mismatch",
        ]
    )
    assert result.exit_code == 0, result.output
    rows = data_rows(work / "in.csv")
    bad = [i for i, row in enumerate(rows) if not is_number(row[COLUMNS.index("Age")])]
    assert bad != []  # the fixture's reject: the test sees that the counts add up
    rejects = data_rows(work / "o.rejects.csv")
    assert [int(r[1]) for r in rejects] == [i + 2 for i in bad]  # line 1 is the header
    assert len(data_rows(work / "o.csv")) == len(rows) - len(bad)


# ------------------------------------------------------------------ special targets


def test_rejects_to_dev_null_keeps_dev_null_a_device(work: Path) -> None:
    result = run(["score", work / "in.csv", "-o", work / "o.csv", "--rejects", "/dev/null"])
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert pacsv.read_csv(work / "o.csv").num_rows == 199


def test_an_output_fifo_is_written_through(work: Path) -> None:
    fifo = work / "pipe.csv"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = run(["score", work / "in.csv", "-o", fifo])
    reader.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert received and received[0].startswith(b"CustomerId,raw,exited\n")
    assert received[0].count(b"\n") == 200  # header + 199 scored rows
    assert leftovers(work) == []


def test_a_symbolic_link_output_stays_a_link(work: Path) -> None:
    target = work / "real.csv"
    target.write_text("old\n")
    link = work / "link.csv"
    link.symlink_to(target)
    result = run(["score", work / "in.csv", "-o", link])
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert pacsv.read_csv(target).num_rows == 199


def test_a_folder_as_output_is_refused(work: Path) -> None:
    (work / "folder.csv").mkdir()
    result = run(["score", work / "in.csv", "-o", work / "folder.csv"])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {work}/folder.csv: is a folder; name a file to write"
    assert leftovers(work) == []


# ------------------------------------------------------------------ outputs by name


@pytest.mark.parametrize(("name", "opener"), [("o.csv.gz", gzip.open), ("o.jsonl.gz", gzip.open)])
def test_compressed_outputs_by_suffix(work: Path, name: str, opener: Callable) -> None:
    plain_name = name.removesuffix(".gz")
    assert run(["score", work / "in.csv", "-o", work / name]).exit_code == 0
    assert run(["score", work / "in.csv", "-o", work / plain_name]).exit_code == 0
    with opener(work / name, "rb") as handle:
        assert handle.read() == (work / plain_name).read_bytes()


def test_zstd_and_bz2_outputs_read_back(work: Path) -> None:
    for name in ("o.csv.zst", "o.csv.bz2"):
        assert run(["score", work / "in.csv", "-o", work / name]).exit_code == 0
        assert pacsv.read_csv(work / name).num_rows == 199


def test_compressed_parquet_is_refused(work: Path) -> None:
    result = run(["score", work / "in.csv", "-o", work / "o.parquet.gz"])
    assert result.exit_code == 2
    assert "Parquet compresses its own pages; drop the .gz suffix" in result.stderr


def test_outputs_of_different_formats_do_not_share_a_rejects_file(work: Path) -> None:
    for name in ("scored.csv", "scored.parquet", "scored.csv.gz"):
        assert run(["score", work / "in.csv", "-o", work / name]).exit_code == 0
    names = sorted(p.name for p in work.glob("scored*rejects.csv"))
    assert names == [
        "scored.csv.gz.rejects.csv",
        "scored.parquet.rejects.csv",
        "scored.rejects.csv",
    ]
    assert pq.read_table(work / "scored.parquet").num_rows == 199


def test_rejects_to_stderr(work: Path) -> None:
    result = run(["score", work / "in.csv", "-o", work / "o.csv", "--rejects", "-"], cwd=work)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "source,line,column,reason,text"
    assert lines[1].startswith(f"{work}/in.csv,9,Age,not a number,")
    assert [p.name for p in work.glob("*rejects*")] == ["state.json.rejects.csv"]  # the fit's


def test_an_unwritable_rejects_place_fails_before_any_row_is_scored(work: Path) -> None:
    (work / "afile").write_text("x")
    result = run(["score", work / "in.csv", "-o", "-", "--rejects", work / "afile" / "r.csv"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{work}/afile/r.csv: cannot write here" in result.stderr


# ------------------------------------------------------------------ SIGTERM


def _start_on_stdin(work: Path, spool_dir: Path) -> subprocess.Popen[bytes]:
    env = cli_env(TMPDIR=str(spool_dir))
    return subprocess.Popen(
        [*CHURNCTL, "score", "-", "-o", str(work / "o.csv")],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition(), "the run never got there"


def _terminate(process: subprocess.Popen[bytes], work: Path, spool_dir: Path) -> None:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert b"Traceback" not in err
    assert leftovers(work) == []
    assert list(spool_dir.glob("churnctl-stdin-*")) == []
    assert not (work / "o.csv").exists()


def test_sigterm_while_scoring_removes_temporary_outputs_and_the_spool(work: Path) -> None:
    spool_dir = work / "spool"
    spool_dir.mkdir()
    generate_files(work / "big.csv", n_rows=150_000, seed=1)  # several 1 MiB read blocks
    process = _start_on_stdin(work, spool_dir)
    assert process.stdin is not None
    process.stdin.write((work / "big.csv").read_bytes())
    process.stdin.flush()  # stdin stays open: the run waits for more rows
    _wait_for(lambda: bool(leftovers(work)))
    _terminate(process, work, spool_dir)


def test_sigterm_before_the_first_block_removes_the_spool(work: Path) -> None:
    spool_dir = work / "spool"
    spool_dir.mkdir()
    process = _start_on_stdin(work, spool_dir)
    assert process.stdin is not None
    process.stdin.write(csv_bytes(text_rows(20, seed=1)))
    process.stdin.flush()
    _wait_for(lambda: bool(list(spool_dir.glob("churnctl-stdin-*"))))
    _terminate(process, work, spool_dir)


# ------------------------------------------------------------------ concurrent runs


def test_publication_renames_under_an_exclusive_lock_on_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[bool] = []
    real_replace = atomic.os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        fd = os.open(Path(dst).parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(fd)
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with atomic.publishing() as publication:
        for name in ("a.csv", "a.rejects.csv"):
            with publication.file(tmp_path / name) as path:
                path.write_text(name)
    assert held == [True, True]
    assert (tmp_path / "a.rejects.csv").read_text() == "a.rejects.csv"


def test_two_concurrent_runs_publish_a_consistent_pair(work: Path) -> None:
    """Each run has its own input (own ids, own reject): the pair must come from one run."""
    env = cli_env()
    for name, seed in (("a.csv", 11), ("b.csv", 12)):
        rows = text_rows(3000, seed=seed)
        rows[0][COLUMNS.index("Age")] = "bad"
        (work / name).write_bytes(csv_bytes(rows))
    for _ in range(4):
        runs = [
            subprocess.Popen(
                [*CHURNCTL, "score", str(work / n), "-o", str(work / "o.csv")],
                env=env,
                stderr=subprocess.DEVNULL,
            )
            for n in ("a.csv", "b.csv")
        ]
        assert [p.wait(timeout=120) for p in runs] == [0, 0]
        first_id = pacsv.read_csv(work / "o.csv").column("CustomerId")[0].as_py()
        (reject,) = pacsv.read_csv(work / "o.rejects.csv").to_pylist()
        source = Path(reject["source"]).name
        expected = pacsv.read_csv(work / source).column("CustomerId")[1].as_py()
        assert first_id == expected, (source, first_id, expected)


# ------------------------------------------------------------------ fit: rejects and a limit


def _training_file(work: Path, bad: int) -> Path:
    rows = text_rows(100, seed=6)
    for i in range(bad):
        rows[10 + i][COLUMNS.index("Balance")] = "n/a"
    rows[50] = [*rows[50], "extra"]  # and one malformed line
    path = work / f"train{bad}.csv"
    path.write_bytes(csv_bytes(rows))
    return path


def test_fit_over_the_reject_limit_writes_nothing(work: Path) -> None:
    train = _training_file(work, bad=9)  # 10 of 100 rows: over the default 5%
    before = digest(train)
    result = run(["fit", train, "-o", work / "s.json"])
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1
    assert "10 of 100 rows rejected, over the limit of 5% of rows; no state was written" in (
        result.stderr
    )
    assert "line 12, column Balance: not a number" in result.stderr
    assert not (work / "s.json").exists() and not (work / "s.json.rejects.csv").exists()
    assert digest(train) == before and leftovers(work) == []


def test_fit_writes_its_rejects_with_lines_and_reasons(work: Path) -> None:
    train = _training_file(work, bad=3)
    result = run(["fit", train, "-o", work / "s.json", "--max-rejects", "100%"])
    assert result.exit_code == 0, result.output
    assert f"rejects → {work}/s.json.rejects.csv" in result.stderr
    rejects = pacsv.read_csv(work / "s.json.rejects.csv").to_pylist()
    assert [(r["line"], r["column"], r["reason"]) for r in rejects] == [
        (12, "Balance", "not a number"),
        (13, "Balance", "not a number"),
        (14, "Balance", "not a number"),
        (52, "", "expected 14 fields, found 15"),
    ]
    provenance = load_state(work / "s.json").provenance
    assert (provenance["rows"], provenance["rows_rejected"]) == (100, 4)


def test_fit_rejects_to_stderr_and_the_python_api_limit(work: Path) -> None:
    train = _training_file(work, bad=2)
    result = run(["fit", train, "-o", work / "s.json", "--rejects", "-", "--max-rejects", "3"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == "source,line,column,reason,text"
    with pytest.raises(TooManyRejectsError, match="3 of 100 rows rejected"):
        fit_state(train, max_rejects=RejectLimit(count=2))
