"""The command line through typer's CliRunner: outputs, messages, exit codes, clean failures.

typer (0.29) vendors click and ships its own CliRunner, which always keeps stdout and
stderr apart (``result.stdout`` / ``result.stderr``; ``result.output`` is both).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from cli_helpers import assert_clean_error, plain, run
from onnx_factories import logistic_n1, multiclass_three

from churnctl import __version__
from churnctl.batch.fit_file import fit_state
from churnctl.features.state import FeatureState, load_state
from churnctl.io.sources import open_source
from churnctl.samples.bundled import MODEL, SAMPLE, STATE, bundled
from churnctl.samples.generate import COLUMNS, generate_files
from churnctl.scoring.model import ChurnModel
from churnctl.scoring.scorer import Scorer

N_ROWS = 300
BAD = {4: ("CreditScore", "abc"), 77: ("Age", ""), 201: ("Geography", "Atlantis")}
REJECTS_COLUMNS = ["source", "line", "column", "reason", "text"]
FEATURES = [
    "Geography=France",
    "Geography=Germany",
    "Geography=Spain",
    "Gender",
    "HasCrCard",
    "IsActiveMember",
    "CreditScore",
    "Age",
    "Tenure",
    "Balance",
    "NumOfProducts",
    "EstimatedSalary",
]


# ------------------------------------------------------------------ helpers and fixtures


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def write_rows(path: Path, rows: Sequence[Sequence[str]], header: Sequence[str] = COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def library_scores(
    path: Path,
    state: FeatureState,
    model: ChurnModel,
    keep: Sequence[str] = ("CustomerId",),
    *,
    allow_state_mismatch: bool = False,
) -> pa.Table:
    """What the library's Scorer makes of the file, batch by batch like the CLI."""
    scorer = Scorer(state, model, keep=list(keep), allow_state_mismatch=allow_state_mismatch)
    source = open_source(path, scorer.required_columns)
    tables = [scorer.score(part.rows).scored for part in source.batches]
    return pa.concat_tables(tables)


def read_output(path: Path | bytes, fmt: str) -> pa.Table:
    """Scored rows as CustomerId (text), raw (float32), exited (bool)."""
    data = path if isinstance(path, bytes) else path.read_bytes()
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(data))
    if fmt == "jsonl":
        rows = [json.loads(line) for line in data.decode("utf-8").splitlines()]
        assert all(list(r) == ["CustomerId", "raw", "exited"] for r in rows)
        return pa.table(
            {
                "CustomerId": pa.array([r["CustomerId"] for r in rows], pa.string()),
                "raw": pa.array([r["raw"] for r in rows], pa.float32()),
                "exited": pa.array([r["exited"] for r in rows], pa.bool_()),
            }
        )
    assert data.splitlines()[0] == b"CustomerId,raw,exited"
    types = {"CustomerId": pa.string(), "raw": pa.float32(), "exited": pa.bool_()}
    return pacsv.read_csv(
        io.BytesIO(data), convert_options=pacsv.ConvertOptions(column_types=types)
    )


def assert_same_scores(got: pa.Table, expected: pa.Table) -> None:
    assert got.column_names == ["CustomerId", "raw", "exited"]
    assert got.num_rows == expected.num_rows
    assert got.column("CustomerId").to_pylist() == expected.column("CustomerId").to_pylist()
    np.testing.assert_array_equal(
        got.column("raw").to_numpy().astype(np.float32), expected.column("raw").to_numpy()
    )
    assert got.column("exited").to_pylist() == expected.column("exited").to_pylist()


def read_rejects(path: Path) -> list[dict[str, str]]:
    rows = read_rows(path)
    assert rows[0] == REJECTS_COLUMNS
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def stderr_rejects(stderr: str) -> list[dict[str, str]]:
    """The rejects CSV a run wrote to stderr, before its one summary line (and the demo note)."""
    text = stderr[: stderr.rstrip("\n").rfind("\n") + 1]
    text = "".join(line for line in text.splitlines(True) if not line.startswith("Note: "))
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == REJECTS_COLUMNS
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


