"""Reliability of the input side (issue 7): odd inputs are read, refused or quarantined cleanly.

Runaway quotes, pipes and closed stdin, huge headers, Parquet types, unreadable
files, and the early reject limit. Every refusal is one ``Error:`` line naming
the file, exit code 2, no traceback, nothing published.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from csv_rows import csv_bytes, text_rows
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from churnctl.cli import app
from churnctl.generate import COLUMNS
from churnctl.rejects import EARLY_ROWS, RejectLimit

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample.csv"
runner = CliRunner()


# ------------------------------------------------------------------ helpers


def score(*args: str | Path, input: bytes | None = None):
    return runner.invoke(app, ["score", *map(str, args)], input=input)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def assert_refused(result, code: int, *fragments: str) -> str:
    """One ``Error:`` line holding every fragment, the exit code, no traceback."""
    assert result.exit_code == code, result.output
    message = result.stderr.strip()
    assert message.startswith("Error: ") and "\n" not in message, message
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in message, message
    return message


def assert_no_leftovers(directory: Path, *allowed: str) -> None:
    """Nothing but the allowed files: no output, no rejects, no ``.*.tmp``."""
    assert sorted(p.name for p in directory.iterdir()) == sorted(allowed)


def sample_lines() -> list[str]:
    return SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)


def with_stray_quote(lines: list[str], row: int, column: str = "Surname") -> list[str]:
    """``lines`` with a quote opening ``column`` of data row ``row`` (1-based), never closed."""
    fields = lines[row].split(",")
    fields[COLUMNS.index(column)] = '"' + fields[COLUMNS.index(column)]
    return [*lines[:row], ",".join(fields), *lines[row + 1 :]]


# ------------------------------------------------------------------ 7. the early reject limit


def test_a_file_where_every_row_is_rejected_fails_early(tmp_path: Path) -> None:
    data = [list(r) for r in text_rows(20_000, seed=2)]
    for row in data:
        row[COLUMNS.index("Age")] = "?"
    path = tmp_path / "in.csv"
    path.write_bytes(csv_bytes(data))
    result = runner.invoke(app, ["score", str(path), "-o", "-"])
    message = assert_refused(result, 3, "rows rejected, over the limit of 5% of rows")
    read = int(message.split(" of ")[1].split(" rows")[0].replace(",", ""))
    assert EARLY_ROWS <= read < 20_000
    assert result.stdout.strip() == "CustomerId,raw,exited"


def test_sporadic_rejects_near_the_limit_are_judged_on_the_whole_file(tmp_path: Path) -> None:
    """8% bad rows among the first 1,500, 4% overall: passes, as it always did."""
    data = [list(r) for r in text_rows(20_000, seed=2)]
    for i in [*range(0, 1_500, 12), *range(1_500, 20_000, 27)]:
        data[i][COLUMNS.index("Age")] = "?"
    path = tmp_path / "in.csv"
    path.write_bytes(csv_bytes(data))
    result = score(path, "-o", tmp_path / "out.csv")
    assert result.exit_code == 0, result.output


@settings(max_examples=300, deadline=None)
@given(
    fraction=st.floats(0, 1),
    read=st.integers(0, 100_000),
    share=st.floats(0, 1),
)
def test_an_early_failure_is_never_one_the_final_check_would_not_make(
    fraction: float, read: int, share: float
) -> None:
    limit = RejectLimit(fraction=fraction)
    rejected = int(read * share)
    if limit.exceeded(rejected, read, final=False):
        assert read >= EARLY_ROWS
        assert limit.exceeded(rejected, read, final=True)  # over the limit on the rows so far
    if read < EARLY_ROWS:
        assert not limit.exceeded(rejected, read, final=False)  # small files: the final check
    if rejected > 2 * fraction * read and read >= EARLY_ROWS:
        assert limit.exceeded(rejected, read, final=False)
