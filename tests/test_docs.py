"""The documentation's Python examples run as they are, from the repository's root."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def examples(page: str) -> list[str]:
    return FENCE.findall((ROOT / page).read_text(encoding="utf-8"))


@pytest.mark.parametrize("index", range(len(examples("docs/python-api.md"))))
def test_python_api_example_runs(index: int) -> None:
    code = examples("docs/python-api.md")[index]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_python_api_page_has_examples() -> None:
    assert len(examples("docs/python-api.md")) == 3