@pytest.fixture(scope="module")
def bundled_pair() -> tuple[FeatureState, ChurnModel]:
    return load_state(bundled(STATE)), ChurnModel(bundled(MODEL))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inputs")


@pytest.fixture(scope="module")
def rows(inputs: Path) -> list[list[str]]:
    """N_ROWS synthetic rows as text, three of them with a bad value."""
    path = generate_files(inputs / "clean.csv", n_rows=N_ROWS, seed=5)[0]
    data = read_rows(path)[1:]
    for index, (column, text) in BAD.items():
        data[index][COLUMNS.index(column)] = text
    return data


@pytest.fixture(scope="module")
def in_csv(inputs: Path, rows: list[list[str]]) -> Path:
    return write_rows(inputs / "in.csv", rows)


@pytest.fixture(scope="module")
def expected(in_csv: Path, bundled_pair: tuple[FeatureState, ChurnModel]) -> pa.Table:
    table = library_scores(in_csv, *bundled_pair)
    assert table.num_rows == N_ROWS - len(BAD)
    return table


@pytest.fixture(scope="module")
def k5_model(inputs: Path) -> Path:
    return logistic_n1(inputs / "k5.onnx", 5).path


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty output directory, also the working directory (stdout runs put rejects here)."""
    directory = tmp_path / "out"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def state_body(state: FeatureState) -> dict[str, object]:
    """A state's document without what legitimately differs between two fits."""
    document = state.to_dict()
    document.pop("checksum")
    provenance = dict(document.pop("provenance"))  # type: ignore[call-overload]
    provenance.pop("fitted_at")
    return {**document, "provenance": provenance}


def scaler_numbers(document: dict[str, object]) -> tuple[dict[str, object], list[float]]:
    """Split off the StandardScaler's mean and std (floats) from the rest of a state."""
    document = json.loads(json.dumps(document))
    fitted = document["stages"][-1]["fitted"]  # type: ignore[index]
    numbers = [*fitted.pop("mean"), *fitted.pop("std")]
    return document, numbers


# ------------------------------------------------------------------ --version, fit


