"""The bundled demo pair is never silent, and every summary names what it scored with.

Each command that falls back to the bundled model or state says so on stderr; none
says it when the user's own pair is given. Each summary line names the model and the
state's short fingerprint.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from cli_helpers import run

from churnctl.features.state import load_state
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.scoring.binding import short

NOTE = "Note: used the bundled demo"
SHORT = short(load_state(bundled(STATE)).fingerprint)
PAIR = f"model churn_mlp.onnx, state {SHORT}"


@pytest.fixture
def own_pair(tmp_path: Path) -> list[str]:
    """The bundled pair copied under the user's own names: no longer the bundled files."""
    model, state = tmp_path / "own" / "churn_mlp.onnx", tmp_path / "own" / "state.json"
    model.parent.mkdir()
    shutil.copy(bundled(MODEL), model)
    shutil.copy(bundled(STATE), state)
    return ["--model", str(model), "--state", str(state)]


def invoke(args: list[str]) -> tuple[int, list[str]]:
    result = run(args)
    return result.exit_code, [" ".join(line.split()) for line in result.stderr.splitlines()]


def commands(tmp_path: Path) -> dict[str, list[str]]:
    landing = tmp_path / "landing"
    landing.mkdir(exist_ok=True)
    shutil.copy(bundled(SAMPLE), landing / "part.csv")
    return {
        "score": ["score", str(bundled(SAMPLE)), "-o", str(tmp_path / "a.csv")],
        "watch": ["watch", str(landing), "--out", str(tmp_path / "w"), "--once", "--settle", "0"],
        "inspect": ["inspect"],
        "flink-submit": [
            "flink-submit",
            str(bundled(SAMPLE)),
            "--out",
            str(tmp_path / "f"),
            "--emit",
            str(tmp_path / "job.py"),
        ],
    }


@pytest.mark.parametrize("name", ["score", "watch", "inspect", "flink-submit"])
def test_a_command_on_the_bundled_pair_says_so(name: str, tmp_path: Path) -> None:
    code, lines = invoke(commands(tmp_path)[name])
    assert code == 0, lines
    notes = [line for line in lines if line.startswith(NOTE)]
    assert len(notes) == 1, lines
    assert "model and state (trained on synthetic data" in notes[0]


@pytest.mark.parametrize("name", ["score", "watch", "inspect", "flink-submit"])
def test_a_command_on_the_users_own_pair_is_quiet_about_it(
    name: str, tmp_path: Path, own_pair: list[str]
) -> None:
    code, lines = invoke(commands(tmp_path)[name] + own_pair)
    assert code == 0, lines
    assert not [line for line in lines if line.startswith(NOTE)], lines


def test_only_the_bundled_half_of_a_pair_is_named(tmp_path: Path, own_pair: list[str]) -> None:
    code, lines = invoke(commands(tmp_path)["score"] + own_pair[2:])  # --state only
    assert code == 0, lines
    assert any(line.startswith(f"{NOTE} model (") for line in lines), lines


@pytest.mark.parametrize(
    "args",
    [
        ["score", str(bundled(SAMPLE)), "-o", "{tmp}/one.csv"],
        ["score", str(bundled(SAMPLE)), str(bundled(SAMPLE).parent / "*.csv"), "-o", "{tmp}/m.csv"],
        ["watch", "{tmp}/landing", "--out", "{tmp}/w", "--once", "--settle", "0"],
    ],
    ids=["score", "score many", "watch"],
)
def test_every_summary_line_names_the_model_and_the_state(args: list[str], tmp_path: Path) -> None:
    commands(tmp_path)  # the landing folder
    code, lines = invoke([a.replace("{tmp}", str(tmp_path)) for a in args])
    assert code == 0, lines
    summary = lines[-1]
    assert re.search(r"\d rows\b|rows read", summary), summary
    assert summary.endswith(PAIR), summary


def test_fit_names_the_state_it_fitted(tmp_path: Path) -> None:
    code, lines = invoke(["fit", str(bundled(SAMPLE)), "-o", str(tmp_path / "s.json")])
    assert code == 0, lines
    fitted = short(load_state(tmp_path / "s.json").fingerprint)
    assert f"(state {fitted})" in lines[-1], lines
