"""Each feature stage against small, hand-computed values (Flink ML semantics)."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from churnctl.errors import NotFittedError, PipelineSpecError
from churnctl.features.frame import Frame
from churnctl.features.input_policy import InputSchema, frame_from_batch
from churnctl.features.stages import (
    STAGE_TYPES,
    ColumnNames,
    OneHotEncoder,
    StandardScaler,
    StringIndexer,
    VectorAssembler,
)


def strings(*values: str | None) -> pa.Array:
    return pa.array(list(values), type=pa.string())


def cat_frame(*values: str | None, col: str = "c") -> Frame:
    return Frame.from_columns({col: strings(*values)})


def num_frame(values, col: str = "x") -> Frame:
    return Frame.from_columns({col: np.asarray(values, dtype=np.float64)})


def matrix_frame(rows, col: str = "m") -> Frame:
    return Frame.from_columns({col: np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)})


def indexer(**kwargs) -> StringIndexer:
    return StringIndexer(input_cols=["c"], output_cols=["ci"], **kwargs)


def scaler(**kwargs) -> StandardScaler:
    return StandardScaler(input_col="m", output_col="s", **kwargs)


def json_round_trip(value):
    return json.loads(json.dumps(value))


# Counts: b=2, c=2 (a tie), a=1, d=1 (a tie).
TRAIN = ("b", "c", "a", "c", "b", "d")


# --------------------------------------------------------------------------- StringIndexer


@pytest.mark.parametrize(
    ("order", "labels"),
    [
        ("alphabetAsc", ["a", "b", "c", "d"]),
        ("alphabetDesc", ["d", "c", "b", "a"]),
        ("frequencyDesc", ["b", "c", "a", "d"]),
        ("frequencyAsc", ["a", "d", "b", "c"]),
    ],
)
def test_string_indexer_order_types(order: str, labels: list[str]) -> None:
    stage = indexer(string_order_type=order).fit(cat_frame(*TRAIN))
    assert stage.labels_ == [labels]

    frame = stage.transform(cat_frame(*TRAIN))
    out = frame["ci"]
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [float(labels.index(v)) for v in TRAIN])
    assert not frame.rejected.any()


def test_string_indexer_default_order_is_alphabet_asc() -> None:
    stage = indexer().fit(cat_frame("z", "y", "y", "x"))
    assert stage.labels_ == [["x", "y", "z"]]
    assert stage.handle_invalid == "error"


def test_string_indexer_frequency_tie_break_is_independent_of_row_order() -> None:
    a = indexer(string_order_type="frequencyDesc").fit(cat_frame("q", "p", "q", "p", "r"))
    b = indexer(string_order_type="frequencyDesc").fit(cat_frame("p", "q", "r", "p", "q"))
    assert a.labels_ == b.labels_ == [["p", "q", "r"]]


def test_string_indexer_fit_ignores_nulls_and_rejected_rows() -> None:
    frame = cat_frame("b", None, "zz", "a", None)
    frame.reject(np.array([False, False, True, False, False]), "other", "not a number")
    stage = indexer().fit(frame)
    assert stage.labels_ == [["a", "b"]]


def test_string_indexer_several_columns_each_get_their_labels() -> None:
    frame = Frame.from_columns({"g": strings("x", "y", "x"), "h": strings("m", "m", "f")})
    stage = StringIndexer(
        input_cols=["g", "h"], output_cols=["gi", "hi"], string_order_type="frequencyDesc"
    ).fit(frame)
    assert stage.labels_ == [["x", "y"], ["m", "f"]]
    stage.transform(frame)
    np.testing.assert_array_equal(frame["gi"], [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(frame["hi"], [0.0, 0.0, 1.0])


def test_string_indexer_error_rejects_unseen_and_null_with_reasons() -> None:
    stage = indexer(handle_invalid="error").fit(cat_frame("a", "b", "c", "d"))
    frame = stage.transform(cat_frame("a", "zz", None, "d", "été"))

    np.testing.assert_array_equal(frame.rejected, [False, True, True, False, True])
    assert list(frame.reject_reason) == [
        None,
        "unseen category 'zz'",
        "empty value",
        None,
        "unseen category 'été'",
    ]
    assert list(frame.reject_column) == [None, "c", "c", None, "c"]
    # Valid rows keep their index; rejected rows carry the placeholder (number of labels).
    np.testing.assert_array_equal(frame["ci"], [0.0, 4.0, 4.0, 3.0, 4.0])


def test_string_indexer_skip_rejects_with_reason_skipped() -> None:
    stage = indexer(handle_invalid="skip").fit(cat_frame("a", "b"))
    frame = stage.transform(cat_frame("b", "new", None, "a"))

    np.testing.assert_array_equal(frame.rejected, [False, True, True, False])
    assert list(frame.reject_reason) == [None, "skipped", "skipped", None]
    assert list(frame.reject_column) == [None, "c", "c", None]
    np.testing.assert_array_equal(frame["ci"][frame.ok], [1.0, 0.0])


def test_string_indexer_keep_maps_unseen_and_null_to_number_of_labels() -> None:
    stage = indexer(handle_invalid="keep").fit(cat_frame("a", "b", "c"))
    frame = stage.transform(cat_frame("c", "new", None, "a"))

    np.testing.assert_array_equal(frame["ci"], [2.0, 3.0, 3.0, 0.0])
    assert not frame.rejected.any()
    assert frame.reject_reason is None


@pytest.mark.parametrize(
    ("policy", "reason", "rejected"),
    [("error", "empty value", True), ("skip", "skipped", True), ("keep", None, False)],
)
def test_string_indexer_empty_string_from_input_is_missing(
    policy: str, reason: str | None, rejected: bool
) -> None:
    """The input policy turns "" into null, which each handle_invalid treats as missing."""
    stage = indexer(handle_invalid=policy).fit(cat_frame("a", "b"))
    table = pa.table({"c": pa.array(["", "a"], type=pa.string())})
    frame = frame_from_batch(table, InputSchema(categorical=("c",), numeric=()))
    assert frame["c"].to_pylist() == [None, "a"]

    stage.transform(frame)
    np.testing.assert_array_equal(frame.rejected, [rejected, False])
    np.testing.assert_array_equal(frame["ci"], [2.0, 0.0])
    if rejected:
        assert frame.reject_reason[0] == reason
    else:
        assert frame.reject_reason is None


def test_string_indexer_first_reason_wins() -> None:
    frame = Frame.from_columns({"g": strings("a", "a"), "h": strings("m", "m")})
    stage = StringIndexer(input_cols=["g", "h"], output_cols=["gi", "hi"]).fit(frame)
    test = Frame.from_columns({"g": strings("x", "a"), "h": strings("y", "z")})
    stage.transform(test)
    np.testing.assert_array_equal(test.rejected, [True, True])
    assert list(test.reject_column) == ["g", "h"]
    assert list(test.reject_reason) == ["unseen category 'x'", "unseen category 'z'"]


def test_string_indexer_accepts_chunked_arrays() -> None:
    chunked = pa.chunked_array([["b"], ["a", "b"]], type=pa.string())
    frame = Frame.from_columns({"c": chunked})
    stage = indexer().fit(frame)
    stage.transform(frame)
    assert stage.labels_ == [["a", "b"]]
    np.testing.assert_array_equal(frame["ci"], [1.0, 0.0, 1.0])


# --------------------------------------------------------------------------- OneHotEncoder


def encoder(**kwargs) -> OneHotEncoder:
    return OneHotEncoder(input_cols=["i"], output_cols=["v"], **kwargs)


def index_frame(*values: float) -> Frame:
    return Frame.from_columns({"i": np.array(values, dtype=np.float64)})


def test_one_hot_fitted_size_is_max_index_plus_one() -> None:
    assert encoder().fit(index_frame(0, 2, 1, 2)).category_sizes_ == [3]
    # A category that never shows up below the max still counts.
    assert encoder().fit(index_frame(4, 0)).category_sizes_ == [5]


def test_one_hot_fit_ignores_rejected_rows() -> None:
    frame = index_frame(0, 1, 7)
    frame.reject(np.array([False, False, True]), "c", "skipped")
    assert encoder().fit(frame).category_sizes_ == [2]


def test_one_hot_drop_last_false_gives_full_width() -> None:
    stage = encoder(drop_last=False).fit(index_frame(0, 1, 2))
    frame = stage.transform(index_frame(2, 0, 1, 0))
    np.testing.assert_array_equal(frame["v"], [[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]])
    assert frame["v"].dtype == np.float64
    assert not frame.rejected.any()


def test_one_hot_drop_last_true_is_default_and_drops_the_last_column() -> None:
    stage = encoder().fit(index_frame(0, 1, 2))
    assert stage.drop_last is True
    frame = stage.transform(index_frame(2, 0, 1))
    np.testing.assert_array_equal(frame["v"], [[0, 0], [1, 0], [0, 1]])
    assert not frame.rejected.any()


@pytest.mark.parametrize("drop_last", [False, True])
def test_one_hot_keep_encodes_invalid_index_as_zeros(drop_last: bool) -> None:
    stage = encoder(drop_last=drop_last, handle_invalid="keep").fit(index_frame(0, 1, 2))
    frame = stage.transform(index_frame(1, 3, -1, 1.5, np.nan, 0))
    width = 2 if drop_last else 3
    expected = np.zeros((6, width))
    expected[0, 1] = 1.0
    expected[5, 0] = 1.0
    np.testing.assert_array_equal(frame["v"], expected)
    assert not frame.rejected.any()


def test_one_hot_error_rejects_index_past_vocabulary() -> None:
    stage = encoder(drop_last=False).fit(index_frame(0, 1, 2))
    assert stage.handle_invalid == "error"
    frame = stage.transform(index_frame(0, 3, -1, 2.5, 2))

    np.testing.assert_array_equal(frame.rejected, [False, True, True, True, False])
    reason = "index out of range for 3 categories"
    assert list(frame.reject_reason) == [None, reason, reason, reason, None]
    assert list(frame.reject_column) == [None, "i", "i", "i", None]
    np.testing.assert_array_equal(frame["v"][[0, 4]], [[1, 0, 0], [0, 0, 1]])


def test_one_hot_feature_names_use_labels() -> None:
    stage = encoder(drop_last=True).fit(index_frame(0, 1, 2))
    names = stage.feature_names({"i": ColumnNames(("Geo",), ("F", "G", "S"))})
    assert names == {"v": ColumnNames(("Geo=F", "Geo=G"))}


@pytest.mark.parametrize("drop_last", [False, True])  # drop_index wins where it is set
@pytest.mark.parametrize("dropped", [0, 1, 2])
@pytest.mark.parametrize("policy", ["error", "keep"])
def test_one_hot_drop_index_leaves_that_category_out(
    dropped: int, drop_last: bool, policy: str
) -> None:
    """scikit-learn's drop="first"/"if_binary": the full one-hot less one column."""
    stage = encoder(drop_last=drop_last, drop_index=[dropped], handle_invalid=policy)
    stage = stage.fit(index_frame(0, 1, 2))
    frame = stage.transform(index_frame(2, 0, 1, 3))
    full = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float64)
    np.testing.assert_array_equal(frame["v"], np.delete(full, dropped, axis=1))
    assert list(frame.rejected) == [False, False, False, policy == "error"]
    names = stage.feature_names({"i": ColumnNames(("Geo",), ("F", "G", "S"))})
    kept = [f"Geo={label}" for k, label in enumerate("FGS") if k != dropped]
    assert names == {"v": ColumnNames(tuple(kept))}
    assert stage.params()["drop_index"] == [dropped]


