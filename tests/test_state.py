"""The JSON feature state: exact round trips, refusals of bad files, no pickle, atomic save."""

from __future__ import annotations

import ast
import copy
import hashlib
import importlib
import json
import os
import pickle
import re
import stat
import tokenize
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import churnctl
import churnctl.features.state
import churnctl.features.state_format
from churnctl import atomic, moved
from churnctl.batch.fit_file import fit_state
from churnctl.errors import OutputError, StateError
from churnctl.features.frame import Frame
from churnctl.features.input_policy import frame_from_batch
from churnctl.features.spec import PRESETS, build_pipeline
from churnctl.features.state import (
    FORMAT,
    FORMAT_VERSION,
    FeatureState,
    load_state,
    state_from_text,
)
from churnctl.samples.generate import generate_table

PACKAGE_DIR = Path(churnctl.__file__).resolve().parent
PROVENANCE = {
    "training_file": "train.csv",
    "training_sha256": "ab" * 32,
    "rows": 3,
    "rows_rejected": 0,
    "fitted_at": "2026-01-01T00:00:00+00:00",
    "pipeline": "test",
}


def independent_checksum(document: dict) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of all but 'checksum'."""
    body = {k: v for k, v in document.items() if k != "checksum"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def resealed(document: dict) -> str:
    """The document as a file a careful forger would write: valid checksum."""
    document = copy.deepcopy(document)
    document["checksum"] = independent_checksum(document)
    return json.dumps(document, indent=2, ensure_ascii=False)


def churn_table(n: int = 40, seed: int = 3) -> pa.Table:
    """Synthetic rows of the bank-churn schema (the library's own generator)."""
    return generate_table(n, seed=seed)


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("train") / "train.csv"
    pacsv.write_csv(churn_table(), path)
    return path


@pytest.fixture(scope="module")
def state_text(train_csv: Path) -> str:
    return fit_state(train_csv).dumps()


@pytest.fixture
def document(state_text: str) -> dict:
    return json.loads(state_text)


def transform(state: FeatureState, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    frame = frame_from_batch(table, state.pipeline.input_schema)
    return state.pipeline.transform(frame), frame.rejected


# --------------------------------------------------------------------------- document shape


def test_document_layout_and_checksum(document: dict, train_csv: Path) -> None:
    assert document["format"] == FORMAT == "churnctl-feature-state"
    assert document["format_version"] == FORMAT_VERSION == 2
    assert document["churnctl_version"] == churnctl.__version__
    assert [s["type"] for s in document["stages"]] == [
        "StringIndexer",
        "OneHotEncoder",
        "VectorAssembler",
        "StandardScaler",
    ]
    assert document["input_schema"]["columns"][:2] == [
        {"name": "Geography", "type": "category", "vocabulary": ["France", "Germany", "Spain"]},
        {"name": "Gender", "type": "category", "vocabulary": ["Female", "Male"]},
    ]
    assert document["input_schema"]["columns"][2] == {"name": "HasCrCard", "type": "number"}
    assert document["output"]["column"] == "features"
    assert len(document["output"]["feature_names"]) == 12
    assert document["stages"][2]["fitted"] == {"input_sizes": [3] + [1] * 9}
    provenance = document["provenance"]
    assert provenance["training_file"] == "train.csv"
    assert provenance["training_sha256"] == hashlib.sha256(train_csv.read_bytes()).hexdigest()
    assert (provenance["rows"], provenance["rows_rejected"]) == (40, 0)
    assert provenance["pipeline"] == "preset:reference"
    assert document["checksum"] == independent_checksum(document)


def test_dumps_is_utf8_without_escapes() -> None:
    pipeline = build_pipeline(PRESETS["reference"])
    table = churn_table(n=10)
    geo = ["Österreich", "日本", "France", *table.column("Geography").to_pylist()[3:]]
    index = table.schema.get_field_index("Geography")
    table = table.set_column(index, "Geography", pa.array(geo))
    pipeline.fit(frame_from_batch(table, pipeline.input_schema))
    text = FeatureState(pipeline, PROVENANCE).dumps()
    assert "Österreich" in text and "日本" in text
    assert "\\u" not in text
    assert text.endswith("}\n")


# --------------------------------------------------------------------------- round trip


def test_file_round_trip_is_byte_exact(tmp_path: Path, state_text: str) -> None:
    state = state_from_text(state_text)
    path = tmp_path / "state.json"
    state.save(path)
    assert path.read_text(encoding="utf-8") == state_text
    loaded = load_state(path)
    assert loaded.dumps() == state_text
    assert loaded.provenance == json.loads(state_text)["provenance"]

    table = churn_table(n=25, seed=11)
    a, ra = transform(state, table)
    b, rb = transform(loaded, table)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ra, rb)


def test_loaded_numbers_are_the_stored_float64_numbers(state_text: str) -> None:
    document = json.loads(state_text)
    loaded = state_from_text(state_text)
    scaler = loaded.pipeline.stages[-1]
    stored = document["stages"][-1]["fitted"]
    assert scaler.mean_.dtype == np.float64
    assert scaler.mean_.tolist() == stored["mean"]
    assert scaler.std_.tolist() == stored["std"]


UNSEEN = "\u2603-unseen-\u00e9"
FLOATS = st.one_of(
    st.floats(min_value=-1e150, max_value=1e150, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 0.1, 1e-300, 5e-324, -2.5e-310, 1e150, -1e150, 123456789.125]),
)
CATEGORY = st.text(max_size=6).filter(lambda s: s != UNSEEN)


