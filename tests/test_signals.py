"""A SIGTERM or SIGINT at any moment ends a run cleanly (item 14).

Either the run ends with 128 + the signal (143, 130), with nothing published and
no temporary file left (outputs, rejects, parts folder, stdin spool), or the
signal came after publication and the run ends with 0 and complete outputs.
Never exit 1, never an abort (134), never a traceback.

Most runs are in this process (no start-up cost): a timer thread sends the
signal at a random moment of a run, with every step slowed a little
(``CHURNCTL_FAULT=sleep=...``) so that signals land in each step's window.
A smaller number of real ``churnctl`` processes, signalled at random moments
from their start-up on, covers ``score``, ``score --workers 2``, ``fit`` and
``watch --once``.

To stress the in-process runs (a rare race needs thousands), set
``CHURNCTL_SIGNAL_RUNS`` (runs per case, default 36) and ``CHURNCTL_SIGNAL_SEED``.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import cli_env, run
from csv_rows import csv_bytes, text_rows

import churnctl.interrupts as interrupts
from churnctl.atomic import temporaries
from churnctl.faults import FAULT_ENV
from churnctl.samples.generate import COLUMNS, generate_files

ROOT = Path(__file__).resolve().parents[1]
SIGNALS = (signal.SIGTERM, signal.SIGINT)
INTERRUPTED = {128 + s for s in SIGNALS}
ROWS = 400  # per input


def data_lines(path: Path) -> int:
    """Records in a CSV file (header excluded); every line is one record here."""
    return path.read_bytes().count(b"\n") - 1


def leftovers(folder: Path) -> list[str]:
    """Temporary files and parts folders churnctl would leave behind."""
    found = [
        *temporaries(folder, recursive=True),
        *folder.rglob("*.parts"),
        *folder.rglob("churnctl-stdin-*"),
    ]
    return sorted(str(p) for p in found)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("signal-data")
    for name, seed in (("a.csv", 1), ("b.csv", 2), ("train.csv", 3)):
        rows = text_rows(ROWS, seed=seed)
        rows[5][COLUMNS.index("Age")] = "old"  # one reject each: rejects files have rows
        (folder / name).write_bytes(csv_bytes(rows))
    return folder


# ------------------------------------------------------------------ in this process


@dataclass
class Case:
    args: Callable[[Path, Path], list[str | Path]]
    check: Callable[[Path, Path], None]  # the outputs of a run that ended with 0
    stdin: bool = False


def _scored(out: Path, inputs: int) -> None:
    assert data_lines(out / "o.csv") + data_lines(out / "o.rejects.csv") == inputs * ROWS
    assert data_lines(out / "o.rejects.csv") == inputs


def _pairs_complete(out: Path, data: Path) -> None:
    scored = sorted(out.glob("*.scored.csv"))
    assert len(scored) == 2
    for output in scored:
        rejects = output.with_name(output.name.replace(".scored.csv", ".rejects.csv"))
        assert data_lines(output) + data_lines(rejects) == ROWS


def _fitted(out: Path, data: Path) -> None:
    assert '"rows_rejected": 1' in (out / "s.json").read_text()
    assert data_lines(out / "s.json.rejects.csv") == 1


CASES = {
    "score": Case(
        lambda d, o: ["score", d / "a.csv", "-o", o / "o.csv"], lambda o, d: _scored(o, 1)
    ),
    "score-stdin": Case(
        lambda d, o: ["score", "-", "-o", o / "o.csv"], lambda o, d: _scored(o, 1), stdin=True
    ),
    "score-many": Case(
        lambda d, o: ["score", d / "a.csv", d / "b.csv", "-o", o / "o.csv", "--workers", "1"],
        lambda o, d: _scored(o, 2),
    ),
    "score-out-dir": Case(
        lambda d, o: ["score", d / "a.csv", d / "b.csv", "--out-dir", o, "--workers", "1"],
        _pairs_complete,
    ),
    "fit": Case(lambda d, o: ["fit", d / "train.csv", "-o", o / "s.json"], _fitted),
}
IN_PROCESS_RUNS = int(os.environ.get("CHURNCTL_SIGNAL_RUNS", "36"))  # per case
SEED = os.environ.get("CHURNCTL_SIGNAL_SEED", "14")


@pytest.fixture
def outside_signals() -> Iterator[list[int]]:
    """Signals that land outside a command (in the test's own code): recorded, not fatal."""
    landed: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: landed.append(signum)) for s in SIGNALS}
    yield landed
    for s, handler in previous.items():
        signal.signal(s, handler)


