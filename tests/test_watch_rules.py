"""The watcher's rules against hostile folders, as units: layouts, names, locks, held files.

Folders that feed back, names cut to the file system's limit, the input folder's lock,
files held by their descriptor (never a link, never blocking), disposal of the scored
inode only, the manifest replaced, messages that fit their case, the recent rows/s.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_helpers import assert_clean_error, plain, run
from hypothesis import given
from hypothesis import strategies as st
from test_watch_units import messy_csv, run_once

from churnctl.atomic import atomic_write_bytes, file_sha256, probe_writable
from churnctl.batch.score_file import ScoreRequest, score_file
from churnctl.cli.watching import RecentRate, _event_line
from churnctl.errors import Fix, OutputError, UsageError
from churnctl.io.completeness import has_complete_ending
from churnctl.io.held import HeldFile, NotRegular, open_regular
from churnctl.io.locks import LockHeld, take_lock
from churnctl.io.naming import derived_names
from churnctl.io.rejects import NO_LIMIT
from churnctl.names import fit_name
from churnctl.samples.bundled import MODEL, STATE, bundled
from churnctl.scoring.scorer import Scorer
from churnctl.watch.disposal import ASIDE_PREFIX, put_back, take_aside
from churnctl.watch.manifest import ManifestError, open_manifest
from churnctl.watch.watcher import REPROCESS_FIX, WatchEvent, WatchSettings
from tests.csv_rows import csv_bytes, text_rows


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(bundled(STATE), bundled(MODEL))


# --- item 2: folders that feed back ---------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """in/ (with in/sub/ and in/.hidden/), out/, and links: alias → in, alias-sub → in/sub."""
    for folder in ("in/sub", "in/.hidden", "out/.churnctl/landing", "elsewhere"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "alias").symlink_to(tmp_path / "in")
    (tmp_path / "alias-sub").symlink_to(tmp_path / "in" / "sub")
    return tmp_path


# (in, out, archive_dir, after, the error's fragment; None: allowed)
LAYOUTS: list[tuple[str, str, str | None, str, str | None]] = [
    ("in", "out", None, "archive", None),  # the defaults: .processed and .failed are hidden
    ("in", "in/.hidden", None, "keep", None),
    ("in", "elsewhere", "in/.hidden", "archive", None),
    ("out/.churnctl/landing/..", "out2", None, "keep", None),  # in inside out, not its state
    ("in", "out", "in", "keep", None),  # keep never writes the archive folder
    ("in", "in", None, "keep", "the output folder {in} is the input folder"),
    ("in", "alias", None, "keep", "the output folder {in} is the input folder"),
    ("in", "in/sub", None, "keep", "the output folder {in}/sub lies inside the input folder"),
    ("in", "alias/sub/x", None, "keep", "lies inside the input folder {in}"),
    ("alias", "alias-sub", None, "keep", "the output folder {in}/sub lies inside the input"),
    ("in", "out", "in", "archive", "the archive folder {in} is the input folder"),
    ("in", "out", "alias", "archive", "the archive folder {in} is the input folder"),
    ("in", "out", "in/sub/old", "archive", "the archive folder {in}/sub/old lies inside"),
    ("in", "out", "alias-sub", "archive", "the archive folder {in}/sub lies inside"),
    ("out/.churnctl", "out", None, "keep", "the state folder {out}/.churnctl is the input"),
    ("out/.churnctl/landing", "out", None, "keep", "inside the output folder's state folder"),
    ("in", "out", "out/.churnctl/old", "archive", "archive folder {out}/.churnctl/old lies"),
]


@pytest.mark.parametrize(("in_dir", "out_dir", "archive", "after", "refused"), LAYOUTS)
def test_folders_that_feed_back_are_refused(
    tree: Path,
    scorer: Scorer,
    in_dir: str,
    out_dir: str,
    archive: str | None,
    after: str,
    refused: str | None,
) -> None:
    def make() -> WatchSettings:
        return WatchSettings(
            in_dir=tree / in_dir,
            out_dir=tree / out_dir,
            scorer=scorer,
            after=after,
            archive_dir=archive and tree / archive,
        )

    if refused is None:
        make()
        return
    with pytest.raises(UsageError) as raised:
        make()
    message = str(raised.value)
    fragment = refused.format(**{"in": tree / "in", "out": tree / "out"})
    assert fragment in message and "\n" not in message, message


def test_a_quarantine_folder_linked_back_is_refused(tree: Path, scorer: Scorer) -> None:
    (tree / "in" / ".failed").symlink_to(tree / "in")
    with pytest.raises(UsageError, match=r"quarantine folder .* is the input folder"):
        WatchSettings(in_dir=tree / "in", out_dir=tree / "out", scorer=scorer)


def test_the_cli_names_both_folders_on_one_line(tree: Path) -> None:
    result = run(
        [
            "watch",
            tree / "in",
            "--out",
            tree / "out",
            "--after",
            "archive",
            "--archive-dir",
            tree / "alias-sub",
        ]
    )
    assert_clean_error(
        result, 2, f"archive folder {tree}/in/sub lies inside the input folder {tree}/in"
    )
    assert len(result.stderr.strip().splitlines()) == 1


# --- item 6: names at the file system's limit -----------------------------------------------

names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    min_size=1,
    max_size=300,
)


@given(
    names,
    names,
    st.sampled_from(["", ".csv", ".0123456789abcdef.scored.parquet"]),
    st.integers(50, 255),
)
def test_a_name_is_cut_to_fit_deterministically_and_stays_unique(
    one: str, two: str, tail: str, limit: int
) -> None:
    fitted = fit_name(one, tail, limit)
    assert len(os.fsencode(fitted)) <= limit and fitted.endswith(tail)
    fitted.encode("utf-8")  # a whole character: never cut inside one
    assert fitted == fit_name(one, tail, limit)
    if len(os.fsencode(one + tail)) <= limit:
        assert fitted == one + tail
    if one != two:
        assert fitted != fit_name(two, tail, limit)


@pytest.mark.parametrize("name", ["n" * 246 + ".csv", "é" * 125 + "x.csv", "€" * 83 + ".pq"])
def test_every_derived_name_of_a_long_input_fits(tmp_path: Path, name: str) -> None:
    output, rejects = derived_names(name, "ab" * 32, "parquet")
    assert output != rejects
    for derived in (output, rejects):
        assert len(os.fsencode(derived)) <= 255
        atomic_write_bytes(tmp_path / derived, b"x")  # its temporary name fits as well
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([output, rejects])


def test_score_writes_an_output_named_at_the_limit(tmp_path: Path) -> None:
    data, out = tmp_path / "data.csv", tmp_path / ("o" * 251 + ".csv")
    data.write_bytes(csv_bytes(text_rows(10, 3)))
    result = run(["score", data, "-o", out, "--rejects", tmp_path / "r.csv"])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 11


def test_a_folder_probe_tells_a_writable_folder(tmp_path: Path) -> None:
    probe_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputError, match="cannot write here"):
        probe_writable(tmp_path / "gone")


# --- item 3: locks --------------------------------------------------------------------------


def test_locks_exclusive_and_shared_name_their_holder(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    shared = [take_lock(path, shared=True) for _ in range(2)]  # several keep watchers
    with pytest.raises(LockHeld) as held:
        take_lock(path)
    assert held.value.holder == str(os.getpid())
    for fd in shared:
        os.close(fd)
    exclusive = take_lock(path)
    for mode in (False, True):
        with pytest.raises(LockHeld):
            take_lock(path, shared=mode)
    os.close(exclusive)


# --- item 4: only regular files, never blocking ---------------------------------------------


def _entries(folder: Path) -> dict[str, str]:
    """One entry of each kind in ``folder``: name → the kind ``open_regular`` must refuse."""
    os.mkfifo(folder / "fifo.csv")
    (folder / "dir.csv").mkdir()
    (folder / "zero.csv").symlink_to("/dev/zero")
    (folder / "good.csv").write_bytes(b"a\n")
    (folder / "link.csv").symlink_to(folder / "good.csv")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "s.csv"))
    return {
        "fifo.csv": "a FIFO",
        "dir.csv": "a folder",
        "zero.csv": "a symbolic link",
        "link.csv": "a symbolic link",
        "s.csv": "a socket",
    }


def test_only_a_regular_file_is_opened_and_nothing_blocks() -> None:
    folder = Path(f"/tmp/cr-{os.getpid()}")  # short: a socket's path has a length limit
    folder.mkdir()
    try:
        kinds = _entries(folder)
        for name, kind in kinds.items():
            with pytest.raises(NotRegular) as refused:
                open_regular(folder / name)
            assert refused.value.kind == kind, name
        os.close(open_regular(folder / "good.csv"))
        with pytest.raises(FileNotFoundError):
            open_regular(folder / "missing.csv")
        looked = _in_thread(lambda: [has_complete_ending(folder / n) for n in kinds])
        assert looked == [False] * len(kinds)  # a FIFO with no writer does not block
    finally:
        shutil.rmtree(folder)


def _in_thread(work: Callable[[], object], timeout: float = 5.0) -> object:
    """Run ``work`` in a thread; fail (instead of hanging) if it blocks."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "it blocked"
    return result[0]


