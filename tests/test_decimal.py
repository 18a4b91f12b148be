"""European number formats (issue 15, item 13): ``decimal=","`` / ``--decimal ,``.

The same rows written with ``.`` and ``,``+``;`` score identically through the
Scorer, ``fit``, ``score``, ``watch --once`` (a real process) and the Flink job's
pieces; a field with the other mark is not a number; a file refused for its
rejects says when the numbers look like decimal commas, naming the setting.
"""

from __future__ import annotations

import csv
import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from cli_helpers import assert_clean_error, plain, run
from hypothesis import given, settings
from hypothesis import strategies as st

from churnctl import Scorer, extract_features
from churnctl.batch.fit_file import fit_state
from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.errors import TooManyRejectsError, UsageError
from churnctl.features.input_policy import NOT_A_NUMBER, numeric_column
from churnctl.features.state import load_state
from churnctl.features.validated_states import CACHE_ENV
from churnctl.flink.job import FlinkJobSpec, build_scorer
from churnctl.flink.scoring import FileReading, ScoreFiles
from churnctl.io.rejects import NO_LIMIT
from churnctl.io.sources import ReadOptions
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.samples.generate import COLUMNS, generate_table
from churnctl.watch.watcher import WatchSettings, scoring_identity

ROOT = Path(__file__).resolve().parents[1]
NUMBERS = (
    "CreditScore",
    "Age",
    "Tenure",
    "Balance",
    "NumOfProducts",
    "HasCrCard",
    "IsActiveMember",
    "EstimatedSalary",
)
BAD = {3: ("Age", "abc"), 11: ("Balance", ""), 17: ("Geography", "Atlantis")}


# ------------------------------------------------------------------ the input policy


def parse(texts: list[str], decimal: str) -> tuple[list[float], list[str | None]]:
    values, reasons = numeric_column(pa.array(texts, pa.string()), decimal=decimal)
    return values.tolist(), [None] * len(texts) if reasons is None else reasons.tolist()


def swapped(text: str) -> str:
    return text.translate(str.maketrans({".": ",", ",": "."}))


@settings(max_examples=200, deadline=None)
@given(
    x=st.floats(allow_nan=False, allow_infinity=False),
    pad=st.sampled_from(["", " ", "  \t"]),
    spelled=st.sampled_from(["{}", "{:e}", "{:.3f}", "{:.2E}", "{:+}"]),
)
def test_a_number_reads_the_same_with_either_mark(x: float, pad: str, spelled: str) -> None:
    text = pad + spelled.format(x) + pad
    assert parse([swapped(text)], ",") == parse([text], ".")
    assert parse([text], ".")[0][0] == pytest.approx(float(text), rel=1e-15, abs=0)


@pytest.mark.parametrize(
    ("text", "point", "comma"),
    [
        ("101348,88", None, 101348.88),
        (" -1,5e3 ", None, -1500.0),
        ("101348.88", 101348.88, None),
        ("1.234,5", None, None),  # no thousands separator in either mode
        ("1,234.5", None, None),
        ("1,234,567", None, None),
        ("7", 7.0, 7.0),
        (",5", None, 0.5),
        (".5", 0.5, None),
    ],
)
def test_the_other_mark_is_not_a_number(
    text: str, point: float | None, comma: float | None
) -> None:
    for decimal, expected in ((".", point), (",", comma)):
        (value,), (reason,) = parse([text], decimal)
        assert (value, reason) == (
            (expected, None) if expected is not None else (0.0, NOT_A_NUMBER)
        )


@pytest.mark.parametrize("decimal", ["", ";", " ", ",,", None, 1])
def test_another_decimal_mark_is_refused(decimal: object) -> None:
    with pytest.raises(UsageError, match=r"decimal must be '\.' or ','"):
        Scorer(bundled(STATE), bundled(MODEL), decimal=decimal)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"decimal must be '\.' or ','"):
        fit_state(ROOT / "data" / "sample.csv", decimal=decimal)  # type: ignore[arg-type]


# ------------------------------------------------------------------ one data set, two spellings


def rows(n: int = 120, seed: int = 5) -> list[dict[str, str]]:
    table = generate_table(n, seed=seed)
    texts = [
        dict(zip(COLUMNS, values, strict=True))
        for values in zip(
            *(table.column(name).cast(pa.string()).to_pylist() for name in COLUMNS), strict=True
        )
    ]
    for row, (column, value) in BAD.items():
        texts[row][column] = value
    return texts


