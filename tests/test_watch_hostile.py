"""``churnctl watch`` against hostile folders and races: real processes, files and events.

Files renamed over an input while it is scored or disposed of, deleted under the watcher,
entries that are not regular files, every way a complete file lands, names at the file
system's limit, a poison file that cannot even be quarantined, two watchers on one
folder, a manifest removed under a running watcher. Races are made deterministic with
the pause handshake of ``churnctl.faults`` (``watch_helpers.Pauses``).
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from csv_rows import csv_bytes
from watch_helpers import (
    Pauses,
    RowPool,
    Rows,
    Watchers,
    assert_exactly_once,
    drop_renamed,
    file_ids,
    ids,
    inputs_in,
    log_events,
    output_ids,
    wait_for,
)

BOUND = 10.0  # seconds: the longest a complete file may wait to be scored here


def inputs_logged(log: Path, kind: str) -> collections.Counter[str]:
    return collections.Counter(str(e["input"]) for e in log_events(log, kind))


# ------------------------------------------------------------------ item 1: the inode read


def _rename_over(in_dir: Path, name: str, rows: Rows) -> None:
    drop_renamed(in_dir, name, rows)


def _append_in_place(in_dir: Path, name: str, rows: Rows) -> None:
    with (in_dir / name).open("ab") as handle:
        handle.write(csv_bytes(rows).split(b"\n", 1)[1])


def _delete(in_dir: Path, name: str, rows: Rows) -> None:
    (in_dir / name).unlink()


# (name, step the watcher is paused at, what happens then, event logged for it, times scored)
RACES: list[tuple[str, str, Callable[[Path, str, Rows], None], str | None, int]] = [
    ("over-while-scored.csv", "after-temp-write", _rename_over, None, 2),
    ("edited-while-scored.csv", "after-temp-write", _append_in_place, "retry", 1),
    ("deleted-while-scored.csv", "after-temp-write", _delete, "vanished", 1),
    ("deleted-before-taken.csv", "before-take", _delete, "vanished", 0),
    ("over-before-archived.csv", "after-commit", _rename_over, "vanished", 2),
    ("over-as-archived.csv", "before-aside", _rename_over, "put-back", 2),
]


def test_the_inode_read_is_the_one_published_and_archived_whatever_its_name_becomes(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool, tmp_path: Path
) -> None:
    """Each row: a file is taken, the watcher paused at a step, the name raced, released.

    A file renamed over the input is a new input (scored on its own, archived); the input
    read stays a landed input (published, committed); only an in-place change of the inode
    read is retried. Only the inode scored is ever archived: a file renamed over it at the
    last moment is put back. Nothing is lost, nothing scored twice.
    """
    in_dir, out_dir = folders
    pauses = Pauses(
        tmp_path / "pauses", "before-take", "after-temp-write", "after-commit", "before-aside"
    )
    watcher = watchers.start(in_dir, out_dir, "--after", "archive", env=pauses.env())
    watcher.wait_ready()
    expected: list[str] = []
    archived: dict[str, list[str]] = {}  # name → the ids of the file archived under it
    for name, step, race, kind, times in RACES:
        first, second = pool.take(20), pool.take(15)
        drop_renamed(in_dir, name, first)
        held = pauses.run_to(step)
        race(in_dir, name, second)
        held.unlink()
        expected += [] if step == "before-take" else ids(first)
        if race is not _delete:
            expected += ids(second)
            archived[name] = ids(first) + ids(second) if race is _append_in_place else ids(second)

        def settled(name: str = name, kind: str | None = kind, times: int = times) -> bool:
            logged = kind is None or inputs_logged(watcher.log, kind)[name] >= 1
            scored = inputs_logged(watcher.log, "scored")[name] == times
            return logged and scored and not inputs_in(in_dir)

        pauses.release_until(settled, f"{name} to be settled")
    assert watcher.terminate() == 0, watcher.stderr
    assert_exactly_once(out_dir, expected, in_dir)
    archive = in_dir / ".processed"
    for name, ids_now in archived.items():  # what is archived under a name is what came last
        assert file_ids(archive / name) == ids_now, name
    assert sorted(inputs_in(archive)) == sorted(archived)
    for name, _, _, kind, times in RACES:
        assert inputs_logged(watcher.log, "scored")[name] == times, name
        if kind is not None:
            assert inputs_logged(watcher.log, kind)[name] == 1, (name, kind, watcher.stderr)
    assert "Traceback" not in watcher.stderr


# ------------------------------------------------------------------ item 4: regular files only


def _fifo(where: Path) -> None:
    os.mkfifo(where)


def _link_to_folder(where: Path) -> None:
    where.symlink_to(where.parent)


def _link_to_zero(where: Path) -> None:
    where.symlink_to("/dev/zero")


def _link_to_csv(where: Path) -> None:
    target = where.parent / "target.csv"
    target.write_bytes(csv_bytes(RowPool().take(5)))  # a valid input: still never followed
    where.symlink_to(target)


def _folder(where: Path) -> None:
    where.mkdir()


def _socket(where: Path) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(where))


# (name, how the entry is made, made in place in IN_DIR rather than renamed in)
POISON: list[tuple[str, Callable[[Path], None], bool]] = [
    ("fifo.csv", _fifo, False),
    ("link-to-folder.csv", _link_to_folder, False),
    ("link-to-zero.csv", _link_to_zero, False),
    ("link-to-zero-in-place.csv", _link_to_zero, True),
    ("link-to-a-csv.csv", _link_to_csv, False),
    ("folder.csv", _folder, False),
    ("socket.csv", _socket, False),
]


def test_entries_that_are_not_regular_files_are_skipped_once_and_never_read(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool, tmp_path: Path
) -> None:
    """However they arrive: logged once as skipped, never opened for reading, never fatal."""
    in_dir, out_dir = folders
    elsewhere = Path(f"/tmp/cc-{os.getpid()}")  # short: a socket's path has a length limit
    elsewhere.mkdir()
    try:
        watcher = watchers.start(in_dir, out_dir, "--rescan", "0.3")
        watcher.wait_ready()
        for name, make, in_place in POISON:
            if in_place:
                make(in_dir / name)
            else:
                make(elsewhere / name)
                os.rename(elsewhere / name, in_dir / name)
        wait_for(
            lambda: inputs_logged(watcher.log, "skipped").keys() == {p[0] for p in POISON},
            "every entry skipped",
        )
        rows = pool.take(20)
        dropped = time.monotonic()
        drop_renamed(in_dir, "good.csv", rows)
        watcher.wait_scored(1)
        assert time.monotonic() - dropped < BOUND
        time.sleep(0.7)  # two more listings: nothing is logged again
        assert inputs_logged(watcher.log, "skipped") == {p[0]: 1 for p in POISON}
        assert watcher.terminate() == 0, watcher.stderr  # one SIGTERM is enough
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)
    messages = {str(e["input"]): str(e["message"]) for e in log_events(watcher.log, "skipped")}
    assert "a FIFO" in messages["fifo.csv"] and "a socket" in messages["socket.csv"]
    assert "a symbolic link" in messages["link-to-a-csv.csv"]
    assert "a folder" in messages["folder.csv"]
    assert output_ids(out_dir) == collections.Counter(ids(rows))
    assert "Traceback" not in watcher.stderr


# ------------------------------------------------------------------ item 5: every way to land


def _cp(source: Path, target: Path) -> None:
    subprocess.run(["cp", str(source), str(target)], check=True)


def _install(source: Path, target: Path) -> None:
    subprocess.run(["install", "-m", "0644", str(source), str(target)], check=True)


def _rsync(source: Path, target: Path) -> None:
    """rsync's own syscalls: a hidden temporary name in the folder, written, then renamed."""
    temporary = target.with_name(f".{target.name}.Xy12Ab")
    with temporary.open("wb") as handle:
        handle.write(source.read_bytes())
    os.rename(temporary, target)


