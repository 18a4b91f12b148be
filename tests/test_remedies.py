"""Remedies and usage hints in the CLI's own words, for every command.

The library's errors carry structured remedies (``Fix("max_rejects", "100%")``);
each command spells every one of them as its own option or argument, or says what
to do where it has none: never an option of another command, never the library's
``set max_rejects=...``. Usage errors end with ``Try 'churnctl CMD --help'``, and
``-h`` is ``--help`` everywhere.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import cli_helpers
import pytest
import typer

import churnctl
from churnctl.cli import app
from churnctl.cli.remedies import WITHOUT_OPTION, spell
from churnctl.errors import Fix

PACKAGE = Path(churnctl.__file__).parent
COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]
FLAG = re.compile(r"(?<![\w-])--?[a-z][a-z-]*")


def library_settings() -> set[str]:
    """Every setting a library module names in a ``Fix(...)``: all literal, all found."""
    settings: set[str] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Fix":
                first = node.args[0] if node.args else node.keywords[0].value
                assert isinstance(first, ast.Constant), f"{path.name}:{node.lineno}: not a literal"
                settings.add(first.value)
    return settings


SETTINGS = sorted(library_settings())


def test_the_scan_finds_the_library_remedies() -> None:
    assert {"encoding", "delimiter", "max_rejects", "model", "state", "out", "logits"} <= set(
        SETTINGS
    )


def test_every_library_remedy_has_words_for_a_command_without_its_option() -> None:
    assert set(SETTINGS) <= set(WITHOUT_OPTION)


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_spells_every_remedy_in_its_own_words(name: str, setting: str) -> None:
    command = COMMANDS[name]
    text = spell(Fix(setting, "VALUE", "when needed"), command.params)
    own_flags = {opt for param in command.params for opt in param.opts if opt.startswith("-")}
    assert set(FLAG.findall(text)) <= own_flags, (name, setting, text)
    assert not re.search(r"\bset [a-z_]+\b|=", text), text
    own = next((p for p in command.params if p.name == setting), None)
    if own is None:
        assert text == WITHOUT_OPTION[setting]
    elif own.param_type_name == "argument":
        assert text == f"name VALUE as {own.metavar} when needed"
    else:
        assert text == f"pass {max(own.opts, key=len)} VALUE when needed"


def test_a_switch_is_passed_without_a_value() -> None:
    params = COMMANDS["score"].params
    assert spell(Fix("allow_state_mismatch", True), params) == "pass --allow-state-mismatch"
    assert spell(Fix("format", "a b"), params) == "pass --format 'a b'"


def run(args: list[str]) -> tuple[int, str]:
    result = cli_helpers.run(args)
    return result.exit_code, " ".join(result.stderr.split())


def test_watch_status_names_its_argument_not_an_option(tmp_path: Path) -> None:
    code, err = run(["watch-status", str(tmp_path)])
    assert code == 1
    assert err.endswith("name the folder a watcher writes to as OUT_DIR"), err
    assert "--out" not in err


def test_a_command_without_the_option_says_what_to_do() -> None:
    """``inspect`` reads no CSV itself, so it has no --encoding: the remedy says what to do
    instead of naming an option the command does not take."""
    text = spell(
        Fix("encoding", "latin-1", "if the file uses another encoding"), COMMANDS["inspect"].params
    )
    assert text == "convert the file to UTF-8 first" and "--encoding" not in text


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_dash_h_is_help_in_every_command(name: str) -> None:
    result = cli_helpers.run([name, "-h"])
    assert result.exit_code == 0, result.output
    assert "Usage: churnctl " + name in " ".join(result.stdout.split())


def test_dash_h_is_help_for_the_application() -> None:
    result = cli_helpers.run(["-h"])
    assert result.exit_code == 0 and "Commands" in result.stdout


@pytest.mark.parametrize(
    ("args", "start"),
    [
        (["watch", "in"], "watch needs --out DIR"),
        (["watch", "--status"], "watch needs --out DIR"),
        (["flink-submit", "x.csv"], "flink-submit needs INPUT and --out DIR"),
        (["flink-submit", "--stop", "abc"], "--stop JOB_ID needs --jobmanager"),
        (["score", "x.csv", "--state", "s.json", "--train", "t.csv"], "pass either --state"),
        (["score", "x.csv", "--save-state", "s.json"], "--save-state and --pipeline need"),
        (["score", "x.csv", "--threshold", "2"], "threshold must be a number from 0 to 1"),
        (["score", "x.csv", "--max-rejects", "lots"], "--max-rejects must be a count"),
        (["score", "x.csv", "--delimiter", "ab"], "--delimiter must be one character"),
    ],
)
def test_usage_errors_raised_by_a_command_end_with_where_to_get_help(
    args: list[str], start: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("x.csv").write_text("a\n1\n", encoding="utf-8")
    code, err = run(args)
    assert code == 2, err
    assert err.startswith(f"Error: {start}"), err
    assert err.endswith(f"Try 'churnctl {args[0]} --help' for help."), err