def test_one_hot_drop_index_past_the_categories_is_refused() -> None:
    with pytest.raises(PipelineSpecError, match="drop_index 3 for i, which has 3 categories"):
        encoder(drop_last=False, drop_index=[3]).fit(index_frame(0, 1, 2))
    stage = encoder(drop_last=False, drop_index=[3])
    with pytest.raises(PipelineSpecError, match="drop_index 3"):
        stage._set_fitted({"category_sizes": [3]})


def test_one_hot_drop_index_unset_is_not_stored() -> None:
    """States written before drop_index existed keep their JSON (and so their fingerprint)."""
    for unset in (None, [None]):
        assert "drop_index" not in encoder(drop_index=unset).params()


def test_one_hot_feature_names_without_labels_use_indices() -> None:
    stage = encoder(drop_last=False).fit(index_frame(0, 1, 2))
    assert stage.feature_names({}) == {"v": ColumnNames(("i=0", "i=1", "i=2"))}


def test_string_indexer_declares_that_it_reads_categories_and_its_vocabulary() -> None:
    stage = StringIndexer(input_cols=["c"], output_cols=["i"])
    stage.labels_ = [["a", "b"]]
    assert StringIndexer.READS_CATEGORIES and not StandardScaler.READS_CATEGORIES
    assert stage.vocabularies() == {"c": ["a", "b"]}
    assert stage.feature_names({}) == {"i": ColumnNames(("c",), ("a", "b"))}
    assert scaler().vocabularies() == {}


