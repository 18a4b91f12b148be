"""The public ``churnctl.Scorer`` on the bundled state and model, with real ONNX Runtime.

Covers the three views of one computation (``features``, ``score``, ``score_aligned``)
against each other and against an independent oracle of which cells are bad, chunked
versus whole-batch scoring, input kinds, schema and usage errors, pickling (in this
process and in a fresh one), the construction-time binding check, and empty input.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import churnctl
import churnctl.scoring.scorer
from churnctl import FeatureBatch, FeatureState, ScoredBatch, Scorer, fit_state
from churnctl.errors import CompatibilityError, SchemaError, UsageError
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.samples.generate import COLUMNS, generate_table
from churnctl.scoring.binding import PairStatus
from churnctl.scoring.model import ChurnModel
from churnctl.scoring.scorer import aligned_schema, output_schema

PROPERTY = settings(
    max_examples=35,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

KEEP = ("CustomerId", "Surname")
N_FEATURES = 12
MAX_ROWS = 60
LONG_TEXT = "7" * 10_001
TOO_LONG = "field longer than 10,000 characters"
CATEGORICAL = ("Geography", "Gender")
NUMERIC = (
    "CreditScore",
    "Age",
    "Tenure",
    "Balance",
    "NumOfProducts",
    "HasCrCard",
    "IsActiveMember",
    "EstimatedSalary",
)
# Values written over cells; None is a null cell. "  12 " is a valid number.
BAD_VALUES: tuple[str | None, ...] = (
    "",
    "   ",
    None,
    "abc",
    "NaN",
    "inf",
    "-Infinity",
    "1e999",
    "Atlantis",
    "  12 ",
    LONG_TEXT,
)
NUMERIC_REASONS: dict[str | None, str | None] = {
    "": "empty value",
    "   ": "empty value",
    None: "empty value",
    "abc": "not a number",
    "Atlantis": "not a number",
    "NaN": "non-finite value",
    "inf": "non-finite value",
    "-Infinity": "non-finite value",
    "1e999": "non-finite value",
    "  12 ": None,
    LONG_TEXT: TOO_LONG,
}

Cells = dict[tuple[int, str], str | None]


# ------------------------------------------------------------------ fixtures and helpers


def make_scorer(**options: Any) -> Scorer:
    """A Scorer on the bundled state and model."""
    return Scorer(bundled(STATE), bundled(MODEL), **options)


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return make_scorer(keep=list(KEEP))


@functools.cache
def typed_table(n_rows: int, seed: int) -> pa.Table:
    """Synthetic typed rows (ints, floats, strings)."""
    return generate_table(n_rows, seed=seed)


@functools.cache
def text_table(n_rows: int, seed: int) -> pa.Table:
    """The same rows with every column as text, as a CSV reader would give them."""
    typed = typed_table(n_rows, seed)
    return pa.table({name: pc.cast(typed.column(name), pa.string()) for name in typed.column_names})


def corrupt(table: pa.Table, cells: Cells) -> pa.Table:
    """The table with the given (row, column) cells overwritten (all columns text)."""
    columns = table.to_pydict()
    for (row, name), value in cells.items():
        columns[name][row] = value
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def expected_reason(column: str, value: str | None) -> str | None:
    """The reject reason one bad cell causes on its own, or None when it is accepted."""
    if column in NUMERIC:
        return NUMERIC_REASONS[value]
    if column not in CATEGORICAL:
        return None  # pass-through or unused column: never checked
    if value == LONG_TEXT:
        return TOO_LONG
    if value is None or value == "":
        return "empty value"
    return f"unseen category {value!r}"


def bad_cells_by_row(cells: Cells) -> dict[int, dict[str, str]]:
    """Per row, each column whose corrupted cell must reject the row, with its reason."""
    rows: dict[int, dict[str, str]] = {}
    for (row, column), value in cells.items():
        reason = expected_reason(column, value)
        if reason is not None:
            rows.setdefault(row, {})[column] = reason
    return rows


def rejects_of_aligned(aligned: pa.Table) -> list[tuple[int, str, str]]:
    """(row, column, reason) of the aligned rows that carry a reject reason, in order."""
    columns = aligned.column("reject_column").to_pylist()
    reasons = aligned.column("reject_reason").to_pylist()
    return [
        (i, column, reason)
        for i, (column, reason) in enumerate(zip(columns, reasons, strict=True))
        if reason is not None
    ]


def scored_part(aligned: pa.Table, keep: tuple[str, ...] = KEEP) -> pa.Table:
    """The aligned rows without a reject reason, as ``score().scored`` lays them out."""
    accepted = pc.is_null(aligned.column("reject_reason"))
    return aligned.filter(accepted).select([*keep, "raw", "exited"])


def brief(triples: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    """Reject triples with reasons cut to 40 characters, for readable failure messages."""
    return [(row, column, reason[:40]) for row, column, reason in triples]


def reject_triples(rejects: pa.Table) -> list[tuple[int, str, str]]:
    """(row, column, reason) of ``score().rejects``."""
    return [(r["row"], r["column"], r["reason"]) for r in rejects.to_pylist()]


def slices(table: pa.Table, cuts: list[int]) -> list[pa.Table]:
    """The table cut at the given (sorted, possibly repeated) row positions."""
    bounds = [0, *cuts, table.num_rows]
    return [table.slice(lo, hi - lo) for lo, hi in itertools.pairwise(bounds)]


def shift_rows(rejects: pa.Table, offset: int) -> pa.Table:
    """Rejects with their batch-relative row numbers moved to whole-table numbers."""
    shifted = pc.add(rejects.column("row"), pa.scalar(offset, pa.int64()))
    return rejects.set_column(0, "row", shifted)


# ------------------------------------------------------------------ 1. the three views agree


def test_oracle_columns_are_the_states_input_columns(scorer: Scorer) -> None:
    schema = scorer.state.pipeline.input_schema
    assert set(schema.categorical) == set(CATEGORICAL)
    assert set(schema.numeric) == set(NUMERIC)
    assert len(scorer.state.feature_names) == N_FEATURES


@st.composite
def corrupted_tables(draw: st.DrawFn) -> tuple[pa.Table, Cells]:
    n_rows = draw(st.integers(0, MAX_ROWS))
    seed = draw(st.integers(0, 7))
    base = text_table(MAX_ROWS, seed).slice(0, n_rows)
    cells: Cells = {}
    if n_rows:
        cell = st.tuples(st.integers(0, n_rows - 1), st.sampled_from(COLUMNS))
        cells = draw(st.dictionaries(cell, st.sampled_from(BAD_VALUES), max_size=30))
    return corrupt(base, cells), cells


@PROPERTY
@given(case=corrupted_tables())
def test_score_aligned_agrees_with_score_and_features(
    scorer: Scorer, case: tuple[pa.Table, Cells]
) -> None:
    table, cells = case
    aligned = scorer.score_aligned(table)
    result = scorer.score(table)
    features = scorer.features(table)

    assert aligned.schema == aligned_schema(KEEP)
    assert aligned.num_rows == table.num_rows
    assert result.n_read == table.num_rows
    assert result.scored.schema == output_schema(KEEP)
    assert scored_part(aligned).equals(result.scored)

    rejected = pc.is_valid(aligned.column("reject_reason"))
    assert aligned.column("reject_column").is_valid().equals(rejected)
    failed = aligned.filter(rejected)
    assert failed.column("raw").null_count == failed.num_rows
    assert failed.column("exited").null_count == failed.num_rows
    assert aligned.filter(pc.invert(rejected)).column("raw").null_count == 0
    assert rejects_of_aligned(aligned) == reject_triples(result.rejects)
    for reject in result.rejects.to_pylist():
        assert reject["value"] == table.column(reject["column"])[reject["row"]].as_py()

    assert features.matrix.dtype == np.float32
    assert features.matrix.shape == (table.num_rows, N_FEATURES)
    assert features.valid.tolist() == pc.invert(rejected).to_pylist()

    # Independent oracle: a row is rejected exactly when a cell it holds is bad, and then
    # for one of its bad cells, with that cell's reason.
    bad = bad_cells_by_row(cells)
    triples = rejects_of_aligned(aligned)
    assert [row for row, _, _ in triples] == sorted(bad)
    for row, column, reason in triples:
        assert bad[row].get(column) == reason, (row, column, reason, bad[row])


# ------------------------------------------------------------------ 2. chunked == whole


CHUNK_ROWS = 3_000


@functools.cache
def chunk_table() -> pa.Table:
    """3,000 text rows with a few bad cells, so that chunks hold rejects too."""
    cells: Cells = {(7, "Age"): "abc", (1_500, "Geography"): "Atlantis", (2_999, "Balance"): ""}
    return corrupt(text_table(CHUNK_ROWS, 11), cells)


@functools.cache
def whole_results() -> tuple[pa.Table, pa.Table, pa.Table]:
    """Scored rows, rejects and aligned rows of the whole 3,000-row table."""
    scorer = make_scorer(keep=list(KEEP))
    result = scorer.score(chunk_table())
    return result.scored, result.rejects, scorer.score_aligned(chunk_table())


def assert_chunks_equal_whole(scorer: Scorer, cuts: list[int]) -> None:
    table = chunk_table()
    parts = slices(table, cuts)
    assert sum(part.num_rows for part in parts) == table.num_rows
    scored, rejects, aligned = whole_results()
    assert rejects.num_rows == 3
    results = [scorer.score(part) for part in parts]
    offsets = np.cumsum([0, *(part.num_rows for part in parts[:-1])]).tolist()
    chunk_rejects = [shift_rows(r.rejects, o) for r, o in zip(results, offsets, strict=True)]
    assert pa.concat_tables([r.scored for r in results]).equals(scored)
    assert pa.concat_tables(chunk_rejects).equals(rejects)
    assert pa.concat_tables([scorer.score_aligned(part) for part in parts]).equals(aligned)


@pytest.mark.parametrize(
    "cuts",
    [
        [],
        [0],
        [1],
        [2_999],
        [1, 1, 2],
        [7, 8, 1_500, 1_501, 2_999],
        [1_000, 2_000],
        [0, 0, 3_000, 3_000],
    ],
    ids=lambda cuts: "cuts" + "-".join(map(str, cuts)),
)
def test_fixed_chunks_score_like_the_whole_table(scorer: Scorer, cuts: list[int]) -> None:
    assert_chunks_equal_whole(scorer, cuts)


@settings(PROPERTY, max_examples=20)
@given(cuts=st.lists(st.integers(0, CHUNK_ROWS), max_size=8).map(sorted))
def test_drawn_chunks_score_like_the_whole_table(scorer: Scorer, cuts: list[int]) -> None:
    assert_chunks_equal_whole(scorer, cuts)


# ------------------------------------------------------------------ 3. input kinds


def test_record_batch_table_and_dataframe_score_alike(scorer: Scorer) -> None:
    table = typed_table(200, 5)
    (batch,) = table.combine_chunks().to_batches()
    from_table = scorer.score(table)
    assert from_table.scored.num_rows == 200
    assert from_table.rejects.num_rows == 0
    assert scorer.score(batch).scored.equals(from_table.scored)
    assert scorer.score(table.to_pandas()).scored.equals(from_table.scored)
    assert scorer.score_aligned(batch).equals(scorer.score_aligned(table))
    # a kept column keeps its type (issue 19); as text when the output fixes it so
    assert from_table.scored.column("CustomerId").equals(table.column("CustomerId"))
    text_ids = pc.cast(table.column("CustomerId"), pa.string())
    as_text = scorer.with_kept_types({}).score(table).scored
    assert as_text.column("CustomerId").equals(text_ids)


def public_batch_functions() -> list[str]:
    """Every public function, and public method of a public class, that takes a ``batch``."""
    found = []
    for name in churnctl.__all__:
        value = getattr(churnctl, name)
        members = [(name, value)] if inspect.isfunction(value) else []
        if inspect.isclass(value):
            members = [
                (f"{name}.{attr}", member)
                for attr, member in vars(value).items()
                if inspect.isfunction(member) and not attr.startswith("_")
            ]
        found += [
            label for label, member in members if "batch" in inspect.signature(member).parameters
        ]
    return sorted(found)


BATCH_FUNCTIONS = public_batch_functions()


def call_public(label: str, scorer: Scorer, batch: Any) -> Any:
    """Call a public batch function; its other required parameters are given from ``scorer``."""
    owner, _, method = label.rpartition(".")
    if owner == "Scorer":
        return getattr(scorer, method)(batch)
    function = getattr(churnctl, label)
    given = {"state": scorer.state, "batch": batch}
    required = [
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is parameter.empty
    ]
    return function(**{name: given[name] for name in required})


def same_result(one: Any, other: Any) -> bool:
    if isinstance(one, FeatureBatch):
        return (
            np.array_equal(one.valid, other.valid)
            and np.array_equal(one.matrix[one.valid], other.matrix[other.valid])
            and one.reject_column.equals(other.reject_column)
            and one.reject_reason.equals(other.reject_reason)
        )
    if isinstance(one, ScoredBatch):
        return one.scored.equals(other.scored) and one.rejects.equals(other.rejects)
    if isinstance(one, np.ndarray):
        return np.array_equal(one, other, equal_nan=True)
    return bool(one.equals(other))


def test_the_public_batch_functions_are_found() -> None:
    """The list below is derived: a new public function taking a batch joins the test."""
    assert BATCH_FUNCTIONS == [
        "Scorer.features",
        "Scorer.predict",
        "Scorer.predict_proba",
        "Scorer.score",
        "Scorer.score_aligned",
        "extract_features",
    ]


KINDS = {
    "RecordBatch": lambda table: table.combine_chunks().to_batches()[0],
    "Table": lambda table: table,
    "DataFrame": lambda table: table.to_pandas(),
}


@pytest.mark.parametrize("label", BATCH_FUNCTIONS)
def test_every_public_batch_function_takes_every_batch_kind_alike(
    scorer: Scorer, label: str
) -> None:
    """Issue 15 item 11: extract_features(state, dataframe) raised AttributeError."""
    table = corrupt(text_table(30, 4), {(3, "Age"): "abc", (7, "Geography"): "Atlantis"})
    results = {kind: call_public(label, scorer, make(table)) for kind, make in KINDS.items()}
    for kind, result in results.items():
        assert same_result(result, results["Table"]), kind
    missing = table.drop_columns(["Age"])
    for make in KINDS.values():
        with pytest.raises(SchemaError, match=r"^batch: missing required column\(s\) Age\b"):
            call_public(label, scorer, make(missing))


BAD_BATCHES = [None, 42, "data.csv", [{"Age": 1}], {"Age": [1]}, np.zeros((2, 2))]


@pytest.mark.parametrize("label", BATCH_FUNCTIONS)
@pytest.mark.parametrize("bad", BAD_BATCHES, ids=lambda bad: type(bad).__name__)
def test_anything_else_is_one_usage_error(scorer: Scorer, label: str, bad: Any) -> None:
    with pytest.raises(UsageError) as info:
        call_public(label, scorer, bad)
    message = str(info.value)
    assert message.startswith(
        "batch must be a pyarrow RecordBatch or Table, or a pandas DataFrame, got "
        + ("None" if bad is None else type(bad).__name__)
    ), message
    assert "\n" not in message


def test_multi_chunk_table_scores_like_one_chunk(scorer: Scorer) -> None:
    table = corrupt(text_table(MAX_ROWS, 3), {(20, "Gender"): "X", (41, "Age"): "1e999"})
    chunked = pa.concat_tables(slices(table, [1, 20, 21, 40]))
    assert chunked.column("Age").num_chunks == 5
    assert scorer.score_aligned(chunked).equals(scorer.score_aligned(table))
    assert scorer.score(chunked).rejects.equals(scorer.score(table).rejects)


# Long cells: a whitespace-padded number (accepted if not for its length) and a long category.
LONG_CELLS: Cells = {(2, "Age"): " " * 10_000 + "40", (5, "Geography"): "G" * 10_001}


def as_large_strings(table: pa.Table) -> pa.Table:
    """The same text columns as ``large_string`` (what pandas' ``string[pyarrow]`` gives)."""
    return table.cast(pa.schema([(field.name, pa.large_string()) for field in table.schema]))


def as_arrow_backed_frame(table: pa.Table) -> pd.DataFrame:
    """A pandas DataFrame whose columns use the ``string[pyarrow]`` dtype."""
    return table.to_pandas().astype("string[pyarrow]")


@pytest.mark.parametrize(
    "convert", [as_large_strings, as_arrow_backed_frame], ids=["large_string", "string[pyarrow]"]
)
def test_large_string_columns_are_checked_like_string_columns(scorer: Scorer, convert: Any) -> None:
    table = corrupt(text_table(10, 8), LONG_CELLS)
    expected = [(2, "Age", TOO_LONG), (5, "Geography", TOO_LONG)]
    assert brief(rejects_of_aligned(scorer.score_aligned(table))) == expected
    aligned = scorer.score_aligned(convert(table))
    assert brief(rejects_of_aligned(aligned)) == expected
    assert aligned.equals(scorer.score_aligned(table))


@pytest.mark.parametrize("column", ["Balance", "Age", "HasCrCard"])
def test_dataframe_nan_in_a_numeric_column_rejects_that_row(scorer: Scorer, column: str) -> None:
    table = typed_table(50, 5)
    frame = table.to_pandas()
    frame[column] = frame[column].astype("float64")
    frame.loc[17, column] = np.nan
    result = scorer.score(frame)
    assert result.scored.num_rows == 49
    assert reject_triples(result.rejects) == [(17, column, "empty value")]
    expected = scorer.score(table.filter(pa.array(np.arange(50) != 17))).scored
    assert result.scored.equals(expected)


# ------------------------------------------------------------------ 4. schema and usage errors


def test_missing_required_column_is_named(scorer: Scorer) -> None:
    table = typed_table(10, 1).drop_columns(["Age"])
    for view in (scorer.score, scorer.score_aligned, scorer.features):
        with pytest.raises(SchemaError, match=r"missing required column\(s\) Age\b"):
            view(table)


def test_missing_kept_column_is_named() -> None:
    scorer = make_scorer(keep=["Nope"])
    with pytest.raises(SchemaError, match=r"missing column\(s\) Nope named to keep") as raised:
        scorer.score(typed_table(10, 1))
    assert raised.value.fix is not None and raised.value.fix.setting == "keep"


@pytest.mark.parametrize(
    "options",
    [{"keep": "CustomerId"}, {"threads": -1}, {"threads": 1.5}, {"keep": ["CustomerId", ""]}],
    ids=["bare-string-keep", "negative-threads", "float-threads", "empty-keep-name"],
)
def test_bad_options_raise_usage_error(options: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        make_scorer(**options)


# ------------------------------------------------------------------ 5. pickling in-process


class CountingModel(ChurnModel):
    """A ChurnModel that counts how often it is constructed."""

    constructed = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).constructed += 1
        super().__init__(*args, **kwargs)


def test_pickled_scorer_opens_its_session_lazily_and_scores_alike(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = make_scorer(keep=list(KEEP), threshold=0.3, threads=1)
    table = corrupt(text_table(MAX_ROWS, 2), {(3, "Age"): "abc"})
    data = pickle.dumps(original)

    monkeypatch.setattr(CountingModel, "constructed", 0)
    monkeypatch.setattr(churnctl.scoring.scorer, "ChurnModel", CountingModel)
    copy = pickle.loads(data)
    assert CountingModel.constructed == 0
    assert copy.keep == KEEP
    assert copy.threshold == 0.3
    assert copy.threads == 1
    aligned = copy.score_aligned(table)
    assert CountingModel.constructed == 1
    result = copy.score(table)
    assert CountingModel.constructed == 1

    assert isinstance(copy.model, CountingModel)
    assert copy.model._session.get_session_options().intra_op_num_threads == 1
    assert aligned.equals(original.score_aligned(table))
    assert result.scored.equals(original.score(table).scored)
    assert result.rejects.equals(original.score(table).rejects)
    assert copy.check == original.check


# ------------------------------------------------------------------ 6. pickling across processes


CHILD = textwrap.dedent(
    """
    import pickle
    import sys
    from pathlib import Path

    import pyarrow.parquet as pq

    folder = Path(sys.argv[1])
    scorer = pickle.loads((folder / "scorer.pkl").read_bytes())
    table = pq.read_table(folder / "input.parquet")
    pq.write_table(scorer.score_aligned(table), folder / "output.parquet")
    """
)


def test_pickled_scorer_scores_in_a_fresh_process(tmp_path: Path) -> None:
    scorer = make_scorer(keep=list(KEEP), threshold=0.3, threads=1)
    table = corrupt(text_table(MAX_ROWS, 4), {(5, "Geography"): "Atlantis", (9, "Tenure"): ""})
    (tmp_path / "scorer.pkl").write_bytes(pickle.dumps(scorer))
    pq.write_table(table, tmp_path / "input.parquet")

    subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], timeout=120, check=True)

    output = pq.read_table(tmp_path / "output.parquet")
    assert output.equals(scorer.score_aligned(table))
    assert output.column_names == [*KEEP, "raw", "exited", "reject_column", "reject_reason"]
    assert output.column("reject_reason").null_count == MAX_ROWS - 2
    scored = output.filter(pc.is_null(output.column("reject_reason")))
    raw = scored.column("raw").to_numpy()
    exited = scored.column("exited").to_numpy(zero_copy_only=False)
    assert exited.tolist() == (raw > 0.3).tolist()
    assert (raw > 0.3).sum() != (raw > 0.5).sum()  # the threshold really mattered


