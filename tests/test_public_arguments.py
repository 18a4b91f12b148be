"""Every public entry point says what is wrong with an argument in one line (issue 17 item 4).

Hypothesis calls each entry point with good arguments but one, replaced by a value of
a wrong type (None, numbers, lists, dicts, bytes, objects): the call raises a
``ChurnctlError`` naming that argument in one line, never a ``TypeError`` or an
``AttributeError``. Then pandas batches: a stray value in an object column rejects its
row only, and duplicate column names are refused by name.
"""

from __future__ import annotations

import functools
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import churnctl
from churnctl import (
    ChurnModel,
    Scorer,
    bind_model,
    drift_file,
    export_fused,
    extract_features,
    fit_state,
    from_sklearn,
    load_state,
    read_output_lineage,
    save_for_serving,
)
from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.batch.score_files import FilesRequest, score_files
from churnctl.errors import ChurnctlError, UsageError
from churnctl.io.sources import ReadOptions
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.scoring.scorer import ScorerOptions, scorer_from
from churnctl.watch.watcher import Watcher, WatchSettings

WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), min_size=1, max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.binary(max_size=8),
    st.builds(object),
)


@functools.cache
def scorer() -> Scorer:
    return Scorer(bundled(STATE), bundled(MODEL))


@functools.cache
def keeping_all() -> Scorer:
    return Scorer(bundled(STATE), bundled(MODEL), keep=["*"])


@functools.cache
def frame() -> pd.DataFrame:
    return pacsv.read_csv(bundled(SAMPLE)).slice(0, 20).to_pandas()


@functools.cache
def landing() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="churnctl-arguments-"))
    (folder / "in").mkdir()
    return folder / "in"


@functools.cache
def scored_output() -> Path:
    """An output ``score_file`` wrote, with its lineage sidecar."""
    output = landing().parent / "scored.csv"
    score_file(ScoreRequest(input=bundled(SAMPLE), output=str(output), scorer=scorer()))
    return output


@functools.cache
def watch_settings() -> WatchSettings:
    return WatchSettings(in_dir=landing(), out_dir=landing().parent / "out", scorer=scorer())


def boolean(value: Any) -> bool:
    return isinstance(value, bool)