# --------------------------------------------------------------------------- VectorAssembler


def assembler_frame(n_vec: int = 2) -> Frame:
    return Frame.from_columns(
        {
            "a": np.array([1.0, 2.0]),
            "v": np.arange(2 * n_vec, dtype=np.float64).reshape(2, n_vec) + 10,
            "b": np.array([-1.0, -2.0]),
        }
    )


def test_vector_assembler_concatenates_in_given_order_and_records_sizes() -> None:
    stage = VectorAssembler(input_cols=["v", "b", "a"], output_col="out")
    stage.fit(assembler_frame())
    assert stage.input_sizes_ == [2, 1, 1]

    frame = stage.transform(assembler_frame())
    np.testing.assert_array_equal(frame["out"], [[10, 11, -1, 1], [12, 13, -2, 2]])
    assert frame["out"].dtype == np.float64

    other = VectorAssembler(input_cols=["a", "b", "v"], output_col="out").fit(assembler_frame())
    np.testing.assert_array_equal(
        other.transform(assembler_frame())["out"], [[1, -1, 10, 11], [2, -2, 12, 13]]
    )


def test_vector_assembler_size_mismatch_is_an_error() -> None:
    stage = VectorAssembler(input_cols=["a", "v"], output_col="out").fit(assembler_frame(2))
    with pytest.raises(PipelineSpecError, match=r"column v has size 3, expected 2"):
        stage.transform(assembler_frame(3))


