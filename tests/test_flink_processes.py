"""The Flink job's process group (``flink_process``, ``flink_launch``) with real processes,
no Flink: output streamed as it comes, and nothing left behind when the process that
started the job dies (SIGKILL), is interrupted (SIGINT) or fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cli_helpers import cli_env
from process_helpers import group, launcher_of, processes, wait_until_gone

from churnctl.flink.launch import GRACE
from churnctl.flink.process import run_logged

REPO = Path(__file__).resolve().parents[1]
ENV = cli_env()

# A job that starts a worker which ignores SIGTERM (as a stubborn JVM could), says "ready"
# once both run, then waits: only SIGKILL of the whole group ends the worker.
JOB = textwrap.dedent("""
    import signal, subprocess, sys, time
    worker = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"
    subprocess.Popen([sys.executable, "-c", worker])
    time.sleep(0.3)
    print("ready", flush=True)
    time.sleep(300)
""")

# The process that starts the job: it prints what the job prints, and exits 128 + N on a
# SIGINT or SIGTERM (N), as churnctl's CLI does.
DRIVER = textwrap.dedent("""
    import os, sys
    import churnctl.interrupts as interrupts
    from churnctl.flink.process import run_logged
    interrupts.install()
    with open(sys.argv[1], "ab") as log:
        try:
            run_logged([sys.executable, "-c", sys.argv[2]], dict(os.environ), log,
                       on_line=lambda line: print(line, flush=True))
        except interrupts.Interrupted as stop:
            sys.exit(stop.exit_code)
""")


def start_driver(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """The driver, once its job says "ready"; the job's process group (the launcher's pid)."""
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(tmp_path / "job.log"), JOB],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert driver.stdout is not None
    line = driver.stdout.readline()  # bounded: the test's own timeout; the job prints at once
    assert line == "ready\n", line
    launcher = launcher_of(driver.pid)
    assert launcher is not None and launcher.pgid == launcher.pid
    assert len(group(launcher.pgid)) == 3, group(launcher.pgid)  # launcher, job, worker
    assert driver.pid not in {p.pid for p in group(launcher.pgid)}  # a group of its own
    return driver, launcher.pgid


def reap(process: subprocess.Popen[str]) -> int:
    try:
        return process.wait(timeout=GRACE + 10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def assert_gone(job_group: int, timeout: float) -> None:
    """No living member of ``job_group`` within ``timeout`` s (those left are killed)."""
    left = wait_until_gone(job_group, timeout)
    for proc in left:  # never leave them behind, even when the test fails
        os.kill(proc.pid, signal.SIGKILL)
    assert left == [], left


def test_sigkill_of_the_starter_ends_the_whole_job_group(tmp_path: Path) -> None:
    driver, job_group = start_driver(tmp_path)
    os.kill(driver.pid, signal.SIGKILL)
    assert reap(driver) == -signal.SIGKILL
    assert_gone(job_group, GRACE + 5)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_starter_stops_the_job_group_first(tmp_path: Path, signum: int) -> None:
    driver, job_group = start_driver(tmp_path)
    started = time.monotonic()
    os.kill(driver.pid, signum)
    code = reap(driver)
    assert_gone(job_group, 2)  # gone by the time the starter exits
    assert code == 128 + signum
    assert time.monotonic() - started < GRACE + 3
    assert b"ready\n" in (tmp_path / "job.log").read_bytes()


def test_output_is_streamed_to_the_log_and_the_caller_as_it_comes(tmp_path: Path) -> None:
    job = (
        "import sys, time; print('one', flush=True); time.sleep(1.2); print('two');"
        "sys.stdout.write('last, no line break'); sys.exit(3)"
    )
    seen: list[tuple[float, str]] = []
    ticks: list[float] = []
    with (tmp_path / "job.log").open("ab") as log:
        code, tail = run_logged(
            [sys.executable, "-c", job],
            ENV,
            log,
            every=0.3,
            on_line=lambda line: seen.append((time.monotonic(), line)),
            on_tick=lambda: ticks.append(time.monotonic()),
        )
    assert code == 3
    assert [line for _, line in seen] == ["one", "two", "last, no line break"]
    assert seen[1][0] - seen[0][0] > 1.0  # "one" came when printed, not at the end
    assert len(ticks) >= 3
    assert (tmp_path / "job.log").read_bytes() == b"one\ntwo\nlast, no line break\n"
    assert tail == "one\ntwo\nlast, no line break"


def test_an_error_in_a_callback_stops_the_job_group(tmp_path: Path) -> None:
    def refuse(line: str) -> None:
        raise ValueError(line)

    marker = f"churnctl-test-{os.getpid()}-{time.monotonic_ns()}"
    job = f"import time; print('{marker}', flush=True); time.sleep(300)"
    with (tmp_path / "job.log").open("ab") as log, pytest.raises(ValueError, match=marker):
        run_logged([sys.executable, "-c", job], ENV, log, on_line=refuse)
    deadline = time.monotonic() + 5
    while (left := [p for p in processes() if marker in p.cmdline]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []


def test_a_launcher_whose_starter_is_already_gone_runs_nothing(tmp_path: Path) -> None:
    """The parent-death signal is armed after the start: a parent gone before is seen too."""
    created = tmp_path / "created"
    not_my_parent = str(os.getpid() + 1)  # its parent is this process
    done = subprocess.run(
        [sys.executable, "-m", "churnctl.flink.launch", not_my_parent, "touch", str(created)],
        env=ENV,
        timeout=30,
        start_new_session=True,
    )
    assert done.returncode == -signal.SIGKILL  # it ended its own group, itself included
    assert not created.exists()