def _mv_across(source: Path, target: Path) -> None:
    """``mv`` from another file system: a copy written in place, then the source unlinked."""
    other = Path("/dev/shm") / f"churnctl-{os.getpid()}-{target.name}"
    shutil.copyfile(source, other)
    subprocess.run(["mv", str(other), str(target)], check=True)


def _ln(source: Path, target: Path) -> None:
    os.link(source, target)


def _ln_then_rm(source: Path, target: Path) -> None:
    """A link whose other name goes at once: no close event ever comes for it."""
    os.link(source, target)
    source.unlink()


# (name, how it lands, complete at once (scored within the settle time), None: either)
LANDINGS: list[tuple[str, Callable[[Path, Path], None], bool | None]] = [
    ("cp.csv", _cp, False),
    ("install.csv", _install, False),
    ("rsync.csv", _rsync, True),
    ("mv-across.csv", _mv_across, False),
    ("ln.csv", _ln, True),
    ("ln-then-rm.csv", _ln_then_rm, None),  # a link while the watcher looks, or no close
]
SETTLE_MS = 1500


def _other_file_system(folder: Path) -> bool:
    shm = Path("/dev/shm")
    return shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != folder.stat().st_dev


def test_every_way_a_complete_file_lands_is_scored_once_within_a_bound(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool, tmp_path: Path
) -> None:
    in_dir, out_dir = folders
    rows = [name for name in LANDINGS if name[1] is not _mv_across or _other_file_system(in_dir)]
    watcher = watchers.start(in_dir, out_dir, "--settle", str(SETTLE_MS), "--rescan", "1")
    watcher.wait_ready()
    expected: dict[str, list[str]] = {}
    for name, land, _ in rows:
        taken = pool.take(25)
        source = tmp_path / f"source-{name}"
        source.write_bytes(csv_bytes(taken))
        land(source, in_dir / name)
        expected[name] = ids(taken)
    started = time.monotonic()
    watcher.wait_scored(len(rows))
    assert time.monotonic() - started < BOUND
    assert watcher.terminate() == 0, watcher.stderr
    events = {str(e["input"]): e for e in watcher.scored()}
    assert sorted(events) == sorted(expected) and len(watcher.scored()) == len(rows)
    for name, at_once in ((name, at_once) for name, _, at_once in rows):
        assert file_ids(out_dir / Path(str(events[name]["output"])).name) == expected[name]
        latency = float(events[name]["latency_ms"])  # type: ignore[arg-type]
        if at_once is not None:
            assert (latency < SETTLE_MS) is at_once, (name, latency)
    if len(rows) < len(LANDINGS):
        pytest.skip("mv across file systems: /dev/shm is not another file system here")