def test_vector_assembler_feature_names_flatten_inputs() -> None:
    stage = VectorAssembler(input_cols=["v", "a"], output_col="out").fit(assembler_frame())
    names = stage.feature_names({"v": ColumnNames(("v0", "v1"))})
    assert names == {"out": ColumnNames(("v0", "v1", "a"))}


# --------------------------------------------------------------------------- StandardScaler


@pytest.mark.parametrize(("ddof", "std"), [(1, math.sqrt(5 / 3)), (0, math.sqrt(5 / 4))])
def test_standard_scaler_mean_and_std_by_hand(ddof: int, std: float) -> None:
    stage = scaler(ddof=ddof, with_mean=True).fit(matrix_frame([1, 2, 3, 4]))
    assert stage.mean_.tolist() == [2.5]
    assert stage.std_[0] == pytest.approx(std, rel=1e-15)

    out = stage.transform(matrix_frame([1, 2, 3, 4]))["s"]
    expected = (np.array([[1], [2], [3], [4]]) - 2.5) / std
    np.testing.assert_allclose(out, expected, rtol=1e-15)


def test_standard_scaler_defaults_are_flink_ml() -> None:
    stage = scaler()
    assert (stage.with_mean, stage.with_std, stage.ddof) == (False, True, 1)


def test_standard_scaler_two_columns() -> None:
    stage = scaler(with_mean=True, ddof=0).fit(matrix_frame([[0, 10], [2, 10], [4, 40]]))
    np.testing.assert_array_equal(stage.mean_, [2.0, 20.0])
    np.testing.assert_allclose(stage.std_, [math.sqrt(8 / 3), math.sqrt(200)], rtol=1e-15)


def test_standard_scaler_with_mean_false_only_divides() -> None:
    stage = scaler(with_mean=False).fit(matrix_frame([1, 2, 3, 4]))
    out = stage.transform(matrix_frame([1, 2, 3, 4]))["s"]
    np.testing.assert_allclose(out.ravel(), np.array([1, 2, 3, 4]) / math.sqrt(5 / 3), rtol=1e-15)


def test_standard_scaler_with_std_false_only_centres() -> None:
    stage = scaler(with_mean=True, with_std=False).fit(matrix_frame([1, 2, 3, 4]))
    out = stage.transform(matrix_frame([1, 2, 3, 4]))["s"]
    np.testing.assert_array_equal(out.ravel(), [-1.5, -0.5, 0.5, 1.5])


