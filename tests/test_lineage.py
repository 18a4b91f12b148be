"""Lineage in every output (issue 20, part 3): each format and runtime records what produced
it (state, model, options, churnctl, time), published with the output and never without it,
and ``churnctl inspect OUTPUT`` reads it back; a corrupt record is refused in one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cli_helpers import assert_clean_error, plain, run
from onnx_factories import logistic_n1

from churnctl.atomic import file_sha256, temporaries
from churnctl.batch.lineage_files import (
    FOLDER_FILE,
    PARQUET_KEY,
    SIDECAR_SUFFIX,
    read_output_lineage,
)
from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.batch.score_files import FilesRequest, score_files
from churnctl.errors import InputError, TooManyRejectsError
from churnctl.io.rejects import NO_LIMIT
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.scoring.lineage import Lineage, model_digest_of, read_lineage
from churnctl.scoring.scorer import Scorer
from churnctl.version import package_version
from churnctl.watch.manifest import ManifestError
from churnctl.watch.watcher import Watcher, WatchSettings
from tests.csv_rows import csv_bytes, text_rows

FORMATS = ["csv", "jsonl", "parquet"]
KEEP = ("CustomerId", "Surname")


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(bundled(STATE), bundled(MODEL), keep=KEEP, threshold=0.3)


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    paths = []
    for seed in (1, 2):
        path = tmp_path / f"in{seed}.csv"
        path.write_bytes(csv_bytes(text_rows(30, seed)))
        paths.append(path)
    return paths


class Window:
    """The run's time window, to the second (a record's time is to the second)."""

    def __init__(self) -> None:
        self.start = datetime.now(UTC).replace(microsecond=0)

    def __enter__(self) -> Window:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end = datetime.now(UTC)


def assert_recorded(lineage: Lineage, scorer: Scorer, window: Window) -> None:
    """The record says what the scorer is, and a time within the run."""
    assert lineage.state_fingerprint == scorer.state.fingerprint
    assert lineage.model_digest == f"sha256:{scorer.model_digest}"
    assert (lineage.threshold, lineage.logits) == (scorer.threshold, scorer.logits)
    assert lineage.keep == tuple(scorer.keep)
    assert lineage.churnctl_version == package_version()
    assert window.start <= lineage.scored_time <= window.end


def assert_inspect_round_trips(output: Path, lineage: Lineage) -> None:
    result = run(
        ["inspect", output, "--json", "--model", bundled(MODEL), "--state", bundled(STATE)]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["lineage"] == lineage.document()
    assert document["scored_by"] == {"model": True, "state": True}


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_scored_file_records_its_lineage(
    tmp_path: Path, inputs: list[Path], scorer: Scorer, fmt: str
) -> None:
    output = tmp_path / f"out.{fmt}"
    with Window() as window:
        score_file(ScoreRequest(str(inputs[0]), str(output), scorer))
    lineage = read_output_lineage(output)
    assert_recorded(lineage, scorer, window)
    sidecar = Path(f"{output}{SIDECAR_SUFFIX}")
    if fmt == "parquet":  # in the footer, as pyarrow reads it
        assert not sidecar.exists()
        text = pq.read_metadata(output).metadata[PARQUET_KEY.encode()]
        assert json.loads(text) == lineage.document()
    else:
        assert json.loads(sidecar.read_text(encoding="utf-8")) == lineage.document()
        assert read_output_lineage(sidecar) == lineage  # the record named outright
    assert_inspect_round_trips(output, lineage)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_output_of_a_folder_and_the_joined_output_record_it(
    tmp_path: Path, inputs: list[Path], scorer: Scorer, fmt: str
) -> None:
    names = [str(p) for p in inputs]
    joined = tmp_path / f"joined.{fmt}"
    with Window() as window:
        score_files(FilesRequest(names, scorer, out_dir=tmp_path / "od", format=fmt, workers=1))
        score_files(FilesRequest(names, scorer, output=str(joined), workers=1))
    outputs = sorted((tmp_path / "od").glob(f"*.scored.{fmt}"))
    assert len(outputs) == 2
    for output in [*outputs, joined]:
        assert_recorded(read_output_lineage(output), scorer, window)
    records = sorted(p.name for p in tmp_path.rglob(f"*{SIDECAR_SUFFIX}"))
    expected = [f"{p.name}{SIDECAR_SUFFIX}" for p in [joined, *outputs]]
    assert records == ([] if fmt == "parquet" else sorted(expected))  # no part's record left
    assert_inspect_round_trips(joined, read_output_lineage(joined))


def test_a_watched_folder_records_it_once(tmp_path: Path, scorer: Scorer) -> None:
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    for seed in (3, 4):
        (in_dir / f"w{seed}.csv").write_bytes(csv_bytes(text_rows(20, seed)))
    settings = WatchSettings(
        in_dir=in_dir, out_dir=out_dir, scorer=scorer, once=True, settle=0.05, max_rejects=NO_LIMIT
    )
    with Window() as window:
        Watcher(settings).run()
    assert len(list(out_dir.glob("*.scored.csv"))) == 2
    assert list(out_dir.rglob(f"*{SIDECAR_SUFFIX}")) == []  # once per folder, not per file
    lineage = read_output_lineage(out_dir)
    assert lineage == read_lineage((out_dir / FOLDER_FILE).read_bytes(), "record")
    assert_recorded(lineage, scorer, window)
    assert_inspect_round_trips(out_dir, lineage)
    # another threshold into the same folder is refused before the record is touched
    other = replace(settings, scorer=Scorer(bundled(STATE), bundled(MODEL), keep=KEEP))
    with pytest.raises(ManifestError, match="threshold"):
        Watcher(other).run()
    assert read_output_lineage(out_dir) == lineage


def test_a_failed_run_publishes_neither_output_nor_record(
    tmp_path: Path, inputs: list[Path], scorer: Scorer
) -> None:
    bad = tmp_path / "bad.csv"
    rows = text_rows(10, 5)
    rows[3][4] = "Atlantis"  # an unseen category: one reject, over a limit of none
    bad.write_bytes(csv_bytes(rows))
    output = tmp_path / "o" / "out.csv"
    with pytest.raises(TooManyRejectsError):
        score_file(ScoreRequest(str(bad), str(output), scorer, max_rejects=0))
    assert list(output.parent.iterdir()) == []
    assert temporaries(output.parent) == []


def test_stdout_has_no_record_and_a_record_never_names_another_file(
    tmp_path: Path, inputs: list[Path], scorer: Scorer, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    before = set(tmp_path.iterdir())
    score_file(ScoreRequest(str(inputs[0]), "-", scorer, rejects=str(tmp_path / "r.csv")))
    assert set(tmp_path.iterdir()) - before == {tmp_path / "r.csv"}
    output = tmp_path / "out.csv"
    clash = ScoreRequest(str(inputs[0]), str(output), scorer, rejects=f"{output}{SIDECAR_SUFFIX}")
    with pytest.raises(Exception, match="lineage record"):
        score_file(clash)


def _record(**changed: object) -> str:
    good = Lineage.of(Scorer(bundled(STATE), bundled(MODEL))).document()
    return json.dumps({**good, **changed})


HOSTILE = {
    "empty": "",
    "not json": "{nope",
    "a list": "[1, 2]",
    "huge": " " * 70_000 + "{}",
    "nested too deeply": "[" * 60_000 + "]" * 60_000,
    "a number": "0.5",
    "other format": _record(format="mlflow"),
    "newer version": _record(version=2),
    "missing key": json.dumps({"format": "churnctl-lineage", "version": 1}),
    "extra key": _record(note="hi\nthere"),
    "bool threshold": _record(threshold=True),
    "threshold out of range": _record(threshold=7),
    "bad digest": _record(model_digest="md5:00"),
    "keep not names": _record(keep=[1]),
    "local time": _record(scored_at="2026-12-07 17:10:48+01:00"),
    "version as text": _record(version="1"),
}


@pytest.mark.parametrize("where", ["sidecar", "parquet"])
@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_corrupt_record_is_refused_in_one_line(tmp_path: Path, text: str, where: str) -> None:
    import pyarrow as pa

    if where == "parquet":  # the same text in a Parquet file's metadata
        output = tmp_path / "out.parquet"
        table = pa.table({"raw": pa.array([0.5], pa.float32())})
        pq.write_table(table.replace_schema_metadata({PARQUET_KEY: text}), output)
    else:
        output = tmp_path / "out.csv"
        output.write_text("CustomerId,raw,exited\n", encoding="utf-8")
        Path(f"{output}{SIDECAR_SUFFIX}").write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="not a churnctl lineage record") as caught:
        read_output_lineage(output)
    assert "\n" not in str(caught.value)
    assert_clean_error(run(["inspect", output]), 2, "not a churnctl lineage record")


def _foreign(path: Path, kind: str) -> None:
    """An output of another program (or of churnctl before lineage), or none at all."""
    import pyarrow as pa

    if kind == "csv":
        path.write_text("a\n1\n", encoding="utf-8")
    elif kind == "parquet":
        pq.write_table(pa.table({"a": [1]}), path)
    elif kind == "folder":
        path.mkdir()


WITHOUT = {
    "csv": "no x.lineage.json beside it",
    "parquet": "no churnctl.lineage key",
    "folder": "no _lineage.json in it",
    "missing": "no such output",
}


@pytest.mark.parametrize(("kind", "says"), WITHOUT.items(), ids=WITHOUT.keys())
def test_an_output_without_lineage_is_one_error_line(tmp_path: Path, kind: str, says: str) -> None:
    _foreign(tmp_path / "x", kind)
    assert_clean_error(run(["inspect", tmp_path / "x"]), 2, says)


def test_inspect_says_whether_a_model_and_state_scored_the_output(
    tmp_path: Path, inputs: list[Path], scorer: Scorer, sklearn_state: Path
) -> None:
    output = tmp_path / "out.csv"
    score_file(ScoreRequest(str(inputs[0]), str(output), scorer))
    same = run(["inspect", output, "--model", bundled(MODEL)])
    assert same.exit_code == 0, same.output
    assert "scored with the model" in plain(same.stdout) and "yes" in plain(same.stdout)
    other = run(["inspect", output, "--state", sklearn_state])
    assert other.exit_code == 2
    assert "NO" in plain(other.stdout)


def test_a_model_saved_with_external_data_is_digested_as_its_scorer_does(tmp_path: Path) -> None:
    """Its bytes with the data inline: the same digest, whatever the working folder."""
    import onnx

    plain = logistic_n1(tmp_path / "plain.onnx", 12)
    external = tmp_path / "ext" / "model.onnx"
    external.parent.mkdir()
    onnx.save_model(
        onnx.load_model(str(plain.path)),
        str(external),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    scorer = Scorer(bundled(STATE), external)
    assert model_digest_of(external) == f"sha256:{scorer.model_digest}"
    assert scorer.model_digest != file_sha256(external)  # not the bytes of the file alone


@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    assert temporaries(tmp_path, recursive=True) == []