# ------------------------------------------------------------------ item 6: long names, poison


LONG_NAMES = ["n" * 246 + ".csv", "é" * 125 + "x.csv"]  # 250 and 255 bytes (é: 2 bytes)


def test_names_at_the_limit_are_scored_archived_and_quarantined(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool, tmp_path: Path
) -> None:
    in_dir, out_dir = folders
    assert [len(os.fsencode(n)) for n in LONG_NAMES] == [250, 255]
    watcher = watchers.start(in_dir, out_dir, "--after", "archive")
    watcher.wait_ready()
    batches = [pool.take(20) for _ in LONG_NAMES]
    for name, rows in zip(LONG_NAMES, batches, strict=True):  # written in another folder
        (tmp_path / name).write_bytes(csv_bytes(rows))
        os.rename(tmp_path / name, in_dir / name)
    poison = "p" * 251 + ".csv"
    (in_dir / poison).write_bytes(b"a,b\n1,2\n")
    watcher.wait_scored(2)
    wait_for(lambda: log_events(watcher.log, "failed") and not inputs_in(in_dir), "all moved")
    assert watcher.terminate() == 0, watcher.stderr
    assert_exactly_once(out_dir, [i for rows in batches for i in ids(rows)], in_dir / "nowhere")
    assert sorted(inputs_in(in_dir / ".processed")) == sorted(LONG_NAMES)
    failed = sorted(p.name for p in (in_dir / ".failed").iterdir())
    assert failed[0] == poison and failed[1].endswith(".error.json"), failed
    names = [p.name for p in (*out_dir.iterdir(), *(in_dir / ".failed").iterdir())]
    assert all(len(os.fsencode(n)) <= 255 for n in names)
    assert len({n for n in names if n.endswith(".scored.csv")}) == 2


