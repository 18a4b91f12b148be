"""Real ``churnctl watch`` processes for the process tests: start, wait, stop, inspect.

Every wait is a poll loop with a deadline; every process started through ``Watchers`` is
killed in its teardown if the test left it running.
"""

from __future__ import annotations

import collections
import csv
import functools
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cli_helpers import cli_env
from csv_rows import csv_bytes, text_rows

from churnctl import atomic

ROOT = Path(__file__).resolve().parents[1]
WATCH = [sys.executable, "-c", "from churnctl.cli import run; run()", "watch"]
DEADLINE = 30.0  # seconds: the longest any single wait may take
ID = 1  # CustomerId's column in the generated rows
Rows = list[list[str]]


# ------------------------------------------------------------------ rows and files


@functools.cache
def _pool(n: int = 12_000, seed: int = 17) -> Rows:
    return text_rows(n, seed)


class RowPool:
    """Hands out rows never handed out before: every CustomerId unique across a test."""

    def __init__(self) -> None:
        self.rows, self.next = _pool(), 0

    def take(self, n: int) -> Rows:
        if self.next + n > len(self.rows):
            raise ValueError("the row pool is exhausted; make it larger")
        taken, self.next = self.rows[self.next : self.next + n], self.next + n
        return taken


def ids(rows: Rows) -> list[str]:
    return [row[ID] for row in rows]


def drop_renamed(in_dir: Path, name: str, rows: Rows) -> Path:
    """The producer convention: write a hidden temporary name, then rename it in."""
    tmp, final = in_dir / f".{name}.tmp", in_dir / name
    tmp.write_bytes(csv_bytes(rows))
    os.rename(tmp, final)
    return final


# ------------------------------------------------------------------ waiting