def whole(low: int, high: float = math.inf) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def at_least(least: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= least


def nothing(value: Any) -> bool:
    return value is None


def never(value: Any) -> bool:
    return False


def share(value: Any) -> bool:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and math.isfinite(value) and 0 <= value <= 1


def is_bytes(value: Any) -> bool:
    return isinstance(value, bytes)


def good_arguments() -> dict[str, tuple[Callable[..., Any], dict[str, Any]]]:
    """Each public entry point, with arguments that work."""
    state = load_state(bundled(STATE))
    return {
        "Scorer": (
            Scorer,
            {
                "state": bundled(STATE),
                "model": bundled(MODEL),
                "keep": ["CustomerId"],
                "threshold": 0.5,
                "allow_state_mismatch": False,
                "threads": 1,
                "logits": False,
                "decimal": ".",
            },
        ),
        "Scorer.score": (lambda **kw: scorer().score(**kw), {"batch": frame()}),
        "Scorer.features": (lambda **kw: scorer().features(**kw), {"batch": frame()}),
        "Scorer.score_aligned": (lambda **kw: scorer().score_aligned(**kw), {"batch": frame()}),
        "Scorer.predict": (lambda **kw: scorer().predict(**kw), {"batch": frame()}),
        "Scorer.predict_proba": (lambda **kw: scorer().predict_proba(**kw), {"batch": frame()}),
        "fit_state": (
            fit_state,
            {
                "train": bundled(SAMPLE),
                "pipeline": "reference",
                "read_options": None,
                "max_rejects": 0,
                "rejects": None,
                "decimal": ".",
                "on_progress": None,
            },
        ),
        "fit_state(DataFrame)": (
            fit_state,
            {"train": frame(), "pipeline": "reference", "max_rejects": 0, "decimal": "."},
        ),
        "load_state": (load_state, {"path": bundled(STATE)}),
        "read_output_lineage": (read_output_lineage, {"output": scored_output()}),
        "drift_file": (
            drift_file,
            {
                "input": bundled(SAMPLE),
                "state": state,
                "read_options": None,
                "decimal": ".",
                "on_progress": None,
            },
        ),
        "extract_features": (
            extract_features,
            {"state": state, "batch": frame(), "decimal": ".", "as_frame": False},
        ),
        "bind_model": (
            bind_model,
            {"model_bytes": bundled(MODEL).read_bytes(), "state": state, "rebind": False},
        ),
        "ChurnModel": (ChurnModel, {"source": bundled(MODEL), "threads": 1, "name": "m"}),
        "Scorer.kept_columns": (
            lambda **kw: keeping_all().kept_columns(**kw),
            {"columns": ["CustomerId"]},
        ),
        "Scorer.keeping": (lambda **kw: keeping_all().keeping(**kw), {"columns": ["CustomerId"]}),
        "Scorer.with_kept_types": (
            lambda **kw: scorer().with_kept_types(**kw),
            {"types": {"CustomerId": pa.int64()}},
        ),
        "score_file": (score_file, {"request": ScoreRequest("in.csv", "out.csv", scorer())}),
        "ScorerOptions": (
            ScorerOptions,
            {
                "keep": ("CustomerId",),
                "threshold": 0.5,
                "allow_state_mismatch": False,
                "logits": False,
                "decimal": ".",
            },
        ),
        "scorer_from": (
            scorer_from,
            {
                "state": bundled(STATE),
                "model": bundled(MODEL),
                "options": ScorerOptions(),
                "threads": 1,
            },
        ),
        "ScoreRequest": (
            ScoreRequest,
            {
                "input": "in.csv",
                "output": "out.csv",
                "scorer": scorer(),
                "format": "csv",
                "rejects": "r.csv",
                "max_rejects": 0,
                "read_options": ReadOptions(),
                "read_from": "in.csv",
                "drift": True,
            },
        ),
        "FilesRequest": (
            FilesRequest,
            {
                "inputs": ["in.csv"],
                "scorer": scorer(),
                "out_dir": None,
                "output": "out.csv",
                "format": "csv",
                "rejects": "r.csv",
                "max_rejects": 0,
                "read_options": ReadOptions(),
                "workers": 1,
                "drift": True,
            },
        ),
        "score_files": (
            score_files,
            {"request": FilesRequest(["in.csv"], scorer()), "on_file": None},
        ),
        "WatchSettings": (
            WatchSettings,
            {
                "in_dir": landing(),
                "out_dir": landing() / "out",
                "scorer": scorer(),
                "format": "csv",
                "max_rejects": 0,
                "read_options": ReadOptions(),
                "settle": 1.0,
                "rescan": 30.0,
                "poll": None,
                "after": "keep",
                "archive_dir": None,
                "retain_days": None,
                "max_attempts": 3,
                "reprocess_changed": False,
                "once": True,
                "drift": True,
            },
        ),
        "Watcher": (Watcher, {"settings": watch_settings(), "on_event": None}),
        "save_for_serving": (
            save_for_serving,
            {"state": state, "model": bundled(MODEL), "folder": landing().parent / "serving"},
        ),
        "from_sklearn": (
            from_sklearn,
            {
                "steps": [fitted_scaler()],
                "columns": ["Age", "Tenure"],
                "training_data": frame()[["Age", "Tenure"]],
            },
        ),
        "export_fused": (
            export_fused,
            {
                "state": state,
                "model": bundled(MODEL),
                "output": landing().parent / "fused.onnx",
                "logits": False,
            },
        ),
    }


@functools.cache
def fitted_scaler() -> Any:
    """A fitted scikit-learn StandardScaler (scikit-learn is the train extra)."""
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit(frame()[["Age", "Tenure"]].values)


# Which wrong-typed values an argument takes after all (a None where None is the default...).
ACCEPTED: dict[tuple[str, str], Callable[[Any], bool]] = {
    ("Scorer", "threshold"): share,
    ("Scorer", "allow_state_mismatch"): boolean,
    ("Scorer", "logits"): boolean,
    ("Scorer", "threads"): lambda v: v is None or whole(0, 2**31 - 1)(v),
    ("Scorer", "model"): is_bytes,
    ("ScorerOptions", "threshold"): share,
    ("ScorerOptions", "allow_state_mismatch"): boolean,
    ("ScorerOptions", "logits"): boolean,
    ("scorer_from", "threads"): lambda v: v is None or whole(0, 2**31 - 1)(v),
    ("scorer_from", "model"): is_bytes,
    **{("FilesRequest", name): nothing for name in ("out_dir", "output", "format", "rejects")},
    ("FilesRequest", "workers"): lambda v: v is None or whole(-(2**63))(v),
    ("FilesRequest", "max_rejects"): whole(0),
    ("score_files", "on_file"): nothing,
    ("WatchSettings", "settle"): at_least(0),
    ("WatchSettings", "rescan"): at_least(0.01),
    ("WatchSettings", "archive_dir"): nothing,
    ("WatchSettings", "poll"): lambda v: v is None or at_least(0.01)(v),
    ("WatchSettings", "retain_days"): lambda v: v is None or at_least(0)(v),
    ("WatchSettings", "max_attempts"): whole(1),
    ("WatchSettings", "max_rejects"): whole(0),
    ("WatchSettings", "reprocess_changed"): boolean,
    ("WatchSettings", "once"): boolean,
    ("WatchSettings", "drift"): boolean,
    ("ScoreRequest", "drift"): boolean,
    ("FilesRequest", "drift"): boolean,
    ("from_sklearn", "training_data"): nothing,
    ("drift_file", "read_options"): nothing,
    ("drift_file", "on_progress"): nothing,
    ("Watcher", "on_event"): nothing,
    ("fit_state", "pipeline"): nothing,
    ("fit_state", "read_options"): nothing,
    ("fit_state", "rejects"): nothing,
    ("fit_state", "on_progress"): nothing,
    ("fit_state", "max_rejects"): whole(0),
    ("fit_state(DataFrame)", "pipeline"): nothing,
    ("fit_state(DataFrame)", "max_rejects"): whole(0),
    ("bind_model", "rebind"): boolean,
    ("export_fused", "logits"): boolean,
    ("save_for_serving", "rebind"): boolean,
    ("save_for_serving", "model"): is_bytes,  # bytes: then not an ONNX model, refused as such
    ("extract_features", "as_frame"): boolean,
    ("Scorer.with_kept_types", "types"): lambda v: v == {},  # every kept column as text
    ("ChurnModel", "source"): is_bytes,
    ("ChurnModel", "threads"): whole(0, 2**31 - 1),
    ("ChurnModel", "name"): nothing,
    ("ScoreRequest", "format"): nothing,
    ("ScoreRequest", "rejects"): nothing,
    ("ScoreRequest", "read_from"): nothing,
    ("ScoreRequest", "max_rejects"): whole(0),
}
ENTRY_POINTS = good_arguments()
ARGUMENTS = [(label, name) for label, (_, kw) in ENTRY_POINTS.items() for name in kw]


def test_the_public_api_is_covered() -> None:
    """Each callable of ``churnctl.__all__`` (bar the error class) is called here."""
    public = {name for name in churnctl.__all__ if callable(getattr(churnctl, name))}
    public -= {"ChurnctlError", "FeatureState", "FeatureBatch", "ScoredBatch"}  # results
    assert public <= set(ENTRY_POINTS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argument=st.sampled_from(ARGUMENTS), value=WRONG)
def test_a_wrong_argument_is_one_line_naming_it(argument: tuple[str, str], value: Any) -> None:
    label, name = argument
    if ACCEPTED.get(argument, never)(value):
        return
    function, good = ENTRY_POINTS[label]
    with pytest.raises(ChurnctlError) as info:
        function(**{**good, name: value})
    message = str(info.value)
    assert name in message and "\n" not in message, message
    assert len(message) < 400, message


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: Scorer(1, 2), ["state", "got int 1", "FeatureState"]),
        (lambda: Scorer(None, None), ["state", "got None"]),
        (lambda: Scorer(load_state(bundled(STATE)), None), ["model", "got None", "bytes"]),
        (lambda: scorer().score(None), ["batch", "got None", "DataFrame"]),
        (lambda: scorer().score("data.csv"), ["batch", "got str", "score_file"]),
        (lambda: fit_state(None), ["train", "got None", "path"]),
        (lambda: fit_state([1, 2]), ["train", "got list [1, 2]", "DataFrame"]),
        (lambda: fit_state(bundled(SAMPLE), pipeline=123), ["pipeline", "got int 123"]),
        (lambda: fit_state(bundled(SAMPLE), max_rejects=-1), ["max_rejects", "got int -1"]),
        (lambda: load_state({}), ["path", "got dict"]),
    ],
)
def test_the_examples_of_the_issue(call: Callable[[], Any], words: list[str]) -> None:
    with pytest.raises(UsageError) as info:
        call()
    message = str(info.value)
    assert all(word in message for word in words) and "\n" not in message, message


