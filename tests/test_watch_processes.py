"""``churnctl watch`` as it runs: real processes, real files, real kernel events, no mocks.

Producers rename files in, write them in place, mark them done; watchers are SIGKILLed at
random moments and at each step of the commit order, stopped by SIGTERM, refused a second
time on one output folder. The promise checked throughout: every input row lands in
exactly one output row, nothing is left claimed or half-written. Every wait has a deadline
(``watch_helpers.DEADLINE``) and every process is killed at the end of its test.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
from csv_rows import csv_bytes
from watch_helpers import (
    DEADLINE,
    RowPool,
    Rows,
    Watchers,
    assert_exactly_once,
    drop_renamed,
    file_ids,
    ids,
    inputs_in,
    log_events,
    manifest_states,
    output_ids,
    temporaries,
    wait_for,
    watch_env,
)

from churnctl.faults import STEPS


def scored_inputs(events: list[dict[str, object]]) -> collections.Counter[str]:
    return collections.Counter(str(e["input"]) for e in events)


class Producer(threading.Thread):
    """Renames files into a folder in the background, one every ``gaps[i]`` seconds."""

    def __init__(self, in_dir: Path, batches: list[Rows], gaps: list[float]) -> None:
        super().__init__(daemon=True)
        self.in_dir, self.batches, self.gaps = in_dir, batches, gaps
        self.error: BaseException | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        try:
            for i, (rows, gap) in enumerate(zip(self.batches, self.gaps, strict=True)):
                if self.halt.is_set():
                    return
                drop_renamed(self.in_dir, f"part-{i:04d}.csv", rows)
                time.sleep(gap)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self) -> None:
        self.join(DEADLINE)
        assert not self.is_alive(), "the producer did not finish"
        assert self.error is None, self.error


# ------------------------------------------------------------------ arrivals


def test_renamed_in_files_are_each_scored_once_within_milliseconds(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool
) -> None:
    in_dir, out_dir = folders
    watcher = watchers.start(in_dir, out_dir)
    watcher.wait_ready()
    batches = [pool.take(30) for _ in range(8)]
    for i, rows in enumerate(batches):
        drop_renamed(in_dir, f"part-{i}.csv", rows)
        time.sleep(0.1)
    watcher.wait_scored(len(batches))
    assert watcher.terminate() == 0  # then the log holds every event: no second scoring
    events = watcher.scored()
    assert scored_inputs(events) == {f"part-{i}.csv": 1 for i in range(len(batches))}
    assert all(e["rows_read"] == e["rows_scored"] == 30 for e in events)
    latencies = sorted(float(e["latency_ms"]) for e in events)  # type: ignore[arg-type]
    assert latencies[len(latencies) // 2] > 0.5 and latencies[-1] < 2000, latencies  # ms, not s
    assert_exactly_once(out_dir, [i for rows in batches for i in ids(rows)], in_dir)


def test_a_file_appended_in_place_is_read_once_complete(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool
) -> None:
    """Pauses (0.3 s) longer than the settle (0.2 s): while open, then with no final newline."""
    in_dir, out_dir = folders
    watcher = watchers.start(in_dir, out_dir, "--settle", "200")
    watcher.wait_ready()
    rows = pool.take(60)
    text = csv_bytes(rows)
    lines = text.splitlines(keepends=True)
    header, first = len(lines[0]), len(b"".join(lines[:10]))
    closed_at = len(b"".join(lines[:20])) + 7  # the file is closed mid-line
    rest = len(text) - closed_at
    cuts = [closed_at, *(closed_at + rest * k // 4 + 7 for k in (1, 2, 3)), len(text)]
    path = in_dir / "slow.csv"
    with path.open("wb") as handle:  # open: whole lines, pauses between them
        for start, stop in itertools.pairwise([0, header, first, closed_at]):
            handle.write(text[start:stop])
            handle.flush()
            time.sleep(0.3 if stop < closed_at else 0)
    for start, stop in itertools.pairwise(cuts):  # closed: no final newline until the last
        assert not text[:stop].endswith(b"\n") or stop == len(text)
        with path.open("ab") as handle:
            handle.write(text[start:stop])
        time.sleep(0.3)
    (event,) = watcher.wait_scored(1)
    drop_renamed(in_dir, "after.csv", pool.take(5))  # once it is scored, slow.csv was left alone
    watcher.wait_scored(2)
    assert event["input"] == "slow.csv", event
    assert (event["rows_read"], event["rows_rejected"]) == (60, 0), event
    assert log_events(watcher.log, None)[-1]["input"] == "after.csv"
    assert sorted(file_ids(out_dir / Path(str(event["output"])).name)) == sorted(ids(rows))
    assert scored_inputs(watcher.scored()) == {"slow.csv": 1, "after.csv": 1}
    assert watcher.terminate() == 0


def test_a_done_marker_holds_the_file_back_until_it_appears(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool
) -> None:
    in_dir, out_dir = folders
    watcher = watchers.start(in_dir, out_dir, "--done-marker", ".done", "--settle", "100")
    watcher.wait_ready()
    rows = pool.take(40)
    (in_dir / "data.csv").write_bytes(csv_bytes(rows))  # complete, closed, settled: not marked
    time.sleep(0.7)
    assert watcher.scored() == [] and not list(out_dir.glob("*.scored.csv"))
    (in_dir / "data.csv.done").touch()
    (event,) = watcher.wait_scored(1)
    assert event["input"] == "data.csv" and event["rows_read"] == 40
    assert_exactly_once(out_dir, ids(rows), in_dir)
    assert watcher.terminate() == 0
    assert scored_inputs(watcher.scored()) == {"data.csv": 1}


def test_files_arriving_while_no_watcher_runs_are_scored_by_the_next(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool
) -> None:
    in_dir, out_dir = folders
    first = watchers.start(in_dir, out_dir)
    first.wait_ready()
    before = [pool.take(20) for _ in range(2)]
    for i, rows in enumerate(before):
        drop_renamed(in_dir, f"before-{i}.csv", rows)
    first.wait_scored(2)
    assert first.terminate() == 0
    during = [pool.take(20) for _ in range(3)]
    for i, rows in enumerate(during[:2]):
        drop_renamed(in_dir, f"during-{i}.csv", rows)
    (in_dir / "during-2.csv").write_bytes(csv_bytes(during[2]))  # written in place
    second = watchers.start(in_dir, out_dir)
    second.wait_scored(5)  # one log: the first run's two, then three
    assert second.terminate() == 0
    assert scored_inputs(second.scored()) == {
        "before-0.csv": 1,
        "before-1.csv": 1,
        "during-0.csv": 1,
        "during-1.csv": 1,
        "during-2.csv": 1,
    }
    assert_exactly_once(out_dir, [i for rows in before + during for i in ids(rows)], in_dir)


def test_a_name_uploaded_again_with_new_content_is_scored_again(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool
) -> None:
    in_dir, out_dir = folders
    watcher = watchers.start(in_dir, out_dir)
    watcher.wait_ready()
    old, new = pool.take(25), pool.take(35)
    drop_renamed(in_dir, "daily.csv", old)
    watcher.wait_scored(1)
    drop_renamed(in_dir, "daily.csv", new)  # renamed over the scored file
    watcher.wait_scored(2)
    assert watcher.terminate() == 0
    first, second = watcher.scored()
    assert first["input"] == second["input"] == "daily.csv"
    assert (first["rows_read"], second["rows_read"]) == (25, 35)
    assert first["output"] != second["output"]
    assert file_ids(out_dir / Path(str(first["output"])).name) == ids(old)
    assert file_ids(out_dir / Path(str(second["output"])).name) == ids(new)
    assert_exactly_once(out_dir, ids(old) + ids(new), in_dir)


def test_files_with_one_header_or_one_content_are_not_confused(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool
) -> None:
    in_dir, out_dir = folders
    watcher = watchers.start(in_dir, out_dir)
    watcher.wait_ready()
    a, b = pool.take(30), pool.take(30)
    for name, rows in (("a.csv", a), ("b.csv", b), ("copy-of-a.csv", a)):
        drop_renamed(in_dir, name, rows)
    watcher.wait_scored(3)
    assert watcher.terminate() == 0
    events = watcher.scored()
    assert scored_inputs(events) == {"a.csv": 1, "b.csv": 1, "copy-of-a.csv": 1}
    outputs = {str(e["input"]): out_dir / Path(str(e["output"])).name for e in events}
    assert len(set(outputs.values())) == 3
    assert file_ids(outputs["a.csv"]) == file_ids(outputs["copy-of-a.csv"]) == ids(a)
    assert file_ids(outputs["b.csv"]) == ids(b)
    assert output_ids(out_dir) == collections.Counter(ids(a) * 2 + ids(b))


# ------------------------------------------------------------------ crashes


@pytest.mark.parametrize(
    ("after", "files", "kills", "max_gap"), [("keep", 200, 5, 0.08), ("archive", 90, 3, 0.1)]
)
def test_sigkill_at_random_moments_scores_every_row_exactly_once(
    folders: tuple[Path, Path],
    watchers: Watchers,
    pool: RowPool,
    after: str,
    files: int,
    kills: int,
    max_gap: float,
) -> None:
    """Files arrive about as fast as they are scored, so most kills land mid-file."""
    in_dir, out_dir = folders
    rng = random.Random(f"crash-{after}")
    batches = [pool.take(rng.randint(20, 50)) for _ in range(files)]
    producer = Producer(in_dir, batches, [rng.uniform(0.005, max_gap) for _ in batches])
    producer.start()
    try:
        for _ in range(kills):
            watcher = watchers.start(in_dir, out_dir, "--after", after)
            watcher.wait_ready()
            time.sleep(rng.uniform(0.3, 1.5))
            assert watcher.kill() == -signal.SIGKILL, watcher.stderr
    except BaseException:
        producer.halt.set()
        raise
    finally:
        producer.finish()
    assert log_events(watcher.log)  # the killed watchers did score files
    code, stderr = watchers.once(in_dir, out_dir, "--after", after)
    assert code == 0, stderr
    assert_exactly_once(out_dir, [i for rows in batches for i in ids(rows)], in_dir)
    assert manifest_states(out_dir) == {"done": files}
    kept, archived = inputs_in(in_dir), inputs_in(in_dir / ".processed")
    assert (len(kept), len(archived)) == ((files, 0) if after == "keep" else (0, files))


@pytest.mark.parametrize("step", STEPS)
def test_a_kill_at_each_commit_step_is_repaired_on_restart(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool, step: str
) -> None:
    in_dir, out_dir = folders
    env = watch_env(CHURNCTL_FAULT=step)
    watcher = watchers.start(in_dir, out_dir, "--after", "archive", env=env)
    watcher.wait_ready()
    batches = [pool.take(30) for _ in range(3)]
    for i, rows in enumerate(batches):
        drop_renamed(in_dir, f"part-{i}.csv", rows)
    assert watcher.wait_exit() == -signal.SIGKILL, watcher.stderr
    states, published = manifest_states(out_dir), len(list(out_dir.glob("*.scored.csv")))
    archived = inputs_in(in_dir / ".processed")
    left_by_fault = {
        "after-temp-write": (
            states == {"claimed": 1},
            len(temporaries(out_dir)) == 2,
            published == 0,
        ),
        "after-rename": (states == {"claimed": 1}, published == 1, archived == []),
        "after-commit": (states == {"done": 1}, published == 1, archived == []),
        "after-aside": (
            states == {"done": 1},
            published == 1,
            archived == [],
            len(list(in_dir.glob(".churnctl-aside.*"))) == 1,
        ),
        "after-archive": (states == {"done": 1}, published == 1, len(archived) == 1),
    }
    assert all(left_by_fault[step]), (states, published, archived, temporaries(out_dir))
    code, stderr = watchers.once(in_dir, out_dir, "--after", "archive")
    assert code == 0, stderr
    assert_exactly_once(out_dir, [i for rows in batches for i in ids(rows)], in_dir)
    assert manifest_states(out_dir) == {"done": 3}
    assert inputs_in(in_dir) == [] and len(inputs_in(in_dir / ".processed")) == 3


def test_a_file_the_watcher_dies_on_each_time_is_quarantined(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool
) -> None:
    """Three deaths while scoring one file (max attempts 3): the fourth start quarantines it."""
    in_dir, out_dir = folders
    drop_renamed(in_dir, "deadly.csv", pool.take(10))
    for _ in range(3):
        dying = watchers.start(
            in_dir, out_dir, "--once", env=watch_env(CHURNCTL_FAULT="after-temp-write")
        )
        assert dying.wait_exit() == -signal.SIGKILL, dying.stderr
    code, stderr = watchers.once(in_dir, out_dir)
    assert code == 4, stderr
    record = json.loads((in_dir / ".failed" / "deadly.csv.error.json").read_text())
    assert record["reason"] == "the watcher stopped while scoring it 3 times"
    assert record["attempts"] == 4
    assert manifest_states(out_dir) == {"failed": 1}
    assert temporaries(out_dir) == [] and list(out_dir.glob("*.scored.csv")) == []


def test_sigterm_while_files_flow_finishes_cleanly(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool
) -> None:
    in_dir, out_dir = folders
    watcher = watchers.start(in_dir, out_dir)
    watcher.wait_ready()
    producer = Producer(in_dir, [pool.take(40) for _ in range(60)], [0.02] * 60)
    producer.start()
    try:
        watcher.wait_scored(3)
        assert watcher.terminate() == 0, watcher.stderr
    finally:
        producer.halt.set()
        producer.finish()
    assert "watch stopped:" in watcher.stderr and "Traceback" not in watcher.stderr
    assert temporaries(out_dir) == []
    states = manifest_states(out_dir)
    assert states["claimed"] == 0 and states["done"] == len(watcher.scored()) >= 3
    for event in watcher.scored():  # every committed file has its published pair
        assert (out_dir / Path(str(event["output"])).name).exists()
        assert (out_dir / Path(str(event["rejects"])).name).exists()


# ------------------------------------------------------------------ refusals and failures


def test_a_poison_file_is_quarantined_and_the_watcher_goes_on(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool
) -> None:
    in_dir, out_dir = folders
    watcher = watchers.start(in_dir, out_dir)
    watcher.wait_ready()
    (in_dir / ".poison.csv.tmp").write_bytes(b"a,b,c\n1,2,3\n")
    os.rename(in_dir / ".poison.csv.tmp", in_dir / "poison.csv")
    (in_dir / ".garbage.csv.tmp").write_bytes(bytes(range(256)) * 4)
    os.rename(in_dir / ".garbage.csv.tmp", in_dir / "garbage.csv")
    good = pool.take(30)
    drop_renamed(in_dir, "good.csv", good)
    watcher.wait_scored(1)
    wait_for(lambda: len(log_events(watcher.log, "failed")) == 2, "two failed files")
    failed = in_dir / ".failed"
    assert sorted(p.name for p in failed.iterdir()) == [
        "garbage.csv",
        "garbage.csv.error.json",
        "poison.csv",
        "poison.csv.error.json",
    ]
    reason = json.loads((failed / "poison.csv.error.json").read_text())["reason"]
    assert "missing required column" in reason and "CustomerId" in reason
    assert json.loads((failed / "garbage.csv.error.json").read_text())["reason"]
    assert output_ids(out_dir) == collections.Counter(ids(good))
    assert watcher.terminate() == 0, watcher.stderr  # failures are logged, not an exit status
    (in_dir / "poison-2.csv").write_bytes(b"a,b,c\n1,2,3\n")
    code, stderr = watchers.once(in_dir, out_dir)
    assert code == 4, stderr
    assert stderr.splitlines()[-1].startswith("Error: 1 file(s) failed")
    assert (failed / "poison-2.csv.error.json").exists()


def test_a_second_watcher_on_one_output_folder_is_refused(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool, tmp_path: Path
) -> None:
    in_dir, out_dir = folders
    first = watchers.start(in_dir, out_dir)
    first.wait_ready()
    other_in = tmp_path / "other-in"
    other_in.mkdir()
    second = watchers.start(other_in, out_dir, log=tmp_path / "second.jsonl")
    assert second.wait_exit() == 1
    lines = second.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), second.stderr
    assert str(out_dir) in lines[0] and "another watcher" in lines[0]
    rows = pool.take(20)
    drop_renamed(in_dir, "still-works.csv", rows)  # the first watcher holds on
    first.wait_scored(1)
    assert_exactly_once(out_dir, ids(rows), in_dir)
    assert first.terminate() == 0


# ------------------------------------------------------------------ modes


@pytest.mark.parametrize("after", ["keep", "archive", "delete"])
def test_once_scores_a_folder_then_keeps_archives_or_deletes(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool, after: str
) -> None:
    in_dir, out_dir = folders
    batches = [pool.take(25) for _ in range(4)]
    for i, rows in enumerate(batches):
        (in_dir / f"part-{i}.csv").write_bytes(csv_bytes(rows))
    code, stderr = watchers.once(in_dir, out_dir, "--after", after)
    assert code == 0, stderr
    assert "4 file(s) scored, 0 failed" in stderr
    assert_exactly_once(out_dir, [i for rows in batches for i in ids(rows)], in_dir)
    names = [f"part-{i}.csv" for i in range(4)]
    archive = in_dir / ".processed"
    expected = {"keep": (names, []), "archive": ([], names), "delete": ([], [])}[after]
    assert (inputs_in(in_dir), inputs_in(archive)) == expected


def test_poll_mode_scores_renamed_and_written_files(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool
) -> None:
    in_dir, out_dir = folders
    watcher = watchers.start(in_dir, out_dir, "--poll", "0.2", "--settle", "200")
    watcher.wait_ready()
    renamed, written = pool.take(30), pool.take(30)
    drop_renamed(in_dir, "renamed.csv", renamed)
    (in_dir / "written.csv").write_bytes(csv_bytes(written))
    watcher.wait_scored(2)
    assert watcher.terminate() == 0
    assert scored_inputs(watcher.scored()) == {"renamed.csv": 1, "written.csv": 1}
    assert_exactly_once(out_dir, ids(renamed) + ids(written), in_dir)


def test_a_file_edited_in_place_after_scoring_is_left_alone_unless_asked(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool
) -> None:
    in_dir, out_dir = folders
    watcher = watchers.start(in_dir, out_dir)
    watcher.wait_ready()
    first, more = pool.take(20), pool.take(10)
    path = drop_renamed(in_dir, "ledger.csv", first)
    watcher.wait_scored(1)
    inode = path.stat().st_ino
    with path.open("ab") as handle:  # same inode, new content
        handle.write(csv_bytes(more).split(b"\n", 1)[1])
    assert path.stat().st_ino == inode
    wait_for(lambda: log_events(watcher.log, "changed"), "a changed event")
    assert [e["input"] for e in log_events(watcher.log, "changed")] == ["ledger.csv"]
    assert watcher.terminate() == 0
    assert len(watcher.scored()) == 1 and output_ids(out_dir) == collections.Counter(ids(first))
    again = watchers.start(in_dir, out_dir, "--reprocess-changed")
    _, rescored = again.wait_scored(2)
    assert rescored["input"] == "ledger.csv" and rescored["rows_read"] == 30
    assert file_ids(out_dir / Path(str(rescored["output"])).name) == ids(first) + ids(more)
    assert again.terminate() == 0


@pytest.mark.parametrize("after", ["keep", "delete"])
def test_a_name_deleted_then_written_again_in_place_is_a_new_file(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool, after: str
) -> None:
    """The new file may get the old one's inode number back (ext4 reuses it at once)."""
    in_dir, out_dir = folders
    watcher = watchers.start(in_dir, out_dir, "--after", after)
    watcher.wait_ready()
    old, new = pool.take(25), pool.take(35)
    path = in_dir / "daily.csv"
    path.write_bytes(csv_bytes(old))
    watcher.wait_scored(1)
    path.unlink(missing_ok=True)  # deleted by the producer (keep) or by the watcher (delete)
    path.write_bytes(csv_bytes(new))
    watcher.wait_scored(2)
    assert watcher.terminate() == 0
    first, second = watcher.scored()
    assert (first["rows_read"], second["rows_read"]) == (25, 35)
    assert_exactly_once(out_dir, ids(old) + ids(new), in_dir)
    assert inputs_in(in_dir) == (["daily.csv"] if after == "keep" else [])