@st.composite
def fitted_cases(draw: st.DrawFn) -> tuple[dict, dict, dict]:
    n = draw(st.integers(min_value=3, max_value=12))
    # The one-hot encoded column sees at least two distinct values (see the separate test
    # of a single-category column below).
    vocab_g = draw(st.lists(CATEGORY, min_size=2, max_size=4, unique=True))
    vocab_h = draw(st.lists(CATEGORY, min_size=1, max_size=4, unique=True))
    g = vocab_g + draw(st.lists(st.sampled_from(vocab_g), min_size=n, max_size=n))
    h = draw(st.lists(st.sampled_from(vocab_h), min_size=len(g), max_size=len(g)))
    x = draw(st.lists(FLOATS, min_size=len(g), max_size=len(g)))
    y = draw(st.lists(FLOATS, min_size=len(g), max_size=len(g)))
    order = draw(st.sampled_from(["alphabetAsc", "alphabetDesc", "frequencyDesc", "frequencyAsc"]))
    indexer_policy = draw(st.sampled_from(["error", "skip", "keep"]))
    encoder_policy = draw(st.sampled_from(["error", "keep"]))
    spec = {
        "stages": [
            {
                "type": "StringIndexer",
                "input_cols": ["g", "h"],
                "output_cols": ["gi", "hi"],
                "string_order_type": order,
                "handle_invalid": indexer_policy,
            },
            {
                "type": "OneHotEncoder",
                "input_cols": ["gi"],
                "output_cols": ["gv"],
                "drop_last": draw(st.booleans()),
                # an indexer's kept index is never rejected by the encoder (a spec error)
                "handle_invalid": "keep" if indexer_policy == "keep" else encoder_policy,
            },
            {
                "type": "VectorAssembler",
                "input_cols": draw(st.permutations(["x", "gv", "hi", "y"])),
                "output_col": "raw",
            },
            {
                "type": "StandardScaler",
                "input_col": "raw",
                "output_col": "features",
                "with_mean": draw(st.booleans()),
                "with_std": draw(st.booleans()),
                "ddof": draw(st.sampled_from([0, 1])),
            },
        ]
    }
    train = {"g": g, "h": h, "x": x, "y": y}
    k = len(g)
    test = {
        "g": [UNSEEN, None, *g[: k - 2]],
        "h": [h[0], h[1], *h[: k - 3], UNSEEN],
        "x": x[::-1],
        "y": y,
    }
    return spec, train, test


