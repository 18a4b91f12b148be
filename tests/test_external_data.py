"""A model saved with external data loads wherever the command runs (issue 15, item 15).

``onnx.save_model(..., save_as_external_data=True)`` writes ``model.onnx`` and
``model.onnx.data``. ONNX Runtime, given the model's bytes, looked for the data file in
the working folder. churnctl now reads it from the model's own folder and keeps the
model's bytes self-contained: every runtime below runs from another working folder,
and a pickled Scorer or a bound model no longer needs the data file at all.
"""

from __future__ import annotations

import csv
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pyarrow.csv as pacsv
import pytest
from cli_helpers import assert_clean_error, run
from onnx_factories import OnnxFixture, logistic_n1

from churnctl import ChurnModel, Scorer
from churnctl.batch import pool
from churnctl.errors import ModelError
from churnctl.features.validated_states import CACHE_ENV
from churnctl.samples.bundled import SAMPLE, STATE, bundled
from churnctl.scoring.model import read_model_file

ROOT = Path(__file__).resolve().parents[1]
K = 12  # the bundled state's feature count
LOCATION = "model.onnx.data"


def save_external(model: onnx.ModelProto, path: Path, location: str = LOCATION) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=location,
        size_threshold=0,
    )
    return path


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, OnnxFixture]:
    """``dir/model.onnx`` + ``dir/model.onnx.data``, and the working folder elsewhere (``run/``)."""
    plain = logistic_n1(tmp_path / "plain.onnx", K)
    model = save_external(onnx.load_model(str(plain.path)), tmp_path / "dir" / "model.onnx")
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.onnx", LOCATION]
    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path / "run")
    return Path("..") / "dir" / "model.onnx", plain


def features(n: int = 7) -> np.ndarray:
    return np.random.default_rng(3).normal(size=(n, K)).astype(np.float32)


def test_the_model_loads_from_another_folder(layout: tuple[Path, OnnxFixture]) -> None:
    model, plain = layout
    loaded = ChurnModel(model)
    np.testing.assert_allclose(
        loaded.predict_proba(features()), plain.predict(features()), rtol=1e-5
    )
    inline = onnx.load_model_from_string(loaded.data)  # self-contained: no external reference
    assert all(not t.external_data for t in inline.graph.initializer)


def test_a_model_without_external_data_keeps_its_bytes() -> None:
    assert (
        read_model_file(ROOT / "models" / "churn_mlp.onnx")
        == (ROOT / "models" / "churn_mlp.onnx").read_bytes()
    )


def test_a_pickled_scorer_needs_no_model_file(layout: tuple[Path, OnnxFixture]) -> None:
    model, _ = layout
    batch = pacsv.read_csv(bundled(SAMPLE)).slice(0, 50)
    scorer = Scorer(bundled(STATE), model, threads=1)
    expected = scorer.score(batch)
    shipped = pickle.dumps(scorer)
    shutil.rmtree(model.parent)
    copy = pickle.loads(shipped)
    assert copy.score(batch).scored.equals(expected.scored)


