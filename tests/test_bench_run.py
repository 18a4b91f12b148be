"""benchmarks/run.py --smoke: the whole benchmark runs, its baselines agree, the page is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_run_smoke_writes_the_page_and_chart(tmp_path: Path) -> None:
    page = tmp_path / "docs" / "benchmarks.md"
    page.parent.mkdir()
    page.write_text("# Benchmarks\n\nIntro.\n\n## `churnctl watch`\n\nkept section\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--out", str(page)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PROBLEM" not in done.stderr
    text = page.read_text(encoding="utf-8")
    for figure in ("`score` / floor, wall", "record-at-a-time loop", "ColumnTransformer",
                   "`score --workers 2` speed-up", "`fit` peak RSS", "`churnctl --help` wall",
                   "JSONL output", "one bad row at the end"):  # fmt: skip
        assert figure in text, figure
    assert text.startswith("# Benchmarks\n\nIntro.")  # the preamble is kept
    assert "kept section" in text  # a section whose script did not run is kept
    assert text.index("## Summary") < text.index("## `churnctl watch`")
    assert (tmp_path / "docs" / "benchmarks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_targeted_rows_of_another_script_reach_the_summary() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import run
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    section = ("## x\n\n| figure | measured | target | met? |\n|---|---|---|---|\n"
               "| p50 | 12.5 ms | ≤ 50 | yes |\n| rows | 1,000 rows/s |  |  |\n"
               "| ratio | 1.66 | ≤ 1.3 | **no** |\n")  # fmt: skip
    assert run.targeted_rows(section) == [("p50", "12.5 ms", "≤ 50", True),
                                          ("ratio", "1.66", "≤ 1.3", False)]  # fmt: skip
    target = run.target_of("≥ 1.6")
    assert target is not None and target.met(1.7) and not target.met(1.5)
    assert run.first_number("1,234.5 rows/s") == 1234.5
    assert run.Target("<=", 2).headroom(1.0) == 2.0