def to_frame(columns: dict) -> Frame:
    return Frame.from_columns(
        {
            "g": pa.array(columns["g"], type=pa.string()),
            "h": pa.array(columns["h"], type=pa.string()),
            "x": np.array(columns["x"], dtype=np.float64),
            "y": np.array(columns["y"], dtype=np.float64),
        }
    )


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=fitted_cases())
def test_round_trip_is_exact_for_random_pipelines(case: tuple[dict, dict, dict]) -> None:
    spec, train, test = case
    pipeline = build_pipeline(json.loads(json.dumps(spec)), source="generated")
    pipeline.fit(to_frame(train))
    state = FeatureState(pipeline, dict(PROVENANCE))

    text = state.dumps()
    loaded = state_from_text(text, source="generated")
    assert loaded.dumps() == text
    assert loaded.feature_names == state.feature_names
    assert json.loads(text)["checksum"] == independent_checksum(json.loads(text))

    for columns in (train, test):
        before, after = to_frame(columns), to_frame(columns)
        a = state.pipeline.transform(before)
        b = loaded.pipeline.transform(after)
        assert a.shape == b.shape == (len(columns["g"]), len(state.feature_names))
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(before.rejected, after.rejected)
        if before.reject_reason is not None:
            assert list(before.reject_reason) == list(after.reject_reason)


def test_single_category_column_with_drop_last_round_trips() -> None:
    """drop_last on a one-category column yields a 0-wide vector; its state must reload."""
    spec = {
        "stages": [
            {"type": "StringIndexer", "input_cols": ["g"], "output_cols": ["gi"]},
            {"type": "OneHotEncoder", "input_cols": ["gi"], "output_cols": ["gv"]},
            {"type": "VectorAssembler", "input_cols": ["gv", "x"], "output_col": "raw"},
            {"type": "StandardScaler", "input_col": "raw", "output_col": "features"},
        ]
    }
    pipeline = build_pipeline(spec)
    frame = Frame.from_columns(
        {"g": pa.array(["only", "only", "only"]), "x": np.array([1.0, 2.0, 3.0])}
    )
    pipeline.fit(frame)
    assert pipeline.feature_names_ == ["x"]
    text = FeatureState(pipeline, dict(PROVENANCE)).dumps()
    assert state_from_text(text).dumps() == text


# --------------------------------------------------------------------------- refusals


def change_first_std_digit(text: str) -> str:
    match = re.search(r'"std": \[\s*(-?\d+\.\d*?)(\d)', text)
    assert match is not None
    digit = match.group(2)
    new = "1" if digit != "1" else "2"
    tampered = text[: match.start(2)] + new + text[match.end(2) :]
    json.loads(tampered)  # still valid JSON
    assert tampered != text
    return tampered


def flip_checksum(text: str) -> str:
    match = re.search(r'"checksum": "sha256:([0-9a-f])', text)
    assert match is not None
    new = "0" if match.group(1) != "0" else "1"
    return text[: match.start(1)] + new + text[match.end(1) :]


