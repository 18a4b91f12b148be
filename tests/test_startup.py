"""Start-up: help, version and light commands import none of the heavy libraries.

Each check runs in a fresh interpreter (the test process has imported everything)
and reads ``sys.modules`` once the command is done. Timings are not asserted here:
``benchmarks/bench_startup.py`` measures them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from churnctl.cli import app
from churnctl.features.validated_states import CACHE_ENV

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("onnxruntime", "pandas", "numpy", "pyarrow", "jsonschema", "pyflink")
COMMANDS = sorted(command.name for command in app.registered_commands if command.name)
MARK = "STARTUP-PROBE "

# Runs the console script's `run` with ARGS, then reports its exit code and modules.
CLI_PROBE = """
import json, sys
sys.argv = ["churnctl", *ARGS]
from churnctl.cli import run
try:
    run()
    code = 0
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
print(MARK + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def probe(code: str, env: dict[str, str] | None = None, **names: Any) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter (names bound first, ``env`` added to the
    environment); what it printed after MARK."""
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    prelude = "".join(f"{name} = {value!r}\n" for name, value in {"MARK": MARK, **names}.items())
    done = subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    assert len(lines) == 1, done.stdout + done.stderr
    return {**json.loads(lines[0].removeprefix(MARK)), "stdout": done.stdout}


def heavy_in(modules: list[str]) -> list[str]:
    return [name for name in HEAVY if name in modules]


def test_the_commands_are_found() -> None:
    assert {"score", "inspect", "generate", "watch", "flink-submit"} <= set(COMMANDS)


def test_help_imports_no_heavy_library() -> None:
    result = probe(CLI_PROBE, ARGS=["--help"])
    assert result["code"] == 0
    assert "score" in result["stdout"]
    assert heavy_in(result["modules"]) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_imports_no_heavy_library(command: str) -> None:
    result = probe(CLI_PROBE, ARGS=[command, "--help"])
    assert result["code"] == 0
    assert "--help" in result["stdout"]
    assert heavy_in(result["modules"]) == []


def test_version_imports_no_heavy_library() -> None:
    from churnctl.version import package_version

    result = probe(CLI_PROBE, ARGS=["--version"])
    assert result["code"] == 0
    assert f"churnctl {package_version()}" in result["stdout"]
    assert heavy_in(result["modules"]) == []


def test_inspect_loads_the_model_and_state_without_pandas(tmp_path: Path) -> None:
    """The first load of a state walks its schema (jsonschema); the next ones, of the same
    text, are spared the walk and the import (``features.validated_states``)."""
    cache = {CACHE_ENV: str(tmp_path / "cache")}
    first, second = (probe(CLI_PROBE, env=cache, ARGS=["inspect"]) for _ in range(2))
    for result in (first, second):
        assert result["code"] == 0
        assert "compatible" in result["stdout"]
        assert "pandas" not in result["modules"]
    assert {"onnxruntime", "jsonschema"} <= set(first["modules"])
    assert "onnxruntime" in second["modules"] and "jsonschema" not in second["modules"]


def test_score_runs_without_pandas(tmp_path: Path) -> None:
    output = tmp_path / "scored.csv"
    result = probe(CLI_PROBE, ARGS=["score", "data/sample.csv", "-o", str(output)])
    assert result["code"] == 0
    assert output.read_text(encoding="utf-8").startswith("CustomerId,raw,exited\n")
    assert "pandas" not in result["modules"]
    assert "pyarrow.parquet" not in result["modules"]  # 10-40 ms a CSV run need not pay


def test_watch_status_imports_no_heavy_library(tmp_path: Path) -> None:
    result = probe(CLI_PROBE, ARGS=["watch-status", str(tmp_path)])
    assert result["code"] == 1  # no manifest there: the command ran, and failed cleanly
    assert heavy_in(result["modules"]) == []


IMPORT_PROBE = """
import json, sys
import churnctl
light = sorted(sys.modules)
listed = dir(churnctl)
resolved = {name: getattr(churnctl, name) is not None for name in churnctl.__all__}
from churnctl import Scorer
from churnctl.scoring.scorer import Scorer as Defined
print(MARK + json.dumps({"modules": light, "dir": listed, "all": churnctl.__all__,
                         "resolved": resolved, "same": Scorer is Defined}))
"""


def test_import_churnctl_is_light_and_every_public_name_resolves() -> None:
    result = probe(IMPORT_PROBE)
    assert heavy_in(result["modules"]) == []
    assert "importlib.metadata" not in result["modules"]  # the version is looked up when asked
    assert set(result["all"]) <= set(result["dir"])
    assert result["resolved"] == dict.fromkeys(result["all"], True)
    assert result["same"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    import churnctl

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        churnctl.Nope  # noqa: B018


HIDDEN_PROBE = """
import json, sys
from churnctl.cli.app import pandas_hidden
with pandas_hidden():
    try:
        import pandas
        hidden = False
    except ImportError:
        hidden = True
import pandas as pd
import pyarrow as pa
table = pa.Table.from_pandas(pd.DataFrame({"a": [1, 2]}))
print(MARK + json.dumps({"hidden": hidden, "rows": table.num_rows}))
"""


def test_pandas_is_hidden_only_while_a_command_runs() -> None:
    result = probe(HIDDEN_PROBE)
    assert result["hidden"] is True
    assert result["rows"] == 2


# The console script (``__main__.main``) with ARGS, an exit handler writing MARKER, and a
# thread of ours still at work when the command is done, if LINGER seconds are given.
EXIT_PROBE = """
import atexit, sys, threading, time
from pathlib import Path
atexit.register(lambda: Path(MARKER).write_text("exit handler ran"))
if LINGER:
    def linger():
        time.sleep(LINGER)
        Path(MARKER + ".thread").write_text("thread finished")
    threading.Thread(target=linger).start()
sys.argv = ["churnctl", *ARGS]
from churnctl.__main__ import main
main()
"""


@pytest.mark.parametrize("linger", [0, 0.5], ids=["nothing left", "a thread at work"])
def test_the_console_script_exits_at_once_only_when_nothing_is_left(
    tmp_path: Path, linger: float
) -> None:
    """The interpreter's teardown is skipped (issue 21), but never what it would do:
    exit handlers run, every byte of stdout is out, a thread of ours finishes."""
    marker = str(tmp_path / "marker")
    args = ["score", str(ROOT / "data" / "sample.csv"), "-o", "-"]
    prelude = f"MARKER = {marker!r}\nLINGER = {linger!r}\nARGS = {args!r}\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", prelude + EXIT_PROBE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(b"\n") == 10_001  # the header and every row
    assert Path(marker).read_text() == "exit handler ran"
    assert Path(marker + ".thread").exists() == bool(linger)


def test_a_profiled_run_still_writes_its_profile(tmp_path: Path) -> None:
    """`python -m cProfile -o F -m churnctl ...` writes F after the run: no early exit then."""
    profile = tmp_path / "run.prof"
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "churnctl", "--version"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert profile.stat().st_size > 0
