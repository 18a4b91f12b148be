"""Specs checked as a graph before any data is read, and fit errors that say what happened.

Issue 17, items 3 and 5: each malformed graph (misordered, cyclic, dead stages, two
outputs, inputs named twice, an encoder on raw numbers, an indexer's kept index an
encoder would reject, no features) is one ``PipelineSpecError`` line naming the stage;
nesting is bounded in specs and states; a BOM is read; long column lists are capped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from churnctl.batch.fit_file import FitRequest, fit_file, fit_state
from churnctl.errors import ChurnctlError, NoValidRowsError, PipelineSpecError, StateError
from churnctl.features.extraction import extract_features
from churnctl.features.frame import Frame
from churnctl.features.pipeline import FeaturePipeline
from churnctl.features.spec import MAX_DEPTH, PRESETS, build_pipeline, load_pipeline_spec
from churnctl.features.stages import OneHotEncoder, StringIndexer, VectorAssembler
from churnctl.features.state import content_checksum, state_from_text
from churnctl.io.rejects import NO_LIMIT
from churnctl.samples.generate import generate_table

INDEX = {"type": "StringIndexer", "input_cols": ["Geography"], "output_cols": ["G"]}
ENCODE = {"type": "OneHotEncoder", "input_cols": ["G"], "output_cols": ["GV"]}
ASSEMBLE = {"type": "VectorAssembler", "input_cols": ["GV", "Age"], "output_col": "v"}
SCALE = {"type": "StandardScaler", "input_col": "v", "output_col": "features"}


def assemble(*cols: str, out: str = "v") -> dict[str, Any]:
    return {"type": "VectorAssembler", "input_cols": list(cols), "output_col": out}


@pytest.mark.parametrize(
    ("stages", "fragments"),
    [
        pytest.param(
            [assemble("GV", "Age"), INDEX, ENCODE, SCALE],
            ["stage 1: VectorAssembler: reads GV, which stage 3 writes"],
            id="misordered",
        ),
        pytest.param(
            [assemble("b", out="a"), {**SCALE, "input_col": "a", "output_col": "b"}],
            ["stage 1: VectorAssembler: reads b, which stage 2 writes"],
            id="cycle",
        ),
        pytest.param(
            [{**SCALE, "input_col": "s", "output_col": "s"}],
            ["stage 1: StandardScaler: reads s, which stage 1 writes"],
            id="self",
        ),
        pytest.param(
            [INDEX, ENCODE, ASSEMBLE, SCALE, assemble("Age", out="other")],
            [
                "stage 4: StandardScaler: output column(s) features read by no later",
                "the last stage's (other)",
            ],
            id="dead-stage",
        ),
        pytest.param(
            [
                {**INDEX, "input_cols": ["Geography", "Gender"], "output_cols": ["G", "S"]},
                ENCODE,
                ASSEMBLE,
                SCALE,
            ],
            ["stage 1: StringIndexer: output column(s) S read by no later"],
            id="dead-column",
        ),
        pytest.param(
            [{**INDEX, "input_cols": ["Geography", "Gender"], "output_cols": ["G", "S"]}],
            [
                "stage 1: StringIndexer: the last stage writes the pipeline's output, one "
                "column; this one writes 2 (G, S)"
            ],
            id="two-outputs",
        ),
        pytest.param(
            [INDEX, ENCODE, assemble("GV", "Age", "Age"), SCALE],
            ["stage 3: VectorAssembler: input column(s) Age named twice"],
            id="input-twice",
        ),
        pytest.param(
            [{**ENCODE, "input_cols": ["Tenure"]}, assemble("GV")],
            [
                "stage 1: OneHotEncoder: Tenure is an input column",
                "index Tenure with a StringIndexer first",
            ],
            id="encoder-on-numbers",
        ),
        pytest.param(
            [{**ENCODE, "input_cols": ["Balance"]}, assemble("GV")],
            ["stage 1: OneHotEncoder: Balance is an input column"],
            id="encoder-on-balance",
        ),
        pytest.param(
            [
                assemble("Age", out="a"),
                {**SCALE, "input_col": "a", "output_col": "s"},
                {**ENCODE, "input_cols": ["s"]},
                assemble("GV"),
            ],
            ["stage 3: OneHotEncoder: s is a vector"],
            id="encoder-on-scaled",
        ),
        pytest.param(
            [{**INDEX, "handle_invalid": "keep"}, ENCODE, ASSEMBLE, SCALE],
            [
                "stage 2: OneHotEncoder: G keeps unseen categories",
                "set its handle_invalid to keep as well",
            ],
            id="keep-then-error",
        ),
        pytest.param(
            [{"type": ["StringIndexer"]}], ["stage 1: unknown stage type"], id="type-not-text"
        ),
    ],
)
def test_a_malformed_graph_is_one_line_naming_the_stage(
    stages: list[dict[str, Any]], fragments: list[str]
) -> None:
    with pytest.raises(PipelineSpecError) as info:
        build_pipeline({"stages": stages}, source="spec.json")
    message = str(info.value)
    assert message.startswith("spec.json: stage ") and "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def write_csv(path: Path, table: pa.Table) -> Path:
    pacsv.write_csv(table, path)
    return path


def fit_spec(tmp_path: Path, stages: list[dict[str, Any]], train: Path) -> Any:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"stages": stages}), encoding="utf-8")
    return fit_state(train, pipeline=str(spec), max_rejects=NO_LIMIT)


@pytest.mark.parametrize(
    ("stages", "fragment"),
    [
        pytest.param(
            [INDEX, {**ENCODE, "drop_last": True}, assemble("GV")],
            "the pipeline's output v has no features",
            id="zero-features",
        ),
        pytest.param(
            [
                assemble("Age", out="a"),
                {**SCALE, "input_col": "a", "output_col": "s"},
                assemble("s", "Age"),
            ],
            "feature name(s) Age appear twice",
            id="repeated-feature-name",
        ),
        pytest.param(
            [INDEX, ENCODE, assemble("GV", out="Balance")],
            "stage 3: VectorAssembler: output column(s) Balance shadow a column of the "
            "training data",
            id="output-shadows-data",
        ),
    ],
)
def test_a_graph_wrong_for_its_data_is_one_line_naming_the_file(
    tmp_path: Path, stages: list[dict[str, Any]], fragment: str
) -> None:
    table = generate_table(30, seed=1)
    one_country = table.set_column(
        table.schema.get_field_index("Geography"), "Geography", pa.array(["France"] * 30)
    )
    train = write_csv(tmp_path / "train.csv", one_country)
    with pytest.raises(PipelineSpecError) as info:
        fit_spec(tmp_path, stages, train)
    message = str(info.value)
    assert message.startswith(f"{train}: ") and "\n" not in message, message
    assert fragment in message, message


def test_a_kept_index_is_not_rejected_by_an_encoder_that_keeps_too(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", generate_table(40, seed=2))
    encode = {**ENCODE, "handle_invalid": "keep", "drop_last": False}
    stages = [{**INDEX, "handle_invalid": "keep"}, encode, ASSEMBLE]
    state = fit_spec(tmp_path, stages, train)
    table = generate_table(5, seed=3)
    unseen = table.set_column(
        table.schema.get_field_index("Geography"), "Geography", pa.array(["Mars"] * 5)
    )
    features = extract_features(state, unseen)
    assert features.valid.all()  # README: keep rows are not rejected
    geography = [i for i, name in enumerate(state.feature_names) if name.startswith("Geography=")]
    assert len(geography) == 3
    assert (features.matrix[:, geography] == 0.0).all()  # an unseen category: no slot hot
    seen = extract_features(state, table).matrix[:, geography]
    assert (seen.sum(axis=1) == 1.0).all()


@pytest.mark.parametrize("suffix", [".json", ".toml"])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_a_deeply_nested_spec_is_one_line(tmp_path: Path, suffix: str, depth: int) -> None:
    path = tmp_path / f"deep{suffix}"
    nested = "[" * depth + "]" * depth
    path.write_text(f"stages = {nested}" if suffix == ".toml" else f'{{"stages": {nested}}}')
    with pytest.raises(PipelineSpecError) as info:
        load_pipeline_spec(str(path))
    assert str(info.value) == (
        f"{path}: cannot read pipeline spec: nested more than {MAX_DEPTH} levels deep"
    )


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_a_deeply_nested_state_is_one_line(depth: int) -> None:
    with pytest.raises(StateError) as info:
        state_from_text('{"a": ' + "[" * depth + "]" * depth + "}", source="s.json")
    assert str(info.value).startswith("s.json: not a state document: nested")


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_a_spec_with_a_byte_order_mark_is_read(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"spec{suffix}"
    stages = PRESETS["reference"]["stages"]
    if suffix == ".json":
        text = json.dumps({"stages": stages})
    else:
        text = "\n".join(f"[[stages]]\n{_toml_table(stage)}" for stage in stages)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    _, pipeline = load_pipeline_spec(str(path))
    _, reference = load_pipeline_spec("reference")
    assert [s.params() for s in pipeline.stages] == [s.params() for s in reference.stages]


def _toml_table(stage: dict[str, Any]) -> str:
    return "\n".join(f"{key} = {json.dumps(value)}" for key, value in stage.items())


def test_a_long_list_of_missing_columns_is_capped(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", generate_table(5, seed=1))
    wanted = [f"column_with_a_long_name_{i}" for i in range(5000)]
    with pytest.raises(ChurnctlError) as info:
        fit_spec(tmp_path, [assemble(*wanted)], train)
    message = str(info.value)
    assert "missing required column(s) column_with_a_long_name_0, " in message
    assert "(4,980 more)" in message and len(message) < 2000, len(message)


@pytest.mark.parametrize("column", ["Age", "Geography"])
def test_no_valid_training_rows_quotes_the_first_rejects_and_publishes_them(
    tmp_path: Path, column: str
) -> None:
    """Like --max-rejects's error, with lines and column; the rejects file alone is published."""
    table = generate_table(6, seed=4)
    bad = pa.array(["old" if column == "Age" else ""] * 6)
    train = write_csv(
        tmp_path / "train.csv", table.set_column(table.schema.get_field_index(column), column, bad)
    )
    state = tmp_path / "state.json"
    with pytest.raises(NoValidRowsError) as info:
        fit_file(FitRequest(str(train), str(state), max_rejects=NO_LIMIT))
    message = str(info.value)
    rejects = tmp_path / "state.json.rejects.csv"
    reason = "not a number" if column == "Age" else "empty value"
    assert message.startswith(
        f"{train}: no valid training rows (read 6; first: line 2, column "
        f"{column}: {reason}; line 3, "
    )
    assert message.endswith(f"check the file; the rejected rows are in {rejects}")
    assert not state.exists()
    logged = pacsv.read_csv(rejects).to_pydict()
    assert logged["line"] == [2, 3, 4, 5, 6, 7] and set(logged["column"]) == {column}