def _wait_seen(signum: int, outside: list[int], limit: float = 5.0) -> None:
    """Wait until the run recorded the signal, or the test's own handler saw it (outside)."""
    deadline = time.monotonic() + limit
    while interrupts.received() != signum and signum not in outside:
        assert time.monotonic() < deadline, f"signal {signum} was lost"
        time.sleep(0.001)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_signal_at_a_random_moment_of_a_run_in_this_process(
    name: str,
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    outside_signals: list[int],
) -> None:
    case = CASES[name]
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    monkeypatch.setenv(FAULT_ENV, "sleep=0.002")
    stdin = (data / "a.csv").read_bytes() if case.stdin else None
    started = time.perf_counter()
    assert run(case.args(data, tmp_path / "warm"), input=stdin).exit_code == 0
    span = (time.perf_counter() - started) * 1.2
    rng = random.Random(f"{name}-{SEED}")
    codes: list[int] = []
    for i in range(IN_PROCESS_RUNS):
        out = tmp_path / f"run{i}"
        out.mkdir()
        signum = rng.choice(SIGNALS)
        timer = threading.Timer(rng.uniform(0, span), os.kill, (os.getpid(), signum))
        outside_signals.clear()
        timer.start()
        result = run(case.args(data, out), input=stdin)
        timer.join()
        _wait_seen(signum, outside_signals)  # never lost; and never pending into the next run
        code = result.exit_code
        codes.append(code)
        assert code in {0, 128 + signum}, (i, result.output, result.exception)
        assert "Traceback" not in result.output
        assert leftovers(out) == [] and list(spool.iterdir()) == [], i
        if code == 0:
            case.check(out, data)
        elif name != "score-out-dir":  # an output folder keeps the pairs done before
            assert list(out.iterdir()) == [], i
        assert not outside_signals or code == 0, "a signal outside the run changed it"
    assert set(codes) & INTERRUPTED, f"no run was interrupted: {codes}"


class SignalAfterCreation:
    """``tempfile.mkstemp``/``mkdtemp`` that send a signal right after the ``at``-th creation."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.created, self.at, self.signum = 0, -1, signal.SIGTERM
        for name in ("mkstemp", "mkdtemp"):
            monkeypatch.setattr(tempfile, name, self._wrap(getattr(tempfile, name)))

    def _wrap(self, create: Callable[..., object]) -> Callable[..., object]:
        def created(*args: object, **kwargs: object) -> object:
            made = create(*args, **kwargs)
            if self.created == self.at:
                os.kill(os.getpid(), self.signum)
            self.created += 1
            return made

        return created


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_signal_right_after_any_temporary_file_is_created_leaves_none(
    name: str,
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    outside_signals: list[int],
) -> None:
    """Every creation of a temporary file or folder, each in turn: the class, not a sample."""
    case = CASES[name]
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    stdin = (data / "a.csv").read_bytes() if case.stdin else None
    signaller = SignalAfterCreation(monkeypatch)
    assert run(case.args(data, tmp_path / "warm"), input=stdin).exit_code == 0
    creations = signaller.created
    assert creations >= 2, "the run created no temporary file: the test tests nothing"
    for k in range(creations):
        out = tmp_path / f"run{k}"
        out.mkdir()
        signaller.created, signaller.at = 0, k
        signaller.signum = SIGNALS[k % 2]
        outside_signals.clear()
        result = run(case.args(data, out), input=stdin)
        _wait_seen(signaller.signum, outside_signals)
        assert result.exit_code in {0, 128 + signaller.signum}, (k, result.output)
        assert "Traceback" not in result.output
        assert leftovers(out) == [] and list(spool.iterdir()) == [], k
        if result.exit_code == 0:
            case.check(out, data)


def test_library_code_after_an_interrupted_run_is_not_interrupted(
    tmp_path: Path, outside_signals: list[int]
) -> None:
    """The signal that stopped a run in this process is that run's: later calls go on."""
    with pytest.raises(interrupts.Interrupted), interrupts.handled():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted long before
    assert interrupts.received() == signal.SIGTERM
    written = generate_files(tmp_path / "after.csv", n_rows=10, seed=1)  # publishes a file
    assert written[0].is_file() and outside_signals == []


def test_a_signal_while_the_handlers_are_installed_leaves_the_previous_ones(
    monkeypatch: pytest.MonkeyPatch, outside_signals: list[int]
) -> None:
    """A signal that lands once the first handler is in, before the run has begun, still
    ends with the previous handlers back: a later signal is not raised in the caller's
    code (CI saw the next in-process run's set-up interrupted)."""
    install_one, landed = signal.signal, []

    def signal_just_after(signum: int, handler: object) -> object:
        previous = install_one(signum, handler)
        if getattr(handler, "__module__", None) == interrupts.__name__ and not landed:
            landed.append(signum)
            os.kill(os.getpid(), signum)  # lands at once, in the handler just installed
        return previous

    monkeypatch.setattr(interrupts.signal, "signal", signal_just_after)
    with pytest.raises(interrupts.Interrupted), interrupts.handled():
        pytest.fail("the run must not begin")
    monkeypatch.undo()
    handlers = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    assert landed and outside_signals == []
    assert all(getattr(h, "__module__", None) == __name__ for h in handlers.values()), handlers
    os.kill(os.getpid(), signal.SIGINT)
    _wait_seen(signal.SIGINT, outside_signals)
    assert outside_signals == [signal.SIGINT]


# ------------------------------------------------------------------ real processes


