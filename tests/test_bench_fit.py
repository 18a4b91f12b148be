"""benchmarks/bench_fit.py --smoke: the fit benchmark runs and reports wall time and peak RSS."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_fit_smoke() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_fit.py"), "--smoke",
         "--max-rss-mb", "2000"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[-3:] == ["peak", "RSS", "MB"]
    rows = [line.split() for line in lines[1:3]]
    assert [row[0] for row in rows] == ["2,000", "20,000"]
    assert all(float(row[-1].replace(",", "")) > 10 for row in rows)  # a real process's RSS
    assert re.fullmatch(r"peak RSS, largest / smallest size: \d+\.\d\d", lines[3])
