"""``verify``: every runtime agrees on the bundled sample and on rows with rejects; a runtime
deliberately broken is caught and named; the sample keeps the input's lines; the JSON."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.errors import FlinkError, UsageError
from churnctl.io.rejects import NO_LIMIT
from churnctl.io.sources import ReadOptions
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.scoring.scorer import ScoredBatch, Scorer
from churnctl.verify import run as verify_run
from churnctl.verify import runtimes, verify_runtimes
from churnctl.verify.runtimes import Outcome, Run, Runtime
from churnctl.verify.sample import ROW, write_sample
from tests.cli_helpers import ROOT, plain, run

SAMPLE = ROOT / "data" / "sample.csv"
NO_FLINK = ("flink",)
ONLY_WATCH = ("flink", "workers", "fused")  # the pool's process start: a second saved per run


def scorer(**options: object) -> Scorer:
    return Scorer(bundled(STATE), bundled(MODEL), **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def with_rejects(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 rows of the sample with bad values, a quoted line break and a malformed line."""
    frame = pd.read_csv(SAMPLE, nrows=300).astype(str)
    frame.loc[[4, 150, 151], "Age"] = "old"
    frame.loc[9, "Geography"] = "Atlantis"
    frame.loc[20, "Surname"] = "two\nlines"  # one record over two lines
    frame.loc[200, "Balance"] = ""
    path = tmp_path_factory.mktemp("data") / "with-rejects.csv"
    frame.to_csv(path, index=False)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("1,2,3\n")
    return path


def test_every_runtime_agrees_on_the_bundled_sample() -> None:
    report = verify_runtimes(SAMPLE, scorer(), rows=400, skip=NO_FLINK)
    assert report.passed and report.rows == 400
    by_name = {r.runtime: r for r in report.results}
    assert list(by_name) == ["score", "workers", "watch", "flink", "fused"]
    for name in ("score", "workers", "watch", "fused"):
        result = by_name[name]
        assert (result.status, result.agrees, result.rows.scored) == ("ran", True, 400)
        assert result.max_delta <= 1e-6 and (result.flipped, result.same_rejects) == (0, True)
    assert (by_name["flink"].status, by_name["flink"].reason) == ("skipped", "skipped as asked")


def test_rejects_are_compared_and_agree(with_rejects: Path) -> None:
    report = verify_runtimes(with_rejects, scorer(), skip=NO_FLINK)
    assert report.passed, report
    for result in [*report.results[:3], report.results[4]]:
        assert (result.rows.scored, result.rows.rejected) == (295, 6)


def test_the_sample_keeps_the_input_s_lines(with_rejects: Path, tmp_path: Path) -> None:
    """score_file on the two numbered parts rejects the very (line, column, reason) of
    score_file on the input itself: line numbers map back across the parts."""
    output = tmp_path / "direct.csv"
    request = ScoreRequest(str(with_rejects), str(output), scorer(keep=()), max_rejects=NO_LIMIT)
    summary = score_file(request)
    direct = pd.read_csv(summary.rejects, keep_default_na=False)
    expected = sorted(
        (int(line) if line != "" else None, column or None, one_field_more(reason))
        for line, column, reason in zip(
            direct["line"], direct["column"], direct["reason"], strict=True
        )
    )
    (tmp_path / "sample").mkdir()
    sample = write_sample(with_rejects, tmp_path / "sample", None, ReadOptions())
    outcome = Outcome("score")
    numbered = scorer(keep=(ROW,))
    runtimes.run_batch(Run(numbered, sample, tmp_path, ReadOptions()), outcome)
    assert sorted(outcome.rejects, key=str) == sorted(expected, key=str)
    assert len(expected) == 6
    assert sorted(outcome.scored) == [
        n for n in range(1, 302) if n not in {5, 10, 151, 152, 201, 301}
    ]


def one_field_more(reason: str) -> str:
    """A malformed line's reason once the row number is put in front: one field more."""
    return (
        re.sub(r"\d+", lambda n: str(int(n.group()) + 1), reason) if "fields" in reason else reason
    )


@pytest.mark.parametrize("rows", [1, 2, 7, 150])
def test_rows_takes_the_first_records(with_rejects: Path, tmp_path: Path, rows: int) -> None:
    sample = write_sample(with_rejects, tmp_path, rows, ReadOptions())
    assert sample.rows == rows
    frames = [pd.read_csv(p.path, keep_default_na=False) for p in sample.parts]
    numbers = [n for f in frames for n in f[ROW]]
    assert numbers == list(range(1, rows + 1))
    original = pd.read_csv(with_rejects, nrows=rows, keep_default_na=False, dtype=str)
    joined = pd.concat([f for f in frames if len(f)]).drop(columns=ROW).astype(str)
    assert joined.reset_index(drop=True).equals(original)


