"""Long work shows where it is (item 19); ``--json`` documents for automation (item 20)."""

from __future__ import annotations

import gzip
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import cli_helpers
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from cli_helpers import cli_env
from csv_rows import csv_bytes, text_rows

from churnctl.batch.fit_file import fit_state
from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.cli.documents import ENTRY_KEYS, FILE_KEYS, INSPECT_KEYS, SCORE_KEYS, STATUS_KEYS
from churnctl.faults import FAULT_ENV
from churnctl.io import coalesce
from churnctl.io.sources import Progress, ReadOptions
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.samples.generate import COLUMNS, generate_files, generate_table
from churnctl.scoring.scorer import Scorer

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

# ------------------------------------------------------------------ item 19: progress


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("progress")
    table = generate_table(20_000, seed=3)
    pacsv.write_csv(table, folder / "in.csv")
    (folder / "in.csv.gz").write_bytes(gzip.compress((folder / "in.csv").read_bytes()))
    pq.write_table(
        pa.concat_tables([table] * 12), folder / "in.parquet", row_group_size=20_000
    )  # batches of 65,536 rows: four
    return {
        "csv": folder / "in.csv",
        "csv.gz": folder / "in.csv.gz",
        "parquet": folder / "in.parquet",
    }


def assert_climbs_to_the_end(reports: list[Progress], rows: int) -> None:
    fractions = [r.fraction for r in reports]
    assert all(f is not None for f in fractions)
    assert fractions == sorted(fractions), fractions  # never goes back
    assert 0 <= fractions[0] < 1 and fractions[-1] == 1.0
    assert len({round(f, 2) for f in fractions}) > 3  # it moves between the ends
    assert [r.rows for r in reports] == sorted(r.rows for r in reports) and reports[-1].rows == rows


@pytest.mark.parametrize("kind", ["csv", "csv.gz", "parquet"])
def test_scoring_reports_the_share_of_the_file_read(
    inputs: dict[str, Path], tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coalesce, "MIN_ROWS", 1024)  # progress per joined batch: keep them small
    reports: list[Progress] = []
    request = ScoreRequest(
        input=str(inputs[kind]),
        output=str(tmp_path / "o.csv"),
        scorer=Scorer(bundled(STATE), bundled(MODEL)),
        read_options=ReadOptions(block_size=65_536),
    )
    summary = score_file(request, on_progress=reports.append)
    assert_climbs_to_the_end(reports, summary.rows.read)
    assert summary.rows.read == (240_000 if kind == "parquet" else 20_000)
    assert {(r.pass_number, r.passes) for r in reports} == {(1, 1)}


def test_a_stream_reports_rows_only(inputs: dict[str, Path], tmp_path: Path) -> None:
    read, write = os.pipe()
    writer = subprocess.Popen(["cat", str(inputs["csv"])], stdout=write)
    os.close(write)
    reports: list[Progress] = []
    request = ScoreRequest(
        input=f"/dev/fd/{read}",
        output=str(tmp_path / "o.csv"),
        scorer=Scorer(bundled(STATE), bundled(MODEL)),
    )
    try:
        summary = score_file(request, on_progress=reports.append)
    finally:
        os.close(read)
        writer.wait(timeout=60)
    assert {r.fraction for r in reports} == {None}
    assert reports[-1].rows == summary.rows.read == 20_000


def test_fit_reports_each_pass_from_start_to_end(inputs: dict[str, Path]) -> None:
    reports: list[Progress] = []
    fit_state(
        inputs["csv.gz"], on_progress=reports.append, read_options=ReadOptions(block_size=65_536)
    )
    passes = reports[0].passes
    assert passes >= 2 and {r.passes for r in reports} == {passes}
    assert [r.pass_number for r in reports] == sorted(r.pass_number for r in reports)
    for number in range(1, passes + 1):
        assert_climbs_to_the_end([r for r in reports if r.pass_number == number], 20_000)


