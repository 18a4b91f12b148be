"""benchmarks/bench_flink.py --smoke: every variant's Flink job runs and its counts add up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("pyflink")


@pytest.mark.flink
@pytest.mark.timeout(1800)
def test_bench_flink_smoke(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    script = str(ROOT / "benchmarks" / "bench_flink.py")
    markdown = tmp_path / "bench.md"
    done = subprocess.run(
        [sys.executable, script, "--smoke", "--tmp", str(tmp_path), "--markdown", str(markdown)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,  # four embedded Flink jobs, one after the other, on a loaded machine
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PROBLEM" not in done.stderr
    for variant in ("s:", "f:", "r:", "s2:"):
        assert variant in done.stdout
    assert "| figure | measured | target | met? |" in markdown.read_text()