def write(path: Path, records: list[dict[str, str]], *, euro: bool) -> Path:
    """The rows as CSV: `,` and `.`, or the European `;` and `,` (only numbers change)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if euro else ",", lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in records:
        writer.writerow(
            [swapped(record[c]) if euro and c in NUMBERS else record[c] for c in COLUMNS]
        )
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("decimal")
    records = rows()
    assert any("." in r["Balance"] for r in records)  # the data has decimals to swap
    return write(folder / "dot.csv", records, euro=False), write(
        folder / "euro.csv", records, euro=True
    )


EURO = ["--delimiter", ";", "--decimal", ","]


def read_table(path: Path, delimiter: str) -> pa.Table:
    return pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(COLUMNS, pa.string())),
    )


def test_the_scorer_scores_both_spellings_alike(files: tuple[Path, Path]) -> None:
    dot, euro = read_table(files[0], ","), read_table(files[1], ";")
    expected = Scorer(bundled(STATE), bundled(MODEL)).score(dot)
    scorer = pickle.loads(pickle.dumps(Scorer(bundled(STATE), bundled(MODEL), decimal=",")))
    assert scorer.decimal == ","
    result = scorer.score(euro)
    assert result.scored.equals(expected.scored)
    assert result.rejects.select(["row", "column", "reason"]).equals(
        expected.rejects.select(["row", "column", "reason"])
    )
    assert sorted(result.rejects.column("row").to_pylist()) == sorted(BAD)
    state = load_state(bundled(STATE))
    by_function = extract_features(state, euro.to_pandas(), decimal=",")
    assert np.array_equal(by_function.matrix, scorer.features(euro).matrix)
    kept = Scorer(bundled(STATE), bundled(MODEL), keep=["Balance"], decimal=",").score(euro)
    euro_balance = euro.column("Balance").to_pylist()  # kept columns stay as in the input
    assert set(kept.scored.column("Balance").to_pylist()) <= set(euro_balance)
    assert any("," in value for value in kept.scored.column("Balance").to_pylist())


def test_fit_and_score_read_both_spellings_alike(files: tuple[Path, Path], tmp_path: Path) -> None:
    dot, euro = files
    for name, source, extra in (("dot", dot, []), ("euro", euro, EURO)):
        fitted = run(["fit", source, "-o", tmp_path / f"{name}.json", *extra])
        assert fitted.exit_code == 0, fitted.output
        scored = run(
            ["score", source, "-o", tmp_path / f"{name}.csv", "--max-rejects", "100%", *extra]
        )
        assert scored.exit_code == 0, scored.output
    states = [load_state(tmp_path / f"{name}.json") for name in ("dot", "euro")]
    assert states[0].fingerprint == states[1].fingerprint
    assert (tmp_path / "dot.csv").read_bytes() == (tmp_path / "euro.csv").read_bytes()
    for rejects in ("{}.rejects.csv", "{}.json.rejects.csv"):  # of score, of fit
        found = [reasons(tmp_path / rejects.format(name)) for name in ("dot", "euro")]
        assert found[0] == found[1]
    assert len(reasons(tmp_path / "euro.rejects.csv")) == 1 + len(BAD)


def reasons(path: Path) -> list[list[str]]:
    """The line, column and reason of each row of a rejects file (and its header)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [row[1:4] for row in csv.reader(handle)]


def test_watch_once_reads_the_decimal_comma(files: tuple[Path, Path], tmp_path: Path) -> None:
    """A real `watch --once` process on the European file gives `score`'s bytes for the other."""
    landing, out = tmp_path / "in", tmp_path / "out"
    landing.mkdir()
    (landing / "euro.csv").write_bytes(files[1].read_bytes())
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", CACHE_ENV: os.environ[CACHE_ENV]}
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
        "--max-rejects",
        "100%",
        *EURO,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (
        run(["score", files[0], "-o", tmp_path / "dot.csv", "--max-rejects", "100%"]).exit_code == 0
    )
    [output] = out.glob("euro.*.scored.csv")
    assert output.read_bytes() == (tmp_path / "dot.csv").read_bytes()