def test_a_file_that_cannot_be_quarantined_is_skipped_and_no_restart_crash_loops(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool
) -> None:
    in_dir, out_dir = folders
    (in_dir / ".failed").write_text("not a folder")  # quarantine cannot work
    (in_dir / "poison.csv").write_bytes(b"a,b\n1,2\n")
    first = pool.take(10)
    (in_dir / "good.csv").write_bytes(csv_bytes(first))
    for _ in range(2):  # the same on every restart: exit 4 for the failed file, no crash
        code, stderr = watchers.once(in_dir, out_dir)
        assert code == 4, stderr
        assert "cannot move it into quarantine" in stderr and "Traceback" not in stderr
    watcher = watchers.start(in_dir, out_dir, "--rescan", "0.3")
    watcher.wait_ready()
    later = pool.take(10)
    drop_renamed(in_dir, "later.csv", later)
    wait_for(lambda: inputs_logged(watcher.log, "scored")["later.csv"] == 1, "later.csv scored")
    time.sleep(0.7)  # more listings: the poison file is logged once per run
    assert watcher.terminate() == 0, watcher.stderr
    assert inputs_logged(watcher.log, "failed")["poison.csv"] == 3  # one per run
    assert inputs_logged(watcher.log, "scored") == {"good.csv": 1, "later.csv": 1}
    assert output_ids(out_dir) == collections.Counter(ids(first) + ids(later))
    assert (in_dir / "poison.csv").exists()


# ------------------------------------------------------------------ item 7: the manifest


@pytest.mark.parametrize(
    ("removed", "said"),
    [
        ("out/.churnctl/manifest.db*", "manifest.db: removed while the watcher ran"),
        ("in/.churnctl-watch.lock", "another watcher could now archive or delete the same files"),
    ],
    ids=["manifest", "input folder lock"],
)
def test_a_manifest_or_lock_removed_under_a_running_watcher_stops_it_loudly(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool, removed: str, said: str
) -> None:
    in_dir, out_dir = folders
    watcher = watchers.start(in_dir, out_dir, "--after", "delete")
    watcher.wait_ready()
    drop_renamed(in_dir, "before.csv", pool.take(10))
    watcher.wait_scored(1)
    for path in in_dir.parent.glob(removed):  # rm manifest.db*, or the lock file
        path.unlink()
    drop_renamed(in_dir, "after.csv", pool.take(10))
    assert watcher.wait_exit() == 1
    lines = watcher.stderr.splitlines()
    assert lines[-1].startswith("Error: ")
    assert said in lines[-1]
    assert "Traceback" not in watcher.stderr
    assert not list(out_dir.glob("after.*"))  # nothing published for a claim never recorded


# ------------------------------------------------------------------ item 3: other processes