def test_score_bind_and_workers_from_another_folder(
    layout: tuple[Path, OnnxFixture], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """score, score --workers 2 and bind, each given the model by a path from another folder."""
    model, _ = layout
    monkeypatch.setattr(pool, "MAIN_SCORES", False)  # the pool worker scores
    parts = [tmp_path / "a.csv", tmp_path / "b.csv"]
    table = pacsv.read_csv(bundled(SAMPLE)).slice(0, 200)
    for i, part in enumerate(parts):
        pacsv.write_csv(table.slice(100 * i, 100), part)
    one = run(["score", parts[0], "--model", model, "-o", "one.csv"])
    assert one.exit_code == 0, one.output
    both = run(["score", *parts, "--model", model, "-o", "both.csv", "--workers", "2"])
    assert both.exit_code == 0, both.output
    bound = run(["bind", "--model", model, "--state", bundled(STATE), "-o", "bound.onnx"])
    assert bound.exit_code == 0, bound.output
    shutil.rmtree(model.parent)  # the bound model is self-contained
    again = run(["score", parts[0], "--model", "bound.onnx", "-o", "again.csv"])
    assert again.exit_code == 0, again.output
    assert sorted(os.listdir()) == sorted(
        [
            "one.csv",
            "one.rejects.csv",
            "both.csv",
            "both.rejects.csv",
            "bound.onnx",
            "again.csv",
            "again.rejects.csv",
            *(f"{name}.csv.lineage.json" for name in ("one", "both", "again")),
        ]
    )
    rows = [read_rows(Path(name)) for name in ("one.csv", "again.csv", "both.csv")]
    assert rows[0] == rows[1] and rows[2][: len(rows[0])] == rows[0] and len(rows[2]) == 201


def read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_watch_once_from_another_folder(layout: tuple[Path, OnnxFixture], tmp_path: Path) -> None:
    """A real `watch --once` process whose working folder is not the model's."""
    model, _ = layout
    landing, out = tmp_path / "in", tmp_path / "out"
    landing.mkdir()
    shutil.copy(bundled(SAMPLE), landing / "sample.csv")
    command = [
        sys.executable,
        "-c",
        "from churnctl.cli import run; run()",
        "watch",
        landing,
        "--out",
        out,
        "--once",
        "--settle",
        "0",
        "--model",
        model,
    ]
    env = {
        "PYTHONPATH": str(ROOT),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        CACHE_ENV: os.environ[CACHE_ENV],
    }
    done = subprocess.run(
        command, env=env, cwd=Path.cwd(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    [output] = out.glob("sample.*.scored.csv")
    assert sum(1 for _ in output.open()) == 10_001


def escaping(location: str, tmp_path: Path) -> Path:
    """A model in tmp/esc/ whose data file is named by ``location`` (outside its folder)."""
    plain = onnx.load_model(str(logistic_n1(tmp_path / "plain.onnx", K).path))
    inside = save_external(plain, tmp_path / "esc" / "model.onnx")
    proto = onnx.load_model(str(inside), load_external_data=False)
    shutil.move(inside.with_name(LOCATION), tmp_path / "outside.data")
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save_model(proto, str(inside))
    return inside


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("../outside.data", "points outside the directory"),
        ("ABSOLUTE", "should be a relative path"),
        ("link.data", "symbolic link"),
        ("missing.data", "not regular file"),
    ],
)
def test_external_data_outside_the_models_folder_is_refused(
    tmp_path: Path, location: str, why: str
) -> None:
    if location == "ABSOLUTE":
        location = str(tmp_path / "outside.data")
    model = escaping(location, tmp_path)
    if location == "link.data":
        (model.parent / "link.data").symlink_to(tmp_path / "outside.data")
    with pytest.raises(ModelError) as info:
        ChurnModel(model)
    message = str(info.value)
    assert message.startswith(f"{model}: cannot read its external data: ") and why in message
    assert "keep each data file in the model's folder" in message and "\n" not in message
    result = run(["score", bundled(SAMPLE), "--model", model, "-o", tmp_path / "o.csv"])
    assert_clean_error(result, 2, "cannot read its external data")


def test_a_model_too_large_to_hold_inline_is_refused(
    layout: tuple[Path, OnnxFixture], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Protobuf holds at most 2 GiB; the limit is lowered here not to write 2 GiB."""
    monkeypatch.setattr("churnctl.scoring.model.MAX_INLINE_BYTES", 100)
    with pytest.raises(ModelError, match=r"over the 2 GiB that one ONNX model can hold inline"):
        ChurnModel(layout[0])


def test_model_bytes_that_refer_to_external_data_say_to_load_the_file(
    layout: tuple[Path, OnnxFixture],
) -> None:
    with pytest.raises(ModelError, match="load the model from its file"):
        ChurnModel(layout[0].read_bytes())
