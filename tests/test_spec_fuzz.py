"""Random pipeline spec documents through the spec loader, the fit and the state.

The rule (issue 15, item 10): whatever a TOML/JSON spec file holds, ``fit_state`` either
raises a ``ChurnctlError`` with a one-line message, or returns a state that transforms
the data it was fitted on and survives its own JSON (same fingerprint, same features).
The documents mix stage types, column kinds (category text, numbers, vectors written by
earlier stages, columns the data lacks), vector widths from 1 up, missing and extra
keys, values of the wrong type and empty lists.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from churnctl.batch.fit_file import fit_state
from churnctl.errors import ChurnctlError
from churnctl.features.extraction import FeatureBatch, extract_features
from churnctl.features.stages import INVALID_POLICIES, NORMALIZE_MODES, ORDER_TYPES, STAGE_TYPES
from churnctl.features.state import state_from_text
from churnctl.io.rejects import NO_LIMIT

CATEGORIES = ("cat_a", "cat_b")  # text columns of the training data
NUMBERS = ("num_a", "num_b")  # numeric columns (small whole numbers: usable as indices too)
MISSING = "nope"  # a column the data lacks

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.floats(),
    st.text(max_size=3),
    st.lists(st.integers(0, 2), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
OPTIONS: dict[str, st.SearchStrategy[Any]] = {
    "string_order_type": st.sampled_from(ORDER_TYPES),
    "handle_invalid": st.sampled_from(INVALID_POLICIES),
    "normalize": st.none() | st.lists(st.sampled_from(NORMALIZE_MODES), max_size=3),
    "drop_last": st.booleans(),
    "drop_index": st.none() | st.lists(st.none() | st.integers(0, 3), max_size=2),
    "with_mean": st.booleans(),
    "with_std": st.booleans(),
    "ddof": st.sampled_from([0, 1, 2]),
}


def keywords(stage_type: str) -> list[str]:
    return [p.name for p in STAGE_TYPES[stage_type].parameters()]


def rarely(draw: st.DrawFn) -> bool:
    return draw(st.integers(0, 9)) == 5  # hypothesis favours 0: a middle value is rarer


class Columns:
    """The columns a document's stages have to choose from, by kind, as they are written."""

    def __init__(self) -> None:
        self.text, self.scalars, self.vectors = list(CATEGORIES), list(NUMBERS), []
        self.written = 0

    def every(self) -> list[str]:
        return [*self.text, *self.scalars, *self.vectors, MISSING]

    def pick(self, draw: st.DrawFn, kinds: list[str], n: int) -> list[str]:
        """n names of these kinds; now and then any name (another kind, a missing column)."""
        pool = [name for kind in kinds for name in getattr(self, kind)]
        pool = self.every() if rarely(draw) or not pool else pool
        return draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))

    def fresh(self, draw: st.DrawFn, kind: str, n: int) -> list[str]:
        """n new names (now and then one already used), now recorded as of this kind."""
        names = []
        for _ in range(n):
            self.written += 1
            used = self.every()
            names.append(draw(st.sampled_from(used)) if rarely(draw) else f"out{self.written}")
        getattr(self, kind).extend(name for name in names if name not in self.every())
        return names


def _columns_of(draw: st.DrawFn, stage_type: str, columns: Columns) -> dict[str, Any]:
    """Input and output columns of the stage's kinds; lengths that now and then disagree."""
    n = draw(st.integers(1, 3))
    m = n if not rarely(draw) else draw(st.integers(0, 3))
    if stage_type == "StringIndexer":
        inputs = columns.pick(draw, ["text"], n)
        return {"input_cols": inputs, "output_cols": columns.fresh(draw, "scalars", m)}
    if stage_type == "OneHotEncoder":
        inputs = columns.pick(draw, ["scalars"], n)
        return {"input_cols": inputs, "output_cols": columns.fresh(draw, "vectors", m)}
    if stage_type == "VectorAssembler":
        inputs = columns.pick(draw, ["scalars", "vectors"], n)
        return {"input_cols": inputs, "output_col": columns.fresh(draw, "vectors", 1)[0]}
    [source] = columns.pick(draw, ["vectors", "scalars"], 1)
    return {"input_col": source, "output_col": columns.fresh(draw, "vectors", 1)[0]}


@st.composite
def stage_documents(draw: st.DrawFn, columns: Columns) -> Any:
    """One stage: mostly well-formed, now and then a key missing, extra or of the wrong type."""
    if draw(st.integers(0, 29)) == 17:  # no stage at all, no type, or an unknown type
        return draw(st.sampled_from([{}, {"input_cols": ["num_a"]}]) | junk.map(_typed))
    stage_type = draw(st.sampled_from(sorted(STAGE_TYPES)))
    document: dict[str, Any] = {"type": stage_type, **_columns_of(draw, stage_type, columns)}
    for key in keywords(stage_type):
        if key in OPTIONS and draw(st.booleans()):
            document[key] = draw(OPTIONS[key])
    if rarely(draw):
        key = draw(st.sampled_from(keywords(stage_type)))
        action = draw(st.sampled_from(["omit", "junk", "empty"]))
        document.pop(key, None)
        if action != "omit":
            document[key] = draw(junk) if action == "junk" else []
    if rarely(draw):
        document[draw(st.sampled_from(["extra", "inputCols", "type ", "0"]))] = draw(junk)
    return document


