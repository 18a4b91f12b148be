"""Drift against the training distribution (issue 20, item 2): the profile a fit records,
its format and refusals, the comparison, the ``drift`` command and ``score``/``watch``'s
warning. Data: the bundled sample (the bundled state's training file), shifted or resampled."""

from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
from cli_helpers import assert_clean_error, plain, run
from hypothesis import given, settings
from hypothesis import strategies as st

import churnctl.features.profile as profile_module
from churnctl.batch.drift_file import drift_file
from churnctl.batch.fit_file import fit_state
from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.cli.drift import COLUMN_KEYS, DRIFT_KEYS
from churnctl.defaults import MIN_DRIFT_ROWS
from churnctl.errors import NoProfileError, StateError
from churnctl.features.drift import MAJOR, STABLE, TOO_FEW_ROWS, psi, verdict
from churnctl.features.profile import CategoryProfile, NumberProfile, Profile
from churnctl.features.state import load_state, state_from_text
from churnctl.features.state_format import content_checksum
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.scoring.binding import PairStatus, check_pair
from churnctl.scoring.model import ChurnModel
from churnctl.scoring.scorer import Scorer

# The bundled state's fingerprint since before the profile: a bound model stays bound.
BUNDLED_FINGERPRINT = "sha256:81c65273694842686fd50f2dcde0440ba6441045e5405ce57183c6a1a47a6659"


@pytest.fixture(scope="module")
def training() -> pa.Table:
    return pacsv.read_csv(bundled(SAMPLE))


@pytest.fixture(scope="module")
def state():
    return load_state(bundled(STATE))


def write(table: pa.Table, path: Path) -> Path:
    pacsv.write_csv(table, path)
    return path


def replaced(table: pa.Table, name: str, values: pa.Array | np.ndarray) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values))


def more_germany(table: pa.Table, seed: int = 1) -> pa.Table:
    """Germany's share doubled by relabelling other rows: no other column changes."""
    labels = table.column("Geography").to_numpy(zero_copy_only=False).copy()
    others = np.flatnonzero(labels != "Germany")
    chosen = np.random.default_rng(seed).choice(others, (labels == "Germany").sum(), replace=False)
    labels[chosen] = "Germany"
    return replaced(table, "Geography", labels)


def unseen_labels(table: pa.Table, share: float = 0.1) -> pa.Table:
    labels = table.column("Geography").to_numpy(zero_copy_only=False).copy()
    labels[: int(len(labels) * share)] = "Atlantis"
    return replaced(table, "Geography", labels)


SHIFTS = {
    "age+10": (lambda t: replaced(t, "Age", pc.add(t.column("Age"), 10)), {"Age"}),
    "germany-doubled": (more_germany, {"Geography"}),
    "age+10-and-germany-doubled": (
        lambda t: more_germany(replaced(t, "Age", pc.add(t.column("Age"), 10))),
        {"Age", "Geography"},
    ),
    "balance-x2": (
        lambda t: replaced(t, "Balance", pc.multiply(t.column("Balance"), 2)),
        {"Balance"},
    ),
    "unseen-geography-10%": (unseen_labels, {"Geography"}),
}


@pytest.mark.parametrize("shift", sorted(SHIFTS))
def test_a_shift_is_flagged_on_exactly_the_columns_it_moves(
    shift: str, training: pa.Table, state, tmp_path: Path
) -> None:
    change, moved = SHIFTS[shift]
    report = drift_file(write(change(training), tmp_path / "new.csv"), state).report
    assert {column.column for column in report.drifting} == moved
    for column in report.columns:
        assert (column.verdict == STABLE) is (column.column not in moved), column
    if shift.startswith("age") or shift.startswith("balance"):
        assert all(c.verdict == MAJOR for c in report.columns if c.column in moved)
    if shift == "unseen-geography-10%":
        (geography,) = [c for c in report.columns if c.column == "Geography"]
        assert geography.unseen_share == pytest.approx(0.1)
    if shift == "age+10":
        (age,) = [c for c in report.columns if c.column == "Age"]
        assert age.mean_shift == pytest.approx(10 / state.profile.columns["Age"].std)