def test_a_terminal_sees_the_percentage_and_the_eta(tmp_path: Path) -> None:
    (big,) = generate_files(tmp_path / "big.csv.gz", n_rows=120_000, seed=2)  # several blocks
    master, slave = pty.openpty()
    # slow batches: the display refreshes
    env = cli_env(COLUMNS="120", TERM="xterm", **{FAULT_ENV: "sleep=0.1"})
    process = subprocess.Popen(
        [sys.executable, "-m", "churnctl", "score", str(big), "-o", str(tmp_path / "o.csv")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65_536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert process.wait(timeout=60) == 0, seen
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", seen.decode(errors="replace"))
    shown = re.findall(r"(\d+)% ([\d,]+) rows ETA", text)
    assert {int(p) for p, _ in shown} - {0, 100}, text  # a share between the ends was shown
    assert "read 120,000 rows" in text


# ------------------------------------------------------------------ item 20: --json


def documented(keys: tuple[str, ...]) -> None:
    """Every key is named in the README's automation section, as `key`."""
    section = README[README.index("### Automation") :]
    assert [k for k in keys if f"`{k}`" not in section] == []


def run(args: list[str | Path]) -> tuple[int, str, str]:
    result = cli_helpers.run(args)
    return result.exit_code, result.stdout, result.stderr


def one_document(stdout: str) -> dict:
    assert stdout.endswith("\n") and stdout.count("\n") == 1, stdout  # nothing else on stdout
    return json.loads(stdout)


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("json")
    for name, bad in (("a.csv", 1), ("b.csv", 2), ("c.csv", 60)):
        rows = text_rows(100, seed=len(name) + bad)
        for i in range(bad):
            rows[i][COLUMNS.index("Age")] = "old"
        (folder / name).write_bytes(csv_bytes(rows))
    return folder


def check_score_document(document: dict) -> None:
    assert tuple(document) == SCORE_KEYS
    assert document["rows_read"] == document["rows_scored"] + document["rows_rejected"]
    for entry in document["files"]:
        assert tuple(entry) == FILE_KEYS
        if entry["error"] is None:
            assert entry["rows_read"] == entry["rows_scored"] + entry["rows_rejected"]
    done = [f for f in document["files"] if f["error"] is None]
    for key in ("rows_read", "rows_scored", "rows_rejected"):
        assert document[key] == sum(f[key] for f in done)
    assert document["failed"] == len(document["files"]) - len(done)
    assert len(document["model"]["sha256"]) == 64
    assert document["state"]["fingerprint"].startswith("sha256:")
    assert document["binding_check_skipped"] is (document["binding"] == "skipped")


def test_score_json_one_input(messy: Path, tmp_path: Path) -> None:
    code, stdout, stderr = run(["score", messy / "a.csv", "-o", tmp_path / "o.csv", "--json"])
    assert code == 0, stderr
    document = one_document(stdout)
    check_score_document(document)
    assert (document["rows_read"], document["rows_rejected"], document["exit_code"]) == (100, 1, 0)
    assert document["output"] == str(tmp_path / "o.csv")
    assert document["rejects"] == str(tmp_path / "o.rejects.csv")
    documented(SCORE_KEYS + FILE_KEYS)


def test_score_json_many_inputs_with_a_failed_file(messy: Path, tmp_path: Path) -> None:
    code, stdout, stderr = run(
        ["score", messy, "--out-dir", tmp_path / "out", "--json", "--workers", "1"]
    )
    assert code == 4, stderr
    assert "Error: " in stderr
    document = one_document(stdout)
    check_score_document(document)
    by_name = {Path(f["input"]).name: f for f in document["files"]}
    assert by_name["c.csv"]["exit_code"] == 3 and "--max-rejects" in by_name["c.csv"]["error"]
    assert (document["failed"], document["exit_code"], document["out_dir"]) == (
        1,
        4,
        str(tmp_path / "out"),
    )
    assert document["rows_read"] == 200 and document["rows_rejected"] == 3


@pytest.mark.parametrize("args", [[], ["-o", "-"], ["-o", "-", "--workers", "1", "b.csv"]])
def test_score_json_refuses_rows_on_stdout(messy: Path, args: list[str]) -> None:
    full = [messy / a if a == "b.csv" else a for a in args]
    code, stdout, stderr = run(["score", messy / "a.csv", *full, "--json"])
    assert code == 2 and stdout == ""
    assert stderr.startswith("Error: --json") and stderr.count("\n") == 1


def test_inspect_json() -> None:
    code, stdout, _ = run(["inspect", "--json"])
    assert code == 0
    document = one_document(stdout)
    assert tuple(document) == INSPECT_KEYS and document["compatible"] is True
    assert document["n_features"] == len(document["feature_names"]) == 12
    assert document["state"]["fingerprint"] == document["model"]["bound_to"]
    documented(INSPECT_KEYS)


def test_watch_status_json(messy: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate_files(landing, n_rows=300, files=2, seed=1)
    code, _, stderr = run(["watch", landing, "--out", tmp_path / "w", "--once", "--settle", "0"])
    assert code == 0, stderr
    code, stdout, _ = run(["watch-status", tmp_path / "w", "--json"])
    assert code == 0
    document = one_document(stdout)
    assert tuple(document) == STATUS_KEYS
    assert document["by_state"].get("done") == 2 and document["rows_read"] == 300
    assert document["rows_read"] == document["rows_scored"] + document["rows_rejected"]
    assert all(tuple(entry) == ENTRY_KEYS for entry in document["last"])
    assert sum(entry["rows_read"] for entry in document["last"]) == 300
    documented(STATUS_KEYS + ENTRY_KEYS)
