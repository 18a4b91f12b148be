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
import pickle
import re
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from cli_helpers import cli_env, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx_factories import logistic_n1, sklearn_zipmap
from typer.testing import Result

from churnctl import Scorer, extract_features
from churnctl.atomic import temporaries
from churnctl.errors import ChurnctlError, ModelError, StateError, UsageError
from churnctl.features.frame import Frame
from churnctl.features.pipeline import FeaturePipeline
from churnctl.features.stages import StandardScaler, VectorAssembler
from churnctl.features.state import FeatureState, content_checksum, load_state
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.scoring.binding import describe_orders
from churnctl.scoring.inspection import inspect_pair
from churnctl.scoring.model import ChurnModel

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOT_FINITE = "model output not finite"
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# ------------------------------------------------------------------ helpers


def run_process(args: Sequence[str | Path]) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process: what reaches the terminal, ONNX Runtime's C++ log included."""
    code = "import sys; from churnctl.cli import app; sys.argv[0] = 'churnctl'; app()"
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=cli_env(),
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
    return [p.name for p in temporaries(folder, recursive=True)]


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
        "training_file": "ages.csv",
        "training_sha256": "0" * 64,
        "rows": 2,
        "rows_rejected": 0,
        "fitted_at": "1970-01-01T00:00:00+00:00",
        "pipeline": "ages.toml",
    }
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
    assert line.endswith("; pass --threshold 0.5. Try 'churnctl score --help' for help."), line
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


# ------------------------------------------------------------------ 1. model output


@pytest.fixture
def sqrt_scorer(tmp_path: Path) -> Scorer:
    return Scorer(age_state(), sqrt_model(tmp_path / "sqrt.onnx"))


def test_rows_whose_model_output_is_nan_are_quarantined(sqrt_scorer: Scorer) -> None:
    batch = age_batch([0.25, -4.0, 0.81, -1.0, 1.0])
    result = sqrt_scorer.score(batch)
    assert result.scored.column("CustomerId").to_pylist() == ["15000000", "15000002", "15000004"]
    np.testing.assert_allclose(result.scored.column("raw").to_numpy(), [0.5, 0.9, 1.0], rtol=1e-6)
    assert result.rejects.to_pylist() == [
        {"row": 1, "column": None, "reason": NOT_FINITE, "value": None},
        {"row": 3, "column": None, "reason": NOT_FINITE, "value": None},
    ]
    assert result.n_read == batch.num_rows


def test_score_aligned_keeps_a_nan_output_row_in_place_with_its_reason(
    sqrt_scorer: Scorer,
) -> None:
    aligned = sqrt_scorer.score_aligned(age_batch([0.25, -4.0, 0.81]))
    assert aligned.column("raw").null_count == 1 and aligned.column("raw")[1].as_py() is None
    assert aligned.column("exited").to_pylist() == [False, None, True]
    assert aligned.column("reject_reason").to_pylist() == [None, NOT_FINITE, None]
    assert aligned.column("reject_column").to_pylist() == [None, None, None]


def test_an_input_reject_keeps_its_own_reason_next_to_a_nan_output(sqrt_scorer: Scorer) -> None:
    batch = pa.table({"CustomerId": ["a", "b", "c"], "Age": ["x", "-1", "0.64"]})
    aligned = sqrt_scorer.score_aligned(batch)
    assert aligned.column("reject_reason").to_pylist() == ["not a number", NOT_FINITE, None]
    assert aligned.column("reject_column").to_pylist() == ["Age", None, None]
    assert sqrt_scorer.score(batch).rejects.column("row").to_pylist() == [0, 1]


@PROPERTY
@given(st.lists(st.floats(-1.0, 1.0), max_size=40))
def test_every_row_is_scored_with_a_probability_or_quarantined(
    sqrt_scorer: Scorer, ages: list[float]
) -> None:
    batch = age_batch(ages)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = sqrt_scorer.score(batch)
        aligned = sqrt_scorer.score_aligned(batch)
    negative = [i for i, age in enumerate(ages) if np.float32(age) < 0]  # features are float32
    assert result.rejects.column("row").to_pylist() == negative
    assert set(result.rejects.column("reason").to_pylist()) <= {NOT_FINITE}
    assert result.n_read == len(ages)
    raw = result.scored.column("raw").to_numpy()
    assert np.isfinite(raw).all() and ((raw >= 0) & (raw <= 1)).all()
    assert (
        aligned.filter(aligned.column("reject_reason").is_null())
        .select(["CustomerId", "raw", "exited"])
        .equals(result.scored)
    )