def test_a_parquet_input_is_verified_too(tmp_path: Path) -> None:
    path = tmp_path / "sample.parquet"
    pd.read_csv(SAMPLE, nrows=120).to_parquet(path)
    report = verify_runtimes(path, scorer(), skip=ONLY_WATCH)
    assert report.passed and report.results[2].rows.scored == 120


class Shifted(Scorer):
    """A broken runtime's scorer: raw 0.001 higher."""

    def score(self, batch: object) -> ScoredBatch:
        result = super().score(batch)  # type: ignore[arg-type]
        table = result.scored
        index = table.schema.get_field_index("raw")
        raw = pa.compute.add(table.column("raw"), pa.scalar(1e-3, pa.float32()))
        return ScoredBatch(table.set_column(index, "raw", raw), result.rejects)


class Refusing(Scorer):
    """A broken runtime's scorer: rejects the rows it would score above 0.9."""

    def score(self, batch: object) -> ScoredBatch:
        result = super().score(batch)  # type: ignore[arg-type]
        table = result.scored
        high = pa.compute.greater(table.column("raw"), 0.9)
        kept = table.filter(pa.compute.invert(high))
        return ScoredBatch(kept, result.rejects)  # rows lost: neither scored nor rejected


class Lenient(Scorer):
    """A broken runtime's scorer: exited from 0.45 on instead of the threshold."""

    def score(self, batch: object) -> ScoredBatch:
        result = super().score(batch)  # type: ignore[arg-type]
        table = result.scored
        exited = pa.compute.greater(table.column("raw"), 0.45)
        index = table.schema.get_field_index("exited")
        return ScoredBatch(table.set_column(index, "exited", exited), result.rejects)


def broken(name: str, kind: type[Scorer]) -> list[Runtime]:
    """The runtimes with ``name``'s scorer replaced by a ``kind``."""

    def run_broken(run: Run, outcome: Outcome, original: Runtime) -> None:
        bad = copy.copy(run.scorer)
        bad.__class__ = kind
        original.run(Run(bad, run.sample, run.folder, run.read_options), outcome)

    return [
        Runtime(r.name, lambda run, outcome, r=r: run_broken(run, outcome, r))
        if r.name == name
        else r
        for r in runtimes.RUNTIMES
    ]


@pytest.mark.parametrize(
    ("kind", "finding"),
    [
        (Shifted, "max |Δ raw| 0.001 > 1e-06"),
        (Lenient, "decisions flipped"),
        (Refusing, "rows missing"),
    ],
)
def test_a_broken_runtime_is_caught_and_named(
    monkeypatch: pytest.MonkeyPatch, with_rejects: Path, kind: type[Scorer], finding: str
) -> None:
    monkeypatch.setattr(verify_run, "RUNTIMES", broken("watch", kind))
    report = verify_runtimes(with_rejects, scorer(), skip=ONLY_WATCH)
    assert [r.runtime for r in report.disagreeing] == ["watch"]
    result = run(["verify", with_rejects, "--skip", "flink,workers"])
    assert result.exit_code == 5, result.output
    error = plain(result.stderr)
    assert "Error: runtimes disagree with score: watch:" in error, error
    assert finding in error
    assert "DIFFERS" in plain(result.stdout)


@pytest.mark.parametrize("name", ["score", "workers"])
def test_a_broken_scorer_in_the_reference_or_in_a_pool_process_is_caught(
    monkeypatch: pytest.MonkeyPatch, with_rejects: Path, name: str
) -> None:
    """The pool's process gets the broken scorer pickled: it scores there (never here)."""
    monkeypatch.setattr(verify_run, "RUNTIMES", broken(name, Shifted))
    report = verify_runtimes(with_rejects, scorer(), skip=NO_FLINK)
    expected = {"workers", "watch", "fused"} if name == "score" else {"workers"}
    assert {r.runtime for r in report.disagreeing} == expected
    for result in report.disagreeing:
        assert result.max_delta == pytest.approx(1e-3, rel=1e-3)


def test_a_runtime_that_fails_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(run: Run, outcome: Outcome) -> None:
        raise FlinkError("the job failed: it was told to")

    monkeypatch.setitem(runtimes.AVAILABLE, "flink", lambda: None)
    changed = [Runtime("flink", fail) if r.name == "flink" else r for r in runtimes.RUNTIMES]
    monkeypatch.setattr(verify_run, "RUNTIMES", changed)
    result = run(["verify", SAMPLE, "--rows", "50", "--json", "--skip", "workers"])
    assert result.exit_code == 5, result.output
    document = json.loads(result.stdout)
    assert document["passed"] is False and document["exit_code"] == 5
    flink = document["runtimes"][3]
    assert (flink["status"], flink["reason"]) == ("failed", "the job failed: it was told to")
    assert "flink failed: the job failed" in plain(result.stderr)


