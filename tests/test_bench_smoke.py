"""Every benchmark script's ``--smoke`` (tiny sizes): the scripts run, check what they measure,
and cannot rot. The figures mean nothing at these sizes; the scripts' own checks do."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_smoke(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``benchmarks/SCRIPT --smoke ARGS`` in a subprocess; it must exit 0 with no PROBLEM."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--smoke", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PROBLEM" not in done.stderr
    return done


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("bench_watch.py", ["p50"]),
        ("bench_output.py", ["JSONL / CSV", "bad / clean"]),
        ("bench_drift.py", ["drift / no-drift", "of score's time"]),
        ("bench_startup.py", ["churnctl --help"]),
        ("bench_fixed_cost.py", ["score", "polars script", "/ polars script: "]),
        ("bench_workers.py", ["--out-dir speed-up, workers 2 / 1", "worker start-up, spawn"]),
    ],
)
def test_a_benchmark_runs_its_smoke(script: str, expected: list[str]) -> None:
    done = run_smoke(script)
    for text in expected:
        assert text in done.stdout, text


def test_bench_fit_reports_each_size_and_the_peak_ratio() -> None:
    lines = run_smoke("bench_fit.py", "--max-rss-mb", "2000", timeout=120).stdout.splitlines()
    assert lines[0].split()[-3:] == ["peak", "RSS", "MB"]
    rows = [line.split() for line in lines[1:3]]
    assert [row[0] for row in rows] == ["2,000", "20,000"]
    assert all(float(row[-1].replace(",", "")) > 10 for row in rows)  # a real process's RSS
    assert re.fullmatch(r"peak RSS, largest / smallest size: \d+\.\d\d", lines[3])


@pytest.mark.flink
@pytest.mark.timeout(1800)
def test_bench_flink_runs_every_variant(tmp_path: Path) -> None:
    pytest.importorskip("pyflink")
    markdown = tmp_path / "bench.md"
    done = run_smoke(
        "bench_flink.py", "--tmp", str(tmp_path), "--markdown", str(markdown), timeout=1500
    )  # five embedded Flink jobs and a `score` in a row, each checked, on a loaded machine
    for variant in ("s", "f", "score", "cli", "s1", "s2"):
        assert f"\n  {variant}: " in done.stdout, variant
    text = markdown.read_text()
    assert "| figure | measured | target | met? |" in text
    assert "| parallelism 2 / 1 speed-up, job time, 4 files |" in text


def test_bench_flink_compares_records_in_any_order(tmp_path: Path) -> None:
    """The check of the Flink benchmark's outputs: the same CSV records in any order and any
    files (``score``'s header skipped) are equal; one changed, missing or repeated is not."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_flink
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    records = ["1,0.25,false", "2,0.75,true", '"3,x",0.5,true', "4,0.125,false"]

    names = itertools.count()

    def digest(*parts: list[str], header: bool = False) -> tuple[int, int]:
        paths = [tmp_path / f"part-{next(names)}.csv" for _ in parts]
        for path, lines in zip(paths, parts, strict=True):
            path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        return bench_flink.records_digest(paths, header=header)

    reference = digest(["CustomerId,raw,exited", *records], header=True)
    assert reference[0] == 4
    assert digest(records[2:], records[1::-1]) == reference
    assert digest(records[:3]) != reference
    assert digest([*records, records[0]]) != reference
    assert digest([*records[:3], "4,0.126,false"]) != reference
    assert digest(['"3",x,0.5,true', *records[:2], records[3]]) != reference  # fields, not text


def test_bench_run_writes_the_page_and_chart(tmp_path: Path) -> None:
    page = tmp_path / "docs" / "benchmarks.md"
    page.parent.mkdir()
    page.write_text(
        "# Benchmarks\n\nIntro.\n\n## `churnctl watch`\n\nkept section\n\n"
        "| figure | measured | target | met? |\n|---|---|---|---|\n"
        "| latency p50 | 12.5 ms | ≤ 50 | yes |\n"
    )
    run_smoke("run.py", "--out", str(page))
    text = page.read_text(encoding="utf-8")
    for figure in (
        "`score` / floor, wall",
        "record-at-a-time loop",
        "ColumnTransformer",
        "`score --workers 2` speed-up",
        "`fit` peak RSS",
        "`churnctl --help` wall",
        "JSONL output",
        "one bad row at the end",
    ):
        assert figure in text, figure
    assert text.startswith("# Benchmarks\n\nIntro.")  # the preamble is kept
    assert "kept section" in text  # a section whose script did not run is kept
    assert text.index("## Summary") < text.index("## `churnctl watch`")
    summary = text[: text.index("## `churnctl watch`")]
    assert "| watch: latency p50 | 12.5 ms | ≤ 50 | yes |" in summary  # its target still counts
    assert (tmp_path / "docs" / "benchmarks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_takes_the_targeted_rows_of_another_script() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import run
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    section = (
        "## x\n\n| figure | measured | target | met? |\n|---|---|---|---|\n"
        "| p50 | 12.5 ms | ≤ 50 | yes |\n| rows | 1,000 rows/s |  |  |\n"
        "| ratio | 1.66 | ≤ 1.3 | **no** |\n"
    )
    assert run.targeted_rows(section) == [
        ("p50", "12.5 ms", "≤ 50", True),
        ("ratio", "1.66", "≤ 1.3", False),
    ]
    target = run.target_of("≥ 1.6")
    assert target is not None and target.met(1.7) and not target.met(1.5)
    assert run.first_number("1,234.5 rows/s") == 1234.5
    assert run.Target("<=", 2).headroom(1.0) == 2.0