def test_standard_scaler_identity_when_both_off() -> None:
    stage = scaler(with_mean=False, with_std=False).fit(matrix_frame([1, 2, 3, 4]))
    frame = matrix_frame([5, 6])
    out = stage.transform(frame)["s"]
    np.testing.assert_array_equal(out.ravel(), [5.0, 6.0])
    assert out is not frame["m"]


@pytest.mark.parametrize("with_mean", [True, False])
def test_standard_scaler_zero_std_feature_becomes_exactly_zero(with_mean: bool) -> None:
    train = matrix_frame([[7, 1], [7, 2], [7, 3]])
    stage = scaler(with_mean=with_mean).fit(train)
    assert stage.std_[0] == 0.0
    out = stage.transform(matrix_frame([[7, 1], [7, 2], [9, 3]]))["s"]
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, 0], [0.0, 0.0, 0.0])
    expected = (np.array([1.0, 2.0, 3.0]) - (2.0 if with_mean else 0.0)) / 1.0
    np.testing.assert_allclose(out[:, 1], expected, rtol=1e-15)


@pytest.mark.parametrize(("value", "rows"), [(0.1, 3), (0.7, 3), (0.3, 10), (123456.789, 5)])
def test_standard_scaler_constant_feature_becomes_zero_whatever_its_value(
    value: float, rows: int
) -> None:
    """A constant column has zero std; it must scale to 0 even when sum/n != value in float64.

    (With a naive two-pass mean, 3 x 0.1 gives mean 0.10000000000000002, std ~1.7e-17,
    and every row scales to -0.816 instead of 0.)
    """
    stage = scaler(with_mean=True).fit(matrix_frame([value] * rows))
    out = stage.transform(matrix_frame([value] * rows))["s"]
    np.testing.assert_array_equal(out.ravel(), np.zeros(rows))
    assert stage.std_[0] == 0.0


def test_standard_scaler_is_numerically_stable() -> None:
    data = 1e9 + np.array([1.0, 2.0, 3.0])
    stage = scaler(with_mean=True).fit(matrix_frame(data))
    assert stage.mean_[0] == 1e9 + 2
    assert abs(stage.std_[0] - 1.0) < 1e-9
    out = stage.transform(matrix_frame(data))["s"]
    np.testing.assert_allclose(out.ravel(), [-1.0, 0.0, 1.0], atol=1e-9)


def test_standard_scaler_large_magnitudes_do_not_overflow() -> None:
    """std of [1e200, -1e200] is 1e200 (ddof 0); the squared deviations must not overflow."""
    stage = scaler(with_mean=True, ddof=0).fit(matrix_frame([1e200, -1e200]))
    assert stage.mean_[0] == 0.0
    assert np.isfinite(stage.std_).all()
    assert stage.std_[0] == pytest.approx(1e200, rel=1e-12)


def test_standard_scaler_fit_ignores_rejected_rows() -> None:
    frame = matrix_frame([1, 2, 3, 4, 1000])
    frame.reject(np.array([False, False, False, False, True]), "x", "not a number")
    stage = scaler(ddof=1).fit(frame)
    assert stage.mean_.tolist() == [2.5]
    assert stage.std_[0] == pytest.approx(math.sqrt(5 / 3), rel=1e-15)


@pytest.mark.parametrize(("ddof", "rows"), [(1, 1), (0, 0), (1, 0)])
def test_standard_scaler_needs_more_rows_than_ddof(ddof: int, rows: int) -> None:
    frame = matrix_frame([5.0] * rows) if rows else Frame.from_columns({"m": np.zeros((0, 1))})
    with pytest.raises(PipelineSpecError, match=rf"need more than {ddof} training rows"):
        scaler(ddof=ddof).fit(frame)


def test_standard_scaler_feature_count_mismatch_is_an_error() -> None:
    stage = scaler().fit(matrix_frame([[1, 2], [3, 4]]))
    with pytest.raises(PipelineSpecError, match="fitted on 2"):
        stage.transform(matrix_frame([[1, 2, 3], [3, 4, 5]]))


# --------------------------------------------------------------------------- not fitted


UNFITTED = [
    lambda: indexer(),
    lambda: encoder(),
    lambda: VectorAssembler(input_cols=["a"], output_col="o"),
    lambda: scaler(),
]