def wait_for(predicate: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``predicate`` until it is true; fail the test with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def log_events(log: Path, kind: str | None = "scored") -> list[dict[str, object]]:
    """The JSON log's events (of one kind); a line cut short by a SIGKILL is skipped."""
    if not log.exists():
        return []
    found = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if kind is None or event["event"] == kind:
            found.append(event)
    return found


# ------------------------------------------------------------------ pauses


class Pauses:
    """A watcher that stops at named steps until the test lets it go (``CHURNCTL_PAUSE``).

    At each listed step the watcher creates ``folder/<step>.<N>`` and waits until it is
    removed: the test acts at a known point between two steps, then releases it.
    """

    def __init__(self, folder: Path, *steps: str) -> None:
        self.folder, self.steps = folder, steps
        folder.mkdir()

    def env(self) -> dict[str, str]:
        return watch_env(CHURNCTL_PAUSE=",".join(self.steps), CHURNCTL_PAUSE_DIR=str(self.folder))

    def _paused(self) -> Path | None:
        return next(iter(sorted(self.folder.iterdir())), None)

    def run_to(self, step: str) -> Path:
        """Release every pause until the watcher stops at ``step``; that pause (still held)."""
        found: list[Path] = []

        def at_step() -> bool:
            paused = self._paused()
            if paused is not None and paused.name.rpartition(".")[0] == step:
                found.append(paused)
                return True
            if paused is not None:
                paused.unlink()
            return False

        wait_for(at_step, f"the watcher to reach {step}")
        return found[0]

    def release_until(self, predicate: Callable[[], object], what: str) -> None:
        """Release every pause until ``predicate`` holds."""

        def done() -> object:
            paused = self._paused()
            if paused is not None:
                paused.unlink()
            return predicate()

        wait_for(done, what)


# ------------------------------------------------------------------ processes


def watch_env(**extra: str) -> dict[str, str]:
    """The environment of a watcher: no fault unless asked, cached bytecode (a faster start)."""
    dropped = ("CHURNCTL_FAULT", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in cli_env().items() if k not in dropped}
    return {**env, **extra}


@dataclass
class WatchProcess:
    """One ``churnctl watch`` process, its stderr in a file and its JSON log."""

    process: subprocess.Popen[bytes]
    log: Path
    err: Path

    @property
    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def scored(self) -> list[dict[str, object]]:
        return log_events(self.log)

    def wait_ready(self) -> None:
        """Until the watcher says it is watching (its start-up is over)."""
        wait_for(
            lambda: "watching " in self.stderr or self.process.poll() is not None,
            "the watcher to start",
        )
        assert self.process.poll() is None, f"the watcher exited: {self.stderr}"

    def wait_scored(self, n: int) -> list[dict[str, object]]:
        """Until the JSON log holds at least ``n`` scored events (this log, all runs)."""
        wait_for(
            lambda: len(self.scored()) >= n or self.process.poll() is not None, f"{n} scored files"
        )
        assert len(self.scored()) >= n, f"the watcher exited early: {self.stderr}"
        return self.scored()

    def wait_exit(self, timeout: float = DEADLINE) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the watcher did not exit: {self.stderr}") from None

    def kill(self) -> int:
        """SIGKILL, as a crash would."""
        self.process.kill()
        return self.wait_exit()

    def terminate(self) -> int:
        """SIGTERM: the watcher finishes its file and exits."""
        self.process.send_signal(signal.SIGTERM)
        return self.wait_exit()


class Watchers:
    """Starts watcher processes for one test and kills any left running at its end."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[WatchProcess] = []

    def start(
        self,
        in_dir: Path,
        out_dir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> WatchProcess:
        """A watcher (``--settle 200`` unless given), its JSON log ``base/watch.jsonl``."""
        log = log or self.base / "watch.jsonl"
        err = self.base / f"watch-{len(self.started)}.err"
        settle = [] if "--settle" in args else ["--settle", "200"]
        command = [
            *WATCH,
            str(in_dir),
            "--out",
            str(out_dir),
            "--log-json",
            str(log),
            *settle,
            *args,
        ]
        with err.open("wb") as stderr:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env or watch_env(),
                cwd=self.base,
            )
        watcher = WatchProcess(process, log, err)
        self.started.append(watcher)
        return watcher

    def once(self, in_dir: Path, out_dir: Path, *args: str) -> tuple[int, str]:
        """``watch --once``: its exit code and stderr."""
        watcher = self.start(in_dir, out_dir, "--once", *args)
        return watcher.wait_exit(), watcher.stderr

    def close(self) -> None:
        for watcher in self.started:
            if watcher.process.poll() is None:
                watcher.process.kill()
                watcher.process.wait(timeout=10)


# ------------------------------------------------------------------ what a run left behind


def output_ids(out_dir: Path) -> collections.Counter[str]:
    """Every CustomerId in the scored and rejects files of ``out_dir``, counted."""
    found: collections.Counter[str] = collections.Counter()
    for path in out_dir.glob("*.scored.csv"):
        with path.open(newline="", encoding="utf-8") as handle:
            found.update(row["CustomerId"] for row in csv.DictReader(handle))
    for path in out_dir.glob("*.rejects.csv"):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                fields = next(csv.reader(io.StringIO(row["text"])), [])
                found[fields[ID] if len(fields) > ID else row["text"]] += 1
    return found


def file_ids(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [row["CustomerId"] for row in csv.DictReader(handle)]


def manifest_states(out_dir: Path) -> collections.Counter[str]:
    """Rows of the manifest by state."""
    path = out_dir / ".churnctl" / "manifest.db"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return collections.Counter(
            dict(db.execute("SELECT state, count(*) FROM inputs GROUP BY state").fetchall())
        )
    finally:
        db.close()


def inputs_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.csv"))


def temporaries(folder: Path) -> list[str]:
    """The names of churnctl's temporary files left in ``folder`` (``atomic`` knows them)."""
    return [p.name for p in atomic.temporaries(folder)]


def assert_exactly_once(out_dir: Path, expected: Sequence[str], in_dir: Path) -> None:
    """Each expected CustomerId in exactly one output row; nothing claimed, temporary, failed."""
    found = output_ids(out_dir)
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    twice = sorted(i for i, n in found.items() if n > 1)
    assert not (missing or extra or twice), (
        f"{len(missing)} missing, {len(extra)} unexpected, {len(twice)} duplicated ids: "
        f"{missing[:5]} {extra[:5]} {twice[:5]}"
    )
    assert len(expected) == len(set(expected)), "the test's own ids are not unique"
    assert temporaries(out_dir) == []
    assert manifest_states(out_dir)["claimed"] == 0, manifest_states(out_dir)
    failed = in_dir / ".failed"
    assert not failed.exists() or not any(failed.iterdir()), sorted(os.listdir(failed))