def _parquet(path: Path, seed: int) -> None:
    table = pa.csv.read_csv(
        pa.py_buffer(csv_bytes(text_rows(30, seed))),
        convert_options=pa.csv.ConvertOptions(column_types={"Surname": pa.string()}),
    )
    pq.write_table(table, path)


def _gzip(path: Path, seed: int) -> None:
    path.write_bytes(gzip.compress(messy_csv(seed), mtime=0))


@pytest.mark.parametrize(("name", "write"), [("a.csv.gz", _gzip), ("a.parquet", _parquet)])
def test_a_held_file_is_scored_from_its_inode_with_its_name_and_format(
    tmp_path: Path, scorer: Scorer, name: str, write: Callable[[Path, int], None]
) -> None:
    """Renamed over after the take: the held content is scored, byte-identical to ``score``."""
    path = tmp_path / name
    write(path, 1)
    expected = {}
    for kind in ("out", "rejects"):
        expected[kind] = tmp_path / f"expected.{kind}.csv"
    request = ScoreRequest(
        input=str(path),
        output=str(expected["out"]),
        scorer=scorer,
        rejects=str(expected["rejects"]),
        max_rejects=NO_LIMIT,
    )
    score_file(request)
    with HeldFile.take(path) as held:
        sha = held.sha256()
        write(tmp_path / "other", 2)
        os.rename(tmp_path / "other", path)  # renamed over the name
        request.output, request.rejects = str(tmp_path / "o.csv"), str(tmp_path / "r.csv")
        request.read_from = held.read_path
        score_file(request)
        assert held.read_intact() and not held.is_at(path)
    assert sha != file_sha256(path)
    assert (tmp_path / "o.csv").read_bytes() == expected["out"].read_bytes()
    assert (tmp_path / "r.csv").read_bytes() == expected["rejects"].read_bytes()