@pytest.mark.parametrize("make", UNFITTED, ids=list(STAGE_TYPES))
def test_transform_before_fit_raises_actionable_not_fitted(make) -> None:
    stage = make()
    assert not stage.is_fitted()
    frame = Frame.from_columns(
        {"c": strings("a"), "i": np.zeros(1), "a": np.zeros(1), "m": np.zeros((1, 1))}
    )
    with pytest.raises(NotFittedError) as info:
        stage.transform(frame)
    message = str(info.value)
    assert stage.TYPE in message
    assert "call fit()" in message
    assert "fit a state (fit_state)" in message and "churnctl" not in message
    with pytest.raises(NotFittedError):
        stage.fitted_data()


# --------------------------------------------------------------------------- invalid params


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: indexer(string_order_type="byLength"), "string_order_type must be one of"),
        (lambda: indexer(handle_invalid="ignore"), "handle_invalid must be one of"),
        (lambda: StringIndexer(input_cols=[], output_cols=[]), "input_cols must be a non-empty"),
        (lambda: StringIndexer(input_cols="c", output_cols=["x"]), "input_cols must be a non"),
        (lambda: StringIndexer(input_cols=["c", ""], output_cols=["x", "y"]), "non-empty str"),
        (lambda: StringIndexer(input_cols=["a", "b"], output_cols=["x"]), "output_cols has 1"),
        (lambda: encoder(handle_invalid="skip"), "handle_invalid must be one of error, keep"),
        (lambda: encoder(drop_last="yes"), "drop_last must be true or false"),
        (lambda: encoder(drop_last=1), "drop_last must be true or false"),
        (lambda: OneHotEncoder(input_cols=["a", "b"], output_cols=["v"]), "output_cols has 1"),
        (lambda: VectorAssembler(input_cols=[], output_col="o"), "input_cols must be a non"),
        (lambda: VectorAssembler(input_cols=["a"], output_col=""), "output_col must contain"),
        (lambda: VectorAssembler(input_cols=["a", 3], output_col="o"), "only non-empty strings"),
        (lambda: scaler(ddof=2), "ddof must be 0 or 1, got 2"),
        (lambda: scaler(ddof=True), "ddof must be 0 or 1, got True"),
        (lambda: scaler(ddof=1.0), "ddof must be 0 or 1, got 1.0"),
        (lambda: scaler(with_mean="true"), "with_mean must be true or false"),
        (lambda: scaler(with_std=0), "with_std must be true or false"),
        (lambda: StandardScaler(input_col=None, output_col="s"), "input_col must contain"),
    ],
)
def test_invalid_params_raise_pipeline_spec_error(make, fragment: str) -> None:
    with pytest.raises(PipelineSpecError) as info:
        make()
    assert fragment in str(info.value)


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="bogus"):
        StringIndexer(input_cols=["c"], output_cols=["ci"], bogus=1)


# One valid spec per stage type: every parameter given, none at its default.
SPECS = {
    "StringIndexer": {
        "input_cols": ["c", "d"],
        "output_cols": ["ci", "di"],
        "string_order_type": "frequencyAsc",
        "handle_invalid": "keep",
        "normalize": ["trim", "exact"],
    },
    "OneHotEncoder": {
        "input_cols": ["ci"],
        "output_cols": ["v"],
        "drop_last": False,
        "handle_invalid": "keep",
        "drop_index": [0],
    },
    "VectorAssembler": {"input_cols": ["a", "v"], "output_col": "o"},
    "StandardScaler": {
        "input_col": "o",
        "output_col": "s",
        "with_mean": True,
        "with_std": False,
        "ddof": 0,
    },
}
PARAMETERS = [(t, p) for t in STAGE_TYPES for p in STAGE_TYPES[t].parameters()]


def test_every_stage_type_has_a_full_spec_here() -> None:
    assert {t: list(spec) for t, spec in SPECS.items()} == {
        t: [p.name for p in cls.parameters()] for t, cls in STAGE_TYPES.items()
    }