@pytest.mark.parametrize(
    ("ages", "seen"),
    [
        ([0.5, 3.0, -2.0, 0.1], "2 of 4 values outside [0, 1] (min -2, max 3; batch rows 1, 2)"),
        ([0.5, 7.0, 40.0], "2 of 3 values outside [0, 1] (min 7, max 40; batch rows 1, 2)"),
    ],
)
def test_an_output_outside_0_to_1_is_refused_with_what_was_seen(
    tmp_path: Path, ages: list[float], seen: str
) -> None:
    scorer = Scorer(age_state(), identity_model(tmp_path / "identity.onnx"))
    with pytest.raises(ModelError) as info:
        scorer.score(age_batch(ages))
    error = info.value
    assert f"{tmp_path / 'identity.onnx'}: output 'y' is not a probability: {seen}" in str(error)
    assert "\n" not in str(error) and error.exit_code == 2
    if min(ages) < 0:  # looks like logits: the remedy is the logits setting
        assert error.fix is not None and (error.fix.setting, error.fix.example) == ("logits", True)
    else:
        assert error.fix is None and "must output the positive class's probability" in str(error)


def test_the_reported_rows_are_rows_of_the_batch_not_of_the_valid_rows(tmp_path: Path) -> None:
    scorer = Scorer(age_state(), identity_model(tmp_path / "identity.onnx"))
    batch = pa.table({"CustomerId": list("abcd"), "Age": ["", "x", "0.5", "-3"]})
    with pytest.raises(ModelError, match=r"batch rows 3\)"):
        scorer.score_aligned(batch)


def test_logits_are_turned_into_probabilities(tmp_path: Path, no_warnings: None) -> None:
    ages = [-800.0, -2.0, 0.0, 0.5, 3.0, 800.0]
    scorer = Scorer(age_state(), identity_model(tmp_path / "logit.onnx"), logits=True)
    result = scorer.score(age_batch(ages))
    expected = sigmoid(np.array(ages, dtype=np.float32))
    np.testing.assert_allclose(result.scored.column("raw").to_numpy(), expected, rtol=1e-6)
    assert result.scored.column("exited").to_pylist() == [False, False, False, True, True, True]
    assert result.rejects.num_rows == 0


def test_two_class_logits_go_through_the_softmax(tmp_path: Path, no_warnings: None) -> None:
    ages = [-1.0, 0.0, 0.25, 2.0]
    scorer = Scorer(age_state(), two_logits_model(tmp_path / "two.onnx"), logits=True)
    raw = scorer.score(age_batch(ages)).scored.column("raw").to_numpy()
    np.testing.assert_allclose(raw, sigmoid(2 * np.array(ages)), rtol=1e-6)


def test_a_non_finite_logit_is_quarantined(tmp_path: Path) -> None:
    model = save_model(tmp_path / "log.onnx", [helper.make_node("Log", ["x"], ["y"])])
    scorer = Scorer(age_state(), model, logits=True)
    result = scorer.score(age_batch([1.0, -1.0, 0.0, np.e]))  # log: 0, nan, -inf, 1
    np.testing.assert_allclose(result.scored.column("raw").to_numpy(), sigmoid([0, 1]), rtol=1e-6)
    assert result.rejects.column("row").to_pylist() == [1, 2]
    assert set(result.rejects.column("reason").to_pylist()) == {NOT_FINITE}


def test_logits_survive_pickling(tmp_path: Path) -> None:
    scorer = Scorer(age_state(), identity_model(tmp_path / "logit.onnx"), logits=True)
    revived = pickle.loads(pickle.dumps(scorer))
    batch = age_batch([-3.0, 3.0])
    assert revived.logits is True
    assert revived.score(batch).scored.equals(scorer.score(batch).scored)


