"""The pieces of ``watch``: manifest, names, completeness rules, disposal, in-process runs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import cli_env
from hypothesis import given
from hypothesis import strategies as st

from churnctl.atomic import file_sha256, temporaries
from churnctl.batch.counts import RowCounts
from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.errors import UsageError
from churnctl.faults import FAULT_ENV
from churnctl.io.completeness import (
    Pending,
    Readiness,
    has_complete_ending,
    marker_readiness,
    readiness,
)
from churnctl.io.formats import split_input_suffix
from churnctl.io.listing import NameRules
from churnctl.io.naming import derived_names, tagged_name
from churnctl.io.rejects import NO_LIMIT
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.scoring.scorer import Scorer
from churnctl.watch.arrivals import Events
from churnctl.watch.disposal import Refusal, dispose, dispose_marker, move_aside, quarantine
from churnctl.watch.manifest import Entry, ManifestError, open_manifest, read_manifest
from churnctl.watch.watcher import Watcher, WatchSettings, published_counts
from tests.csv_rows import csv_bytes, text_rows

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(bundled(STATE), bundled(MODEL))


def entry(name: str = "a.csv", sha: str = "ab" * 32) -> Entry:
    return Entry(name, sha, 10, 1, 7, "claimed", "a.x.scored.csv", "a.x.rejects.csv")


# --- the manifest ---------------------------------------------------------------------------


def test_a_claim_counts_attempts_and_done_records_counts(tmp_path: Path) -> None:
    with open_manifest(tmp_path) as manifest:
        assert manifest.claim(entry()) == 1
        assert manifest.claim(entry()) == 2
        manifest.done("a.csv", "ab" * 32, RowCounts(5, 4, 1), 12.5)
        row = manifest.lookup("a.csv", "ab" * 32)
        assert row is not None
        assert (row.state, row.rows_read, row.rows_rejected, row.attempts) == ("done", 5, 1, 2)
        assert manifest.claimed() == []


def test_the_manifest_is_wal_with_full_sync(tmp_path: Path) -> None:
    with open_manifest(tmp_path) as manifest:
        db = sqlite3.connect(manifest.path)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()


def test_the_key_is_name_and_content_hash(tmp_path: Path) -> None:
    with open_manifest(tmp_path) as manifest:
        manifest.claim(entry(sha="aa" * 32))
        manifest.claim(entry(sha="bb" * 32))
        manifest.claim(entry(name="b.csv", sha="aa" * 32))
        assert manifest.summary().by_state == {"claimed": 3, "done": 0, "failed": 0}


def test_a_second_holder_of_the_output_folder_is_refused(tmp_path: Path) -> None:
    with (
        open_manifest(tmp_path),
        pytest.raises(ManifestError, match="another watcher"),
        open_manifest(tmp_path),
    ):
        pass
    with open_manifest(tmp_path):  # released on exit
        pass


def test_a_failed_commit_raises_not_ignored(tmp_path: Path) -> None:
    with open_manifest(tmp_path) as manifest:
        other = sqlite3.connect(manifest.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # hold the write lock: our commit cannot happen
        manifest._db.execute("PRAGMA busy_timeout = 50")
        with pytest.raises(ManifestError, match="cannot commit"):
            manifest.claim(entry())
        other.execute("ROLLBACK")
        other.close()


def test_another_scoring_configuration_is_refused(tmp_path: Path) -> None:
    with open_manifest(tmp_path) as manifest:
        manifest.check_identity({"threshold": 0.5, "model": "m"})
        manifest.check_identity({"threshold": 0.5, "model": "m"})
        with pytest.raises(ManifestError, match="another threshold"):
            manifest.check_identity({"threshold": 0.6, "model": "m"})


def test_pruning_keeps_claimed_rows_and_present_inputs(tmp_path: Path) -> None:
    with open_manifest(tmp_path) as manifest:
        for name in ("gone.csv", "here.csv", "busy.csv"):
            manifest.claim(entry(name))
        for name in ("gone.csv", "here.csv"):
            manifest.done(name, "ab" * 32, RowCounts(1, 1, 0), None)
        assert manifest.done_names().keys() == {"gone.csv", "here.csv"}
        assert manifest.forget_done(["gone.csv"]) == 1
        assert manifest.prune_older(0) == 1  # here.csv finished before now
        assert [e.name for e in manifest.claimed()] == ["busy.csv"]


def test_status_reads_a_manifest_without_its_lock(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no watch manifest"):
        read_manifest(tmp_path)
    with open_manifest(tmp_path) as manifest:
        manifest.claim(entry())
        manifest.failed("a.csv", "ab" * 32, "bad header")
        reader = read_manifest(tmp_path)  # while the watcher holds it
        summary = reader.summary()
        reader.close()
    assert summary.by_state["failed"] == 1
    assert summary.failures[0].error == "bad header"


# --- names -----------------------------------------------------------------------------------


def test_derived_names_follow_name_and_content() -> None:
    assert derived_names("part-1.csv.gz", "0123456789abcdef" * 4, "csv") == (
        "part-1.0123456789abcdef.scored.csv",
        "part-1.0123456789abcdef.rejects.csv",
    )
    assert split_input_suffix("x.parquet") == ("x", ".parquet")
    assert split_input_suffix(".csv") == (".csv", "")
    assert tagged_name("a.csv", "f" * 64) == f"a.{'f' * 16}.csv"


@given(
    # names as the OS lists them: no lone surrogate but os.fsdecode's escapes of bad bytes
    st.text(
        st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",))
        | st.sampled_from([chr(0xDC80 + i) for i in range(128)]),
        min_size=1,
        max_size=20,
    ),
    st.text("0123456789abcdef", min_size=64, max_size=64),
    st.text("0123456789abcdef", min_size=64, max_size=64),
)
def test_derived_names_are_stable_and_differ_with_content(name: str, one: str, two: str) -> None:
    assert derived_names(name, one, "csv") == derived_names(name, one, "csv")
    if one[:16] != two[:16]:
        assert set(derived_names(name, one, "csv")).isdisjoint(derived_names(name, two, "csv"))


def test_name_rules() -> None:
    rules = NameRules(done_marker=".done")
    taken = ["a.csv", "b.CSV", "c.csv.gz", "d.parquet"]
    never = [".a.csv", "_a.csv", "a.csv.tmp", "a.csv.part", "a.crdownload", "a.txt", "a.csv.done"]
    assert [n for n in taken + never if rules.is_input(n)] == taken
    assert rules.input_of_marker("a.csv.done") == "a.csv"
    assert NameRules(("*.txt",)).is_input("a.txt")
    with pytest.raises(UsageError, match="done marker"):
        NameRules(done_marker=".")


@pytest.mark.parametrize(
    ("name", "content", "complete"),
    [
        ("a.csv", b"h\n1\n", True),
        ("a.csv", b"h\n1", False),
        ("a.csv", b"", True),
        ("a.parquet", b"PAR1....PAR1", True),
        ("a.parquet", b"PAR1....", False),
        ("a.csv.gz", b"\x1f\x8b", True),  # cannot tell: the settle time decides
    ],
)
def test_complete_endings(tmp_path: Path, name: str, content: bytes, complete: bool) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert has_complete_ending(path) is complete


def test_a_file_written_in_place_is_ready_after_its_settle_time(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"h\n1\n")
    old = time.time() - 3600
    os.utime(path, (old, old))  # an old mtime does not count: the watcher's own view does
    pending = Pending()
    assert readiness(pending, path.stat(), path, settle=0.2) is Readiness.WAITING
    time.sleep(0.25)
    assert readiness(pending, path.stat(), path, settle=0.2) is Readiness.READY
    pending.writing = True  # a writer still has it open
    assert readiness(pending, path.stat(), path, settle=0.2) is Readiness.WAITING
    pending.writing = False
    with path.open("ab") as handle:
        handle.write(b"2")  # a cut-short line: changed, so quiet again from now
    assert readiness(pending, path.stat(), path, settle=0.2) is Readiness.WAITING
    time.sleep(0.25)
    assert readiness(pending, path.stat(), path, settle=0.2) is Readiness.INCOMPLETE
    assert readiness(Pending(renamed_in=True), path.stat(), path, settle=60) is Readiness.READY


def test_a_done_marker_counts_only_when_newer_than_its_file(tmp_path: Path) -> None:
    path, marker = tmp_path / "a.csv", tmp_path / "a.csv.done"
    path.write_bytes(b"h\n")
    assert marker_readiness(marker, path.stat()) is Readiness.WAITING
    marker.touch()
    assert marker_readiness(marker, path.stat()) is Readiness.READY
    os.utime(marker, (time.time() - 60, time.time() - 60))  # an old marker, a rewritten file
    assert marker_readiness(marker, path.stat()) is Readiness.WAITING


def test_a_full_event_queue_asks_for_a_rescan(tmp_path: Path) -> None:
    events = Events(tmp_path, NameRules(), size=2)
    for i in range(3):
        events.put("renamed-in", str(tmp_path / f"{i}.csv"))
    assert events.overflowed.is_set()
    assert [hint.name for hint in events.drain()] == ["0.csv", "1.csv"]
    events.put("renamed-in", str(tmp_path / "sub" / "x.csv"))  # not in the folder itself
    events.put("renamed-in", str(tmp_path / ".x.csv"))  # hidden
    assert list(events.drain()) == []


# --- disposal --------------------------------------------------------------------------------


def test_moves_never_replace_a_file(tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "a.csv").write_text("old")
    (tmp_path / "a.csv").write_text("new")
    moved = move_aside(tmp_path / "a.csv", tmp_path / "archive", "c" * 64)
    assert moved.name == f"a.{'c' * 16}.csv"
    assert (tmp_path / "archive" / "a.csv").read_text() == "old"
    assert moved.read_text() == "new"


def test_quarantine_writes_the_reason_beside_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("x")
    scored = (tmp_path / "bad.csv").stat()
    moved = quarantine(tmp_path / "bad.csv", "d" * 64, Refusal("missing column Age", 1), scored)
    assert moved.path == tmp_path / ".failed" / "bad.csv"
    record = json.loads((tmp_path / ".failed" / "bad.csv.error.json").read_text())
    assert record["reason"] == "missing column Age"
    assert record["sha256"] == "d" * 64


def test_dispose_deletes_or_archives_the_input_and_its_marker(tmp_path: Path) -> None:
    for name in ("a.csv", "a.csv.done", "b.csv"):
        (tmp_path / name).write_text(name)
    a, b = (tmp_path / "a.csv").stat(), (tmp_path / "b.csv").stat()
    dispose(tmp_path / "a.csv", "delete", tmp_path / "arch", "e" * 64, a)
    dispose_marker(tmp_path / "a.csv.done", "delete", tmp_path / "arch", "e" * 64)
    dispose(tmp_path / "b.csv", "archive", tmp_path / "arch", "e" * 64, b)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["b.csv"]
    assert (tmp_path / "arch" / "b.csv").exists()


# --- fault injection -------------------------------------------------------------------------


def test_a_fault_step_kills_the_process_at_the_asked_occurrence() -> None:
    code = (
        "from churnctl.faults import checkpoint\n"
        "checkpoint('after-rename'); print('first', flush=True)\n"
        "checkpoint('after-commit'); checkpoint('after-rename'); print('second', flush=True)\n"
    )
    env = cli_env(**{FAULT_ENV: "after-rename@2"})
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == -9
    assert run.stdout == "first\n"
    env.pop(FAULT_ENV)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (0, "first\nsecond\n")


# --- in-process runs -------------------------------------------------------------------------


def messy_csv(seed: int) -> bytes:
    """41 rows, 3 rejected (unseen category, non-number, empty value), one quoted newline."""
    rows = text_rows(40, seed)
    rows[3][4] = "Atlantis"
    rows[10][3] = "abc"
    rows[20][6] = ""
    return csv_bytes(rows) + b'1,2,"quoted\nnewline",600,France,Male,40,3,0,1,1,1,50000,0\n'


def run_once(in_dir: Path, out_dir: Path, scorer: Scorer, **settings: object) -> Watcher:
    settings = {"once": True, "settle": 0.05, "max_rejects": NO_LIMIT, **settings}
    watcher = Watcher(WatchSettings(in_dir=in_dir, out_dir=out_dir, scorer=scorer, **settings))
    watcher.run()
    return watcher


def test_batch_equals_stream(tmp_path: Path, scorer: Scorer) -> None:
    """The same files through score_file and through the watcher: identical bytes."""
    in_dir, out_dir, batch = tmp_path / "in", tmp_path / "out", tmp_path / "batch"
    for folder in (in_dir, out_dir, batch):
        folder.mkdir()
    for seed in (1, 2):
        (in_dir / f"p{seed}.csv").write_bytes(messy_csv(seed))
    report = run_once(in_dir, out_dir, scorer).report
    assert (report.scored, report.failed, report.rows.rejected) == (2, 0, 6)
    for seed in (1, 2):
        path = in_dir / f"p{seed}.csv"
        output, rejects = derived_names(path.name, file_sha256(path), "csv")
        score_file(
            ScoreRequest(
                input=str(path),
                output=str(batch / output),
                scorer=scorer,
                rejects=str(batch / rejects),
                max_rejects=NO_LIMIT,
            )
        )
        for name in (output, rejects):
            assert (out_dir / name).read_bytes() == (batch / name).read_bytes()
        assert published_counts(out_dir / output, out_dir / rejects) == RowCounts(41, 38, 3)


def test_a_second_run_scores_nothing_again(tmp_path: Path, scorer: Scorer) -> None:
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    (in_dir / "a.csv").write_bytes(messy_csv(3))
    assert run_once(in_dir, out_dir, scorer).report.scored == 1
    outputs = sorted(p.name for p in out_dir.iterdir())
    assert run_once(in_dir, out_dir, scorer).report.scored == 0
    assert sorted(p.name for p in out_dir.iterdir()) == outputs


def test_a_claim_left_by_a_crash_is_reconciled(tmp_path: Path, scorer: Scorer) -> None:
    """Published but not committed: marked done from the files; unpublished: redone."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    for name in ("published.csv", "unpublished.csv"):
        (in_dir / name).write_bytes(messy_csv(4 if name[0] == "p" else 5))
    run_once(in_dir, out_dir, scorer)
    with open_manifest(out_dir) as manifest:
        for name in ("published.csv", "unpublished.csv"):
            manifest.claim(manifest.lookup(name, file_sha256(in_dir / name)))  # type: ignore[arg-type]
    unpublished = manifest_row(out_dir, "unpublished.csv")
    (out_dir / str(unpublished.rejects)).unlink()
    (out_dir / ".x.scored.csv.1234.tmp").write_text("partial")
    report = run_once(in_dir, out_dir, scorer).report
    assert report.scored == 1  # only the unpublished one is scored again
    assert not temporaries(out_dir)
    assert manifest_row(out_dir, "published.csv").rows_read == 41
    assert manifest_row(out_dir, "unpublished.csv").attempts == 3