@pytest.mark.parametrize("stage_type", list(STAGE_TYPES))
def test_params_are_the_declared_parameters_in_order(stage_type: str) -> None:
    cls = STAGE_TYPES[stage_type]
    stage = cls.from_params(dict(SPECS[stage_type]))
    assert stage.params() == SPECS[stage_type]
    assert list(stage.params()) == [p.name for p in cls.parameters()]
    defaults = {p.name: p.default for p in cls.parameters() if not p.required}
    required = {k: v for k, v in SPECS[stage_type].items() if k not in defaults}
    built = cls.from_params(required).params()
    stored = {k: v for k, v in defaults.items() if k != "normalize" and k in built}
    assert {k: built[k] for k in stored} == stored
    # a parameter left out at its default is one added later: older states keep their JSON
    assert {k for k in defaults if k not in built} <= {"drop_index"}


@pytest.mark.parametrize(
    ("stage_type", "parameter"), PARAMETERS, ids=lambda v: getattr(v, "name", v)
)
def test_each_declared_parameter_is_checked_by_name(stage_type: str, parameter) -> None:
    """The class of failure: any declared parameter, missing or junk, is refused by its name."""
    cls, spec = STAGE_TYPES[stage_type], dict(SPECS[stage_type])
    for junk in ([], 7, "", {"a": 1}):
        with pytest.raises(PipelineSpecError) as info:
            cls.from_params({**spec, parameter.name: junk})
        assert str(info.value).startswith(f"{stage_type}: "), str(info.value)
        assert parameter.name in str(info.value), str(info.value)
    del spec[parameter.name]
    if parameter.required:
        with pytest.raises(PipelineSpecError, match=f"missing parameter\\(s\\) {parameter.name}$"):
            cls.from_params(spec)
    else:
        assert getattr(cls.from_params(spec), parameter.name) is not None


@pytest.mark.parametrize("stage_type", list(STAGE_TYPES))
def test_unknown_parameters_are_refused_with_the_known_ones(stage_type: str) -> None:
    cls = STAGE_TYPES[stage_type]
    with pytest.raises(PipelineSpecError) as info:
        cls.from_params({**SPECS[stage_type], "inputCols": ["c"]})
    known = ", ".join(p.name for p in cls.parameters())
    assert str(info.value) == (f"{stage_type}: unknown parameter(s) 'inputCols'; known: {known}")


# --------------------------------------------------------------------------- state round trip


def _fitted_cases():
    si_frame = lambda: Frame.from_columns(  # noqa: E731
        {"c": strings(*TRAIN), "d": strings("x", "y", "x", "y", "x", "é")}
    )
    yield (
        "StringIndexer",
        lambda: StringIndexer(
            input_cols=["c", "d"],
            output_cols=["ci", "di"],
            string_order_type="frequencyAsc",
            handle_invalid="keep",
        ),
        si_frame,
        lambda: Frame.from_columns({"c": strings("a", "new", None), "d": strings("é", "y", "zz")}),
        {"labels": [["a", "d", "b", "c"], ["é", "y", "x"]]},
    )
    yield (
        "OneHotEncoder",
        lambda: encoder(drop_last=True, handle_invalid="keep"),
        lambda: index_frame(0, 3, 1),
        lambda: index_frame(3, 2, 9, 0),
        {"category_sizes": [4]},
    )
    yield (
        "VectorAssembler",
        lambda: VectorAssembler(input_cols=["v", "a", "b"], output_col="out"),
        assembler_frame,
        assembler_frame,
        {"input_sizes": [2, 1, 1]},
    )
    yield (
        "StandardScaler",
        lambda: scaler(with_mean=True, ddof=0),
        lambda: matrix_frame([[0.1, 7], [0.7, 7], [1e9 + 0.3, 7]]),
        lambda: matrix_frame([[1, 2], [3.5, 7]]),
        None,
    )


@pytest.mark.parametrize(
    ("make", "train", "test", "fitted"),
    [case[1:] for case in _fitted_cases()],
    ids=[case[0] for case in _fitted_cases()],
)
def test_fitted_data_from_state_round_trip(make, train, test, fitted) -> None:
    stage = make().fit(train())
    data = stage.fitted_data()
    if fitted is not None:
        assert data == fitted

    params = json_round_trip(stage.params())
    data_json = json_round_trip(data)
    rebuilt = type(stage).from_state(params, data_json)

    assert rebuilt.is_fitted()
    assert rebuilt.params() == stage.params()
    assert json.dumps(rebuilt.fitted_data()) == json.dumps(data)

    a, b = stage.transform(test()), rebuilt.transform(test())
    for col in stage.output_columns():
        np.testing.assert_array_equal(np.asarray(a[col]), np.asarray(b[col]))
    np.testing.assert_array_equal(a.rejected, b.rejected)