def test_logits_are_refused_for_a_zipmap_of_probabilities(tmp_path: Path) -> None:
    model = sklearn_zipmap(tmp_path / "zipmap.onnx", 12).path
    with pytest.raises(ModelError, match="ZipMap of class probabilities, not logits"):
        Scorer(bundled(STATE), model, logits=True)
    with pytest.raises(ModelError, match="not logits"):
        ChurnModel(model).predict_proba(np.zeros((2, 12), np.float32), logits=True)
    with pytest.raises(UsageError, match="logits must be True or False"):
        Scorer(bundled(STATE), bundled(MODEL), logits="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_the_cli_quarantines_nan_outputs_and_writes_valid_files(work: Path, fmt: str) -> None:
    state, model = work / "age.json", sqrt_model(work / "sqrt.onnx")
    age_state().save(state)
    data = write_age_csv(work / "in.csv", ["0.25", "-4", "0.81", "-1", "0.04"])
    out, rejects = work / f"out.{fmt}", work / "rejects.csv"
    result = run(
        [
            "score",
            data,
            "--state",
            state,
            "--model",
            model,
            "-o",
            out,
            "--rejects",
            rejects,
            "--max-rejects",
            "100%",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "read 5 rows: 3 scored, 2 rejected" in result.stderr
    assert [(r["line"], r["column"], r["reason"], r["text"]) for r in read_csv(rejects)] == [
        (3, None, NOT_FINITE, "15000001,-4"),
        (5, None, NOT_FINITE, "15000003,-1"),
    ]
    if fmt == "jsonl":  # strict JSON: NaN would not parse
        rows = [json.loads(line, parse_constant=_refuse) for line in out.read_text().splitlines()]
    else:
        rows = (pq.read_table(out) if fmt == "parquet" else pacsv.read_csv(out)).to_pylist()
    assert [row["raw"] for row in rows] == pytest.approx([0.5, 0.9, 0.2], rel=1e-6)
    assert [str(row["CustomerId"]) for row in rows] == ["15000000", "15000002", "15000004"]
    assert leftovers(work) == []


def read_csv(path: Path) -> list[dict]:
    return pacsv.read_csv(
        path, convert_options=pacsv.ConvertOptions(strings_can_be_null=True)
    ).to_pylist()


def _refuse(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def test_the_cli_refuses_a_model_whose_output_is_not_a_probability(work: Path) -> None:
    state, model = work / "age.json", identity_model(work / "identity.onnx")
    age_state().save(state)
    data = write_age_csv(work / "in.csv", ["0.5", "-2.5", "3"])
    before = digest(data)
    result = run(["score", data, "--state", state, "--model", model, "-o", work / "out.csv"])
    line = assert_refused(
        result, 2, work, "identity.onnx: output 'y' is not a probability", "min -2.5, max 3"
    )
    assert line.endswith(
        "; pass --logits if the model outputs logits (log-odds) rather than probabilities"
    )
    assert digest(data) == before


def test_the_cli_applies_the_sigmoid_with_logits(work: Path) -> None:
    state, model = work / "age.json", identity_model(work / "identity.onnx")
    age_state().save(state)
    data = write_age_csv(work / "in.csv", ["0.5", "-2.5", "3"])
    result = run(
        ["score", data, "--state", state, "--model", model, "-o", work / "out.csv", "--logits"]
    )
    assert result.exit_code == 0, result.output
    raw = pacsv.read_csv(work / "out.csv").column("raw").to_numpy()
    np.testing.assert_allclose(raw, sigmoid([0.5, -2.5, 3]), rtol=1e-6)


# ------------------------------------------------------------------ 5. inference failures


def reshape_model(path: Path, rows: int) -> Path:
    """Reshapes its input to [rows, -1]: fails at run time unless rows divides N * 12."""
    shape = numpy_helper.from_array(np.array([rows, -1], dtype=np.int64), "shape")
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["grid"], name="fixed_rows"),
        helper.make_node("ReduceMean", ["grid"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Sigmoid", ["mean"], ["y"]),
    ]
    return save_model(path, nodes, [shape], width=12)


def symbolic_width_model(path: Path) -> Path:
    """Its input width is symbolic, but its MatMul needs 12 features."""
    weights = numpy_helper.from_array(np.full((12, 1), 0.1, dtype=np.float32), "w")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["y"]),
    ]
    return save_model(path, nodes, [weights], width="k")


def two_feature_state(path: Path) -> Path:
    pipeline = FeaturePipeline(
        stages=[VectorAssembler(input_cols=["Age", "Tenure"], output_col="features")]
    )
    pipeline.fit(Frame.from_columns({"Age": np.zeros(2), "Tenure": np.zeros(2)}))
    FeatureState(pipeline, age_state().provenance).save(path)
    return path


def assert_clean_model_error(message: str) -> None:
    assert "\n" not in message
    for internal in ("[ONNXRuntimeError]", ".h:", ".cc:", "onnxruntime::", "was false"):
        assert internal not in message, (internal, message)


def test_a_failure_at_run_time_is_one_clean_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    model = ChurnModel(reshape_model(tmp_path / "reshape.onnx", rows=7))
    with pytest.raises(ModelError) as info:
        model.predict_proba(np.zeros((5, 12), dtype=np.float32))
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'reshape.onnx'}: inference failed on a 5x12 feature")
    assert "node 'fixed_rows' (Reshape): " in message
    assert "cannot be reshaped to the requested shape" in message
    assert_clean_model_error(message)
    assert capfd.readouterr().err == ""  # nothing from ONNX Runtime's own logger


def test_a_symbolic_width_that_does_not_fit_fails_cleanly(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    scorer = Scorer(
        two_feature_state(tmp_path / "s.json"), symbolic_width_model(tmp_path / "m.onnx")
    )
    with pytest.raises(ModelError) as info:
        scorer.score(sample(10))
    assert "inference failed on a 10x2 feature matrix" in str(info.value)
    assert "MatMul" in str(info.value)
    assert_clean_model_error(str(info.value))
    assert capfd.readouterr().err == ""


def test_a_model_that_returns_another_number_of_rows_is_refused(tmp_path: Path) -> None:
    scorer = Scorer(bundled(STATE), reshape_model(tmp_path / "three.onnx", rows=3))
    for score in (scorer.score, scorer.score_aligned):
        with pytest.raises(ModelError) as info:
            score(sample(10))
        assert "returned 3 probabilities for 10 rows" in str(info.value)


@pytest.mark.parametrize("case", ["symbolic", "reshape"])
def test_the_cli_prints_one_error_line_and_nothing_from_onnx_runtime(
    tmp_path: Path, case: str
) -> None:
    data = tmp_path / "in.csv"
    data.write_bytes(Path(bundled(SAMPLE)).read_bytes()[:5_000].rsplit(b"\n", 1)[0] + b"\n")
    before = digest(data)
    if case == "symbolic":
        state = two_feature_state(tmp_path / "s.json")
        model = symbolic_width_model(tmp_path / "m.onnx")
    else:
        state, model = Path(bundled(STATE)), reshape_model(tmp_path / "m.onnx", rows=7)
    out = tmp_path / "out.csv"
    done = run_process(["score", data, "--state", state, "--model", model, "-o", out])
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Warning: model"), lines  # unbound model
    assert lines[1].startswith(f"Error: {model}: inference failed on a "), lines
    assert_clean_model_error(lines[1])
    assert "\x1b" not in done.stderr and done.stdout == ""
    assert not out.exists() and leftovers(tmp_path) == []
    assert digest(data) == before


# ------------------------------------------------------------------ 2. scaling numbers

CREDIT_SCORE, BALANCE = 6, 9  # positions in the bundled state's feature order
TOO_LARGE = "value too large after scaling"


def edited_state(
    path: Path, *, mean: dict[int, float] | None = None, std: dict[int, float] | None = None
) -> Path:
    """The bundled state with some means/stds replaced, resealed (a valid state)."""
    document = bundled_document()
    fitted = document["stages"][3]["fitted"]
    for key, replaced in (("mean", mean or {}), ("std", std or {})):
        for position, value in replaced.items():
            fitted[key][position] = value
    return write_state(path, document)


@pytest.mark.parametrize("tiny", [1e-320, 5e-324, 2e-308, 0.0])
def test_a_denormal_std_scales_its_feature_to_zero_like_a_zero_std(
    tmp_path: Path, tiny: float, no_warnings: None
) -> None:
    state = load_state(edited_state(tmp_path / "tiny.json", std={CREDIT_SCORE: tiny}))
    features = extract_features(state, sample())
    assert features.valid.all()
    assert (features.matrix[:, CREDIT_SCORE] == 0).all()
    assert np.isfinite(features.matrix).all()
    result = Scorer(state, bundled(MODEL), allow_state_mismatch=True).score(sample())
    assert result.scored.num_rows == 200 and np.isfinite(result.scored.column("raw")).all()


def test_the_cli_scores_with_a_denormal_std_and_prints_no_numpy_warning(work: Path) -> None:
    state = edited_state(work / "tiny.json", std={CREDIT_SCORE: 1e-320})
    data = work / "in.csv"
    data.write_bytes(Path(bundled(SAMPLE)).read_bytes()[:5_000].rsplit(b"\n", 1)[0] + b"\n")
    done = run_process(
        ["score", data, "--state", state, "-o", work / "out.csv", "--allow-state-mismatch"]
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr.replace("Warning: check skipped", "")
    assert "RuntimeWarning" not in done.stderr and "0 rejected" in done.stderr
    raw = pacsv.read_csv(work / "out.csv").column("raw").to_numpy()
    assert np.isfinite(raw).all()


@pytest.mark.parametrize(
    ("balance", "edit"),
    [
        ("1e308", {}),  # (1e308 - mean) / std overflows float32
        ("1.7e308", {"mean": {BALANCE: -1.7e308}, "std": {BALANCE: 1e300}}),  # float64 overflow
        ("-1e-250", {"mean": {BALANCE: 0.0}, "std": {BALANCE: 1e-300}}),  # a tiny (normal) std
    ],
)
def test_a_feature_too_large_after_scaling_is_quarantined_on_its_column(
    tmp_path: Path, balance: str, edit: dict, no_warnings: None
) -> None:
    state = load_state(edited_state(tmp_path / "s.json", **edit))
    table = sample(6)
    where = table.schema.get_field_index("Balance")
    batch = table.set_column(where, "Balance", pa.array(["0", balance, "0", balance, "0", "0"]))
    features = extract_features(state, batch)
    assert np.flatnonzero(~features.valid).tolist() == [1, 3]
    assert features.reject_column.to_pylist()[1] == "Balance"
    assert features.reject_reason.to_pylist()[3] == TOO_LARGE
    assert np.isfinite(features.matrix[features.valid]).all()
    result = Scorer(state, bundled(MODEL), allow_state_mismatch=True).score(batch)
    assert result.rejects.to_pylist()[0] == {
        "row": 1,
        "column": "Balance",
        "reason": TOO_LARGE,
        "value": balance,
    }
    assert result.n_read == 6


def test_a_one_hot_feature_too_large_after_scaling_names_the_feature(
    tmp_path: Path, no_warnings: None
) -> None:
    edit = {"mean": {0: 0.0}, "std": {0: 1e-300}}  # Geography=France: 1 / 1e-300 overflows float32
    state = load_state(edited_state(tmp_path / "s.json", **edit))
    features = extract_features(state, sample(50))
    france = np.array([g == "France" for g in sample(50).column("Geography").to_pylist()])
    assert (features.valid == ~france).all()
    assert set(features.reject_reason.filter(pa.array(france)).to_pylist()) == {
        "feature Geography=France too large after scaling"
    }
    assert features.reject_column.null_count == 50  # not an input column


def scaler_state(mean: list[float], std: list[float], with_mean: bool) -> FeatureState:
    names = [f"x{i}" for i in range(len(mean))]
    stages = [
        VectorAssembler.from_state(
            {"input_cols": names, "output_col": "raw"}, {"input_sizes": [1] * len(names)}
        ),
        StandardScaler.from_state(
            {"input_col": "raw", "output_col": "features", "with_mean": with_mean},
            {"mean": mean, "std": std},
        ),
    ]
    pipeline = FeaturePipeline(stages=stages)
    pipeline.feature_names_ = pipeline.compute_feature_names()
    return FeatureState(pipeline, {})


FINITE = st.floats(allow_nan=False, allow_infinity=False)
POSITIVE = st.one_of(
    st.floats(0, 1e-300), st.floats(min_value=0, allow_nan=False, allow_infinity=False)
)


@PROPERTY
@given(
    st.integers(1, 3).flatmap(
        lambda k: st.tuples(
            st.lists(FINITE, min_size=k, max_size=k),
            st.lists(POSITIVE, min_size=k, max_size=k),
            st.lists(st.lists(FINITE, min_size=k, max_size=k), min_size=1, max_size=8),
        )
    ),
    st.booleans(),
)
def test_scaling_never_warns_and_valid_rows_are_finite(
    case: tuple[list[float], list[float], list[list[float]]], with_mean: bool
) -> None:
    mean, std, rows = case
    state = scaler_state(mean, std, with_mean)
    table = pa.table({f"x{i}": [row[i] for row in rows] for i in range(len(mean))})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        features = extract_features(state, table)
    assert features.matrix.dtype == np.float32
    assert np.isfinite(features.matrix[features.valid]).all()
    assert set(features.reject_reason.drop_null().to_pylist()) <= {TOO_LARGE}
    assert features.reject_reason.null_count == int(features.valid.sum())


def test_fitting_on_values_whose_spread_overflows_is_refused_without_warnings(
    no_warnings: None,
) -> None:
    from churnctl.errors import PipelineSpecError
    from tests.feature_helpers import mean_and_std

    with pytest.raises(PipelineSpecError, match="too large to scale"):
        mean_and_std(np.array([[1.7e308], [-1.7e308]]), ddof=1)


# ------------------------------------------------------------------ 6. state messages


def bundled_text() -> str:
    return Path(bundled(STATE)).read_text(encoding="utf-8")


def refusal(tmp_path: Path, text: str) -> str:
    """The one-line message of the StateError that loading ``text`` raises."""
    path = tmp_path / "state.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StateError) as info:
        load_state(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert info.value.exit_code == 2
    return message


@pytest.mark.parametrize("version", [3, 7, 99])
def test_a_newer_format_version_says_upgrade_churnctl(tmp_path: Path, version: int) -> None:
    document = bundled_document()
    document["format_version"] = version
    message = refusal(tmp_path, resealed(document))
    assert f"state format version {version} is newer than this churnctl" in message
    assert message.endswith("upgrade churnctl to read it"), message
    assert "refit" not in message and "fit_state" not in message


@pytest.mark.parametrize("version", [0, -1])
def test_an_older_format_version_says_refit(tmp_path: Path, version: int) -> None:
    document = bundled_document()
    document["format_version"] = version
    message = refusal(tmp_path, resealed(document))
    assert f"state format version {version} is older than" in message
    assert message.endswith("refit it (fit_state)") and "upgrade" not in message


def test_the_cli_says_upgrade_for_a_newer_state(work: Path, sample_csv: Path) -> None:
    document = bundled_document()
    document["format_version"] = 3
    state = write_state(work / "future.json", document)
    result = run(["score", sample_csv, "--state", state, "-o", work / "out.csv"])
    assert_refused(result, 2, work, "future.json: state format version 3 is newer", "upgrade")


def test_truncated_json_gives_a_complete_sentence(tmp_path: Path) -> None:
    text = bundled_text()
    cut = text.index('"Germany"') + 4  # inside a string: "Unterminated string starting at"
    message = refusal(tmp_path, text[:cut])
    line, column = text[:cut].count("\n") + 1, cut - text[:cut].rindex("\n")
    assert message.endswith(
        f"not valid JSON: unterminated string starting at line {line}, column {column - 4}; "
        "the file is truncated or damaged: restore it; or refit it (fit_state)"
    ), message


@PROPERTY
@given(st.floats(0.0, 1.0, exclude_max=True))
def test_a_state_cut_anywhere_is_refused_with_a_complete_sentence(
    tmp_path: Path, share: float
) -> None:
    text = bundled_text().rstrip()
    cut = text[: int(len(text) * share)]
    message = refusal(tmp_path, cut)
    assert "not valid JSON" in message
    assert message.endswith("refit it (fit_state)"), message
    if cut.strip():
        assert re.search(r"[a-z'] at line \d+, column \d+; the file is truncated", message)
    else:
        assert "the file is empty" in message


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda t: t.replace("1.5260000000000002", "1e400", 1), "a number is out of range"),
        (
            lambda t: t.replace('"rows": 10000', '"rows": ' + "1" * 5000, 1),
            "5,000 digits is too large",
        ),
        (lambda t: "[" * 100_000, "nested too deeply"),
    ],
)
def test_odd_json_numbers_and_nesting_are_refused_cleanly(
    tmp_path: Path, edit: Callable[[str], str], fragment: str
) -> None:
    message = refusal(tmp_path, edit(bundled_text()))
    assert fragment in message, message
    assert "sys.set_int_max_str_digits" not in message and "maximum recursion" not in message


def test_a_state_with_a_utf8_bom_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + Path(bundled(STATE)).read_bytes())
    assert load_state(path).fingerprint == load_state(bundled(STATE)).fingerprint