def test_version() -> None:
    result = run(["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"churnctl {__version__}"


def test_fit_writes_a_state_that_loads(out: Path) -> None:
    result = run(["fit", bundled(SAMPLE), "-o", out / "state.json"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "fitted 12 features on 10,000 rows (0 rejected)" in plain(result.stderr)
    state = load_state(out / "state.json")
    assert state.feature_names == FEATURES
    assert state.provenance["training_file"] == "sample.csv"
    # the bundled state was fitted on the bundled sample: only fitted_at differs (and the
    # scaler's last bits: the bundled one was computed by another summation order)
    got, got_numbers = scaler_numbers(state_body(state))
    want, want_numbers = scaler_numbers(state_body(load_state(bundled(STATE))))
    assert got == want
    np.testing.assert_allclose(got_numbers, want_numbers, rtol=1e-12)
    assert sorted(p.name for p in out.iterdir()) == ["state.json", "state.json.rejects.csv"]
    assert (out / "state.json.rejects.csv").read_text() == "source,line,column,reason,text\n"


def test_fit_on_a_missing_file(out: Path) -> None:
    result = run(["fit", out.parent / "nope.csv", "-o", out / "state.json"])
    assert_clean_error(result, 2, "nope.csv", "not found")
    assert list(out.iterdir()) == []


# ------------------------------------------------------------------ score: states and models


def test_score_with_state(out: Path, in_csv: Path, expected: pa.Table, tmp_path: Path) -> None:
    state_file = tmp_path / "my-state.json"
    state_file.write_bytes(bundled(STATE).read_bytes())
    result = run(
        ["score", in_csv, "--state", state_file, "--model", bundled(MODEL), "-o", out / "s.csv"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert_same_scores(read_output(out / "s.csv", "csv"), expected)
    assert sorted(p.name for p in out.iterdir()) == ["s.csv", "s.csv.lineage.json", "s.rejects.csv"]


def test_score_with_bundled_defaults(out: Path, in_csv: Path, expected: pa.Table) -> None:
    result = run(["score", in_csv, "-o", out / "scored.csv"])
    assert result.exit_code == 0, result.output
    assert_same_scores(read_output(out / "scored.csv", "csv"), expected)


def test_score_with_train_and_save_state(out: Path, in_csv: Path, expected: pa.Table) -> None:
    result = run(
        [
            "score",
            in_csv,
            "--train",
            bundled(SAMPLE),
            "--save-state",
            out / "fitted.json",
            "-o",
            out / "scored.csv",
        ]
    )
    assert result.exit_code == 0, result.output
    saved = load_state(out / "fitted.json")
    separately = fit_state(bundled(SAMPLE))
    assert state_body(saved) == state_body(separately)
    assert saved.provenance["fitted_at"]
    # fitted on the same sample as the bundled state, so the same scores
    assert_same_scores(read_output(out / "scored.csv", "csv"), expected)
    assert sorted(p.name for p in out.iterdir()) == [
        "fitted.json",
        "scored.csv",
        "scored.csv.lineage.json",
        "scored.rejects.csv",
    ]


def test_score_with_a_state_fitted_by_the_cli(
    out: Path, in_csv: Path, inputs: Path, bundled_pair: tuple[FeatureState, ChurnModel]
) -> None:
    """Fitted on other rows than the bundled model was trained on: refused unless forced."""
    assert run(["fit", inputs / "clean.csv", "-o", out / "own.json"]).exit_code == 0
    refused = run(["score", in_csv, "--state", out / "own.json", "-o", out / "x.parquet"])
    assert refused.exit_code == 2
    assert "other fitted numbers" in refused.stderr
    assert not (out / "x.parquet").exists()
    result = run(
        [
            "score",
            in_csv,
            "--state",
            out / "own.json",
            "-o",
            out / "x.parquet",
            "--allow-state-mismatch",
        ]
    )
    assert result.exit_code == 0, result.output
    own = load_state(out / "own.json")
    assert own.provenance["rows"] == N_ROWS
    assert own.provenance["rows_rejected"] == 0
    assert own.feature_names == FEATURES
    assert_same_scores(
        read_output(out / "x.parquet", "parquet"),
        library_scores(in_csv, own, bundled_pair[1], allow_state_mismatch=True),
    )


# ------------------------------------------------------------------ score: outputs


@pytest.mark.parametrize(
    ("name", "option", "fmt"),
    [
        ("x.csv", None, "csv"),
        ("x.jsonl", None, "jsonl"),
        ("x.ndjson", None, "jsonl"),
        ("x.parquet", None, "parquet"),
        ("x.PARQUET", None, "parquet"),
        ("x.out", "csv", "csv"),
        ("x.data", "jsonl", "jsonl"),
        ("x.bin", "parquet", "parquet"),
        ("x.csv", "parquet", "parquet"),  # --format wins over the extension
    ],
)
def test_output_formats(
    out: Path, in_csv: Path, expected: pa.Table, name: str, option: str | None, fmt: str
) -> None:
    args = ["score", in_csv, "-o", out / name] + (["--format", option] if option else [])
    result = run(args)
    assert result.exit_code == 0, result.output
    assert_same_scores(read_output(out / name, fmt), expected)
    rejects = "x.rejects.csv" if name == "x.csv" else f"{name}.rejects.csv"
    record = [] if fmt == "parquet" else [f"{name}.lineage.json"]  # Parquet's: in its footer
    assert sorted(p.name for p in out.iterdir()) == sorted([name, rejects, *record])


def test_summary_and_rejects_file(
    out: Path, in_csv: Path, rows: list[list[str]], expected: pa.Table
) -> None:
    result = run(["score", in_csv, "-o", out / "scored.jsonl"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    summary = plain(result.stderr)
    assert f"read {N_ROWS} rows: {N_ROWS - len(BAD)} scored, {len(BAD)} rejected" in summary
    assert str(out / "scored.jsonl") in summary
    assert f"rejects → {out / 'scored.jsonl.rejects.csv'}" in summary

    scored = read_output(out / "scored.jsonl", "jsonl")
    rejects = read_rejects(out / "scored.jsonl.rejects.csv")
    assert scored.num_rows + len(rejects) == N_ROWS
    assert rejects == [
        {
            "source": str(in_csv),
            "line": str(i + 2),
            "column": column,
            "reason": reason,
            "text": ",".join(rows[i]),
        }
        for i, column, reason in [
            (4, "CreditScore", "not a number"),
            (77, "Age", "empty value"),
            (201, "Geography", "unseen category 'Atlantis'"),
        ]
    ]
    ids = set(scored.column("CustomerId").to_pylist())
    assert not ids & {rows[i][1] for i in BAD}


def test_keep_and_threshold(out: Path, in_csv: Path, rows: list[list[str]]) -> None:
    result = run(
        [
            "score",
            in_csv,
            "-o",
            out / "x.csv",
            "--keep",
            "CustomerId",
            "--keep",
            "Surname",
            "--threshold",
            "0.2",
        ]
    )
    assert result.exit_code == 0, result.output
    table = pacsv.read_csv(
        out / "x.csv",
        convert_options=pacsv.ConvertOptions(
            column_types={"CustomerId": pa.string(), "Surname": pa.string(), "raw": pa.float32()}
        ),
    )
    assert table.column_names == ["CustomerId", "Surname", "raw", "exited"]
    good = [r for i, r in enumerate(rows) if i not in BAD]
    assert table.column("Surname").to_pylist() == [r[2] for r in good]
    raw = table.column("raw").to_numpy()
    assert table.column("exited").to_pylist() == (raw > 0.2).tolist()
    assert 0 < np.sum(raw > 0.2) < len(raw)


def test_csv_output_quotes_only_where_needed(out: Path, tmp_path: Path) -> None:
    """Ids stay bare; a kept value holding a comma, a quote or a line break is quoted."""
    names = ["Plain", "Comma, Jr", 'Quote "Q"', "Line\nBreak"]
    rows = [
        list(map(str, r.values())) for r in pacsv.read_csv(bundled(SAMPLE)).slice(0, 4).to_pylist()
    ]
    for row, name in zip(rows, names, strict=True):
        row[COLUMNS.index("Surname")] = name
    source = write_rows(tmp_path / "names.csv", rows)
    whole = run(["score", source, "--keep", "CustomerId", "--keep", "Surname", "-o", out / "q.csv"])
    assert whole.exit_code == 0, whole.output
    text = (out / "q.csv").read_text(encoding="utf-8")
    lines = text.split("\n")
    assert lines[0] == "CustomerId,Surname,raw,exited"
    assert lines[1].startswith(f"{rows[0][1]},Plain,")
    assert f'{rows[1][1]},"Comma, Jr",' in text
    assert f'{rows[2][1]},"Quote ""Q""",' in text
    assert f'{rows[3][1]},"Line\nBreak",' in text
    assert [r[1] for r in read_rows(out / "q.csv")[1:]] == names
    plain_only = run(["score", source, "-o", out / "ids.csv"])
    assert plain_only.exit_code == 0 and '"' not in (out / "ids.csv").read_text()


def test_stdout_output(out: Path, in_csv: Path, expected: pa.Table) -> None:
    result = run(["score", in_csv, "-o", "-"])
    assert result.exit_code == 0, result.output
    assert_same_scores(read_output(result.stdout_bytes, "csv"), expected)
    assert "rows:" not in result.stdout and "rejected" not in result.stdout
    summary = plain(result.stderr)
    assert f"read {N_ROWS} rows: {N_ROWS - len(BAD)} scored, {len(BAD)} rejected" in summary
    assert "→ stdout; rejects → stderr" in summary
    # with the output on stdout, the rejects go to stderr: no file anywhere
    assert list(out.iterdir()) == []
    assert len(stderr_rejects(result.stderr)) == len(BAD)


def test_gzip_input_and_custom_rejects_path(
    out: Path, in_csv: Path, expected: pa.Table, tmp_path: Path
) -> None:
    packed = tmp_path / "in.csv.gz"
    packed.write_bytes(gzip.compress(in_csv.read_bytes()))
    result = run(["score", packed, "-o", out / "x.csv", "--rejects", out / "bad" / "r.csv"])
    assert result.exit_code == 0, result.output
    assert_same_scores(read_output(out / "x.csv", "csv"), expected)
    assert len(read_rejects(out / "bad" / "r.csv")) == len(BAD)
    assert sorted(p.name for p in out.iterdir()) == ["bad", "x.csv", "x.csv.lineage.json"]
    # to stdout, the rejects go to stderr
    to_stdout = run(["score", packed, "-o", "-"])
    assert to_stdout.exit_code == 0
    assert len(stderr_rejects(to_stdout.stderr)) == len(BAD)
    assert sorted(p.name for p in out.iterdir()) == ["bad", "x.csv", "x.csv.lineage.json"]


def test_stdin_input(
    out: Path,
    in_csv: Path,
    expected: pa.Table,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    data = in_csv.read_bytes()

    result = run(["score", "-", "-o", out / "x.csv"], input=data)
    assert result.exit_code == 0, result.output
    assert_same_scores(read_output(out / "x.csv", "csv"), expected)
    from_stdin = read_rejects(out / "x.rejects.csv")
    assert {r["source"] for r in from_stdin} == {"<stdin>"}

    assert run(["score", in_csv, "-o", out / "y.csv"]).exit_code == 0
    from_file = read_rejects(out / "y.rejects.csv")
    strip = [{k: v for k, v in r.items() if k != "source"} for r in from_stdin]
    assert strip == [{k: v for k, v in r.items() if k != "source"} for r in from_file]

    piped = run(["score", "-", "-o", "-"], input=data)
    assert piped.exit_code == 0, piped.output
    assert_same_scores(read_output(piped.stdout_bytes, "csv"), expected)
    assert "read 300 rows" in plain(piped.stderr)
    assert {r["source"] for r in stderr_rejects(piped.stderr)} == {"<stdin>"}
    assert not (out / "stdin.rejects.csv").exists()
    assert list(spool.iterdir()) == []  # the stdin spool file is gone


# ------------------------------------------------------------------ score: failures


def _tampered(directory: Path) -> Path:
    document = json.loads(bundled(STATE).read_text(encoding="utf-8"))
    document["stages"][3]["fitted"]["mean"][6] += 1.0  # CreditScore mean, valid JSON
    path = directory / "tampered.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def _without_age(directory: Path, rows: list[list[str]]) -> Path:
    age = COLUMNS.index("Age")
    header = [c for c in COLUMNS if c != "Age"]
    return write_rows(
        directory / "no_age.csv", [r[:age] + r[age + 1 :] for r in rows], header=header
    )


def _garbage_model(directory: Path) -> Path:
    path = directory / "garbage.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(2048))
    return path


Args = Callable[[Path, Path, Path, Path, list[list[str]]], list[object]]

# (id, args(in_csv, out, scratch, k5, rows), exit code, message fragments)
FAILURES: list[tuple[str, Args, int, list[str]]] = [
    (
        "missing input",
        lambda i, o, s, k, r: ["score", s / "nope.csv", "-o", o / "x.csv"],
        2,
        ["nope.csv", "input file not found"],
    ),
    (
        "missing column",
        lambda i, o, s, k, r: ["score", _without_age(s, r), "-o", o / "x.csv"],
        2,
        [
            "missing required column(s) Age",
            "found: RowNumber, CustomerId, Surname, CreditScore, Geography, Gender, Tenure, "
            "Balance, NumOfProducts, HasCrCard, IsActiveMember, EstimatedSalary, Exited",
        ],
    ),
    (
        "missing keep column",
        lambda i, o, s, k, r: ["score", i, "-o", o / "x.csv", "--keep", "Nope"],
        2,
        ["missing column(s) Nope named to keep", "pass --keep with only columns the input has"],
    ),
    (
        "state/model mismatch",
        lambda i, o, s, k, r: ["score", i, "--model", k, "-o", o / "x.csv"],
        2,
        ["expects 5 features", "produces 12"],
    ),
    (
        "state and train",
        lambda i, o, s, k, r: [
            "score",
            i,
            "--state",
            bundled(STATE),
            "--train",
            i,
            "-o",
            o / "x.csv",
        ],
        2,
        ["either --state or --train"],
    ),
    (
        "save-state without train",
        lambda i, o, s, k, r: ["score", i, "--save-state", o / "s.json", "-o", o / "x.csv"],
        2,
        ["--save-state", "--train"],
    ),
    (
        "unknown output extension",
        lambda i, o, s, k, r: ["score", i, "-o", o / "x.txt"],
        2,
        ["x.txt", "cannot tell the output format", "--format"],
    ),
    (
        "unknown format",
        lambda i, o, s, k, r: ["score", i, "-o", o / "x.csv", "--format", "xml"],
        2,
        ["output format must be one of csv, jsonl, parquet", "'xml'", "pass --format csv"],
    ),
    (
        "parquet to stdout",
        lambda i, o, s, k, r: ["score", i, "-o", "-", "--format", "parquet"],
        2,
        ["Parquet cannot be written to stdout"],
    ),
    (
        "tampered state",
        lambda i, o, s, k, r: ["score", i, "--state", _tampered(s), "-o", o / "x.csv"],
        2,
        ["tampered.json", "checksum mismatch"],
    ),
    (
        "state not JSON",
        lambda i, o, s, k, r: ["score", i, "--state", i, "-o", o / "x.csv"],
        2,
        ["not valid JSON"],
    ),
    (
        "missing state",
        lambda i, o, s, k, r: ["score", i, "--state", s / "none.json", "-o", o / "x.csv"],
        2,
        ["none.json", "state file not found"],
    ),
    (
        "garbage model",
        lambda i, o, s, k, r: ["score", i, "--model", _garbage_model(s), "-o", o / "x.csv"],
        2,
        ["garbage.onnx", "not a loadable ONNX model"],
    ),
    (
        "multiclass model",
        lambda i, o, s, k, r: [
            "score",
            i,
            "--model",
            multiclass_three(s / "m3.onnx", 12).path,
            "-o",
            o / "x.csv",
        ],
        2,
        ["m3.onnx", "binary"],
    ),
    (
        "two-character delimiter",
        lambda i, o, s, k, r: ["score", i, "-o", o / "x.csv", "--delimiter", ";;"],
        2,
        ["--delimiter must be one character"],
    ),
    (
        "too many rejects",
        lambda i, o, s, k, r: ["score", i, "-o", o / "x.csv", "--max-rejects", "2"],
        3,
        [
            "3 of 300 rows rejected",
            "over the limit of 2 rows",
            "nothing was written",
            "pass --max-rejects 100%",
        ],
    ),
]


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [pytest.param(a, c, f, id=name) for name, a, c, f in FAILURES],
)
def test_failures_are_clean(
    out: Path,
    in_csv: Path,
    k5_model: Path,
    rows: list[list[str]],
    tmp_path: Path,
    args: Args,
    code: int,
    fragments: list[str],
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = run([str(a) for a in args(in_csv, out, scratch, k5_model, rows)])
    assert_clean_error(result, code, *fragments)
    assert list(out.iterdir()) == []  # no output, no rejects, no temporary files


def test_failure_midway_through_the_input_leaves_nothing(out: Path, tmp_path: Path) -> None:
    """Bad UTF-8 beyond the first 1 MiB block: scoring has begun, and is rolled back."""
    path = generate_files(tmp_path / "big.csv", n_rows=20_000, seed=3)[0]
    data = path.read_bytes()
    assert len(data) > 1.2 * (1 << 20)
    at = data.rindex(b"France")
    path.write_bytes(data[:at] + b"Fr\xe4nce" + data[at + 6 :])
    result = run(["score", path, "-o", out / "x.csv"])
    assert_clean_error(result, 2, "big.csv", "--encoding")
    assert list(out.iterdir()) == []


def _latin1(path: Path, rows: list[list[str]]) -> bytes:
    data = write_rows(path, rows).read_bytes()
    at = data.index(b"France")
    path.write_bytes(data[:at] + b"Fr\xe4nce" + data[at + 6 :])
    return path.read_bytes()


def test_bad_utf8_in_the_first_block_is_a_clean_error(
    out: Path, tmp_path: Path, rows: list[list[str]]
) -> None:
    """pacsv.open_csv parses the first block eagerly: its errors must be explained too."""
    path = tmp_path / "latin1.csv"
    _latin1(path, rows)
    result = run(["score", path, "-o", out / "x.csv"])
    assert_clean_error(result, 2, "latin1.csv", "--encoding")
    assert list(out.iterdir()) == []
    ok = run(["score", path, "-o", out / "x.csv", "--encoding", "latin-1", "--keep", "Geography"])
    assert ok.exit_code == 0, ok.output
    assert "Fr\u00e4nce" in (out / "x.rejects.csv").read_text(encoding="utf-8")


def test_bad_utf8_on_stdin_leaves_no_spool_file(
    out: Path, tmp_path: Path, rows: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """stdin is spooled to a temporary file; a failure while opening must remove it."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    data = _latin1(tmp_path / "latin1.csv", rows)
    result = run(["score", "-", "-o", out / "x.csv"], input=data)
    assert_clean_error(result, 2, "<stdin>", "--encoding")
    assert list(out.iterdir()) == []
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize("name", ["[red]in.csv", "[/x]in.csv"])
def test_error_messages_are_not_rich_markup(out: Path, name: str) -> None:
    """Library bug: cli.command prints the exception text as Rich markup.

    A path such as '[red]in.csv' loses its '[red]'; '[/x]in.csv' raises MarkupError,
    a traceback with exit code 1 instead of `Error: ...` and exit code 2.
    """
    result = run(["score", out.parent / name, "-o", out / "x.csv"])
    assert_clean_error(result, 2, f"{out.parent / name}: input file not found")


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(["--model", "K5"], id="state/model mismatch"),
        pytest.param(["--max-rejects", "0"], id="too many rejects"),
    ],
)
def test_failed_train_and_score_saves_no_state(
    out: Path, in_csv: Path, k5_model: Path, extra: list[str]
) -> None:
    """After a failed run the output directory is empty, --save-state file included.

    Library bug (or at least a surprise): cli._state_for_scoring saves the --train state
    before the model is loaded and the rows are scored, so the state file stays behind
    after an exit-2 mismatch, and after exit 3 whose message says "nothing was written".
    """
    extra = [str(k5_model) if a == "K5" else a for a in extra]
    result = run(
        [
            "score",
            in_csv,
            "--train",
            bundled(SAMPLE),
            "--save-state",
            out / "s.json",
            "-o",
            out / "x.csv",
            *extra,
        ]
    )
    assert result.exit_code in (2, 3)
    assert plain(result.stderr).startswith("Error: ")
    assert not (out / "x.csv").exists()
    assert not (out / "x.rejects.csv").exists()
    assert [p.name for p in out.iterdir()] == []


# ------------------------------------------------------------------ inspect


def _assert_feature_order(text: str) -> None:
    positions = [text.find(f" {name} ") for name in FEATURES]
    assert all(p >= 0 for p in positions), list(zip(FEATURES, positions, strict=True))
    assert positions == sorted(positions)


def test_inspect_bundled() -> None:
    result = run(["inspect"])
    assert result.exit_code == 0, result.output
    text = plain(result.stdout)
    assert "input X tensor(float)" in text
    assert "probabilities" in text
    _assert_feature_order(text)
    assert "compatible: model" in text and "is bound to state" in text
    assert "(12 features in the same order)" in text
    fingerprint = load_state(bundled(STATE)).fingerprint
    assert text.count(fingerprint) == 2  # the model's binding and the state's fingerprint
    assert "NOT compatible" not in text


def test_inspect_shows_the_discovered_input_name(tmp_path: Path) -> None:
    model = logistic_n1(tmp_path / "m.onnx", 12, input_name="dense_input").path
    result = run(["inspect", "--model", model, "--state", bundled(STATE)])
    assert result.exit_code == 0, result.output
    text = plain(result.stdout)
    assert "input dense_input tensor(float)" in text
    assert "dense_out" in text
    _assert_feature_order(text)
    assert "compatible" in text and "NOT compatible" not in text


def test_inspect_mismatch(k5_model: Path) -> None:
    result = run(["inspect", "--model", k5_model])
    assert result.exit_code == 2
    text = plain(result.stdout)
    assert "NOT compatible" in text
    verdict = text[text.index("NOT compatible") :]
    assert "expects 5 features" in verdict and "produces 12" in verdict


def test_inspect_tampered_state(tmp_path: Path) -> None:
    result = run(["inspect", "--state", _tampered(tmp_path)])
    assert_clean_error(result, 2, "checksum mismatch")


# ------------------------------------------------------------------ generate


def test_generate_csv(out: Path) -> None:
    result = run(["generate", "-n", "100", "-o", out / "x.csv"])
    assert result.exit_code == 0, result.output
    assert "wrote 100 rows" in plain(result.stderr)
    lines = (out / "x.csv").read_bytes().splitlines()
    assert len(lines) == 101
    assert lines[0].decode() == ",".join(COLUMNS)
    assert [p.name for p in out.iterdir()] == ["x.csv"]


def test_generate_is_deterministic(out: Path) -> None:
    for name, seed in [("a.csv", "7"), ("b.csv", "7"), ("c.csv", "8")]:
        assert run(["generate", "-n", "100", "--seed", seed, "-o", out / name]).exit_code == 0
    assert run(["generate", "-n", "100", "-o", out / "d.csv"]).exit_code == 0
    assert run(["generate", "-n", "100", "-o", out / "e.csv"]).exit_code == 0
    assert (out / "a.csv").read_bytes() == (out / "b.csv").read_bytes()
    assert (out / "a.csv").read_bytes() != (out / "c.csv").read_bytes()
    assert (out / "d.csv").read_bytes() == (out / "e.csv").read_bytes()


def test_generate_other_formats_and_parts(out: Path) -> None:
    assert run(["generate", "-n", "100", "-o", out / "x.csv.gz"]).exit_code == 0
    assert len(gzip.decompress((out / "x.csv.gz").read_bytes()).splitlines()) == 101
    assert run(["generate", "-n", "100", "-o", out / "x.parquet"]).exit_code == 0
    assert pq.read_table(out / "x.parquet").num_rows == 100
    assert run(["generate", "-n", "100", "--files", "3", "-o", out / "parts"]).exit_code == 0
    parts = sorted((out / "parts").iterdir())
    assert [p.name for p in parts] == ["part-00000.csv", "part-00001.csv", "part-00002.csv"]
    assert sum(len(p.read_bytes().splitlines()) - 1 for p in parts) == 100


def test_generated_data_scores_end_to_end(out: Path) -> None:
    assert run(["generate", "-n", "500", "--seed", "3", "-o", out / "g.parquet"]).exit_code == 0
    result = run(["score", out / "g.parquet", "-o", out / "g.scored.csv"])
    assert result.exit_code == 0, result.output
    assert "read 500 rows: 500 scored, 0 rejected" in plain(result.stderr)
    assert len(read_rows(out / "g.scored.csv")) == 501
    assert read_rejects(out / "g.scored.rejects.csv") == []