def test_a_small_file_is_not_judged(training: pa.Table, state, tmp_path: Path) -> None:
    """PSI's noise on a few rows is about (bins - 1) / rows: no warning below 1,000 rows."""
    small = more_germany(training).slice(0, MIN_DRIFT_ROWS - 1)
    report = drift_file(write(small, tmp_path / "small.csv"), state).report
    assert report.worst == TOO_FEW_ROWS and report.drifting == ()
    assert max(column.psi for column in report.columns) >= 0.1  # the numbers are still given
    enough = drift_file(
        write(more_germany(training).slice(0, MIN_DRIFT_ROWS), tmp_path / "n.csv"), state
    )
    assert [c.column for c in enough.report.drifting] == ["Geography"]


@pytest.mark.parametrize("seed", [3, 4])
def test_a_resample_of_the_training_data_is_stable_on_every_column(
    seed: int, training: pa.Table, state, tmp_path: Path
) -> None:
    rows = np.random.default_rng(seed).integers(0, training.num_rows, training.num_rows)
    report = drift_file(write(training.take(rows), tmp_path / "resample.csv"), state).report
    assert report.rows == training.num_rows
    assert [c.verdict for c in report.columns] == [STABLE] * len(
        state.pipeline.input_schema.columns
    )
    assert report.drifting == ()


def test_the_training_data_itself_has_no_drift(training: pa.Table, state) -> None:
    report = drift_file(bundled(SAMPLE), state).report
    assert max(column.psi for column in report.columns) < 1e-9
    assert all(abs(c.mean_shift) < 1e-9 for c in report.columns if c.kind == "number")


@pytest.mark.parametrize(
    ("score", "expected"), [(0.0, STABLE), (0.0999, STABLE), (0.1, "moderate"), (0.25, MAJOR)]
)
def test_the_verdict_thresholds(score: float, expected: str) -> None:
    assert verdict(score) == expected


def test_psi_floors_empty_bins() -> None:
    assert psi(np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.5, 0.0])) == 0.0
    assert np.isfinite(psi(np.array([1.0, 0.0]), np.array([0.0, 1.0])))


# ----------------------------------------------------------------------------- the profile


def test_the_fit_records_a_profile_of_every_raw_column(training: pa.Table, state) -> None:
    profile = state.profile
    assert list(profile.columns) == list(state.pipeline.input_schema.columns)
    assert profile.rows == training.num_rows and profile.reject_rate == 0.0
    age = profile.columns["Age"]
    assert isinstance(age, NumberProfile) and len(age.edges) == 9
    ages = training.column("Age").to_numpy()
    assert age.mean == pytest.approx(ages.mean()) and age.std == pytest.approx(ages.std())
    assert sum(age.shares) == pytest.approx(1.0)
    geography = profile.columns["Geography"]
    assert isinstance(geography, CategoryProfile) and geography.unseen_share == 0.0
    germany = np.mean(training.column("Geography").to_numpy(zero_copy_only=False) == "Germany")
    assert geography.shares[geography.labels.index("Germany")] == pytest.approx(germany)


