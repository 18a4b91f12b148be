"""The feature pipeline: presets, spec files, schema derivation, and the real data set."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from churnctl.batch.fit_file import fit_state
from churnctl.errors import NotFittedError, PipelineSpecError
from churnctl.features.input_policy import frame_from_batch
from churnctl.features.pipeline import FeaturePipeline
from churnctl.features.spec import DEFAULT_PRESET, PRESETS, build_pipeline, load_pipeline_spec
from churnctl.features.stages import StandardScaler, StringIndexer, VectorAssembler
from churnctl.io.rejects import NO_LIMIT
from churnctl.samples.generate import generate_table

CHURN_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "Churn_Modelling.csv"
EXAMPLE_TOML = Path(__file__).resolve().parents[1] / "docs" / "examples" / "reference-pipeline.toml"

NUMERICS = ["CreditScore", "Age", "Tenure", "Balance", "NumOfProducts", "EstimatedSalary"]
REFERENCE_NAMES = [
    "Geography=France",
    "Geography=Germany",
    "Geography=Spain",
    "Gender",
    "HasCrCard",
    "IsActiveMember",
    "CreditScore",
    "Age",
    "Tenure",
    "Balance",
    "NumOfProducts",
    "EstimatedSalary",
]
SKLEARN_NAMES = [
    "Geography=France",
    "Geography=Germany",
    "Geography=Spain",
    "CreditScore",
    "Gender",
    "Age",
    "Tenure",
    "Balance",
    "NumOfProducts",
    "HasCrCard",
    "IsActiveMember",
    "EstimatedSalary",
]


def churn_table(n: int = 60, seed: int = 7) -> pa.Table:
    """Synthetic rows of the bank-churn schema (the library's own generator)."""
    return generate_table(n, seed=seed)


def raw_matrix(df: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The unscaled feature matrix for ``names``, computed with pandas only."""
    dummies = pd.get_dummies(df["Geography"], prefix="Geography", prefix_sep="=", dtype=float)
    dummies = dummies[sorted(dummies.columns)]
    assert list(dummies.columns) == REFERENCE_NAMES[:3]
    parts = {name: dummies[name] for name in dummies.columns}
    parts["Gender"] = (df["Gender"] == "Male").astype(float)
    for name in ["HasCrCard", "IsActiveMember", *NUMERICS]:
        parts[name] = df[name].astype(float)
    return np.column_stack([parts[name].to_numpy(dtype=np.float64) for name in names])


def fitted(spec_or_pipeline, table: pa.Table) -> FeaturePipeline:
    pipeline = (
        spec_or_pipeline
        if isinstance(spec_or_pipeline, FeaturePipeline)
        else build_pipeline(spec_or_pipeline)
    )
    return pipeline.fit(frame_from_batch(table, pipeline.input_schema))


def features(pipeline: FeaturePipeline, table: pa.Table) -> np.ndarray:
    return pipeline.transform(frame_from_batch(table, pipeline.input_schema))


def scaler_of(pipeline: FeaturePipeline) -> StandardScaler:
    stage = pipeline.stages[-1]
    assert isinstance(stage, StandardScaler)
    return stage


# --------------------------------------------------------------------------- presets


@pytest.mark.parametrize(
    ("preset", "names", "ddof"),
    [("reference", REFERENCE_NAMES, 1), ("sklearn", SKLEARN_NAMES, 0)],
)
def test_preset_feature_names_and_values(preset: str, names: list[str], ddof: int) -> None:
    description, pipeline = load_pipeline_spec(preset)
    assert description == f"preset:{preset}"
    table = churn_table()
    pipeline.fit(frame_from_batch(table, pipeline.input_schema))

    assert pipeline.feature_names_ == names
    assert pipeline.compute_feature_names() == names
    assert pipeline.n_features == 12
    assert pipeline.output_col == "features"
    assert scaler_of(pipeline).ddof == ddof

    x = raw_matrix(table.to_pandas(), names)
    mean = x.mean(axis=0)
    std = x.std(axis=0, ddof=ddof)
    np.testing.assert_allclose(scaler_of(pipeline).mean_, mean, rtol=1e-12)
    np.testing.assert_allclose(scaler_of(pipeline).std_, std, rtol=1e-12)
    out = features(pipeline, table)
    assert out.shape == (table.num_rows, 12)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, (x - mean) / std, rtol=1e-12, atol=1e-12)


def test_default_preset_is_reference() -> None:
    assert DEFAULT_PRESET == "reference"
    description, pipeline = load_pipeline_spec(None)
    assert description == "preset:reference"
    pipeline.fit(frame_from_batch(churn_table(), pipeline.input_schema))
    assert pipeline.feature_names_ == REFERENCE_NAMES


def test_presets_differ_only_in_order_and_ddof() -> None:
    table = churn_table()
    ref = fitted(PRESETS["reference"], table)
    skl = fitted(PRESETS["sklearn"], table)
    perm = [REFERENCE_NAMES.index(n) for n in SKLEARN_NAMES]
    np.testing.assert_array_equal(scaler_of(skl).mean_, scaler_of(ref).mean_[perm])
    n = table.num_rows
    np.testing.assert_allclose(
        scaler_of(skl).std_, scaler_of(ref).std_[perm] * np.sqrt((n - 1) / n), rtol=1e-13
    )


def test_pipeline_transform_before_fit_says_how_to_fit() -> None:
    _, pipeline = load_pipeline_spec("reference")
    assert not pipeline.is_fitted()
    with pytest.raises(NotFittedError) as info:
        pipeline.transform(frame_from_batch(churn_table(), pipeline.input_schema))
    assert "fit a state (fit_state)" in str(info.value) and "churnctl" not in str(info.value)


def test_pipeline_needs_a_stage() -> None:
    with pytest.raises(PipelineSpecError, match="at least one stage"):
        FeaturePipeline(stages=[])


def test_fit_returns_self_and_does_not_share_state_between_builds() -> None:
    snapshot = copy.deepcopy(PRESETS)
    a = build_pipeline(PRESETS["reference"])
    b = build_pipeline(PRESETS["reference"])
    assert a.fit(frame_from_batch(churn_table(seed=1), a.input_schema)) is a
    assert a.is_fitted()
    assert not b.is_fitted()
    a.stages[0].input_cols.append("Mutated")
    assert snapshot == PRESETS


def test_rejected_training_rows_are_not_fitted() -> None:
    """A training row with an empty category is rejected and left out of the fit."""
    table = churn_table(n=20)
    pipeline = build_pipeline(PRESETS["reference"])
    geo = table.column("Geography").to_pylist()
    geo[5] = ""
    bad = table.set_column(table.schema.get_field_index("Geography"), "Geography", pa.array(geo))
    frame = frame_from_batch(bad, pipeline.input_schema)
    pipeline.fit(frame)
    assert frame.rejected.sum() == 1
    assert frame.reject_reason[5] == "empty value"

    df = bad.to_pandas().drop(index=5)
    x = raw_matrix(df, REFERENCE_NAMES)
    np.testing.assert_allclose(scaler_of(pipeline).mean_, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler_of(pipeline).std_, x.std(axis=0, ddof=1), rtol=1e-12)


# --------------------------------------------------------------------------- spec files

CUSTOM_SPEC = {
    "description": "custom",
    "stages": [
        {
            "type": "StringIndexer",
            "input_cols": ["Geography", "Gender"],
            "output_cols": ["GeoIdx", "GenderIdx"],
            "string_order_type": "frequencyDesc",
            "handle_invalid": "keep",
        },
        {
            "type": "OneHotEncoder",
            "input_cols": ["GeoIdx"],
            "output_cols": ["GeoVec"],
            "drop_last": True,
            "handle_invalid": "keep",
        },
        {
            "type": "VectorAssembler",
            "input_cols": ["Age", "GeoVec", "GenderIdx", "Balance"],
            "output_col": "raw",
        },
        {
            "type": "StandardScaler",
            "input_col": "raw",
            "output_col": "scaled",
            "with_mean": True,
            "with_std": False,
            "ddof": 0,
        },
    ],
}

CUSTOM_TOML = """\
description = "custom"

[[stages]]
type = "StringIndexer"
input_cols = ["Geography", "Gender"]
output_cols = ["GeoIdx", "GenderIdx"]
string_order_type = "frequencyDesc"
handle_invalid = "keep"

[[stages]]
type = "OneHotEncoder"
input_cols = ["GeoIdx"]
output_cols = ["GeoVec"]
drop_last = true
handle_invalid = "keep"

[[stages]]
type = "VectorAssembler"
input_cols = ["Age", "GeoVec", "GenderIdx", "Balance"]
output_col = "raw"

[[stages]]
type = "StandardScaler"
input_col = "raw"
output_col = "scaled"
with_mean = true
with_std = false
ddof = 0
"""


def stage_specs(pipeline: FeaturePipeline) -> list[tuple[str, dict]]:
    return [(stage.TYPE, stage.params()) for stage in pipeline.stages]


def test_toml_and_json_spec_files_build_the_same_pipeline(tmp_path: Path) -> None:
    toml_path = tmp_path / "spec.toml"
    json_path = tmp_path / "spec.json"
    toml_path.write_text(CUSTOM_TOML, encoding="utf-8")
    json_path.write_text(json.dumps(CUSTOM_SPEC, indent=1), encoding="utf-8")

    toml_desc, from_toml = load_pipeline_spec(str(toml_path))
    json_desc, from_json = load_pipeline_spec(str(json_path))
    assert (toml_desc, json_desc) == (str(toml_path), str(json_path))
    assert stage_specs(from_toml) == stage_specs(from_json)
    assert from_toml.input_schema == from_json.input_schema

    table = churn_table()
    fitted(from_toml, table)
    fitted(from_json, table)
    assert from_toml.feature_names_ == from_json.feature_names_
    # frequencyDesc labels; drop_last drops the least frequent country.
    counts = pd.Series(table.column("Geography").to_pylist()).value_counts()
    order = sorted(counts.index, key=lambda g: (-counts[g], g))
    assert from_toml.feature_names_ == [
        "Age",
        f"Geography={order[0]}",
        f"Geography={order[1]}",
        "Gender",
        "Balance",
    ]
    a, b = features(from_toml, table), features(from_json, table)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (table.num_rows, 5)
    # with_std false: just centred.
    np.testing.assert_allclose(a.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(
        a[:, 0], table.column("Age").to_numpy() - scaler_of(from_toml).mean_[0]
    )


def test_documented_example_spec_equals_reference_preset() -> None:
    assert EXAMPLE_TOML.is_file()
    _, example = load_pipeline_spec(str(EXAMPLE_TOML))
    _, preset = load_pipeline_spec("reference")
    assert stage_specs(example) == stage_specs(preset)
    table = churn_table()
    fitted(example, table)
    fitted(preset, table)
    assert example.feature_names_ == REFERENCE_NAMES
    np.testing.assert_array_equal(features(example, table), features(preset, table))


def test_spec_file_params_take_stage_defaults(tmp_path: Path) -> None:
    path = tmp_path / "min.json"
    path.write_text(
        json.dumps(
            {
                "stages": [
                    {"type": "StringIndexer", "input_cols": ["G"], "output_cols": ["GI"]},
                    {"type": "OneHotEncoder", "input_cols": ["GI"], "output_cols": ["GV"]},
                    {"type": "VectorAssembler", "input_cols": ["GV", "A"], "output_col": "raw"},
                    {"type": "StandardScaler", "input_col": "raw", "output_col": "out"},
                ]
            }
        )
    )
    _, pipeline = load_pipeline_spec(str(path))
    si, ohe, _, ss = pipeline.stages
    assert (si.string_order_type, si.handle_invalid) == ("alphabetAsc", "error")
    assert (ohe.drop_last, ohe.handle_invalid) == (True, "error")
    assert (ss.with_mean, ss.with_std, ss.ddof) == (False, True, 1)


def _stage(**kwargs) -> dict:
    return kwargs


GOOD_STAGES = [
    _stage(type="StringIndexer", input_cols=["G"], output_cols=["GI"]),
    _stage(type="VectorAssembler", input_cols=["GI", "A"], output_col="raw"),
]


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        pytest.param(
            {"stages": [{"type": "Bucketizer", "input_cols": ["A"]}]},
            ["stage 1", "unknown stage type 'Bucketizer'", "StringIndexer"],
            id="unknown-stage-type",
        ),
        pytest.param(
            {"stages": [GOOD_STAGES[0], {**GOOD_STAGES[1], "drop_first": True}]},
            ["stage 2", "VectorAssembler", "drop_first"],
            id="unknown-param",
        ),
        pytest.param(
            {"stages": [{"type": "StringIndexer", "input_cols": ["G"]}]},
            ["stage 1", "output_cols"],
            id="missing-param",
        ),
        pytest.param(
            {"stages": [{**GOOD_STAGES[0], "handle_invalid": "drop"}]},
            ["stage 1", "handle_invalid", "'drop'"],
            id="bad-param-value",
        ),
        pytest.param({"pipeline": GOOD_STAGES}, ["'stages'"], id="missing-stages"),
        pytest.param({}, ["'stages'"], id="empty-table"),
        pytest.param({"stages": []}, ["'stages' must be a non-empty list"], id="no-stages"),
        pytest.param({"stages": {"type": "X"}}, ["'stages' must be a non-empty list"], id="dict"),
        pytest.param(
            {"stages": GOOD_STAGES, "extra": 1}, ["'stages'", "description"], id="extra-key"
        ),
        pytest.param(
            {"stages": [{"input_cols": ["A"]}]}, ["stage 1", "needs a 'type'"], id="no-type"
        ),
        pytest.param(
            {"stages": [*GOOD_STAGES, {**GOOD_STAGES[1], "input_cols": ["A"]}]},
            ["written twice", "raw"],
            id="column-written-twice",
        ),
    ],
)
def test_bad_spec_files_raise_naming_the_problem(
    tmp_path: Path, spec: dict, fragments: list[str]
) -> None:
    path = tmp_path / "bad-spec.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(PipelineSpecError) as info:
        load_pipeline_spec(str(path))
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message
    assert str(path) in message, f"message does not name the spec file: {message}"
    assert "\n" not in message


def test_column_written_twice_within_one_stage_is_refused() -> None:
    spec = {
        "stages": [
            {"type": "StringIndexer", "input_cols": ["A", "B"], "output_cols": ["I", "I"]},
        ]
    }
    with pytest.raises(PipelineSpecError, match="written twice"):
        build_pipeline(spec)


def test_a_new_stage_type_declares_its_category_inputs_without_edits_above() -> None:
    """The pipeline and the state learn what a stage reads from its declared attributes."""

    class Lookup(StringIndexer):
        TYPE = "Lookup"

    class Numbers(VectorAssembler):
        TYPE = "Numbers"

    lookup = Lookup(input_cols=["Code"], output_cols=["Code#labels"])  # no reserved names
    pipeline = FeaturePipeline(
        stages=[lookup, Numbers(input_cols=["Code#labels", "Amount"], output_col="out")]
    )
    assert pipeline.input_schema.categorical == ("Code",)
    assert pipeline.input_schema.numeric == ("Amount",)
    lookup.labels_ = [["x", "y"]]
    assert pipeline.vocabularies() == {"Code": ["x", "y"]}


def test_column_written_twice_across_stages_names_the_column() -> None:
    spec = {
        "stages": [
            {"type": "StringIndexer", "input_cols": ["A"], "output_cols": ["X"]},
            {"type": "StringIndexer", "input_cols": ["B"], "output_cols": ["X"]},
        ]
    }
    with pytest.raises(PipelineSpecError, match=r"output column\(s\) \['X'\] written twice"):
        build_pipeline(spec)


def test_non_existent_spec_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(PipelineSpecError) as info:
        load_pipeline_spec(str(missing))
    message = str(info.value)
    assert str(missing) in message
    assert "neither a preset" in message
    assert "reference" in message and "sklearn" in message


@pytest.mark.parametrize(
    ("name", "text"),
    [("broken.toml", "[[stages]\ntype = "), ("broken.json", '{"stages": [')],
)
def test_unparsable_spec_file(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PipelineSpecError) as info:
        load_pipeline_spec(str(path))
    assert str(path) in str(info.value)
    assert "cannot read pipeline spec" in str(info.value)


def test_build_pipeline_rejects_non_table() -> None:
    with pytest.raises(PipelineSpecError, match="my-spec: expected a table"):
        build_pipeline([{"type": "StringIndexer"}], source="my-spec")


# --------------------------------------------------------------------------- input schema


@pytest.mark.parametrize(
    ("preset", "numeric"),
    [
        ("reference", ("HasCrCard", "IsActiveMember", *NUMERICS)),
        (
            "sklearn",
            (
                "CreditScore",
                "Age",
                "Tenure",
                "Balance",
                "NumOfProducts",
                "HasCrCard",
                "IsActiveMember",
                "EstimatedSalary",
            ),
        ),
    ],
)
def test_preset_input_schema(preset: str, numeric: tuple[str, ...]) -> None:
    _, pipeline = load_pipeline_spec(preset)
    schema = pipeline.input_schema
    assert schema.categorical == ("Geography", "Gender")
    assert schema.numeric == numeric
    assert schema.columns == ("Geography", "Gender", *numeric)


def test_input_schema_skips_produced_and_repeated_columns() -> None:
    spec = {
        "stages": [
            {"type": "StringIndexer", "input_cols": ["B", "A"], "output_cols": ["BI", "AI"]},
            {"type": "StringIndexer", "input_cols": ["A"], "output_cols": ["AI2"]},
            {"type": "OneHotEncoder", "input_cols": ["BI"], "output_cols": ["BV"]},
            {
                "type": "VectorAssembler",
                "input_cols": ["Z", "BV", "AI", "Y", "AI2"],
                "output_col": "V",
            },
            {"type": "StandardScaler", "input_col": "V", "output_col": "out"},
        ]
    }
    pipeline = build_pipeline(spec)
    assert pipeline.input_schema.categorical == ("B", "A")
    assert pipeline.input_schema.numeric == ("Z", "Y")
    assert pipeline.output_col == "out"


def test_input_schema_drives_column_types() -> None:
    _, pipeline = load_pipeline_spec("reference")
    frame = frame_from_batch(churn_table(n=5), pipeline.input_schema)
    for name in pipeline.input_schema.categorical:
        assert pa.types.is_string(frame[name].type)
    for name in pipeline.input_schema.numeric:
        assert isinstance(frame[name], np.ndarray)
        assert frame[name].dtype == np.float64


# --------------------------------------------------------------------------- acceptance


@pytest.fixture(scope="module")
def churn_df() -> pd.DataFrame:
    if not CHURN_CSV.is_file():
        pytest.skip(f"acceptance data set not found at {CHURN_CSV}")
    return pd.read_csv(CHURN_CSV)


@pytest.mark.acceptance
@pytest.mark.parametrize(
    ("preset", "names", "ddof"),
    [(None, REFERENCE_NAMES, 1), ("sklearn", SKLEARN_NAMES, 0)],
    ids=["default-reference", "sklearn"],
)
def test_acceptance_fit_state_matches_numpy(
    churn_df: pd.DataFrame, preset: str | None, names: list[str], ddof: int
) -> None:
    state = fit_state(CHURN_CSV, pipeline=preset)
    pipeline = state.pipeline
    assert state.feature_names == names
    assert state.provenance["rows"] == len(churn_df) == 10_000
    assert state.provenance["rows_rejected"] == 0
    assert state.provenance["training_file"] == CHURN_CSV.name

    x = raw_matrix(churn_df, names)
    mean = x.mean(axis=0)
    std = x.std(axis=0, ddof=ddof)
    # pandas' own std as a second, independent computation.
    pandas_std = pd.DataFrame(x).std(ddof=ddof).to_numpy()
    np.testing.assert_allclose(std, pandas_std, rtol=1e-12)

    scaler = scaler_of(pipeline)
    assert scaler.ddof == ddof
    np.testing.assert_allclose(scaler.mean_, mean, rtol=1e-12)
    np.testing.assert_allclose(scaler.std_, std, rtol=1e-12)

    table = pacsv.read_csv(CHURN_CSV)
    out = pipeline.transform(frame_from_batch(table, pipeline.input_schema))
    assert out.shape == (len(churn_df), 12)
    np.testing.assert_allclose(out, (x - mean) / std, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- column kinds


@pytest.mark.parametrize(
    "stages",
    [
        [{"type": "StandardScaler", "input_col": "Age", "output_col": "features"}],
        [
            {"type": "VectorAssembler", "input_cols": ["Age"], "output_col": "v"},
            {"type": "StandardScaler", "input_col": "v", "output_col": "features"},
        ],
    ],
    ids=["a-number", "a-width-1-vector"],
)
def test_a_scaler_over_one_number_scales_it_as_a_width_1_vector(
    tmp_path: Path, stages: list[dict]
) -> None:
    """Issue 15 item 10: a StandardScaler over `Age` alone ended in a TypeError."""
    spec = tmp_path / "age.json"
    spec.write_text(json.dumps({"stages": stages}), encoding="utf-8")
    train = tmp_path / "train.csv"
    pacsv.write_csv(churn_table(), train)
    state = fit_state(train, pipeline=str(spec))
    age = churn_table().column("Age").to_numpy().astype(np.float64)
    assert state.feature_names == ["Age"]
    expected = age / age.std(ddof=1)  # with_mean is false by default, with_std true
    matrix = features(state.pipeline, churn_table())
    np.testing.assert_allclose(matrix[:, 0], expected, rtol=1e-12)


IDX = {"type": "StringIndexer", "input_cols": ["Geography"], "output_cols": ["G"]}


@pytest.mark.parametrize(
    ("stages", "fragments"),
    [
        pytest.param(
            [IDX, {"type": "StringIndexer", "input_cols": ["G"], "output_cols": ["GG"]}],
            ["stage 2: StringIndexer: G is written by a StringIndexer", "category text"],
            id="indexer-reads-a-written-column",
        ),
        pytest.param(
            [
                {"type": "VectorAssembler", "input_cols": ["Age", "Tenure"], "output_col": "v"},
                {"type": "OneHotEncoder", "input_cols": ["v"], "output_cols": ["o"]},
            ],
            ["stage 2: OneHotEncoder: v is a vector", "one number per row"],
            id="encoder-reads-a-vector",
        ),
        pytest.param(
            [
                {"type": "StandardScaler", "input_col": "v", "output_col": "s"},
                {"type": "VectorAssembler", "input_cols": ["Age"], "output_col": "v"},
            ],
            ["stage 1: StandardScaler: reads v, which stage 2 writes", "reorder the stages"],
            id="reads-a-column-written-later",
        ),
        pytest.param(
            [IDX, {"type": "VectorAssembler", "input_cols": ["G", "Geography"], "output_col": "v"}],
            [
                "input column Geography is read as category text by a StringIndexer and as a "
                "number by a VectorAssembler"
            ],
            id="text-read-as-a-number",
        ),
        pytest.param(
            [{"type": "VectorAssembler", "input_cols": ["Geography"], "output_col": "v"}, IDX],
            ["stage 2: StringIndexer", "input column Geography is read as category text"],
            id="number-read-as-text",
        ),
        pytest.param(
            [{"type": ["StringIndexer"]}],
            ["stage 1: unknown stage type ['StringIndexer']"],
            id="unhashable-type",
        ),
    ],
)
def test_a_column_used_against_its_kind_is_refused_naming_the_stage(
    stages: list[dict], fragments: list[str]
) -> None:
    with pytest.raises(PipelineSpecError) as info:
        build_pipeline({"stages": stages}, source="spec.toml")
    message = str(info.value)
    assert message.startswith("spec.toml: stage ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_an_encoder_on_an_input_column_is_refused_before_the_data_is_read(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "spec.json"
    stages = [{"type": "OneHotEncoder", "input_cols": ["Balance"], "output_cols": ["o"]}]
    spec.write_text(json.dumps({"stages": stages}), encoding="utf-8")
    train = tmp_path / "train.csv"
    train.write_text("Balance\n-1\n0.5\n", encoding="utf-8")
    with pytest.raises(PipelineSpecError) as info:
        fit_state(train, pipeline=str(spec), max_rejects=NO_LIMIT)
    assert str(info.value).startswith(f"{spec}: stage 1: OneHotEncoder: Balance is an input")
    assert "index Balance with a StringIndexer first" in str(info.value)