def test_a_held_file_changed_in_place_is_not_intact(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"a\n1\n")
    with HeldFile.take(path) as held:
        with path.open("ab") as handle:
            handle.write(b"2\n")
        assert not held.read_intact()


# --- disposal: the scored inode only --------------------------------------------------------


def test_a_file_renamed_over_at_the_last_moment_is_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.csv"
    path.write_text("scored")
    scored = path.stat()

    def stranger_arrives(step: str) -> None:
        if step == "before-aside":
            (tmp_path / ".new").write_text("stranger")
            os.rename(tmp_path / ".new", path)

    monkeypatch.setattr("churnctl.watch.disposal.checkpoint", stranger_arrives)
    taken = take_aside(path, scored)
    assert taken.path is None and taken.stranger == path and path.read_text() == "stranger"
    assert not list(tmp_path.glob(ASIDE_PREFIX + "*"))
    monkeypatch.undo()
    assert take_aside(path, scored).replaced  # now found at once: left untouched
    assert path.read_text() == "stranger"


def test_put_back_never_replaces_a_file(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("newer")
    (tmp_path / ".aside").write_text("older")
    where = put_back(tmp_path / ".aside", tmp_path / "a.csv")
    assert where != tmp_path / "a.csv" and where.name.endswith(".csv")
    assert (tmp_path / "a.csv").read_text() == "newer" and where.read_text() == "older"


def test_files_a_crash_left_aside_are_finished_or_put_back(tmp_path: Path, scorer: Scorer) -> None:
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    (in_dir / "a.csv").write_bytes(messy_csv(1))
    assert run_once(in_dir, out_dir, scorer, after="delete").report.scored == 1
    (in_dir / f"{ASIDE_PREFIX}a.csv").write_bytes(messy_csv(1))  # scored, then a crash
    (in_dir / f"{ASIDE_PREFIX}b.csv").write_bytes(messy_csv(2))  # unknown: put back
    report = run_once(in_dir, out_dir, scorer, after="delete").report
    assert report.scored == 1  # b.csv; a.csv is not scored twice
    assert list(in_dir.iterdir()) == [in_dir / ".churnctl-watch.lock"]


# --- item 7: the manifest replaced ----------------------------------------------------------


@pytest.mark.parametrize("what", ["db removed", "db replaced", "lock removed", "lock replaced"])
def test_a_manifest_removed_or_replaced_stops_the_next_commit(tmp_path: Path, what: str) -> None:
    from test_watch_units import entry

    with open_manifest(tmp_path) as manifest:
        manifest.claim(entry())
        target = manifest.path if what.startswith("db") else manifest.path.with_name("lock")
        if what.endswith("removed"):
            target.unlink()
        else:
            target.with_name("new").write_bytes(target.read_bytes())
            os.replace(target.with_name("new"), target)
        with pytest.raises(ManifestError, match=f"{target.name}: {what.split()[1]}"):
            manifest.claim(entry("b.csv"))


# --- item 18 and the watch part of 16: messages ---------------------------------------------


def test_the_incomplete_message_says_what_that_format_ends_with(
    tmp_path: Path, scorer: Scorer
) -> None:
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    _parquet(in_dir / "cut.parquet", 1)
    whole = (in_dir / "cut.parquet").read_bytes()
    (in_dir / "cut.parquet").write_bytes(whole[: len(whole) - 8])
    (in_dir / "cut.csv").write_bytes(b"a,b\n1,2")
    events: list[WatchEvent] = []
    from churnctl.watch.watcher import Watcher

    settings = WatchSettings(
        in_dir=in_dir, out_dir=tmp_path / "out", scorer=scorer, once=True, settle=0.05
    )
    Watcher(settings, on_event=events.append).run()
    said = {e.input: e.message for e in events if e.kind == "incomplete"}
    assert "a Parquet file ends with its footer" in said["cut.parquet"]
    assert "CSV" not in said["cut.parquet"]
    assert "a CSV file ends with a line break" in said["cut.csv"]


def test_remedies_are_structured_and_spelled_as_the_command_options() -> None:
    changed = WatchEvent(
        "changed", "a.csv", message="changed in place; left alone", fix=REPROCESS_FIX
    )
    assert (
        _event_line(changed) == "changed a.csv: changed in place; left alone; pass "
        "--reprocess-changed"
    )
    failed = WatchEvent("failed", "b.csv", message="too many", fix=Fix("max_rejects", "100%"))
    assert _event_line(failed) == "FAILED b.csv: too many; pass --max-rejects 100%"


def test_a_refused_file_logs_its_remedy_as_an_option(tmp_path: Path) -> None:
    landing = tmp_path / "in"
    landing.mkdir()
    rows = text_rows(20, 4)
    for row in rows[:5]:
        row[3] = "abc"  # 25% rejected: over the default 5%
    (landing / "bad.csv").write_bytes(csv_bytes(rows))
    log = tmp_path / "log.jsonl"
    result = run(
        ["watch", landing, "--out", tmp_path / "out", "--once", "--settle", "0", "--log-json", log]
    )
    assert result.exit_code == 4, result.output
    assert "pass --max-rejects 100%" in plain(result.stderr)
    (record,) = (json.loads(line) for line in log.read_text().splitlines())
    assert record["message"].endswith("; pass --max-rejects 100% to never fail on rejects")
    assert "max_rejects" not in result.stderr and "set " not in record["message"]
    saved = json.loads((landing / ".failed" / "bad.csv.error.json").read_text())
    assert saved["fix"] == {
        "setting": "max_rejects",
        "example": "100%",
        "note": "to never fail on rejects",
    }


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_live_rate_is_recent_not_an_average_since_start() -> None:
    clock = _Clock()
    rate = RecentRate(window=10, clock=clock)
    assert rate.rate() == 0
    clock.now += 2
    rate.add(1_000)
    assert rate.rate() == pytest.approx(500)  # a run younger than the window: over its age
    clock.now += 8
    rate.add(1_000)
    assert rate.rate() == pytest.approx(200)  # 2,000 rows in the last 10 s
    clock.now += 5
    assert rate.rate() == pytest.approx(100)  # the first file aged out
    clock.now += 60
    assert rate.rate() == 0  # idle: no rows recently, whatever the total
    rate.add(300)
    assert rate.rate() == pytest.approx(30)


# --- item 6: one file's failure is not the folder's -----------------------------------------


def _failing_output(name: str) -> Callable[[ScoreRequest], object]:
    def score(request: ScoreRequest) -> object:
        if Path(request.input).name == name:
            raise OutputError(f"{request.output}: cannot publish the output (File name too long)")
        return score_file(request)

    return score


def test_an_output_error_of_one_file_is_retried_then_quarantined(
    tmp_path: Path, scorer: Scorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    for seed, name in enumerate(("bad.csv", "good.csv")):
        (in_dir / name).write_bytes(messy_csv(seed))
    monkeypatch.setattr("churnctl.watch.intake.score_file", _failing_output("bad.csv"))
    monkeypatch.setattr("churnctl.watch.intake.RETRY_DELAY", 0.01)
    report = run_once(in_dir, out_dir, scorer, max_attempts=2).report
    assert (report.scored, report.failed) == (1, 1)
    record = json.loads((in_dir / ".failed" / "bad.csv.error.json").read_text())
    assert "File name too long" in record["reason"] and record["attempts"] == 2


def test_an_output_folder_that_cannot_be_written_stops_the_watcher(
    tmp_path: Path, scorer: Scorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    (in_dir / "a.csv").write_bytes(messy_csv(1))

    def full(folder: Path) -> None:
        raise OutputError(f"{folder}: cannot write here (No space left on device)")

    monkeypatch.setattr("churnctl.watch.intake.score_file", _failing_output("a.csv"))
    monkeypatch.setattr("churnctl.watch.intake.probe_writable", full)
    with pytest.raises(OutputError, match="No space left"):
        run_once(in_dir, out_dir, scorer)
    assert (in_dir / "a.csv").exists() and not (in_dir / ".failed").exists()