# ------------------------------------------------------------------ 7. the binding check


@pytest.fixture(scope="module")
def sklearn_state() -> FeatureState:
    """A state fitted on the bundled sample with the scikit-learn feature layout."""
    return fit_state(bundled(SAMPLE), pipeline="sklearn")


def test_bundled_pair_is_bound(scorer: Scorer) -> None:
    assert scorer.check.status is PairStatus.BOUND


def test_state_of_another_layout_is_refused_at_construction(sklearn_state: FeatureState) -> None:
    with pytest.raises(CompatibilityError, match="feature order"):
        Scorer(sklearn_state, bundled(MODEL))


def test_allowed_mismatch_is_skipped_and_stays_skipped_through_pickling(
    sklearn_state: FeatureState,
) -> None:
    scorer = Scorer(sklearn_state, bundled(MODEL), allow_state_mismatch=True)
    assert scorer.check.status is PairStatus.SKIPPED
    copy = pickle.loads(pickle.dumps(scorer))
    assert copy.check.status is PairStatus.SKIPPED
    assert copy.allow_state_mismatch is True
    table = typed_table(20, 6)
    assert copy.score(table).scored.equals(scorer.score(table).scored)


# ------------------------------------------------------------------ 8. empty input


@pytest.mark.parametrize("kind", ["typed", "text"])
def test_empty_input_gives_empty_results(scorer: Scorer, kind: str) -> None:
    table = typed_table(0, 0) if kind == "typed" else text_table(0, 0)
    assert table.num_rows == 0
    result = scorer.score(table)
    assert result.scored.num_rows == 0
    assert result.rejects.num_rows == 0
    assert result.n_read == 0
    types = {name: table.schema.field(name).type for name in KEEP}  # kept as they are
    assert result.scored.schema == output_schema(KEEP, types)
    aligned = scorer.score_aligned(table)
    assert aligned.num_rows == 0
    assert aligned.schema == aligned_schema(KEEP, types)
    assert aligned.equals(aligned_schema(KEEP, types).empty_table())
    features = scorer.features(table)
    assert features.matrix.shape == (0, N_FEATURES)
    assert features.valid.shape == (0,)


