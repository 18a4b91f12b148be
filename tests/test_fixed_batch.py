"""Issue 19, 2b: a model exported with a fixed batch size ([1, k], [7, k]) scores every row,
fed in chunks of its size, with one note that names the cost and the remedy."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
from cli_helpers import cli_env
from onnx_factories import OnnxFixture, logistic_n1, sklearn_zipmap

from churnctl.errors import FixedBatchWarning
from churnctl.features.state import load_state
from churnctl.samples.bundled import SAMPLE, STATE, bundled
from churnctl.scoring.model import ChurnModel
from churnctl.scoring.scorer import Scorer

K = 12
ATOL = 1e-6
SIZES = (1, 7)
Factory = Callable[..., OnnxFixture]
FACTORIES: dict[str, Factory] = {"logistic_n1": logistic_n1, "sklearn_zipmap": sklearn_zipmap}


def _x(n: int) -> np.ndarray:
    return np.random.default_rng(n).normal(scale=1.5, size=(n, K)).astype(np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int | None], Path]:
    """Each factory's model with a dynamic batch axis (None) and with each fixed size."""
    folder = tmp_path_factory.mktemp("fixed")
    built = {}
    for name, factory in FACTORIES.items():
        for size in (None, *SIZES):
            kwargs = {} if size is None else {"batch": size}
            built[name, size] = factory(folder / f"{name}-{size}.onnx", K, **kwargs).path
    return built


def _quiet(path: Path) -> ChurnModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FixedBatchWarning)
        return ChurnModel(path)


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("rows", [0, 1, 6, 7, 8, 15, 50])
def test_a_fixed_size_model_equals_its_dynamic_twin(
    models: dict[tuple[str, int | None], Path], name: str, size: int, rows: int
) -> None:
    dynamic, fixed = ChurnModel(models[name, None]), _quiet(models[name, size])
    assert (dynamic.fixed_batch, fixed.fixed_batch) == (None, size)
    calls: list[int] = []
    real_run = fixed._session.run

    def counting(names: list[str], feed: dict[str, np.ndarray], *args: object) -> object:
        calls.append(len(next(iter(feed.values()))))
        return real_run(names, feed, *args)

    fixed._session.run = counting  # type: ignore[method-assign]
    x = _x(rows)
    got = fixed.predict_proba(x)
    assert got.shape == (rows,)
    # equal up to float32 rounding: ONNX Runtime's kernels sum in another order per batch size
    np.testing.assert_allclose(got, dynamic.predict_proba(x), rtol=0, atol=ATOL)
    assert calls == [size] * -(-rows // size)  # whole chunks, the last one padded


@pytest.mark.parametrize("size", SIZES)
def test_the_note_is_given_once_and_names_the_cost_and_the_remedy(
    models: dict[tuple[str, int | None], Path], size: int
) -> None:
    with pytest.warns(FixedBatchWarning) as caught:
        model = ChurnModel(models["logistic_n1", size])
    assert len(caught) == 1
    note = str(caught[0].message)
    assert note == model.fixed_batch_note
    assert f"fixed batch size of {size}" in note and "slower" in note
    assert "dynamic batch axis" in note and "dynamic_axes" in note
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ChurnModel(models["logistic_n1", None]).fixed_batch_note is None


def test_a_scorer_scores_every_row_and_its_copies_stay_quiet(
    models: dict[tuple[str, int | None], Path],
) -> None:
    state = load_state(bundled(STATE))
    table = pacsv.read_csv(bundled(SAMPLE)).slice(0, 500)
    with pytest.warns(FixedBatchWarning):
        fixed = Scorer(state, models["logistic_n1", 7])
    dynamic = Scorer(state, models["logistic_n1", None])
    expected = dynamic.score_aligned(table)
    copy = pickle.loads(pickle.dumps(fixed))  # a pool worker's or a Flink task's scorer
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # noted once, where the scorer was built
        copied = copy.score_aligned(table)
    for got in (fixed.score_aligned(table), copied):
        assert got.num_rows == expected.num_rows == 500
        assert got.column("CustomerId").equals(expected.column("CustomerId"))
        raw, want = (t.column("raw").to_numpy() for t in (got, expected))
        np.testing.assert_allclose(raw, want, rtol=0, atol=ATOL)


@pytest.mark.parametrize("how", ["score", "score --workers 2", "watch --once"])
def test_the_cli_prints_the_note_once(
    models: dict[tuple[str, int | None], Path], tmp_path: Path, how: str
) -> None:
    landing, out = tmp_path / "in", tmp_path / "out"
    landing.mkdir()
    two = [landing / "a.csv", landing / "b.csv"]
    for path in two:
        path.write_bytes(bundled(SAMPLE).read_bytes())
    command, *flags = how.split()
    args = [*two, "-o", out / "scored.csv"] if command == "score" else [landing, "--out", out]
    pair = ["--state", bundled(STATE), "--model", models["logistic_n1", 7]]
    done = subprocess.run(
        [str(a) for a in (sys.executable, "-m", "churnctl", command, *args, *pair, *flags)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("fixed batch size of 7") == 1, done.stderr
    assert "FixedBatchWarning" not in done.stderr and "warnings.warn" not in done.stderr
    written = [p for p in out.rglob("*.csv") if "rejects" not in p.name]
    assert written and all(p.read_text().count("\n") > 1 for p in written)