def test_one_consuming_watcher_per_folder_and_keep_watchers_fan_out(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool, tmp_path: Path
) -> None:
    """Keep watchers share a folder; a watcher that deletes or archives must be alone."""
    in_dir, _ = folders
    outs = [tmp_path / f"out-{i}" for i in range(4)]
    logs = [tmp_path / f"log-{i}.jsonl" for i in range(4)]
    keeps = [watchers.start(in_dir, outs[i], log=logs[i]) for i in (0, 1)]
    for keep in keeps:
        keep.wait_ready()
    refused = watchers.start(in_dir, outs[2], "--after", "delete", log=logs[2])
    rows = pool.take(10)
    drop_renamed(in_dir, "shared.csv", rows)
    for keep in keeps:  # a fan-out: each scores the file into its own folder
        keep.wait_scored(1)
    assert refused.wait_exit() == 1
    _assert_refused(refused.stderr, in_dir, {str(k.process.pid) for k in keeps})
    for keep in keeps:
        assert keep.terminate() == 0, keep.stderr
    assert output_ids(outs[0]) == output_ids(outs[1]) == collections.Counter(ids(rows))
    consumer = watchers.start(in_dir, outs[2], "--after", "delete", log=logs[2])
    consumer.wait_ready()
    for after in ("delete", "archive", "keep"):  # nobody else, whatever it would do
        second = watchers.start(in_dir, outs[3], "--after", after, log=logs[3])
        assert second.wait_exit() == 1
        _assert_refused(second.stderr, in_dir, {str(consumer.process.pid)})
    assert consumer.terminate() == 0


def _assert_refused(stderr: str, in_dir: Path, holders: set[str]) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert str(in_dir) in lines[0] and "already watches this folder" in lines[0]
    assert any(f"pid {pid}" in lines[0] for pid in holders), (lines[0], holders)


class _Cleaner(threading.Thread):
    """A clean-up job: deletes or moves away the even-numbered files as soon as it sees them."""

    def __init__(self, in_dir: Path, away: Path) -> None:
        super().__init__(daemon=True)
        self.in_dir, self.away, self.halt = in_dir, away, threading.Event()
        self.taken: set[str] = set()

    def run(self) -> None:
        n = 0
        while not self.halt.is_set():
            for path in sorted(self.in_dir.glob("part-*[02468].csv")):
                with contextlib.suppress(FileNotFoundError):
                    if n % 2:
                        path.unlink()
                    else:
                        os.rename(path, self.away / path.name)
                    self.taken.add(path.name)
                n += 1
            time.sleep(0.003)


def test_a_clean_up_job_under_a_consuming_watcher_never_stops_it(
    folders: tuple[Path, Path], watchers: Watchers, pool: RowPool, tmp_path: Path
) -> None:
    """Every file is scored once or not at all, and a file taken from under it is logged."""
    in_dir, out_dir = folders
    away = tmp_path / "away"
    away.mkdir()
    watcher = watchers.start(in_dir, out_dir, "--after", "delete", "--rescan", "0.2")
    watcher.wait_ready()
    cleaner = _Cleaner(in_dir, away)
    cleaner.start()
    batches = {f"part-{i:03d}.csv": pool.take(10) for i in range(60)}
    try:
        for name, rows in batches.items():
            drop_renamed(in_dir, name, rows)
            time.sleep(0.01)
    finally:
        cleaner.halt.set()
        cleaner.join(10)
    wait_for(lambda: not inputs_in(in_dir), "the folder to be empty")
    time.sleep(0.3)
    assert watcher.process.poll() is None, watcher.stderr
    assert watcher.terminate() == 0, watcher.stderr
    scored = inputs_logged(watcher.log, "scored")
    assert set(scored.values()) <= {1}  # never twice
    untouched = set(batches) - cleaner.taken
    assert untouched <= set(scored), sorted(untouched - set(scored))  # the rest all scored
    found = output_ids(out_dir)
    assert set(found.values()) <= {1}
    assert set(found) == {i for name in scored for i in ids(batches[name])}  # whole files only
    assert 0 < len(cleaner.taken) <= len(batches) // 2
    assert set(inputs_logged(watcher.log, "vanished")) <= cleaner.taken
    assert "Traceback" not in watcher.stderr and "Error" not in watcher.stderr
