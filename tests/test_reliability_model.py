"""Reliability of the model side (issue 7): odd model outputs, odd states, odd settings.

Every case runs real components: ONNX models built with ``onnx.helper`` and run by ONNX
Runtime, states written to and loaded from files, the CLI through typer's CliRunner (or a
subprocess where ONNX Runtime's own C++ logging, which bypasses Python, must be observed).
Each failure must be one line naming what was seen, with the documented exit code, and
must leave the input unchanged and no temporary file behind.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, settings
from onnx import TensorProto, helper
from typer.testing import CliRunner, Result

from churnctl import Scorer
from churnctl.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.cli import app
from churnctl.errors import UsageError
from churnctl.frame import Frame
from churnctl.pipeline import FeaturePipeline
from churnctl.stages import VectorAssembler
from churnctl.state import FeatureState, content_checksum

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOT_FINITE = "model output not finite"
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# ------------------------------------------------------------------ helpers


def run(args: Sequence[str | Path]) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def run_process(args: Sequence[str | Path]) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process: what reaches the terminal, ONNX Runtime's C++ log included."""
    code = "import sys; from churnctl.cli import app; sys.argv[0] = 'churnctl'; app()"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def one_line(text: str) -> str:
    """The one non-empty line of ``text`` (asserting there is exactly one)."""
    lines = [line for line in ANSI.sub("", text).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.tmp"))


@pytest.fixture
def no_warnings() -> Iterator[None]:
    """Any Python warning (numpy's RuntimeWarning included) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def save_model(
    path: Path,
    nodes: list[onnx.NodeProto],
    initializers: Sequence[onnx.TensorProto] = (),
    *,
    width: int | str = 1,
    output_shape: Sequence[int | str] = ("N", 1),
    output: str = "y",
) -> Path:
    """A float model with input ``x`` [N, width] and float output ``output``."""
    graph = helper.make_graph(
        nodes,
        "reliability",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, list(output_shape))],
        initializer=list(initializers),
    )
    opsets = [helper.make_opsetid("", 17)]
    model = helper.make_model(
        graph, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets)
    )
    onnx.checker.check_model(model, full_check=True)
    onnx.save_model(model, str(path))
    return path


def identity_model(path: Path) -> Path:
    """Outputs its one feature as is: the output is whatever the input column holds."""
    return save_model(path, [helper.make_node("Identity", ["x"], ["y"])])


def sqrt_model(path: Path) -> Path:
    """sqrt(x): NaN for a negative feature, a probability for one in [0, 1]."""
    return save_model(path, [helper.make_node("Sqrt", ["x"], ["y"])])


def two_logits_model(path: Path) -> Path:
    """Two class logits [-x, x]: the positive class's probability is sigmoid(2x)."""
    nodes = [
        helper.make_node("Neg", ["x"], ["minus"]),
        helper.make_node("Concat", ["minus", "x"], ["logits"], axis=1),
    ]
    return save_model(path, nodes, output_shape=("N", 2), output="logits")


def age_state() -> FeatureState:
    """A state whose one feature is the raw Age column, unscaled."""
    pipeline = FeaturePipeline(stages=[VectorAssembler(input_cols=["Age"], output_col="features")])
    pipeline.fit(Frame.from_columns({"Age": np.zeros(2)}))
    provenance = {
        "training_file": "ages.csv", "training_sha256": "0" * 64, "rows": 2,
        "rows_rejected": 0, "fitted_at": "1970-01-01T00:00:00+00:00", "pipeline": "ages.toml",
    }  # fmt: skip
    return FeatureState(pipeline, provenance, source="age-state")


def age_batch(ages: Sequence[float]) -> pa.Table:
    ids = [str(15_000_000 + i) for i in range(len(ages))]
    return pa.table({"CustomerId": ids, "Age": pa.array(ages, pa.float64())})


def sigmoid(z: Sequence[float] | np.ndarray) -> np.ndarray:
    """The logistic function by another formula than the library's."""
    return 0.5 * (1.0 + np.tanh(np.asarray(z, dtype=np.float64) / 2))


def write_age_csv(path: Path, ages: Sequence[str]) -> Path:
    lines = ["CustomerId,Age", *(f"{15_000_000 + i},{age}" for i, age in enumerate(ages))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def bundled_document() -> dict:
    return json.loads(Path(bundled(STATE)).read_text(encoding="utf-8"))


def resealed(document: dict) -> str:
    """The document as a careful forger would write it: a matching checksum."""
    document = copy.deepcopy(document)
    document["checksum"] = "sha256:" + content_checksum(document)
    return json.dumps(document, indent=2)


def write_state(path: Path, document: dict) -> Path:
    path.write_text(resealed(document), encoding="utf-8")
    return path


def sample(n: int = 200) -> pa.Table:
    return pacsv.read_csv(bundled(SAMPLE)).slice(0, n)


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory of a CLI run (stdout runs put their rejects file here)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def sample_csv(work: Path) -> Path:
    path = work / "in.csv"
    path.write_bytes(Path(bundled(SAMPLE)).read_bytes()[:20_000].rsplit(b"\n", 1)[0] + b"\n")
    return path


def assert_refused(result: Result, code: int, folder: Path, *fragments: str) -> str:
    """One `Error:` line on stderr, the exit code, no traceback, nothing written."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    line = one_line(result.stderr.replace(_warning_lines(result.stderr), ""))
    assert line.startswith("Error: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert leftovers(folder) == []
    assert not list(folder.glob("out*")), list(folder.iterdir())
    return line


def _warning_lines(stderr: str) -> str:
    return "".join(line for line in stderr.splitlines(keepends=True) if line.startswith("Warning"))


# ------------------------------------------------------------------ 7. threshold range


@pytest.mark.parametrize(
    "threshold", [float("nan"), 2, -1, float("inf"), -float("inf"), 1.000001, True, "0.5", None]
)
def test_a_threshold_outside_0_to_1_is_refused_by_the_scorer(threshold: object) -> None:
    with pytest.raises(UsageError) as info:
        Scorer(bundled(STATE), bundled(MODEL), threshold=threshold)  # type: ignore[arg-type]
    error = info.value
    assert f"got {threshold!r}" in error.message and "from 0 to 1" in error.message
    assert error.fix is not None and (error.fix.setting, error.fix.example) == ("threshold", "0.5")
    assert error.exit_code == 2 and "\n" not in str(error)


@pytest.mark.parametrize("threshold", [0, 0.0, 0.25, 1, 1.0, np.float32(0.5)])
def test_a_threshold_from_0_to_1_decides_exited(threshold: float) -> None:
    scored = Scorer(bundled(STATE), bundled(MODEL), threshold=threshold).score(sample()).scored
    raw = scored.column("raw").to_numpy()
    np.testing.assert_array_equal(scored.column("exited").to_numpy(), raw > float(threshold))


@pytest.mark.parametrize("threshold", ["nan", "2", "-1", "inf"])
def test_the_cli_refuses_a_threshold_outside_0_to_1(
    work: Path, sample_csv: Path, threshold: str
) -> None:
    before = digest(sample_csv)
    result = run(["score", sample_csv, "-o", work / "out.csv", "--threshold", threshold])
    line = assert_refused(result, 2, work, "threshold must be a number from 0 to 1")
    assert line.endswith("; pass --threshold 0.5"), line
    assert digest(sample_csv) == before


# ------------------------------------------------------------------ 3. kept columns


@pytest.mark.parametrize("name", ["raw", "exited", "reject_column", "reject_reason"])
def test_keeping_a_column_the_scorer_writes_is_refused(name: str) -> None:
    with pytest.raises(UsageError) as info:
        Scorer(bundled(STATE), bundled(MODEL), keep=["CustomerId", name])
    assert f"cannot keep column '{name}'" in info.value.message
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["raw", "exited", "reject_reason"])
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_the_cli_refuses_keep_raw_or_exited(
    work: Path, sample_csv: Path, name: str, fmt: str
) -> None:
    before = digest(sample_csv)
    result = run(["score", sample_csv, "-o", work / f"out.{fmt}", "--keep", name])
    assert_refused(result, 2, work, f"cannot keep column '{name}'")
    assert digest(sample_csv) == before


def test_a_kept_column_with_another_name_is_fine() -> None:
    scorer = Scorer(bundled(STATE), bundled(MODEL), keep=["CustomerId", "Surname"])
    assert scorer.score(sample(5)).scored.column_names == ["CustomerId", "Surname", "raw", "exited"]