def test_a_one_row_training_file_is_named(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "one.csv", generate_table(1, seed=5))
    with pytest.raises(PipelineSpecError) as info:
        fit_state(train)
    assert str(info.value).startswith(f"{train}: StandardScaler: need more than 1 training rows")


def test_a_state_with_zero_features_is_refused_on_load(tmp_path: Path) -> None:
    """Its checksum recomputed: refused at load, not published to fail only at score."""
    table = generate_table(20, seed=6)
    france = table.set_column(
        table.schema.get_field_index("Geography"), "Geography", pa.array(["France"] * 20)
    )
    train = write_csv(tmp_path / "train.csv", france)
    state = fit_spec(tmp_path, [INDEX, {**ENCODE, "drop_last": False}, assemble("GV")], train)
    document = json.loads(state.dumps())
    document["stages"][1]["params"]["drop_last"] = True  # one category, dropped: no feature
    document["stages"][2]["fitted"]["input_sizes"] = [0]  # consistent with it: sizes add up
    document["output"]["feature_names"] = []  # and no feature is named
    document["checksum"] = "sha256:" + content_checksum(document)
    with pytest.raises(StateError) as info:
        state_from_text(json.dumps(document), source="s.json")
    message = str(info.value)
    assert message.startswith("s.json: ") and "\n" not in message
    assert "the pipeline's output v has no features" in message