# ------------------------------------------------------------------ 4. big states


def test_the_checksum_is_checked_before_the_schema(tmp_path: Path) -> None:
    document = bundled_document()
    document["extra"] = 1  # a schema violation, and the checksum no longer matches
    document["stages"][3]["fitted"]["std"][0] = "not a number"
    message = refusal(tmp_path, json.dumps(document))
    assert "checksum mismatch" in message and "extra" not in message


def test_a_state_without_a_checksum_is_refused_as_such(tmp_path: Path) -> None:
    document = bundled_document()
    del document["checksum"]
    assert "checksum mismatch" in refusal(tmp_path, json.dumps(document))


@pytest.mark.parametrize(
    ("where", "value", "path"),
    [
        (("input_schema", "columns", 0, "vocabulary", 1), 5, "input_schema/columns/0/vocabulary/1"),
        (("output", "feature_names", 11), None, "output/feature_names/11"),
    ],
)
def test_string_lists_are_still_checked_item_by_item(
    tmp_path: Path, where: tuple, value: object, path: str
) -> None:
    document = bundled_document()
    target = document
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    message = refusal(tmp_path, resealed(document))
    assert f"invalid state at {path}: {value!r} is not of type 'string'" in message


def big_state(path: Path, n_labels: int) -> Path:
    """The bundled state with n_labels Geography labels (one-hot: n_labels features)."""
    document = bundled_document()
    document.pop("profile")  # it describes the three bundled labels
    labels = [f"Region{i:07d}" for i in range(n_labels)]
    document["input_schema"]["columns"][0]["vocabulary"] = labels
    document["stages"][0]["fitted"]["labels"][0] = labels
    document["stages"][1]["fitted"]["category_sizes"] = [n_labels]
    document["stages"][2]["fitted"]["input_sizes"][0] = n_labels
    fitted = document["stages"][3]["fitted"]
    fitted["mean"] = [0.25] * n_labels + fitted["mean"][3:]
    fitted["std"] = [0.5] * n_labels + fitted["std"][3:]
    names = document["output"]["feature_names"]
    document["output"]["feature_names"] = [f"Geography={label}" for label in labels] + names[3:]
    return write_state(path, document)


