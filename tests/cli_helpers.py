"""Helpers shared by the test files: the command line run in-process, the text it shows, and
the environment of the processes a test starts (so that they import this checkout)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from typer.testing import CliRunner, Result

from churnctl.cli import app

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
BOX = re.compile("[\u2500-\u257f]")  # Rich table and panel borders


def run(
    args: Sequence[str | Path], input: bytes | str | None = None, cwd: Path | None = None
) -> Result:
    """``churnctl ARGS`` through typer's CliRunner (stdout and stderr kept apart), from ``cwd``
    if given (the working folder is restored afterwards)."""
    previous = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(app, [str(a) for a in args], input=input)
    finally:
        os.chdir(previous)


def plain(text: str) -> str:
    """Terminal text without colours or table borders, whitespace runs as one space."""
    return " ".join(BOX.sub(" ", ANSI.sub("", text)).split())


def assert_clean_error(result: Result, code: int, *fragments: str) -> None:
    """A ChurnctlError: `Error: ...` on stderr, the exit code, no traceback, no stdout."""
    err = plain(result.stderr)
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert err.startswith("Error: "), err
    assert "Traceback" not in result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a process a test starts: this one's, importing this checkout's
    ``churnctl`` (PYTHONPATH), with ``extra`` on top."""
    return {**os.environ, "PYTHONPATH": str(ROOT), **extra}