def test_standard_scaler_fitted_data_is_plain_floats() -> None:
    stage = scaler(with_mean=True).fit(matrix_frame([[1, 10], [2, 20], [4, 40]]))
    data = stage.fitted_data()
    assert set(data) == {"mean", "std"}
    assert all(type(v) is float for v in data["mean"] + data["std"])
    assert data["mean"] == [7 / 3, 70 / 3]


@pytest.mark.parametrize(
    ("cls", "params", "fitted", "fragment"),
    [
        (StringIndexer, {"input_cols": ["c"], "output_cols": ["o"]}, {}, "must have keys"),
        (
            StringIndexer,
            {"input_cols": ["c"], "output_cols": ["o"]},
            {"labels": [["a", "a"]]},
            "duplicate labels for column c",
        ),
        (
            StringIndexer,
            {"input_cols": ["c"], "output_cols": ["o"]},
            {"labels": [["a"], ["b"]]},
            "2 label lists for 1 columns",
        ),
        (
            OneHotEncoder,
            {"input_cols": ["c"], "output_cols": ["o"]},
            {"category_sizes": [0]},
            "positive category size",
        ),
        (
            VectorAssembler,
            {"input_cols": ["a", "b"], "output_col": "o"},
            {"input_sizes": [1]},
            "one input size",
        ),
        (
            StandardScaler,
            {"input_col": "m", "output_col": "s"},
            {"mean": [0.0], "std": [-1.0]},
            "std >= 0",
        ),
        (
            StandardScaler,
            {"input_col": "m", "output_col": "s"},
            {"mean": [0.0, 1.0], "std": [1.0]},
            "equal-length",
        ),
        (
            StandardScaler,
            {"input_col": "m", "output_col": "s"},
            {"mean": [0.0], "std": [1.0], "var": [1.0]},
            "must have keys",
        ),
    ],
)
def test_from_state_rejects_bad_fitted_data(cls, params, fitted, fragment) -> None:
    with pytest.raises(PipelineSpecError) as info:
        cls.from_state(params, fitted)
    assert fragment in str(info.value)


# --------------------------------------------------------------------------- normalisation


def _category_frame(values: list[str | None]) -> Frame:
    return Frame.from_columns({"c": pa.array(values, pa.string())})


def test_normalize_trim_lower_matches_case_and_whitespace_variants() -> None:
    stage = StringIndexer(input_cols=["c"], output_cols=["i"], normalize=["trim-lower"])
    stage.fit(_category_frame(["Male", " FEMALE", "male "]))
    assert stage.labels_ == [["female", "male"]]
    frame = stage.transform(_category_frame([" MaLe ", "Female", "  ", "other"]))
    assert frame["i"][:2].tolist() == [1.0, 0.0]
    assert frame.rejected.tolist() == [False, False, True, True]
    assert frame.reject_reason[2:].tolist() == ["empty value", "unseen category 'other'"]


def test_normalize_trim_keeps_case_and_exact_is_the_default() -> None:
    trim = StringIndexer(input_cols=["c"], output_cols=["i"], normalize=["trim"])
    trim.fit(_category_frame(["A", " a"]))
    assert trim.labels_ == [["A", "a"]]
    exact = StringIndexer(input_cols=["c"], output_cols=["i"])
    assert exact.params()["normalize"] == ["exact"]
    exact.fit(_category_frame(["A", " A"]))
    assert exact.labels_ == [[" A", "A"]]


def test_normalize_is_kept_in_the_state_and_applied_after_loading() -> None:
    stage = StringIndexer(input_cols=["c"], output_cols=["i"], normalize=["trim-lower"])
    stage.fit(_category_frame(["x", "Y"]))
    params, fitted = json.loads(json.dumps([stage.params(), stage.fitted_data()]))
    loaded = StringIndexer.from_state(params, fitted)
    assert loaded.normalize == ["trim-lower"]
    assert loaded.transform(_category_frame([" X", "y "]))["i"].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("normalize", [["upper"], ["trim", "trim"], "trim"])
def test_bad_normalize_is_refused(normalize) -> None:
    with pytest.raises(PipelineSpecError, match="normalize"):
        StringIndexer(input_cols=["c"], output_cols=["i"], normalize=normalize)