def test_flink_is_skipped_with_the_reason_when_it_cannot_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import churnctl.flink.home as home

    def missing() -> None:
        raise FlinkError("Java not found: Flink needs Java 11 or newer")

    monkeypatch.setattr(home, "flink_home", missing)
    report = verify_runtimes(SAMPLE, scorer(), rows=30, skip=["workers"])
    flink = report.results[3]
    assert (flink.status, flink.agrees) == ("skipped", None)
    assert flink.reason == "Java not found: Flink needs Java 11 or newer"
    assert report.passed  # a runtime skipped is not a disagreement


VERIFY_KEYS = ["command", "input", "rows", "tolerance", "passed", "exit_code", "runtimes"]
RUNTIME_KEYS = [
    "runtime",
    "status",
    "reason",
    "rows_scored",
    "rows_rejected",
    "max_delta",
    "flipped",
    "missing",
    "extra",
    "same_rejects",
    "agrees",
    "seconds",
]


def test_the_command_prints_a_table_or_one_json_document(with_rejects: Path) -> None:
    result = run(["verify", with_rejects, "--skip", "flink", "--json", "--tolerance", "0"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert list(document) == VERIFY_KEYS
    assert (document["rows"], document["passed"], document["exit_code"]) == (301, True, 0)
    assert [r["runtime"] for r in document["runtimes"]] == [
        "score",
        "workers",
        "watch",
        "flink",
        "fused",
    ]
    for entry in document["runtimes"]:
        assert list(entry) == RUNTIME_KEYS
    assert document["runtimes"][1]["rows_rejected"] == 6
    table = run(["verify", SAMPLE, "--rows", "100", "--skip", "flink,workers"])
    assert table.exit_code == 0, table.output
    text = plain(table.stdout)
    assert "watch 100 0 0 0 yes agrees" in text
    assert "workers: skipped: skipped as asked" in text
    assert "agrees with score on 100 rows" in plain(table.stderr)


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"rows": 0}, "rows must be a whole number >= 1"),
        ({"tolerance": -1.0}, "tolerance must be a number >= 0"),
        ({"tolerance": float("nan")}, "tolerance must be a number >= 0"),
        ({"skip": ["score"]}, "cannot skip 'score'"),
        ({"skip": ["onnx"]}, "cannot skip 'onnx'"),
    ],
)
def test_arguments_are_checked(arguments: dict, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        verify_runtimes(SAMPLE, scorer(), **arguments)


def test_stdin_and_a_clashing_column_are_refused(tmp_path: Path) -> None:
    result = run(["verify", "-"])
    assert result.exit_code == 2 and "name a file to verify" in plain(result.stderr)
    clash = tmp_path / "clash.csv"
    pd.read_csv(SAMPLE, nrows=5).assign(**{ROW: 1}).to_csv(clash, index=False)
    result = run(["verify", clash, "--skip", "flink"])
    assert result.exit_code == 2 and ROW in plain(result.stderr)


@pytest.mark.flink
def test_the_embedded_flink_job_agrees(with_rejects: Path) -> None:
    report = verify_runtimes(with_rejects, scorer(), rows=200)
    flink = report.results[3]
    assert (flink.runtime, flink.status, flink.agrees) == ("flink", "ran", True), flink
    assert report.passed


def test_an_input_score_refuses_is_score_s_error(tmp_path: Path) -> None:
    """The reference refuses the input as a whole: its own error and exit code, no table."""
    path = tmp_path / "no-age.csv"
    pd.read_csv(SAMPLE, nrows=20).drop(columns="Age").to_csv(path, index=False)
    result = run(["verify", path, "--skip", "flink,workers"])
    assert result.exit_code == 2, result.output
    error = plain(result.stderr)
    assert error.startswith(f"Error: {path}: missing required column(s) Age"), error
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("name", "delimiter"), [("in.csv.gz", ","), ("in.csv", ";"), ("in.csv", "\t")]
)
def test_compressed_and_other_delimited_inputs_are_numbered_as_read(
    tmp_path: Path, name: str, delimiter: str
) -> None:
    path = tmp_path / name
    pd.read_csv(SAMPLE, nrows=90).to_csv(path, index=False, sep=delimiter)
    options = ReadOptions(delimiter=delimiter)
    report = verify_runtimes(path, scorer(), rows=60, read_options=options, skip=ONLY_WATCH)
    assert report.passed and report.rows == 60
    assert [r.rows.scored for r in report.results[:3]] == [60, 0, 60]  # workers skipped