N_LABELS = 4_000  # under the width cap (MAX_FEATURES): a bigger state is refused on load


@pytest.fixture(scope="module")
def big_state_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_state(tmp_path_factory.mktemp("big") / "big.json", N_LABELS)


def test_inspect_reports_a_big_state_in_a_bounded_size(big_state_path: Path) -> None:
    report = inspect_pair(ChurnModel(bundled(MODEL)), load_state(big_state_path))
    assert not report.compatible and f"produces {N_LABELS + 9}" in report.verdict
    assert report.n_features == N_LABELS + 9
    assert report.feature_names == [f"Geography=Region{i:07d}" for i in range(50)]
    labels = report.stages[0].fitted
    assert labels.startswith(
        f"labels: [[{N_LABELS:,} labels; first 20: Region0000000, Region0000001, "
    ), labels
    assert labels.endswith("Region0000019, …], [Female, Male]]"), labels
    assert all(len(stage.fitted) < 1_000 for stage in report.stages)
    assert len(report.verdict) < 1_000


@pytest.mark.parametrize("bound", [True, False])
def test_the_cli_inspects_a_big_state_in_a_bounded_output(
    big_state_path: Path, tmp_path: Path, bound: bool
) -> None:
    model = bundled(MODEL) if bound else logistic_n1(tmp_path / "unbound.onnx", 12).path
    result = run(["inspect", "--state", big_state_path, "--model", model])
    assert result.exit_code == 2, result.output  # 60,009 features for a 12-feature model
    assert len(result.stdout.splitlines()) < 200
    text = " ".join(result.stdout.split())
    assert f"{N_LABELS + 9 - 50:,} more features" in text
    assert "Region0000049" in text and "Region0000050" not in text
    assert ("model (trained on)" in text) is bound  # side by side: the bound model's order
    assert "NOT compatible" in text and "Traceback" not in result.output


