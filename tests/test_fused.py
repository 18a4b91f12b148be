"""The fused ONNX export against the scorer: the same ``raw`` (<= 1e-6) and exactly its rejects.

Every stage type and parameter mode, run with ONNX Runtime on real small models, on rows
holding the values churnctl rejects (unseen and empty categories, NaN, ±inf, values too
large after scaling) and the ones it normalizes (whitespace, case).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnctl.errors import ChurnctlError, FixedBatchWarning, ModelError, PipelineSpecError
from churnctl.features.pipeline import FeaturePipeline
from churnctl.features.stages import OneHotEncoder, StandardScaler, StringIndexer, VectorAssembler
from churnctl.features.state import FeatureState
from churnctl.fused.export import export_fused, fused_model
from churnctl.fused.stages import EMITTERS
from churnctl.fused.text import whitespace
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.scoring.binding import read_binding
from churnctl.scoring.model import ChurnModel
from churnctl.scoring.scorer import Scorer
from churnctl.verify import verify_runtimes
from churnctl.verify.caller import parse_number
from tests import onnx_factories as factories
from tests.cli_helpers import assert_clean_error, run

CITIES = ["Paris", "Lyon", "Zürich"]
CITY_VALUES = [
    "Paris",
    "Lyon",
    "Zürich",
    "Mars",
    "",
    " Paris ",
    "ZÜRICH",
    "\u3000lyon\xa0",
    "zu rich",
]
PLANS = ["basic", "pro"]
PLAN_VALUES = ["basic", "pro", "gold", "", " pro", "Basic"]
NUMBERS = [0.0, 1.5, -3.0, 42.0, math.nan, math.inf, -math.inf, 1e39, -2e300, 5e-324]


def indexer(handle_invalid: str = "error", normalize: str = "exact", order: str = "alphabetAsc"):
    stage = StringIndexer(
        input_cols=["City", "Plan"],
        output_cols=["CityIndex", "PlanIndex"],
        string_order_type=order,
        handle_invalid=handle_invalid,
        normalize=[normalize, normalize],
    )
    cities = CITIES if normalize == "exact" else [c.lower() for c in CITIES] * (normalize != "trim")
    stage.labels_ = [cities or CITIES, list(PLANS)]
    return stage


def one_hot(handle_invalid: str = "error", drop_last: bool = True, drop_index=None, keep=False):
    stage = OneHotEncoder(
        input_cols=["CityIndex"],
        output_cols=["CityVec"],
        drop_last=drop_last,
        handle_invalid=handle_invalid,
        drop_index=drop_index,
    )
    stage.category_sizes_ = [len(CITIES) + int(keep)]
    return stage


def assembler(city_width: int) -> VectorAssembler:
    stage = VectorAssembler(
        input_cols=["CityVec", "PlanIndex", "Age", "Income"], output_col="assembled"
    )
    stage.input_sizes_ = [city_width, 1, 1, 1]
    return stage


def scaler(width: int, with_mean=True, with_std=True, zero_std=False) -> StandardScaler:
    stage = StandardScaler(
        input_col="assembled", output_col="features", with_mean=with_mean, with_std=with_std
    )
    stage.mean_ = np.linspace(0.25, 30.0, width)
    stage.std_ = np.linspace(0.5, 2e-30, width)  # the last std scales past float32
    if zero_std:
        stage.std_[0] = 0.0
        stage.std_[1] = 1e-310  # a denormal counts as 0
    return stage


def state_of(*stages: Any) -> FeatureState:
    pipeline = FeaturePipeline(stages=list(stages))
    pipeline.feature_names_ = pipeline.compute_feature_names()
    return FeatureState(pipeline, {})


def pipeline_case(
    indexing: dict[str, str], encoding: dict[str, Any] | None, scaling: dict[str, Any]
) -> FeatureState:
    encoder = None if encoding is None else one_hot(**encoding)
    stages: list[Any] = [indexer(**indexing)]
    if encoder is None:
        width = 1
        stages.append(assembler(1))
        stages[-1].input_cols[0] = "CityIndex"
    else:
        size, dropped = encoder.category_sizes_[0], encoder.drop_index[0]
        width = encoder._width(size, dropped)
        stages += [encoder, assembler(width)]
    stages.append(scaler(width + 3, **scaling))
    return state_of(*stages)


CASES = {
    "exact-error-onehot-all": ({}, {"drop_last": False}, {}),
    "exact-skip-dropped-last": ({"handle_invalid": "skip"}, {}, {"with_mean": False}),
    "trim-keep-onehot-keep": (
        {"handle_invalid": "keep", "normalize": "trim"},
        {"handle_invalid": "keep", "drop_last": False},
        {"zero_std": True},
    ),
    "trim-lower-keep-no-std": (
        {"handle_invalid": "keep", "normalize": "trim-lower"},
        {"handle_invalid": "keep", "drop_last": False},
        {"with_std": False},
    ),
    "trim-lower-error-drop-index": (
        {"normalize": "trim-lower", "order": "frequencyDesc"},
        {"drop_index": [1], "drop_last": False},
        {},
    ),
    "keep-size-with-unseen": (
        {"handle_invalid": "keep"},
        {"handle_invalid": "keep", "keep": True, "drop_last": True},
        {"zero_std": True, "with_mean": False},
    ),
    "index-assembled": ({"handle_invalid": "skip", "normalize": "trim"}, None, {}),
}


def rows(n: int, seed: int = 0) -> pa.Table:
    """Every category and number value of the tables above, in a seeded mix."""
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "City": [CITY_VALUES[i % len(CITY_VALUES)] for i in range(n)],
            "Plan": [PLAN_VALUES[i] for i in rng.integers(0, len(PLAN_VALUES), n)],
            "Age": [NUMBERS[i] for i in rng.integers(0, len(NUMBERS), n)],
            "Income": rng.normal(50.0, 20.0, n),
        }
    )


def feed(session: ort.InferenceSession, table: pa.Table) -> dict[str, np.ndarray]:
    """The table's columns as the fused graph takes them: [N, 1], strings or doubles."""
    fed = {}
    for node in session.get_inputs():
        values = table.column(node.name).to_pylist()
        if node.type == "tensor(string)":
            fed[node.name] = np.array(["" if v is None else v for v in values], object)[:, None]
        else:
            fed[node.name] = np.array(values, dtype=np.float64)[:, None]
    return fed