def manifest_row(out_dir: Path, name: str) -> Entry:
    reader = read_manifest(out_dir)
    try:
        found = reader.latest(name)
    finally:
        reader.close()
    assert found is not None
    return found


def test_a_refused_file_is_quarantined_and_the_rest_scored(tmp_path: Path, scorer: Scorer) -> None:
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    (in_dir / "bad.csv").write_bytes(b"a,b\n1,2\n")
    (in_dir / "good.csv").write_bytes(messy_csv(6))
    report = run_once(in_dir, out_dir, scorer).report
    assert (report.scored, report.failed) == (1, 1)
    reason = json.loads((in_dir / ".failed" / "bad.csv.error.json").read_text())["reason"]
    assert "bad.csv" in reason and "CreditScore" in reason
    assert manifest_row(out_dir, "bad.csv").state == "failed"


def test_the_output_folder_cannot_be_the_input_folder(tmp_path: Path, scorer: Scorer) -> None:
    with pytest.raises(UsageError, match="scored again as inputs"):
        WatchSettings(in_dir=tmp_path, out_dir=tmp_path / ".", scorer=scorer)
    with pytest.raises(UsageError, match="not a folder"):
        WatchSettings(in_dir=tmp_path / "nope", out_dir=tmp_path, scorer=scorer)
    with pytest.raises(UsageError, match="after must be"):
        WatchSettings(in_dir=tmp_path, out_dir=tmp_path / "o", scorer=scorer, after="move")