def test_a_reject_on_an_index_column_names_the_input_column() -> None:
    """An encoder's reject (its sizes smaller than the labels) names Geography, not G."""
    index = StringIndexer.from_state(
        {"input_cols": ["Geography"], "output_cols": ["G"]}, {"labels": [["a", "b", "c"]]}
    )
    encode = OneHotEncoder.from_state(
        {"input_cols": ["G"], "output_cols": ["GV"]}, {"category_sizes": [2]}
    )
    assembler = VectorAssembler.from_state(
        {"input_cols": ["GV"], "output_col": "v"}, {"input_sizes": [1]}
    )
    pipeline = FeaturePipeline(stages=[index, encode, assembler])
    frame = Frame.from_columns({"Geography": pa.array(["a", "c", "z"])})
    pipeline.transform(frame)
    assert frame.reject_column.tolist() == [None, "Geography", "Geography"]
    assert frame.reject_reason.tolist() == [
        None,
        "index out of range for 2 categories",
        "unseen category 'z'",
    ]


def test_a_long_list_of_unknown_parameters_is_capped() -> None:
    stage = {**INDEX, **{f"parameter_{i}": 1 for i in range(5000)}}
    with pytest.raises(PipelineSpecError) as info:
        build_pipeline({"stages": [stage]}, source="spec.json")
    message = str(info.value)
    assert "unknown parameter(s) 'parameter_0', " in message
    assert "(4,980 more)" in message and len(message) < 2000, len(message)