def edited(edit: Callable[[dict], None]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        document = json.loads(text)
        edit(document)
        return resealed(document)

    return apply


def _set(path: list, value) -> Callable[[dict], None]:
    def edit(document: dict) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _delete(path: list) -> Callable[[dict], None]:
    def edit(document: dict) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


REFUSALS = [
    pytest.param(
        change_first_std_digit, ["checksum mismatch", "refit it (fit_state)"], id="tampered-std"
    ),
    pytest.param(flip_checksum, ["checksum mismatch"], id="tampered-checksum"),
    pytest.param(lambda t: t[: len(t) // 2], ["not valid JSON"], id="truncated"),
    pytest.param(
        edited(_set(["format_version"], 0)),
        ["version 0", "refit it (fit_state)"],
        id="old-version-0",
    ),
    pytest.param(
        edited(_set(["format_version"], 3)),
        ["version 3", "upgrade churnctl"],
        id="future-version-3",
    ),
    pytest.param(edited(_set(["format_version"], "1")), ["version '1'"], id="version-as-string"),
    pytest.param(
        edited(_set(["stages", 1, "type"], "Bucketizer")),
        ["stages/1/type", "Bucketizer"],
        id="unknown-stage-type",
    ),
    pytest.param(edited(_delete(["provenance"])), ["provenance"], id="missing-top-key"),
    pytest.param(
        edited(_delete(["stages", 3, "fitted"])), ["stages/3", "fitted"], id="missing-stage-key"
    ),
    pytest.param(edited(_set(["extra"], 1)), ["extra"], id="extra-top-key"),
    pytest.param(
        edited(_set(["stages", 0, "code"], "os.system")), ["stages/0", "code"], id="extra-stage-key"
    ),
    pytest.param(
        edited(_set(["format"], "sklearn-pickle")), ["not a churnctl state file"], id="format"
    ),
    pytest.param(edited(_delete(["format"])), ["not a churnctl state file"], id="no-format"),
    pytest.param(lambda t: "[1, 2, 3]\n", ["JSON object"], id="array"),
    pytest.param(lambda t: '"churnctl"', ["JSON object"], id="string"),
    pytest.param(lambda t: "", ["not valid JSON"], id="empty-file"),
    pytest.param(
        edited(_set(["stages", 3, "params", "ddof"], 2)),
        ["invalid stage", "ddof must be 0 or 1"],
        id="bad-param",
    ),
    pytest.param(
        edited(_set(["stages", 0, "params", "shell"], "rm")),
        ["invalid stage", "shell"],
        id="unknown-param",
    ),
    pytest.param(
        edited(_set(["stages", 3, "fitted", "std"], [-1.0] * 12)),
        ["invalid stage", "std >= 0"],
        id="negative-std",
    ),
    pytest.param(
        edited(_set(["output", "feature_names", 0], "Geography=Narnia")),
        ["'output' does not match"],
        id="output-mismatch",
    ),
    pytest.param(
        edited(_set(["input_schema", "columns", 0, "vocabulary"], ["France", "Spain"])),
        ["'input_schema' does not match"],
        id="schema-mismatch",
    ),
    pytest.param(
        edited(_set(["provenance", "training_sha256"], "not-hex")),
        ["provenance/training_sha256"],
        id="bad-provenance",
    ),
    pytest.param(
        lambda t: t.replace('"std": [', '"std": [NaN, ', 1),
        [],
        id="nan-in-std",
    ),
    pytest.param(
        edited(lambda d: d["stages"][3]["fitted"].update(mean=[0.0] * 11, std=[1.0] * 11)),
        ["StandardScaler"],
        id="scaler-length-mismatch",
    ),
]


@pytest.mark.parametrize(("tamper", "fragments"), REFUSALS)
def test_load_state_refuses_bad_files(
    tmp_path: Path, state_text: str, tamper: Callable[[str], str], fragments: list[str]
) -> None:
    path = tmp_path / "bad-state.json"
    path.write_text(tamper(state_text), encoding="utf-8")
    with pytest.raises(StateError) as info:
        load_state(path)
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message


def test_load_state_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "state.json"
    with pytest.raises(StateError) as info:
        load_state(path)
    message = str(info.value)
    assert str(path) in message
    assert "not found" in message
    assert "create one (fit_state)" in message


def test_load_state_not_utf8(tmp_path: Path, state_text: str) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b"\xff\xfe" + state_text.encode("utf-16-le"))
    with pytest.raises(StateError) as info:
        load_state(path)
    assert str(path) in str(info.value)
    assert "cannot read state file" in str(info.value)


def test_load_state_directory(tmp_path: Path) -> None:
    with pytest.raises(StateError) as info:
        load_state(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_load_state_deeply_nested_json(tmp_path: Path) -> None:
    path = tmp_path / "nested.json"
    path.write_text("[" * 100_000, encoding="utf-8")
    with pytest.raises(StateError) as info:
        load_state(path)
    assert str(path) in str(info.value)


def test_resealed_unchanged_document_still_loads(state_text: str) -> None:
    """The forging helper itself is faithful: resealing an untouched document changes nothing."""
    document = json.loads(state_text)
    assert json.loads(resealed(document)) == document
    assert state_from_text(resealed(document)).dumps() == state_text


def test_state_error_is_exit_code_2() -> None:
    assert StateError.exit_code == 2


# --------------------------------------------------------------------------- no pickle


def _code_names(path: Path) -> set[str]:
    """Identifiers in a source file, ignoring comments and string literals (docstrings)."""
    with path.open("rb") as handle:
        tokens = tokenize.tokenize(handle.readline)
        return {tok.string for tok in tokens if tok.type == tokenize.NAME}


@pytest.mark.parametrize(
    "module", [churnctl.features.state, churnctl.features.state_format], ids=lambda m: m.__name__
)
def test_state_modules_do_not_import_pickle(module) -> None:
    assert "pickle" not in module.__dict__
    assert "importlib" not in module.__dict__
    assert not any(
        getattr(value, "__name__", "") in {"pickle", "_pickle", "dill", "cloudpickle", "joblib"}
        for value in module.__dict__.values()
    )


SOURCES = sorted(PACKAGE_DIR.rglob("*.py"))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_package_source_has_no_pickle_or_dynamic_import(source: Path) -> None:
    names = _code_names(source)
    forbidden = {
        "pickle",
        "cPickle",
        "_pickle",
        "dill",
        "cloudpickle",
        "joblib",
        "marshal",
        "shelve",
        "import_module",
        "__import__",
        "eval",
        "exec",
    }
    if source.name == "moved.py":  # old module paths: imported by name, from its constant table
        forbidden.discard("import_module")
    assert names.isdisjoint(forbidden), sorted(names & forbidden)
    text = source.read_text(encoding="utf-8")
    for needle in ("import pickle", "pickle.load", "__import__("):
        assert needle not in text


def test_the_only_import_by_name_takes_its_name_from_the_constant_table() -> None:
    """``moved`` imports ``MOVED[spec.name]``: a new path from its own table, never input."""
    tree = ast.parse((PACKAGE_DIR / "moved.py").read_text(encoding="utf-8"))
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and ast.unparse(n.func) == "importlib.import_module"
    ]
    assert [ast.unparse(c.args[0]) for c in calls] == ["MOVED[spec.name]"]
    assert all(value.startswith("churnctl.") for value in moved.MOVED.values())


def test_loading_works_with_pickle_and_import_module_disabled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, state_text: str
) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("loading a state must not unpickle or import dynamically")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(importlib, "import_module", forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    path = tmp_path / "state.json"
    path.write_text(state_text, encoding="utf-8")
    assert load_state(path).dumps() == state_text


# --------------------------------------------------------------------------- atomic save


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_save_writes_atomically_and_leaves_no_temporary_files(
    tmp_path: Path, state_text: str
) -> None:
    state = state_from_text(state_text)
    target = tmp_path / "out" / "state.json"
    state.save(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]
    assert target.read_text(encoding="utf-8") == state_text
    mode = stat.S_IMODE(target.stat().st_mode)
    assert mode == 0o666 & ~_umask()
    assert mode & stat.S_IRUSR
    assert os.access(target, os.R_OK)

    # Overwriting keeps a single file, no leftovers.
    state.save(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]
    assert load_state(target).dumps() == state_text


def test_failed_save_keeps_the_old_file_and_no_temporary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, state_text: str
) -> None:
    target = tmp_path / "state.json"
    target.write_text("previous contents\n", encoding="utf-8")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OutputError, match="disk full"):
        state_from_text(state_text).save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert target.read_text(encoding="utf-8") == "previous contents\n"


def test_dumps_refuses_non_finite_numbers_instead_of_writing_them(state_text: str) -> None:
    state = state_from_text(state_text)
    state.pipeline.stages[-1].std_ = np.full(12, np.inf)
    with pytest.raises(ValueError, match="not JSON compliant"):
        state.dumps()


def test_atomic_publication_fsyncs_the_file_then_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = atomic.os.fsync, atomic.os.replace

    def fsync(fd: int) -> None:
        events.append("fsync " + Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        real_fsync(fd)

    def replace(src: object, dst: object) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    target = tmp_path / "out" / "state.json"
    atomic.atomic_write_text(target, "{}")
    assert target.read_text() == "{}"
    assert len(events) == 3
    assert events[0].startswith("fsync .state.json.") and events[0].endswith(".tmp")
    assert events[1:] == ["replace", "fsync out"]


def test_the_state_schema_is_a_valid_json_schema() -> None:
    """``read_document`` builds its validator once, without checking the schema each time."""
    from churnctl.features.state_format import STATE_SCHEMA, state_validator_class

    state_validator_class().check_schema(STATE_SCHEMA)
