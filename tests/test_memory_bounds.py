"""Memory bounded by a budget, whatever a state or the training data says (issue 17, item 2).

Hostile states (sizes edited, checksums recomputed) and too-wide training data run in a
real subprocess under a 1 GiB address-space limit: each must end with one `Error:` line,
never a MemoryError, a kill by a signal, or a traceback.
"""

from __future__ import annotations

import copy
import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from cli_helpers import cli_env

from churnctl.batch.fit_file import fit_state
from churnctl.defaults import MAX_FEATURES
from churnctl.features.state import content_checksum
from churnctl.samples.generate import generate_table

LIMIT = 1 << 30  # 1 GiB of address space: NumPy, Arrow and ONNX Runtime import within it
Mutation = Callable[[dict], None]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def run_limited(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` under the address-space limit, with this checkout's churnctl."""
    env = cli_env()
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        preexec_fn=_limit_memory,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode > 0, f"killed or succeeded: {result.returncode}: {result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]
    assert "MemoryError" not in result.stderr and "Traceback" not in result.stderr


def resealed(document: dict) -> str:
    """The document as a careful forger writes it: its checksum recomputed."""
    document = copy.deepcopy(document)
    document["checksum"] = "sha256:" + content_checksum(document)
    return json.dumps(document)


@pytest.fixture(scope="module")
def state_document(tmp_path_factory: pytest.TempPathFactory) -> dict:
    train = tmp_path_factory.mktemp("train") / "train.csv"
    pacsv.write_csv(generate_table(60, seed=5), train)
    return fit_state(train).to_dict()


def _stage(document: dict, kind: str) -> dict:
    return next(stage for stage in document["stages"] if stage["type"] == kind)


def _category_size(size: int) -> Mutation:
    def mutate(document: dict) -> None:
        _stage(document, "OneHotEncoder")["fitted"]["category_sizes"] = [size]

    return mutate


def _one_more_category(document: dict) -> None:
    """A category size one past its StringIndexer's labels, everything after it consistent."""
    _stage(document, "OneHotEncoder")["fitted"]["category_sizes"][0] += 1
    _stage(document, "VectorAssembler")["fitted"]["input_sizes"][0] += 1
    scaler = _stage(document, "StandardScaler")["fitted"]
    scaler["mean"].insert(3, 0.0)
    scaler["std"].insert(3, 1.0)
    document["output"]["feature_names"].insert(3, "Geography=3")


def _many_labels(document: dict) -> None:
    """A vocabulary past the width cap, in the stage and in the input schema alike."""
    labels = [f"G{i:05d}" for i in range(MAX_FEATURES + 1)]
    _stage(document, "StringIndexer")["fitted"]["labels"][0] = labels
    document["input_schema"]["columns"][0]["vocabulary"] = labels


def _input_size(size: int) -> Mutation:
    def mutate(document: dict) -> None:
        _stage(document, "VectorAssembler")["fitted"]["input_sizes"][0] = size

    return mutate


def _one_name_less(document: dict) -> None:
    document["output"]["feature_names"].pop()


def _long_scaler(document: dict) -> None:
    scaler = _stage(document, "StandardScaler")["fitted"]
    scaler["mean"] = scaler["mean"] * 1000
    scaler["std"] = scaler["std"] * 1000


HOSTILE_STATES = {
    "category-size-1e12": _category_size(10**12),
    "category-size-1e7": _category_size(10**7),
    "category-size-past-labels": _one_more_category,
    "vocabulary-past-cap": _many_labels,
    "input-size-1e9": _input_size(10**9),
    "widths-not-adding-up": _one_name_less,
    "scaler-wider-than-input": _long_scaler,
}


@pytest.mark.parametrize("mutation", HOSTILE_STATES.values(), ids=HOSTILE_STATES.keys())
def test_a_hostile_state_is_one_error_line_under_1_gib(
    mutation: Mutation, state_document: dict, tmp_path: Path
) -> None:
    document = copy.deepcopy(state_document)
    mutation(document)
    state = tmp_path / "state.json"
    state.write_text(resealed(document), encoding="utf-8")
    data = tmp_path / "in.csv"
    pacsv.write_csv(generate_table(5, seed=1), data)
    result = run_limited(
        [
            "-m",
            "churnctl",
            "score",
            str(data),
            "--state",
            str(state),
            "-o",
            str(tmp_path / "out.csv"),
        ]
    )
    assert_one_error_line(result, str(state))


def _wide_training_file(path: Path, categories: int, rows: int = 12_000) -> Path:
    table = generate_table(rows, seed=2)
    where = table.schema.get_field_index("Geography")
    values = pa.array([f"G{i % categories:05d}" for i in range(rows)])
    pacsv.write_csv(table.set_column(where, "Geography", values), path)
    return path


def test_a_column_past_the_cap_is_refused_as_counted_under_1_gib(tmp_path: Path) -> None:
    train = _wide_training_file(tmp_path / "train.csv", MAX_FEATURES + 1)
    result = run_limited(["-m", "churnctl", "fit", str(train), "-o", str(tmp_path / "s.json")])
    assert_one_error_line(result, "Geography", f"{MAX_FEATURES:,}", "categories")
    assert not (tmp_path / "s.json").exists()


WIDE_SPECS = {
    # ids indexed and one-hot encoded: refused as the categories are counted
    "one-hot-on-ids": (
        [
            {"type": "StringIndexer", "input_cols": ["CustomerId"], "output_cols": ["Id"]},
            {"type": "OneHotEncoder", "input_cols": ["Id"], "output_cols": ["IdVec"]},
            {"type": "VectorAssembler", "input_cols": ["IdVec", "Age"], "output_col": "features"},
        ],
        ["CustomerId", "categories so far", "4,096 features"],
    ),
    # two columns under the cap each, over it together
    "two-wide-columns": (
        [
            {
                "type": "StringIndexer",
                "input_cols": ["Geography", "Surname"],
                "output_cols": ["G", "S"],
            },
            {"type": "OneHotEncoder", "input_cols": ["G", "S"], "output_cols": ["GVec", "SVec"]},
            {"type": "VectorAssembler", "input_cols": ["GVec", "SVec"], "output_col": "features"},
        ],
        ["features", "GVec 2,999", "SVec 2,999"],
    ),
}


@pytest.mark.parametrize(("stages", "words"), WIDE_SPECS.values(), ids=WIDE_SPECS.keys())
def test_a_spec_past_the_cap_is_one_error_line_under_1_gib(
    stages: list[dict], words: list[str], tmp_path: Path
) -> None:
    train = _wide_training_file(tmp_path / "train.csv", 3_000)
    table = pacsv.read_csv(train)
    where = table.schema.get_field_index("Surname")
    surnames = pa.array([f"S{i % 3_000:05d}" for i in range(table.num_rows)])
    pacsv.write_csv(table.set_column(where, "Surname", surnames), train)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"stages": stages}), encoding="utf-8")
    result = run_limited(
        [
            "-m",
            "churnctl",
            "fit",
            str(train),
            "--pipeline",
            str(spec),
            "-o",
            str(tmp_path / "s.json"),
        ]
    )
    assert_one_error_line(result, str(train), f"{MAX_FEATURES:,}", *words)
    assert not (tmp_path / "s.json").exists()


def test_a_wide_column_below_the_cap_fits_and_scores_under_1_gib(tmp_path: Path) -> None:
    """3,000 categories: fitted and scored within the limit (the model: a real ONNX file)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from onnx_factories import logistic_n1

    train = _wide_training_file(tmp_path / "train.csv", 3_000)
    state = tmp_path / "s.json"
    fitted = run_limited(["-m", "churnctl", "fit", str(train), "-o", str(state)])
    assert fitted.returncode == 0, fitted.stderr
    width = len(json.loads(state.read_text())["output"]["feature_names"])
    assert width == 3_000 + 9
    logistic_n1(tmp_path / "m.onnx", width)
    model, out = tmp_path / "m.onnx", tmp_path / "o.csv"
    scored = run_limited(
        [
            "-m",
            "churnctl",
            "score",
            str(train),
            "--state",
            str(state),
            "--model",
            str(model),
            "-o",
            str(out),
        ]
    )
    assert scored.returncode == 0, scored.stderr
    assert len(out.read_text().splitlines()) == 12_000 + 1


FUZZ_SCRIPT = """
import copy, json, sys
from hypothesis import HealthCheck, given, settings, strategies as st
from churnctl.errors import StateError
from churnctl.features.state import content_checksum, state_from_text

document = json.loads(sys.stdin.read())
HUGE = st.sampled_from([10**7, 10**12, 10**99])
SIZES = st.one_of(st.integers(0, 8), st.integers(0, 10**4), HUGE)

def resized(items, size):
    size = min(size, 10**4)
    return (items * (size // max(len(items), 1) + 1))[:size] if items else [0.0] * size

def size_paths(doc):
    # (kind, stage, key, how many items): each list of sizes the state holds, equally likely
    paths = [("names", None, None, 1)]
    for i, stage in enumerate(doc["stages"]):
        for key, value in stage["fitted"].items():
            kind = "int" if key in ("category_sizes", "input_sizes") else "len"
            paths.append((kind, i, key, len(value)))
    return paths

@settings(max_examples=int(sys.argv[1]), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def check(data):
    doc = copy.deepcopy(document)
    for _ in range(data.draw(st.integers(1, 3))):
        kind, i, key, count = data.draw(st.sampled_from(size_paths(doc)))
        j = data.draw(st.integers(0, max(count - 1, 0)))
        size = data.draw(SIZES)
        if kind == "int":
            if count:
                doc["stages"][i]["fitted"][key][j] = size
        elif kind == "len":  # a list's length: at most 10**4, a long list is a large file
            item = doc["stages"][i]["fitted"][key]
            if item and isinstance(item[j], list):
                item[j] = resized(item[j], size)
            else:
                doc["stages"][i]["fitted"][key] = resized(item, size)
        else:
            doc["output"]["feature_names"] = resized(doc["output"]["feature_names"], size)
    doc["checksum"] = "sha256:" + content_checksum(doc)
    try:
        state_from_text(json.dumps(doc))
    except StateError as exc:
        assert "\\n" not in str(exc) and len(str(exc)) < 2000, str(exc)

check()
print("checked")
"""


def test_mutated_sizes_load_or_are_one_line_under_1_gib(state_document: dict) -> None:
    """Hypothesis edits sizes (list lengths, category and input sizes), checksums recomputed."""
    result = subprocess.run(
        [sys.executable, "-c", FUZZ_SCRIPT, "150"],
        input=json.dumps(state_document),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_memory,
        env=cli_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "checked"


def test_slices_of_rows_give_the_same_state_features_and_rejections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fit and a scoring in slices of 7 rows equal the unsliced ones (rejections included)."""
    import numpy as np

    import churnctl.features.pipeline
    from churnctl.features.extraction import extract_features

    table = generate_table(300, seed=9)
    train = tmp_path / "train.csv"
    pacsv.write_csv(table, train)
    geography = table.column("Geography").to_pylist()
    geography[5::11] = ["Atlantis"] * len(geography[5::11])  # unseen: rejected when scored
    hostile = table.set_column(
        table.schema.get_field_index("Geography"), "Geography", pa.array(geography)
    )
    whole = fit_state(train)
    monkeypatch.setattr(churnctl.features.pipeline, "SLICE_BYTES", 8 * 12 * 7)
    sliced = fit_state(train)
    assert sliced.pipeline.slice_rows() == 7
    np.testing.assert_allclose(
        sliced.pipeline.stages[-1].mean_, whole.pipeline.stages[-1].mean_, rtol=1e-12
    )
    np.testing.assert_allclose(
        sliced.pipeline.stages[-1].std_, whole.pipeline.stages[-1].std_, rtol=1e-12
    )
    in_slices = extract_features(whole, hostile)
    monkeypatch.setattr(churnctl.features.pipeline, "SLICE_BYTES", 8 << 20)
    at_once = extract_features(whole, hostile)
    assert (~at_once.valid).sum() == len(geography[5::11])
    np.testing.assert_array_equal(in_slices.valid, at_once.valid)
    np.testing.assert_array_equal(in_slices.matrix[at_once.valid], at_once.matrix[at_once.valid])
    assert in_slices.reject_reason.equals(at_once.reject_reason)
    assert in_slices.reject_column.equals(at_once.reject_column)
