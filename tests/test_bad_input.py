"""Bad input: a corpus of messy files, each refused, tolerated or quarantined as documented."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.csv as pacsv
import pytest
from cli_helpers import run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.errors import ChurnctlError
from churnctl.features.columns import MAX_FIELD_CHARS
from churnctl.features.spec import PRESETS
from churnctl.features.state import load_state
from churnctl.io.csv.records import split_records
from churnctl.io.rejects import NO_LIMIT
from churnctl.io.sources import ReadOptions
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.samples.generate import generate_table
from churnctl.scoring.model import ChurnModel
from churnctl.scoring.scorer import Scorer

ROWS = generate_table(12, seed=3).to_pylist()
HEADER = list(ROWS[0])


def csv_text(rows: list[dict], header: list[str] = HEADER, *, newline: str = "\n") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(c, "") for c in header])
    return buffer.getvalue()


# These states are fitted with other settings than the bundled model was trained with:
# they test the input policy, so the model/state binding check is knowingly skipped.
UNBOUND_OK = ("--allow-state-mismatch",)


def score(tmp_path: Path, name: str, content: str | bytes, *extra: str):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    out = tmp_path / "out.csv"
    result = run(["score", str(path), "-o", str(out), *extra])
    return result, out, tmp_path / "out.rejects.csv"


def read_csv_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def assert_nothing_published(directory: Path) -> None:
    leftovers = [p.name for p in directory.iterdir() if p.name.startswith(("out", ".out"))]
    assert leftovers == []


# --- file-level problems: refused with one actionable line, exit 2, nothing published --------

FILE_LEVEL: list[tuple[str, Callable[[], str | bytes], list[str]]] = [
    ("empty.csv", lambda: "", ["empty.csv", "empty"]),
    ("blank-lines.csv", lambda: "\n\n  \r\n\n", ["blank-lines.csv", "empty"]),
    ("no-header.csv", lambda: csv_text(ROWS).split("\n", 1)[1], ["no header row"]),
    ("semicolons.csv", lambda: csv_text(ROWS).replace(",", ";"), ["';'-delimited", "--delimiter"]),
    ("tabs.csv", lambda: csv_text(ROWS).replace(",", "\t"), ["'\\t'-delimited", "--delimiter"]),
    (
        "missing-age.csv",
        lambda: csv_text(ROWS, [c for c in HEADER if c != "Age"]),
        ["missing required column(s) Age", "found: RowNumber"],
    ),
    (
        "duplicate-columns.csv",
        lambda: csv_text(ROWS, [*HEADER, "Age"]),
        ["duplicate column name(s) Age"],
    ),
    ("binary.csv", lambda: b"\x00\x01PAR1\x00" * 50, ["binary content"]),
    (
        "latin1.csv",
        lambda: csv_text([{**r, "Geography": "Fr\xe9"} for r in ROWS]).encode("latin-1"),
        ["not valid utf-8", "--encoding"],
    ),
    (
        "latin1-header.csv",
        lambda: csv_text(ROWS, [*HEADER, "Caf\xe9"]).encode("latin-1"),
        ["header is not valid utf-8", "--encoding"],
    ),
]


@pytest.mark.parametrize(("name", "make", "fragments"), FILE_LEVEL, ids=[c[0] for c in FILE_LEVEL])
def test_file_level_problems_are_refused(tmp_path, name, make, fragments) -> None:
    result, _, _ = score(tmp_path, name, make())
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert message.startswith("Error: ") and "\n" not in message and "Traceback" not in message
    for fragment in fragments:
        assert fragment in message
    assert_nothing_published(tmp_path)


def test_latin1_file_scores_with_encoding_option(tmp_path) -> None:
    content = csv_text([{**r, "Surname": "Gr\xfcn"} for r in ROWS]).encode("latin-1")
    result, out, _ = score(tmp_path, "latin1.csv", content, "--encoding", "latin-1")
    assert result.exit_code == 0, result.output
    assert len(read_csv_rows(out)) == len(ROWS)


def test_state_and_model_that_do_not_fit_are_refused(tmp_path) -> None:
    from onnx_factories import logistic_n1

    model = logistic_n1(tmp_path / "k5.onnx", 5).path
    result, _, _ = score(tmp_path, "ok.csv", csv_text(ROWS), "--model", str(model))
    assert result.exit_code == 2
    assert "expects 5 features" in result.stderr and "produces 12" in result.stderr
    assert_nothing_published(tmp_path)


def test_header_only_file_gives_an_empty_output_with_header(tmp_path) -> None:
    result, out, rejects = score(tmp_path, "header-only.csv", csv_text([]))
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == ["CustomerId,raw,exited"]
    assert read_csv_rows(rejects) == []
    assert "read 0 rows: 0 scored, 0 rejected" in result.stderr


# --- tolerated as-is and scored exactly as the clean file --------------------------------------


def _reordered(rows: list[dict]) -> str:
    return csv_text(rows, [*reversed(HEADER), "Extra"])


def _messy_text_fields(rows: list[dict]) -> str:
    noisy = [{**r, "Surname": 'Ölçek, "Jr."\nsecond line', "Extra": 'a,"b"\r\nc'} for r in rows]
    return csv_text(noisy, [*HEADER, "Extra"])


def _padded_numbers(rows: list[dict]) -> str:
    return csv_text(
        [{**r, "Age": f"  {r['Age']} ", "Balance": f"{r['Balance']:.16e}"} for r in rows]
    )


TOLERATED: list[tuple[str, Callable[[list[dict]], str | bytes]]] = [
    ("extra-and-reordered.csv", _reordered),
    ("bom.csv", lambda rows: "\ufeff" + csv_text(rows)),
    ("crlf.csv", lambda rows: csv_text(rows, newline="\r\n")),
    ("quoted-commas-quotes-newlines.csv", _messy_text_fields),
    ("whitespace-and-exponents.csv", _padded_numbers),
    ("gzip.csv.gz", lambda rows: gzip.compress(csv_text(rows).encode(), mtime=0)),
    ("blank-lines-between.csv", lambda rows: csv_text(rows).replace("\n", "\n\n", 3)),
]


@pytest.mark.parametrize(("name", "make"), TOLERATED, ids=[c[0] for c in TOLERATED])
def test_tolerated_variations_score_like_the_clean_file(tmp_path, name, make) -> None:
    (tmp_path / "clean").mkdir()
    clean, clean_out, _ = score(tmp_path / "clean", "clean.csv", csv_text(ROWS))
    assert clean.exit_code == 0
    result, out, rejects = score(tmp_path, name, make(ROWS))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == clean_out.read_bytes()
    assert read_csv_rows(rejects) == []


# --- row-level problems: quarantined with line, column, reason and original text -------------


def _with(row: int, **values: str) -> list[dict]:
    return [{**r, **values} if i == row else r for i, r in enumerate(ROWS)]


ROW_LEVEL: list[tuple[str, Callable[[], str], str | None, str]] = [
    (
        "non-numeric.csv",
        lambda: csv_text(_with(2, CreditScore="abc")),
        "CreditScore",
        "not a number",
    ),
    ("empty-number.csv", lambda: csv_text(_with(2, Age="")), "Age", "empty value"),
    ("nan.csv", lambda: csv_text(_with(2, Balance="NaN")), "Balance", "non-finite value"),
    ("inf.csv", lambda: csv_text(_with(2, Tenure="inf")), "Tenure", "non-finite value"),
    ("minus-inf.csv", lambda: csv_text(_with(2, Tenure="-Infinity")), "Tenure", "non-finite value"),
    ("overflow.csv", lambda: csv_text(_with(2, Balance="1e999")), "Balance", "non-finite value"),
    (
        "unseen.csv",
        lambda: csv_text(_with(2, Geography="Atlantis")),
        "Geography",
        "unseen category 'Atlantis'",
    ),
    ("case.csv", lambda: csv_text(_with(2, Gender="male")), "Gender", "unseen category 'male'"),
    ("empty-category.csv", lambda: csv_text(_with(2, Gender="")), "Gender", "empty value"),
    (
        "huge-field.csv",
        lambda: csv_text(_with(2, Geography="x" * 20_000)),
        "Geography",
        "field longer than 10,000 characters",
    ),
    (
        "too-many-fields.csv",
        lambda: csv_text(ROWS).replace("\n3,", "\n3,extra,", 1),
        None,
        "expected 14 fields, found 15",
    ),
    (
        "truncated-last-line.csv",
        lambda: csv_text(ROWS).rstrip("\n")[:-40],
        None,
        "expected 14 fields, found",
    ),
]


@pytest.mark.parametrize(
    ("name", "make", "column", "reason"), ROW_LEVEL, ids=[c[0] for c in ROW_LEVEL]
)
def test_row_level_problems_are_quarantined(tmp_path, name, make, column, reason) -> None:
    content = make()
    result, out, rejects_path = score(tmp_path, name, content, "--max-rejects", "1")
    assert result.exit_code == 0, result.output
    scored, rejects = read_csv_rows(out), read_csv_rows(rejects_path)
    assert len(scored) + len(rejects) == len(ROWS)
    assert len(rejects) == 1
    (reject,) = rejects
    assert reject["source"].endswith(name)
    assert reject["column"] == (column or "")
    assert reject["reason"].startswith(reason)
    line = int(reject["line"])
    physical = content.splitlines()
    assert physical[line - 1] == reject["text"] or reject["text"].startswith(physical[line - 1])
    assert f"{len(scored)} scored, 1 rejected" in result.stderr


def test_reject_lines_count_multi_line_records_and_blank_lines(tmp_path) -> None:
    rows = [{**r, "Surname": "two\nlines"} for r in ROWS[:3]] + _with(5, Age="old")[3:]
    content = csv_text(rows).replace("\n", "\n\n", 1)
    result, _, rejects_path = score(tmp_path, "multi.csv", content, "--max-rejects", "1")
    assert result.exit_code == 0, result.output
    (reject,) = read_csv_rows(rejects_path)
    expected_line = content.splitlines().index(reject["text"].splitlines()[0]) + 1
    assert int(reject["line"]) == expected_line
    assert reject["text"].split(",")[6] == "old"


def _state_with_policy(tmp_path: Path, policy: str) -> Path:
    spec = json.loads(json.dumps(PRESETS["reference"]))
    spec["stages"][0]["handle_invalid"] = policy
    spec["stages"][1]["handle_invalid"] = "keep" if policy == "keep" else "error"
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    train = tmp_path / "train.csv"
    train.write_text(csv_text(generate_table(200, seed=1).to_pylist()))
    state = tmp_path / f"{policy}.json"
    fitted = run(["fit", train, "-o", state, "--pipeline", tmp_path / "spec.json"])
    assert fitted.exit_code == 0, fitted.output
    return state


def test_unseen_category_under_skip_is_rejected_as_skipped(tmp_path) -> None:
    state = _state_with_policy(tmp_path, "skip")
    content = csv_text(_with(4, Geography="Atlantis"))
    result, out, rejects = score(
        tmp_path,
        "skip.csv",
        content,
        "--state",
        str(state),
        *UNBOUND_OK,
        "--model",
        str(bundled(MODEL)),
        "--max-rejects",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert [r["reason"] for r in read_csv_rows(rejects)] == ["skipped"]
    assert len(read_csv_rows(out)) == len(ROWS) - 1


def test_unseen_category_under_keep_is_scored_as_all_zero_one_hot(tmp_path) -> None:
    state = _state_with_policy(tmp_path, "keep")
    content = csv_text(_with(4, Geography="Atlantis", Gender=""))
    result, out, rejects = score(
        tmp_path,
        "keep.csv",
        content,
        "--state",
        str(state),
        *UNBOUND_OK,
        "--model",
        str(bundled(MODEL)),
    )
    assert result.exit_code == 0, result.output
    assert read_csv_rows(rejects) == []
    assert len(read_csv_rows(out)) == len(ROWS)


# --- --max-rejects ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "bad_rows", "code"),
    [
        (["--max-rejects", "2"], 2, 0),
        (["--max-rejects", "2"], 3, 3),
        (["--max-rejects", "25%"], 3, 0),
        (["--max-rejects", "20%"], 3, 3),
        ([], 0, 0),
        ([], 1, 3),
        (["--max-rejects", "0"], 1, 3),
    ],
)
def test_max_rejects_fails_the_run_and_publishes_nothing(tmp_path, option, bad_rows, code) -> None:
    rows = [{**r, "Age": "x"} if i < bad_rows else r for i, r in enumerate(ROWS)]
    result, out, rejects = score(tmp_path, "in.csv", csv_text(rows), *option)
    assert result.exit_code == code, result.output
    if code:
        assert "over the limit of" in result.stderr and "line 2, column Age" in result.stderr
        assert "pass --max-rejects 100%" in result.stderr
        assert_nothing_published(tmp_path)
    else:
        assert len(read_csv_rows(out)) + len(read_csv_rows(rejects)) == len(ROWS)


def test_max_rejects_with_stdout_output_says_what_was_already_written(tmp_path) -> None:
    """Scored rows stream to stdout as they come: the error must not say nothing was written."""
    rows = [{**r, "Age": "x"} if i >= len(ROWS) - 3 else r for i, r in enumerate(ROWS)]
    path = tmp_path / "in.csv"
    path.write_text(csv_text(rows))
    result = run(["score", str(path), "-o", "-", "--max-rejects", "10%"])
    assert result.exit_code == 3
    scored = len(ROWS) - 3
    assert result.stdout.count("\n") == scored + 1  # header + the scored rows
    assert f"{scored:,} scored rows had already gone to stdout" in result.stderr
    assert "the rejects went to stderr" in result.stderr  # the default with stdout output
    assert "nothing was written" not in result.stderr
    kept = run(
        [
            "score",
            str(path),
            "-o",
            "-",
            "--max-rejects",
            "10%",
            "--rejects",
            str(tmp_path / "r.csv"),
        ]
    )
    assert "the rejects file was not written" in kept.stderr
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("spec", ["abc", "-1", "101%", "5%%", ""])
def test_bad_max_rejects_is_a_usage_error(tmp_path, spec) -> None:
    result, _, _ = score(tmp_path, "in.csv", csv_text(ROWS), "--max-rejects", spec)
    assert result.exit_code == 2 and "--max-rejects must be" in result.stderr


# --- stdin: same rejects, same lines ----------------------------------------------------------


def test_stdin_gives_the_same_rejects_as_a_file(tmp_path) -> None:
    content = csv_text(_with(3, Age="?")).replace("\n", "\n\n", 2)
    by_file, _, rejects = score(tmp_path, "in.csv", content, "--max-rejects", "1")
    stdin_rejects = tmp_path / "stdin.rejects.csv"
    piped = run(
        ["score", "-", "-o", "-", "--rejects", str(stdin_rejects), "--max-rejects", "1"],
        input=content,
    )
    assert by_file.exit_code == piped.exit_code == 0
    strip = [{k: v for k, v in r.items() if k != "source"} for r in read_csv_rows(rejects)]
    strip_stdin = [
        {k: v for k, v in r.items() if k != "source"} for r in read_csv_rows(stdin_rejects)
    ]
    assert strip == strip_stdin and len(strip) == 1


# --- hypothesis: arbitrary CSV never escapes as anything but ChurnctlError; counts add up ---------

CELLS = st.one_of(
    st.sampled_from(["", " ", "NaN", "inf", "1e3", "-0", "12", "abc", "France", "Male", '"', "\n"]),
    st.text(max_size=8),
)


@st.composite
def csv_documents(draw) -> str:
    header = draw(st.permutations(HEADER))
    rows = draw(st.lists(st.lists(CELLS, min_size=10, max_size=16), max_size=12))
    good = draw(st.lists(st.sampled_from(ROWS), max_size=5))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    for row in good:
        writer.writerow([row[c] for c in header])
    return buffer.getvalue()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=csv_documents())
def test_arbitrary_csv_counts_always_add_up(tmp_path_factory, document) -> None:
    directory = tmp_path_factory.mktemp("hyp")
    source = directory / "in.csv"
    source.write_text(document, encoding="utf-8", newline="")
    request = ScoreRequest(
        input=str(source),
        output=str(directory / "out.csv"),
        scorer=Scorer(load_state(bundled(STATE)), ChurnModel(bundled(MODEL))),
        max_rejects=NO_LIMIT,
        read_options=ReadOptions(),
    )
    try:
        summary = score_file(request)
    except ChurnctlError:
        return
    lines = io.StringIO(document, newline="")  # the reference reader: csv, runaways cut
    splits = split_records(lines, delimiter=",", cap=MAX_FIELD_CHARS)
    records = [s.fields for s in splits if s.fields or s.runaway][1:]
    scored = pacsv.read_csv(directory / "out.csv").num_rows if summary.rows.scored else 0
    rejects = read_csv_rows(directory / "out.rejects.csv")
    assert summary.rows.read == len(records) == scored + len(rejects)
    assert summary.rows.rejected == len(rejects)


def test_normalised_category_column_accepts_case_and_whitespace_variants(tmp_path) -> None:
    spec = json.loads(json.dumps(PRESETS["reference"]))
    spec["stages"][0]["normalize"] = ["exact", "trim-lower"]
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    train = tmp_path / "train.csv"
    train.write_text(csv_text(generate_table(200, seed=1).to_pylist()))
    state = tmp_path / "norm.json"
    fitted = run(["fit", str(train), "-o", str(state), "--pipeline", str(tmp_path / "spec.json")])
    assert fitted.exit_code == 0, fitted.output
    variants = [{**r, "Gender": f" {r['Gender'].upper()} "} for r in ROWS]
    clean, clean_out, _ = score(
        tmp_path, "clean.csv", csv_text(ROWS), "--state", str(state), *UNBOUND_OK
    )
    clean_bytes = clean_out.read_bytes()
    result, out, rejects = score(
        tmp_path, "variants.csv", csv_text(variants), "--state", str(state), *UNBOUND_OK
    )
    assert clean.exit_code == result.exit_code == 0, result.output
    assert read_csv_rows(rejects) == []
    assert out.read_bytes() == clean_bytes


@pytest.mark.parametrize(
    "command",
    [
        ["score", "{sample}", "-o", "{blocked}/out.csv"],
        ["fit", "{sample}", "-o", "{blocked}/s.json"],
        ["generate", "-n", "5", "-o", "{blocked}/g.csv"],
        ["score", "{sample}", "-o", "{dir}", "--format", "csv"],
    ],
)
def test_unwritable_outputs_are_one_line_errors(tmp_path, command) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    (tmp_path / "a-dir").mkdir()
    sample = tmp_path / "in.csv"
    sample.write_text(csv_text(ROWS))
    args = [a.format(sample=sample, blocked=blocked, dir=tmp_path / "a-dir") for a in command]
    result = run(args)
    assert result.exit_code in (1, 2)
    message = result.stderr.strip()
    assert message.startswith("Error: ") and "\n" not in message and "Traceback" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-dir", "a-file", "in.csv"]
    assert list((tmp_path / "a-dir").iterdir()) == []