def check_same(path: Path, scorer: Scorer, table: pa.Table) -> np.ndarray:
    """Run the fused graph and the scorer on ``table``; assert they agree; the valid mask."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    raw, valid = session.run(["raw", "valid"], feed(session, table))
    aligned = scorer.score_aligned(table)
    rejected = aligned.column("reject_reason").is_valid().to_numpy(zero_copy_only=False)
    assert valid.tolist() == (~rejected).tolist()
    expected = aligned.column("raw").to_numpy(zero_copy_only=False)
    assert np.isnan(raw[~valid]).all()
    assert np.abs(raw[valid] - expected[valid]).max(initial=0.0) <= 1e-6
    return valid


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_stage_mode_scores_as_the_scorer(case: str, tmp_path: Path) -> None:
    state = pipeline_case(*CASES[case])
    model = factories.logistic_n1(tmp_path / "m.onnx", len(state.feature_names)).path
    path = export_fused(state, model, tmp_path / "fused.onnx")
    valid = check_same(path, Scorer(state, model, keep=[]), rows(120))
    assert 0 < valid.sum() < len(valid)  # some rows of each kind


MODELS: dict[str, tuple[Callable[..., Any], bool]] = {
    "probability-column": (factories.logistic_n1, False),
    "probability-flat": (factories.logistic_flat, False),
    "two-classes": (factories.softmax_two, False),
    "zipmap": (factories.sklearn_zipmap, False),
    "double-input": (factories.double_input, False),
    "opset-11": (lambda path, k: factories.logistic_n1(path, k, opset=11), False),  # converted
    "one-logit": (factories.logistic_flat, True),
    "two-logits": (factories.softmax_two, True),
}


@pytest.mark.parametrize("form", sorted(MODELS))
def test_every_model_output_form_reads_the_positive_class(form: str, tmp_path: Path) -> None:
    state = pipeline_case(*CASES["trim-lower-error-drop-index"])
    factory, logits = MODELS[form]
    model = factory(tmp_path / "m.onnx", len(state.feature_names)).path
    path = export_fused(state, model, tmp_path / "fused.onnx", logits=logits)
    check_same(path, Scorer(state, model, keep=[], logits=logits), rows(60, seed=3))


def test_the_bundled_pair_with_its_binding(tmp_path: Path) -> None:
    path = export_fused(bundled(STATE), bundled(MODEL), tmp_path / "fused.onnx")
    table = pa.csv.read_csv(bundled(SAMPLE)).slice(0, 300)
    geography = table.column("Geography").to_pylist()
    geography[:3] = ["Mars", "", " France"]
    table = table.set_column(table.schema.get_field_index("Geography"), "Geography", [geography])
    valid = check_same(path, Scorer(bundled(STATE), bundled(MODEL), keep=[]), table)
    assert valid[:3].tolist() == [False, False, False] and valid[3:].all()
    scorer = Scorer(bundled(STATE), bundled(MODEL))
    metadata = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    binding = read_binding(metadata, source="fused")
    assert binding is not None and binding.fingerprint == scorer.state.fingerprint


def test_given_labels_that_no_value_can_match(tmp_path: Path) -> None:
    """An imported encoder's labels: an empty one, one with spaces under trim, upper case."""
    stage = indexer("skip", "trim-lower", GIVEN_ORDER)
    stage.labels_ = [["", " paris", "Lyon", "nice", "école", "k"], list(PLANS)]
    encoder = one_hot(drop_last=False)
    encoder.category_sizes_ = [6]
    state = state_of(stage, encoder, assembler(6), scaler(9))
    model = factories.logistic_n1(tmp_path / "m.onnx", 9).path
    path = export_fused(state, model, tmp_path / "fused.onnx")
    values = ["", " paris", "paris", "Lyon", "lyon", "NICE", "ÉCOLE", "\u212a", "K", "x"]
    n = len(values)
    table = pa.table({"City": values, "Plan": ["pro"] * n, "Age": [1.0] * n, "Income": [2.0] * n})
    valid = check_same(path, Scorer(state, model, keep=[]), table)
    assert valid.tolist() == [False] * 5 + [True] * 4 + [False]  # "Lyon" is not lower-case