def test_two_long_feature_orders_are_described_around_their_first_difference() -> None:
    model = [f"f{i}" for i in range(100_000)]
    state = [*model[:70_000], "other", *model[70_001:]]
    text = describe_orders(model, state)
    assert text.startswith("first difference at position 70000 (model: … f69995, ")
    assert "f70000" in text and "other" in text and "f69994" not in text
    assert "(100,000 in all)" in text and len(text) < 1_000


def test_short_feature_orders_are_described_in_full() -> None:
    text = describe_orders(["a", "b", "c"], ["a", "c", "b"])
    assert text == "first difference at position 1 (model: a, b, c | state: a, c, b)"


# ------------------------------------------------------------------ siblings: odd states

PYTHON_INTERNALS = (
    "__init__",
    "NoneType",
    "unhashable",
    "not supported between",
    "invalid literal",
    "argument must be",
    "ufunc",
    "dtype",
    "Traceback",
)


def assert_user_facing(message: str) -> None:
    assert "\n" not in message
    for internal in PYTHON_INTERNALS:
        assert internal not in message, (internal, message)


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        (("stages", 2, "fitted", "input_sizes", 6), None, "input_sizes"),
        (("stages", 2, "fitted", "input_sizes", 2), "3", "input_sizes"),
        (("stages", 1, "fitted", "category_sizes"), [None], "category_sizes"),
        (("stages", 0, "fitted", "labels", 1, 1), {"a": 1}, "labels"),
        (("stages", 0, "fitted", "labels", 1), "Female", "labels"),
        (("stages", 3, "fitted", "std", 3), {}, "std"),
        (("stages", 3, "fitted", "mean"), [True] * 12, "mean"),
        (("stages", 0, "params", ""), [], "unknown parameter(s) ''"),
        (("stages", 3, "params", "input_col"), None, "input_col"),
    ],
)
def test_odd_stage_data_is_refused_in_plain_words(
    tmp_path: Path, path: tuple, value: object, fragment: str
) -> None:
    document = bundled_document()
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    message = refusal(tmp_path, resealed(document))
    assert "invalid stage" in message and fragment in message, message
    assert_user_facing(message)


