"""The ``watch`` and ``watch-status`` commands in-process: options, errors, status, live panel."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cli_helpers import assert_clean_error, plain, run
from rich.console import Console

from churnctl.cli import watching
from tests.csv_rows import csv_bytes, text_rows


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_bytes(csv_bytes(text_rows(30, 1)))
    (folder / "b.csv").write_bytes(csv_bytes(text_rows(20, 2)))
    return folder


def test_once_scores_the_folder_and_logs_json(landing: Path, tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    result = run(
        ["watch", landing, "--out", tmp_path / "out", "--once", "--settle", "0", "--log-json", log]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted((r["input"], r["rows_read"], r["rows_rejected"]) for r in records) == [
        ("a.csv", 30, 0),
        ("b.csv", 20, 0),
    ]
    assert all(Path(r["output"]).is_file() and r["latency_ms"] >= 0 for r in records)
    assert "2 file(s) scored, 0 failed; 50 rows read" in plain(result.stderr)


def test_once_exits_4_when_a_file_failed(landing: Path, tmp_path: Path) -> None:
    (landing / "bad.csv").write_text("x,y\n1,2\n")
    result = run(["watch", landing, "--out", tmp_path / "out", "--once", "--settle", "0"])
    assert result.exit_code == 4, result.output
    last = plain(result.stderr.splitlines()[-1])
    assert last.startswith("Error: 1 file(s) failed: see ") and "watch-status" in last
    assert "FAILED bad.csv" in plain(result.stderr) and "Traceback" not in result.stderr


def test_status_shows_counts_last_files_and_failures(landing: Path, tmp_path: Path) -> None:
    (landing / "bad.csv").write_text("x,y\n1,2\n")
    run(["watch", landing, "--out", tmp_path / "out", "--once", "--settle", "0"])
    for args in (
        ["watch-status", tmp_path / "out"],
        ["watch", "--status", "--out", tmp_path / "out"],
    ):
        result = run(args)
        assert result.exit_code == 0, result.output
        text = plain(result.stdout)
        assert "claimed done failed 0 2 1" in text
        assert "a.csv 30 0" in text and "b.csv 20 0" in text
        assert "bad.csv 1" in text and "CreditScore" in text


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["watch"], 2, "watch needs IN_DIR"),
        (["watch", "{in}"], 2, "watch needs --out DIR"),
        (["watch", "{in}/nope", "--out", "{out}"], 2, "not a folder"),
        (["watch", "{in}", "--out", "{in}"], 2, "scored again as inputs"),
        (["watch", "{in}", "--out", "{out}", "--after", "move"], 2, "after must be one of"),
        (["watch", "{in}", "--out", "{out}", "--poll", "0"], 2, "poll must be >= 0.01"),
        (["watch", "{in}", "--out", "{out}", "--done-marker", "."], 2, "done marker"),
        (["watch", "{in}", "--out", "{out}", "--format", "xml"], 2, "format must be one of"),
        (["watch-status", "{out}"], 1, "no watch manifest"),
    ],
)
def test_usage_errors_are_one_line(
    landing: Path, tmp_path: Path, args: list[str], code: int, fragment: str
) -> None:
    (tmp_path / "out").mkdir(exist_ok=True)
    filled = [a.format(**{"in": landing, "out": tmp_path / "out"}) for a in args]
    assert_clean_error(run(filled), code, fragment)


def test_another_configuration_on_the_same_output_is_refused(landing: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(["watch", landing, "--out", out, "--once", "--settle", "0"]).exit_code == 0
    again = run(["watch", landing, "--out", out, "--once", "--threshold", "0.7"])
    assert again.exit_code == 1
    assert plain(again.stderr.splitlines()[-1]).startswith("Error: ")
    assert "scored with another threshold" in again.stderr and "pass --out" in again.stderr


def test_the_live_panel_on_a_terminal(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=120)
    monkeypatch.setattr(watching, "stderr", terminal)
    result = run(["watch", landing, "--out", tmp_path / "out", "--once", "--settle", "0"])
    assert result.exit_code == 0, result.output
    text = plain(screen.getvalue())
    assert "files 2 done, 0 pending, 0 failed" in text
    assert "rows 50 read, 0 rejected" in text
    assert "latency last" in text and "p99" in text
    assert "scored a.csv" not in text  # scored files are in the panel, not one line each