def test_the_profile_is_deterministic_and_bounded(
    training: pa.Table, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same input, same profile, whatever the batches; the sample never holds more rows."""
    monkeypatch.setattr(profile_module, "SAMPLE_ROWS", 1_000)
    from_file = fit_state(write(training, tmp_path / "train.csv")).profile
    from_table = fit_state(training).profile  # other batches: the same sample
    assert from_file is not None and from_table is not None
    for name, column in from_file.columns.items():
        other = from_table.columns[name]
        if isinstance(column, NumberProfile):
            assert (column.edges, column.shares) == (other.edges, other.shares)
            assert sum(column.shares) == pytest.approx(1.0)
            assert column.shares[0] * 1_000 == round(column.shares[0] * 1_000)  # of 1,000 rows
        else:
            assert column == other


def test_a_fit_with_rejected_rows_records_its_reject_rate(training: pa.Table) -> None:
    ages = training.column("Age").to_pylist()
    bad = replaced(
        training.cast(pa.schema([(n, pa.string()) for n in training.column_names])),
        "Age",
        ["x" if i < 100 else str(v) for i, v in enumerate(ages)],
    )
    profile = fit_state(bad).profile
    assert profile.reject_rate == pytest.approx(0.01)
    assert profile.columns["Age"].null_share == pytest.approx(0.01)


def v1_text() -> str:
    """The bundled state as a churnctl before the profile wrote it (format version 1)."""
    document = json.loads(bundled(STATE).read_text(encoding="utf-8"))
    document.pop("profile")
    document["format_version"] = 1
    document["checksum"] = "sha256:" + content_checksum(document)
    return json.dumps(document, indent=2)


def test_fingerprints_do_not_change_with_the_profile_or_the_version(state) -> None:
    old = state_from_text(v1_text())
    assert old.profile is None
    assert state.fingerprint == old.fingerprint == BUNDLED_FINGERPRINT
    model = ChurnModel(bundled(MODEL))
    assert check_pair(model, state).status is check_pair(model, old).status is PairStatus.BOUND


def test_a_v1_state_loads_and_drift_cannot_judge(tmp_path: Path) -> None:
    path = tmp_path / "v1.json"
    path.write_text(v1_text(), encoding="utf-8")
    with pytest.raises(NoProfileError, match="cannot judge drift"):
        drift_file(bundled(SAMPLE), load_state(path))
    result = run(["drift", bundled(SAMPLE), "--state", path])
    assert_clean_error(result, 2, "cannot judge drift", "refit it to record one with `churnctl fit")
    summary = score_file(
        ScoreRequest(str(bundled(SAMPLE)), str(tmp_path / "o.csv"), Scorer(path, bundled(MODEL)))
    )
    assert summary.drift is None  # nothing to compare with: no warning either


PROFILES = st.lists(
    st.tuples(
        st.lists(st.floats(-1e6, 1e6), max_size=12, unique=True).map(sorted),
        st.floats(0, 1e6),
        st.floats(0, 1),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=40, deadline=None)
@given(PROFILES)
def test_a_profile_round_trips_through_its_json(columns: list) -> None:
    parsed = {}
    for index, (edges, std, null) in enumerate(columns):
        shares = np.full(len(edges) + 1, 1 / (len(edges) + 1))
        parsed[f"c{index}"] = NumberProfile(tuple(edges), tuple(shares), -std, std, null)
    profile = Profile(123, 0.5, parsed)
    document = json.loads(json.dumps(profile.to_dict(), allow_nan=False))
    assert Profile.from_dict(document, "x") == profile


def the_profile(document: dict) -> dict:
    return document["profile"]


def _column(document: dict, name: str) -> dict:
    return next(c for c in the_profile(document)["columns"] if c["name"] == name)


def set_in(name: str, key: str, value):
    def change(document: dict) -> None:
        _column(document, name)[key] = value

    return change


HOSTILE = {
    "shares-not-adding-up": (set_in("Age", "shares", [0.5] * 10), "add up to 5"),
    "edges-descending": (set_in("Age", "edges", list(range(9, 0, -1))), "not strictly ascending"),
    "edges-without-shares": (set_in("Age", "edges", list(range(20))), "20 edges need 21 shares"),
    "too-many-edges": (
        set_in("Age", "edges", list(range(5_000))),
        "profile/columns/5/edges: 5,000 items, more than the 1,000 allowed",
    ),
    "negative-share": (set_in("Gender", "null_share", -0.5), "profile/columns/1/null_share"),
    "share-above-one": (set_in("Gender", "unseen_share", 7), "profile/columns/1/unseen_share"),
    "labels-not-the-vocabulary": (
        set_in("Geography", "labels", ["France", "Germany", "Atlantis"]),
        "not its vocabulary",
    ),
    "labels-without-shares": (set_in("Geography", "shares", [1.0]), "do not pair"),
    "too-many-labels": (
        set_in("Geography", "labels", ["x"] * 5_000),
        "profile/columns/0/labels: 5,000 items, more than the 4,096 allowed",
    ),
    "unknown-key": (set_in("Age", "median", 3), "profile/columns/5"),
    "a-long-string-where-a-number-goes": (
        set_in("Age", "mean", "9" * 10_000),
        "profile/columns/5/mean",
    ),
    "a-column-twice": (
        lambda d: the_profile(d)["columns"].append(copy.deepcopy(_column(d, "Age"))),
        "Age appears twice",
    ),
    "a-column-missing": (
        lambda d: the_profile(d)["columns"].pop(),
        "not the state's input columns",
    ),
    "a-number-as-category": (
        set_in("Age", "type", "category"),
        "profile/columns/5",
    ),
    "negative-rows": (lambda d: the_profile(d).update(rows=-1), "profile/rows"),
    "negative-std": (set_in("Age", "std", -1.0), "profile/columns/5/std"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_profile_is_refused_in_one_line(case: str, tmp_path: Path) -> None:
    change, fragment = HOSTILE[case]
    document = json.loads(bundled(STATE).read_text(encoding="utf-8"))
    change(document)
    document["checksum"] = "sha256:" + content_checksum(document)
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(StateError) as info:
        load_state(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message and len(message) < 400
    assert fragment in message, message


# ----------------------------------------------------------------------------- the commands


def test_drift_json_keys_are_stable(training: pa.Table, tmp_path: Path) -> None:
    shifted = write(more_germany(training), tmp_path / "new.csv")
    result = run(["drift", shifted, "--state", bundled(STATE), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (
        tuple(document)
        == DRIFT_KEYS
        == (
            "input",
            "state",
            "rows",
            "malformed_lines",
            "training_rows",
            "verdict",
            "drifting",
            "columns",
        )
    )
    assert (
        tuple(document["columns"][0])
        == COLUMN_KEYS
        == ("column", "kind", "psi", "verdict", "null_share", "unseen_share", "mean_shift")
    )
    assert document["drifting"] == ["Geography"] and document["verdict"] == MAJOR
    assert [c["column"] for c in document["columns"]] == list(
        load_state(bundled(STATE)).pipeline.input_schema.columns
    )


def test_drift_prints_a_table_and_reads_with_score_s_options(
    training: pa.Table, tmp_path: Path
) -> None:
    shifted = replaced(training, "Age", pc.add(training.column("Age"), 10))
    path = tmp_path / "new.csv"
    pacsv.write_csv(shifted, path, pacsv.WriteOptions(delimiter=";"))
    result = run(["drift", path, "--state", bundled(STATE), "--delimiter", ";"])
    assert result.exit_code == 0, result.output
    text = plain(result.stdout)
    assert "Age number" in text and "major" in text and "drifting: Age" in text


def test_score_warns_once_per_file_and_no_drift_silences_it(
    training: pa.Table, tmp_path: Path
) -> None:
    drifting = write(more_germany(training), tmp_path / "drifting.csv")
    steady = write(training, tmp_path / "steady.csv")
    args = [
        "score",
        drifting,
        steady,
        "--out-dir",
        tmp_path / "out",
        "--state",
        bundled(STATE),
        "--workers",
        "1",
    ]
    warned = run(args)
    assert warned.exit_code == 0, warned.output
    lines = [line for line in warned.stderr.splitlines() if line.startswith("Warning:")]
    assert len(lines) == 1 and "drifting.csv" in lines[0] and "Geography (PSI 0." in lines[0]
    assert "Age" not in lines[0] and "steady.csv" not in lines[0]
    one = run(["score", drifting, "-o", tmp_path / "one.csv", "--state", bundled(STATE)])
    assert [line for line in one.stderr.splitlines() if "drift" in line] == [lines[0]]
    quiet = run([*args, "--no-drift"])
    assert quiet.exit_code == 0 and "drift" not in quiet.stderr


def test_score_json_gives_each_file_s_drift(training: pa.Table, tmp_path: Path) -> None:
    drifting = write(more_germany(training), tmp_path / "drifting.csv")
    steady = write(training, tmp_path / "steady.csv")
    args = ["score", drifting, steady, "--out-dir", tmp_path / "out", "--state", bundled(STATE)]
    result = run([*args, "--workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    files = {Path(f["input"]).name: f["drift"] for f in json.loads(result.stdout)["files"]}
    assert files["drifting.csv"]["verdict"] == MAJOR
    assert list(files["drifting.csv"]["drifting"]) == ["Geography"]
    assert files["steady.csv"] == {"verdict": STABLE, "drifting": {}}
    quiet = run([*args, "--workers", "1", "--json", "--no-drift"])
    assert [f["drift"] for f in json.loads(quiet.stdout)["files"]] == [None, None]


def test_the_warning_names_the_command_to_run_and_it_runs(
    training: pa.Table, tmp_path: Path
) -> None:
    """The warning's ``churnctl drift`` command names a state of the user's own (quoted as a
    shell takes it) and, run as printed, shows the drifting column."""
    state = tmp_path / "my state.json"
    state.write_bytes(bundled(STATE).read_bytes())
    drifting = write(more_germany(training), tmp_path / "drifting.csv")
    warned = run(["score", drifting, "-o", tmp_path / "out.csv", "--state", state])
    (line,) = [line for line in warned.stderr.splitlines() if line.startswith("Warning:")]
    command = shlex.split(line.split("; see ", 1)[1])
    assert command[:3] == ["churnctl", "drift", str(drifting)]
    assert command[3:] == ["--state", str(state)]
    again = run(command[1:])
    assert again.exit_code == 0, again.output
    assert "drifting: Geography" in plain(again.stdout)
    bundled_state = run(["score", drifting, "-o", tmp_path / "two.csv"])
    assert "--state" not in bundled_state.stderr.split("; see ", 1)[1].splitlines()[0]


def test_watch_logs_each_file_s_drift_in_json(training: pa.Table, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    landing.mkdir()
    write(more_germany(training), landing / "drifting.csv")
    log = tmp_path / "log.jsonl"
    base = [
        "watch",
        landing,
        "--out",
        tmp_path / "out",
        "--once",
        "--settle",
        "0",
        "--log-json",
        log,
    ]
    result = run([*base, "--state", bundled(STATE)])
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["drift"]["verdict"] == MAJOR and list(record["drift"]["drifting"]) == [
        "Geography"
    ]
    assert "Warning: drifting.csv: drift from the training data: Geography" in result.stderr


# ----------------------------------------------------------------------------- imported states

PUBLIC = Path(__file__).resolve().parents[2] / "shared" / "data" / "Churn_Modelling.csv"


def imported(training: pa.Table, fitted_on: pa.Table | None = None):
    """A scikit-learn ColumnTransformer over the bundled columns, imported with its data."""
    pytest.importorskip("sklearn")
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import churnctl

    frame = training.to_pandas()
    steps = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["Geography", "Gender"]),
            ("num", StandardScaler(), ["Age", "Balance"]),
        ]
    ).fit((training if fitted_on is None else fitted_on).to_pandas())
    return churnctl.from_sklearn(steps, training_data=frame), churnctl.from_sklearn(steps)


def test_from_sklearn_records_the_profile_of_its_training_data(training: pa.Table) -> None:
    state, without = imported(training)
    assert without.profile is None and state.fingerprint == without.fingerprint
    assert list(state.profile.columns) == ["Geography", "Gender", "Age", "Balance"]
    assert state.profile.rows == training.num_rows and state.profile.reject_rate == 0.0
    assert state_from_text(state.dumps()).profile == state.profile


def test_an_imported_profile_counts_labels_its_encoder_never_saw(training: pa.Table) -> None:
    """Fitted without Spain, imported with data that holds it: Spain's rows are unseen."""
    no_spain = training.filter(pc.not_equal(training.column("Geography"), "Spain"))
    state, _ = imported(training, fitted_on=no_spain)
    geography = state.profile.columns["Geography"]
    spain = np.mean(training.column("Geography").to_numpy(zero_copy_only=False) == "Spain")
    assert geography.labels == ("France", "Germany")
    assert geography.unseen_share == pytest.approx(spain)


def test_the_public_data_set_against_itself_and_shifted(tmp_path: Path) -> None:
    if not PUBLIC.is_file():
        pytest.skip(f"the public data set is not at {PUBLIC} (it is never copied here)")
    public = pacsv.read_csv(PUBLIC)
    state = fit_state(PUBLIC)
    assert drift_file(PUBLIC, state).report.drifting == ()
    older = replaced(public, "Age", pc.add(public.column("Age"), 10))
    report = drift_file(write(more_germany(older), tmp_path / "shifted.csv"), state).report
    assert {column.column for column in report.drifting} == {"Age", "Geography"}