def test_threads_default_to_the_given_models_and_travel_with_a_pickle() -> None:
    model = ChurnModel(bundled(MODEL), threads=1)
    scorer = Scorer(bundled(STATE), model)
    assert scorer.threads == 1
    copy = pickle.loads(pickle.dumps(scorer))
    assert copy.model._session.get_session_options().intra_op_num_threads == 1
    assert Scorer(bundled(STATE), bundled(MODEL)).threads == 0


class _Tagged(Scorer):
    """A subclass, as a caller (or a test) may derive one."""


def test_derived_scorers_share_the_state_and_the_open_model_and_keep_their_class() -> None:
    """``keeping`` and ``with_kept_types`` neither parse the state nor open the model again
    (issue 21: every file paid both), and a subclass's derived scorer is still one."""
    scorer = _Tagged(bundled(STATE), bundled(MODEL), keep=["*"])
    opened = scorer.model
    kept = scorer.keeping(["CustomerId", "Surname"])
    typed = kept.with_kept_types({})
    for derived in (kept, typed):
        assert type(derived) is _Tagged
        assert derived.state is scorer.state and derived.model is opened
    assert kept.keep == ("CustomerId", "Surname") and scorer.keeps_all
    assert typed.kept_types == {"CustomerId": pa.string(), "Surname": pa.string()}
    assert scorer.kept_types is None and kept.kept_types is None