def _typed(value: Any) -> dict[str, Any]:
    return {"type": value}


@st.composite
def spec_documents(draw: st.DrawFn) -> Any:
    """A whole document: a table of stages (now and then no table, no list, or extra keys)."""
    shape = draw(st.sampled_from(["stages"] * 5 + ["junk", "extra", "missing"] + ["stages"] * 12))
    if shape == "junk":
        return draw(junk)
    if shape == "missing":
        return {"description": "no stages"}
    if draw(st.integers(0, 29)) == 17:
        stages = draw(junk | st.just([]))
    else:
        columns = Columns()
        stages = [draw(stage_documents(columns)) for _ in range(draw(st.integers(1, 4)))]
        if draw(st.booleans()):  # most graphs live: one assembler reads what nothing read
            closing = unread_outputs(stages)
            if closing:
                stages.append(
                    {"type": "VectorAssembler", "input_cols": closing, "output_col": "closing"}
                )
        stages = graph_mutation(draw, stages)
    document = {"stages": stages}
    if shape == "extra":
        document[draw(st.sampled_from(["description", "Stages", "version"]))] = draw(junk)
    return document


def _names(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, str)]


def unread_outputs(stages: list[Any]) -> list[str]:
    """The columns the stages write that no later stage reads, each once, in order."""
    unread: list[str] = []
    for stage in stages:
        if not isinstance(stage, dict):
            continue
        for key in ("input_cols", "input_col"):
            unread = [c for c in unread if c not in _names(stage.get(key))]
        for key in ("output_cols", "output_col"):
            unread += [c for c in _names(stage.get(key)) if c not in unread]
    return unread


def graph_mutation(draw: st.DrawFn, stages: list[Any]) -> list[Any]:
    """Now and then: stages misordered, one repeated, or a parameter nested too deep."""
    mutation = draw(st.sampled_from(["none"] * 12 + ["shuffle", "repeat", "nest", "type"]))
    if mutation == "shuffle":
        return draw(st.permutations(stages))
    if mutation == "repeat":
        return [*stages, draw(st.sampled_from(stages))]
    if mutation in ("nest", "type") and isinstance(stages[0], dict):
        depth = draw(st.sampled_from([3, 40]))  # 100,000: test_spec_graph
        deep: Any = "StringIndexer"
        for _ in range(depth):
            deep = [deep]
        key = "type" if mutation == "type" else draw(st.sampled_from(sorted(stages[0])))
        return [{**stages[0], key: deep}, *stages[1:]]
    return stages


@st.composite
def training_tables(draw: st.DrawFn) -> pa.Table:
    """A few rows: category text of 1 to 3 labels, numbers 0 to 3 (whole, sometimes not)."""
    n = draw(st.integers(2, 6))
    columns: dict[str, list[str]] = {}
    for name in CATEGORIES:
        labels = draw(st.lists(st.sampled_from("PQR"), min_size=1, max_size=3, unique=True))
        columns[name] = draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n))
    for name in NUMBERS:
        values = st.integers(0, 3).map(str) | st.sampled_from(["0.5", "2.25"])
        columns[name] = draw(st.lists(values, min_size=n, max_size=n))
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def assert_one_line(error: ChurnctlError) -> None:
    message = str(error)
    assert message and "\n" not in message and "\r" not in message, repr(message)


def assert_same_features(one: FeatureBatch, other: FeatureBatch) -> None:
    assert np.array_equal(one.valid, other.valid)
    assert np.array_equal(one.matrix[one.valid], other.matrix[other.valid])
    assert one.reject_column.equals(other.reject_column)
    assert one.reject_reason.equals(other.reject_reason)


def check_spec(spec: Any, table: pa.Table) -> None:
    """The property: a one-line ChurnctlError, or a working state that survives its JSON."""
    with tempfile.TemporaryDirectory() as folder:
        spec_file, train = Path(folder) / "spec.json", Path(folder) / "train.csv"
        bom = "\ufeff" if len(json.dumps(spec)) % 3 == 0 else ""  # a BOM is read too
        spec_file.write_text(bom + json.dumps(spec), encoding="utf-8")
        pacsv.write_csv(table, train)
        try:
            state = fit_state(train, pipeline=str(spec_file), max_rejects=NO_LIMIT)
        except ChurnctlError as error:
            assert_one_line(error)
            return
    features = extract_features(state, table)
    assert features.matrix.shape == (table.num_rows, len(state.feature_names))
    again = state_from_text(state.dumps(), source="round trip")
    assert again.fingerprint == state.fingerprint
    assert again.feature_names == state.feature_names
    assert_same_features(extract_features(again, table), features)


SCALER_OVER_AGE = {
    "stages": [{"type": "StandardScaler", "input_col": "num_a", "output_col": "features"}]
}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(spec=SCALER_OVER_AGE, table=pa.table({"num_a": ["1", "2", "4"], "cat_a": ["P", "Q", "P"]}))
@given(spec=spec_documents(), table=training_tables())
def test_a_spec_document_gives_a_clear_error_or_a_working_state(spec: Any, table: pa.Table) -> None:
    check_spec(spec, table)