# ------------------------------------------------------------------ pandas batches

STRAY = st.one_of(
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=5),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.builds(object),
)
INPUTS = ["Geography", "Gender", "CreditScore", "Age", "Balance", "HasCrCard"]


@settings(max_examples=60, deadline=None)
@given(column=st.sampled_from(INPUTS), row=st.integers(0, 19), value=STRAY)
def test_a_stray_value_in_an_object_column_rejects_its_row_only(
    column: str, row: int, value: Any
) -> None:
    clean = scorer().score_aligned(frame())
    mixed = frame().copy()
    mixed[column] = mixed[column].astype(object)
    mixed.at[row, column] = value
    result = scorer().score_aligned(mixed)
    assert result.num_rows == clean.num_rows
    others = [i for i in range(clean.num_rows) if i != row]
    assert result.take(others).equals(clean.take(others))
    if isinstance(value, bool | bytes | list) or type(value) is object:
        assert result.column("reject_column")[row].as_py() == column


def test_a_true_among_ages_is_a_rejected_row() -> None:
    mixed = frame().copy()
    mixed["Age"] = mixed["Age"].astype(object)
    mixed.at[3, "Age"] = True
    result = scorer().score(mixed)
    assert result.scored.num_rows == 19
    assert result.rejects.to_pylist()[0] | {"value": None} == {
        "row": 3,
        "column": "Age",
        "reason": "not a number",
        "value": None,
    }


@pytest.mark.parametrize("duplicated", [["Age"], ["Age", "Tenure"], ["Surname", "Gender", "Age"]])
def test_duplicate_column_names_are_refused_by_name(duplicated: list[str]) -> None:
    doubled = pd.concat([frame(), frame()[duplicated]], axis=1)
    with pytest.raises(UsageError) as info:
        scorer().score(doubled)
    message = str(info.value)
    listed = message.split("duplicate column names: ")[1].split(";")[0]
    assert listed.split(", ") == sorted(duplicated), message


def test_a_path_like_is_taken() -> None:
    """The checks refuse wrong types, not right ones: ``Path`` and ``str`` both load."""
    assert load_state(bundled(STATE)).fingerprint == load_state(str(bundled(STATE))).fingerprint