GIVEN_ORDER = "given"


def test_the_whitespace_set_is_arrows() -> None:
    """Arrow trims exactly these: each alone trims to empty, the next code point does not."""
    spaces = whitespace()
    trimmed = pa.compute.utf8_trim_whitespace(pa.array([chr(c) + "a" for c in spaces]))
    assert set(trimmed.to_pylist()) == {"a"}
    assert 0x20 in spaces and 0x3000 in spaces and 0x41 not in spaces


def test_a_stage_type_without_an_emitter_is_refused_by_name(tmp_path: Path) -> None:
    state = pipeline_case(*CASES["exact-skip-dropped-last"])
    model = factories.logistic_n1(tmp_path / "m.onnx", len(state.feature_names)).path
    scaler_emitter = EMITTERS.pop("StandardScaler")
    try:
        with pytest.raises(PipelineSpecError, match="no ONNX form for stage type StandardScaler"):
            fused_model(state, ChurnModel(model))
    finally:
        EMITTERS["StandardScaler"] = scaler_emitter
    assert not (tmp_path / "fused.onnx").exists()


def test_a_fixed_batch_model_and_a_mismatched_model_are_refused(tmp_path: Path) -> None:
    state = pipeline_case(*CASES["exact-skip-dropped-last"])
    k = len(state.feature_names)
    fixed = factories.logistic_n1(tmp_path / "fixed.onnx", k, batch=4).path
    with pytest.raises(ModelError, match="fixed batch size of 4"), pytest.warns(FixedBatchWarning):
        export_fused(state, fixed, tmp_path / "fused.onnx")
    wrong = factories.logistic_n1(tmp_path / "wrong.onnx", k + 1).path
    with pytest.raises(ChurnctlError, match=f"expects {k + 1} features"):
        export_fused(state, wrong, tmp_path / "fused.onnx")
    assert not (tmp_path / "fused.onnx").exists()


@pytest.fixture(scope="module")
def random_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Scorer]:
    folder = tmp_path_factory.mktemp("fused-random")
    state = pipeline_case(*CASES["trim-lower-error-drop-index"])
    model = factories.softmax_two(folder / "m.onnx", len(state.feature_names)).path
    return export_fused(state, model, folder / "fused.onnx"), Scorer(state, model, keep=[])


TEXT = st.one_of(
    st.sampled_from(CITY_VALUES + PLAN_VALUES), st.text(" \t\xa0PARISparisLyonbasicpro", max_size=8)
)
NUMBER = st.one_of(st.floats(), st.floats(-1e6, 1e6), st.sampled_from(NUMBERS))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.lists(st.tuples(TEXT, TEXT, NUMBER, NUMBER), min_size=1, max_size=12))
def test_random_rows_score_as_the_scorer(
    random_pair: tuple[Path, Scorer], data: list[tuple[str, str, float, float]]
) -> None:
    city, plan, age, income = (list(column) for column in zip(*data, strict=True))
    table = pa.table({"City": city, "Plan": plan, "Age": age, "Income": income})
    check_same(*random_pair, table)