def test_a_stage_without_a_required_parameter_is_refused_in_plain_words(tmp_path: Path) -> None:
    document = bundled_document()
    del document["stages"][2]["params"]["output_col"]
    message = refusal(tmp_path, resealed(document))
    assert "VectorAssembler: missing parameter(s) output_col" in message, message
    assert_user_facing(message)


def _state_paths(node: object, prefix: tuple = ()) -> Iterator[tuple]:
    if prefix:
        yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "checksum":
                yield from _state_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _state_paths(value, (*prefix, i))


def _child(node: object, key: str | int) -> object:
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and key < len(node):
        return node[key]
    return None


def _edit(document: dict, path: tuple, value: object) -> None:
    """Set ``value`` at ``path`` if an earlier edit left that place in the document."""
    target: object = document
    for key in path[:-1]:
        target = _child(target, key)
    last = path[-1]
    if isinstance(target, dict):
        target[str(last)] = value  # JSON object keys are text
    elif isinstance(target, list) and isinstance(last, int) and last < len(target):
        target[last] = value


STATE_PATHS = list(_state_paths(bundled_document()))
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e-320, 1e308, -1e308, 5e-324])
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@settings(PROPERTY, max_examples=150)
@given(st.lists(st.tuples(st.sampled_from(STATE_PATHS), JSON_VALUES), min_size=1, max_size=2))
def test_an_edited_and_resealed_state_loads_and_extracts_or_is_refused_in_plain_words(
    tmp_path: Path, edits: list[tuple[tuple, object]]
) -> None:
    document = bundled_document()
    for path, value in edits:
        _edit(document, path, value)
    path = tmp_path / "edited.json"
    path.write_text(resealed(document), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            features = extract_features(load_state(path), sample(30))
        except ChurnctlError as error:
            assert_user_facing(str(error))
        else:
            assert np.isfinite(features.matrix[features.valid]).all()


# ------------------------------------------------------------------ siblings: odd settings


@pytest.mark.parametrize("threads", [-1, 2**40, 2.5, True, "4"])
def test_a_thread_count_onnx_runtime_cannot_take_is_refused_everywhere(threads: object) -> None:
    for build in (
        lambda: ChurnModel(bundled(MODEL), threads=threads),  # type: ignore[arg-type]
        lambda: Scorer(bundled(STATE), bundled(MODEL), threads=threads),  # type: ignore[arg-type]
    ):
        with pytest.raises(UsageError, match="threads must be a whole number from 0 to"):
            build()