def test_a_watch_folder_records_its_decimal_mark(tmp_path: Path) -> None:
    """One output folder, one decimal mark; a folder of `.` keeps its old identity."""

    def identity(decimal: str) -> dict[str, object]:
        scorer = Scorer(bundled(STATE), bundled(MODEL), decimal=decimal)
        landing = tmp_path / "in"
        landing.mkdir(exist_ok=True)
        settings = WatchSettings(in_dir=landing, out_dir=tmp_path / "out", scorer=scorer)
        return scoring_identity(settings)

    assert "decimal" not in identity(".")
    assert identity(",") == {**identity("."), "decimal": ","}


# ------------------------------------------------------------------ a refused file says why


@pytest.mark.parametrize(
    ("command", "code"), [("score", 3), ("fit", 2)]
)  # fit: its scaler runs out of rows (an error of its own) before the limit is judged
def test_too_many_decimal_commas_suggest_the_flag(
    files: tuple[Path, Path], tmp_path: Path, command: str, code: int
) -> None:
    target = tmp_path / ("out.csv" if command == "score" else "state.json")
    result = run([command, files[1], "-o", target, "--delimiter", ";"])
    assert_clean_error(
        result,
        code,
        "rejected rows hold a number written with a decimal comma",
        "pass --decimal , to read the comma as the decimal mark",
    )
    assert result.stderr.count("\n") == 1
    assert not target.exists()


def test_other_rejects_keep_the_limit_remedy(tmp_path: Path) -> None:
    """A few decimal commas among other bad values: the remedy stays the reject limit."""
    records = rows(40, 2)
    for record in records[:10]:
        record["Age"] = "old"
    records[20]["Balance"] = "1,5"
    source = write(tmp_path / "mixed.csv", records, euro=False)
    with pytest.raises(TooManyRejectsError) as info:
        fit_state(source)
    assert info.value.fix is not None and info.value.fix.setting == "max_rejects"
    assert "decimal comma" not in str(info.value)


def test_the_library_names_the_setting(files: tuple[Path, Path]) -> None:
    scorer = Scorer(bundled(STATE), bundled(MODEL))
    with pytest.raises(TooManyRejectsError) as info:
        score_file(ScoreRequest(str(files[1]), "-", scorer, read_options=ReadOptions(";")))
    assert info.value.fix is not None
    assert (info.value.fix.setting, info.value.fix.example) == ("decimal", ",")
    assert "set decimal=','" in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------ Flink: the job's pieces


def test_the_flink_job_reads_the_delimiter_and_the_decimal_mark(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    """The job's per-file function, pickled as Flink ships it, reads the European file as
    ``score`` reads it: the same scored text as the plain file's."""
    dot, euro = files
    spec = FlinkJobSpec(
        input=str(euro),
        out_dir="/o",
        state=str(bundled(STATE)),
        model=str(bundled(MODEL)),
        delimiter=";",
        decimal=",",
    )
    scorer = build_scorer(spec)
    assert scorer.decimal == ","
    function = pickle.loads(pickle.dumps(ScoreFiles(scorer, FileReading(spec.read_options))))
    chunks = list(function((str(euro), euro.stat().st_size)))
    flink = "".join(text + "\n" for output, text in chunks if output == "scored")
    scored = tmp_path / "dot.csv"
    score_file(
        ScoreRequest(
            str(dot),
            str(scored),
            Scorer(bundled(STATE), bundled(MODEL)),
            rejects=str(tmp_path / "r.csv"),
            max_rejects=NO_LIMIT,
        )
    )
    assert flink == scored.read_text(encoding="utf-8").partition("\n")[2]
    assert flink.count("\n") > 100


def test_flink_submit_emits_a_job_with_both_settings(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    job = tmp_path / "job.py"
    result = run(["flink-submit", files[1], "--out", tmp_path / "out", "--emit", job, *EURO])
    assert result.exit_code == 0, result.output
    text = job.read_text(encoding="utf-8")
    assert "delimiter=';'," in text and "decimal=','," in text
    bad = run(
        ["flink-submit", files[1], "--out", tmp_path / "out", "--emit", job, "--decimal", ";"]
    )
    assert bad.exit_code == 2 and "--decimal" in plain(bad.stderr)