def test_the_command_writes_the_bundled_pair(tmp_path: Path) -> None:
    result = run(["export-onnx", "--fused", "-o", tmp_path / "fused.onnx"])
    assert result.exit_code == 0, result.output
    assert "fused graph" in result.stderr and result.stdout == ""
    session = ort.InferenceSession(str(tmp_path / "fused.onnx"))
    assert [node.name for node in session.get_outputs()] == ["raw", "valid"]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        ([], 2, ["add --fused"]),
        (["--fused", "--state", "missing.json"], 2, ["missing.json", "not found"]),
        (["--fused", "--model", "missing.onnx"], 2, ["missing.onnx", "not found"]),
    ],
)
def test_the_command_refuses_with_one_error_line(
    args: list[str], code: int, words: list[str], tmp_path: Path
) -> None:
    result = run(["export-onnx", *args, "-o", tmp_path / "fused.onnx"], cwd=tmp_path)
    assert_clean_error(result, code, *words)
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "fused.onnx").exists()


def test_inspect_names_a_fused_graph_for_what_it_is(tmp_path: Path) -> None:
    export_fused(bundled(STATE), bundled(MODEL), tmp_path / "fused.onnx")
    result = run(["inspect", "--model", tmp_path / "fused.onnx"])
    assert_clean_error(result, 2, "a fused graph (raw columns in, raw and valid out)")


@pytest.mark.parametrize(
    ("text", "decimal", "expected"),
    [
        (" 42 ", ".", 42.0),
        ("+.5", ".", 0.5),
        ("5.", ".", 5.0),
        ("1e5", ".", 1e5),
        ("-Infinity", ".", -math.inf),
        ("1d", ".", 1.0),  # Java reads a double suffix; churnctl does not
        ("1,5", ",", 1.5),
        ("NaN", ".", math.nan),
        ("", ".", math.nan),
        ("1_000", ".", math.nan),
        ("\xa05", ".", math.nan),  # Java trims ASCII only; churnctl trims this too
        ("1,5", ".", math.nan),
        ("1.5", ",", math.nan),
        ("0x10", ".", math.nan),
    ],
)
def test_the_verify_caller_parses_numbers_as_java(text: str, decimal: str, expected: float) -> None:
    value = parse_number(text, decimal)
    assert value == expected or (math.isnan(value) and math.isnan(expected))


def test_verify_shows_where_a_java_caller_reads_a_value_otherwise(tmp_path: Path) -> None:
    """``1d`` is no number to churnctl and 1.0 to Java: the fused runtime disagrees, by line."""
    lines = bundled(SAMPLE).read_text(encoding="utf-8").splitlines()[:41]
    header = lines[0].split(",")
    at = header.index("Tenure")
    row = lines[5].split(",")
    row[at] = "1d"
    lines[5] = ",".join(row)
    data = tmp_path / "sample.csv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = verify_runtimes(data, Scorer(bundled(STATE), bundled(MODEL)), skip=OTHERS)
    fused = next(r for r in report.results if r.runtime == "fused")
    assert (fused.status, fused.agrees, fused.same_rejects, fused.extra) == ("ran", False, False, 1)
    assert (fused.rows.scored, fused.rows.rejected) == (40, 0)
    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join([*lines[:5], *lines[6:]]) + "\n", encoding="utf-8")
    assert verify_runtimes(clean, Scorer(bundled(STATE), bundled(MODEL)), skip=OTHERS).passed


OTHERS = ("workers", "watch", "flink")


@pytest.mark.parametrize("role", ["state", "model"])
def test_the_output_may_not_be_an_input(role: str, tmp_path: Path) -> None:
    state, model = tmp_path / "state.json", tmp_path / "model.onnx"
    state.write_bytes(bundled(STATE).read_bytes())
    model.write_bytes(bundled(MODEL).read_bytes())
    target = {"state": state, "model": model}[role]
    before = target.read_bytes()
    with pytest.raises(ChurnctlError, match=f"is the same file as the {role}"):
        export_fused(state, model, target)
    assert target.read_bytes() == before