def churnctl(args: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "churnctl", *[str(a) for a in args]],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@dataclass
class Outcome:
    code: int
    err: str
    out: Path


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("signal-big")
    generate_files(folder / "a.csv", n_rows=40_000, seed=1)
    generate_files(folder / "b.csv", n_rows=40_000, seed=2)
    landing = folder / "landing"
    generate_files(landing, n_rows=6_000, files=3, seed=3)
    return folder


REAL = {
    "score": (lambda d, o: ["score", d / "a.csv", "-o", o / "o.csv"], 4),
    "score-workers": (
        lambda d, o: ["score", d / "a.csv", d / "b.csv", "-o", o / "o.csv", "--workers", "2"],
        4,
    ),
    "fit": (lambda d, o: ["fit", d / "a.csv", "-o", o / "s.json"], 3),
    "watch-once": (
        lambda d, o: ["watch", d / "landing", "--out", o / "w", "--once", "--settle", "0"],
        4,
    ),
}


SCORED_ROWS = {"score": 40_000, "score-workers": 80_000}


def _run_real(name: str, big: Path, out: Path, delay: float, signum: int) -> Outcome:
    out.mkdir()
    spool = Path(tempfile.mkdtemp(prefix="sig-"))  # short: the forkserver's socket lives there
    env = cli_env(TMPDIR=str(spool), **{FAULT_ENV: "sleep=0.01"})
    process = churnctl(REAL[name][0](big, out), out, env)
    time.sleep(delay)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    try:
        assert leftovers(spool) == [], name
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    return Outcome(process.returncode, err.decode(errors="replace"), out)


def _made(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*"))


def test_a_signal_at_a_random_moment_of_a_real_run(big: Path, tmp_path: Path) -> None:
    rng = random.Random(14)
    runs = [
        (name, i, rng.uniform(0.0, 2.5), rng.choice(SIGNALS))
        for name, (_, count) in REAL.items()
        for i in range(count)
    ]
    with ThreadPoolExecutor(3) as pool:
        outcomes = list(
            pool.map(
                lambda run: _run_real(run[0], big, tmp_path / f"{run[0]}-{run[1]}", run[2], run[3]),
                runs,
            )
        )
    for (name, _, delay, signum), outcome in zip(runs, outcomes, strict=True):
        where = f"{name} after {delay:.2f} s ({signal.Signals(signum).name}): {outcome.err}"
        assert outcome.code in {0, 128 + signum, -signum}, where
        killed_in_start_up = outcome.code == -signum  # before the handlers: nothing made
        assert "Traceback" not in outcome.err or _before_handlers(outcome, signum), where
        assert leftovers(outcome.out) == [], where
        if killed_in_start_up or (outcome.code != 0 and name != "watch-once"):
            assert _made(outcome.out) == [], where
        elif outcome.code == 0 and name in SCORED_ROWS:
            assert data_lines(outcome.out / "o.csv") == SCORED_ROWS[name], where
        if name == "watch-once":
            _restart_scores_each_file_once(big, outcome.out)


START_UP_MODULES = {"__init__.py", "moved.py", "interrupts.py", "__main__.py"}


def _before_handlers(outcome: Outcome, signum: int) -> bool:
    """A SIGINT in the interpreter's own start-up, before ``churnctl.__main__`` installed the
    handlers (its first import): Python's default handler prints its traceback there.

    The window is the interpreter's start-up plus ~8 ms of imports (tests/test_startup.py
    keeps them light); under load a signal sent 0.07 s after the start can land in it.
    """
    lines = outcome.err.strip().splitlines()
    ours = set(re.findall(r'File "[^"]*/churnctl/([^"]+)"', outcome.err))
    starting = ours <= START_UP_MODULES and ", in main" not in outcome.err
    return (
        signum == signal.SIGINT
        and outcome.code == -signum
        and starting
        and bool(lines)
        and lines[-1] == "KeyboardInterrupt"
    )


def _restart_scores_each_file_once(big: Path, out: Path) -> None:
    """After any stop, a restart leaves exactly one output per input, with all its rows."""
    env = cli_env()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "churnctl",
            "watch",
            big / "landing",
            "--out",
            out / "w",
            "--once",
            "--settle",
            "0",
        ],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    outputs = sorted((out / "w").glob("*.scored.csv"))
    assert len(outputs) == 3, outputs
    assert sum(data_lines(p) for p in outputs) == 6_000
    assert leftovers(out / "w") == []


def test_a_second_signal_stops_watch_at_once_and_a_restart_completes(
    big: Path, tmp_path: Path
) -> None:
    env = cli_env(**{FAULT_ENV: "sleep=0.05"})
    process = churnctl(
        ["watch", big / "landing", "--out", tmp_path / "w", "--once", "--settle", "0"],
        tmp_path,
        env,
    )
    deadline = time.monotonic() + 60
    while not list((tmp_path / "w").glob(".*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.01)  # a file is being scored
    process.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode in {0, 143}, err
    assert b"Traceback" not in err
    assert leftovers(tmp_path / "w") == []
    _restart_scores_each_file_once(big, tmp_path)
