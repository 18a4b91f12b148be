"""The command line under hostile conditions (issue 7): closed pipes, terminal escape
sequences in names and data, odd option values, usage errors, help and completion.

Real processes and pipes where the behaviour lives in the process (a closed stdout, shell
completion); typer's CliRunner elsewhere. Every failure must be one `Error: ...` line with
the documented exit code, leave the input unchanged and no temporary file behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import pytest
from cli_helpers import ANSI, BOX, cli_env, plain, run
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx_factories import logistic_n1
from typer.testing import CliRunner, Result

from churnctl import cli
from churnctl.atomic import temporaries
from churnctl.cli import app
from churnctl.errors import UsageError
from churnctl.samples.bundled import SAMPLE, STATE, bundled
from churnctl.samples.generate import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from churnctl.cli import app; app(prog_name='churnctl')"]
CONSOLE_SCRIPT = [
    sys.executable,
    "-c",
    "import sys; sys.argv[0] = 'churnctl'; from churnctl.__main__ import main; main()",
]
SIGPIPE_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a writer killed by a closed pipe
EVIL = "\x1b[31m\x1b]0;owned\x07\x9b2J\u202e"  # SGR, OSC title + BEL, C1 CSI, bidi override
EVIL_SHOWN = r"\x1b[31m\x1b]0;owned\x07\x9b2J\u202e"


# ------------------------------------------------------------------ helpers


def unprintable(text: str) -> list[str]:
    """The characters a terminal would act on instead of showing (line ends aside)."""
    return [
        c
        for c in text.replace("\n", "")
        if unicodedata.category(c) in {"Cc", "Cs"}
        or c in "\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    ]


def assert_one_line_error(result: Result, code: int, *fragments: str) -> str:
    """`Error: ...` as the one line on stderr, the exit code, no traceback, nothing on stdout."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    outside_fragments = lines[0]  # a fragment (a file name) may hold box-drawing characters
    for fragment in fragments:
        outside_fragments = outside_fragments.replace(fragment, "")
    assert not BOX.search(outside_fragments) and "Traceback" not in result.output
    assert unprintable(ANSI.sub("", result.stderr)) == []
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in temporaries(directory, recursive=True)]


def write_csv(
    path: Path, header: Sequence[str], rows: Sequence[Sequence[str]], sep: str = ","
) -> Path:
    lines = [sep.join(header), *(sep.join(r) for r in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def rows() -> list[list[str]]:
    """The first 200 rows of the bundled sample, as text (it has no quoted fields)."""
    return [line.split(",") for line in bundled(SAMPLE).read_text().splitlines()[1:201]]


# ------------------------------------------------------------------ 1. closed stdout pipe


def run_into_closed_pipe(
    args: Sequence[str | Path], cwd: Path, stdin: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with a stdout pipe whose reader is already gone: every write fails.

    Through the console script's ``run``, which exits at once (an Arrow thread may still
    be reading stdin; interpreter finalisation would then abort).
    """
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [*CONSOLE_SCRIPT, *map(str, args)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=cli_env(),
            timeout=300,
            check=False,
            input=None if stdin is None else stdin.read_bytes(),
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    ("fmt", "first", "second"),
    [
        ("csv", rb"CustomerId,raw,exited\n", rb"\d+,[0-9.e-]+,(true|false)\n"),
        ("jsonl", rb'\{"CustomerId": "\d+", "raw": [0-9.e-]+, "exited": (true|false)\}\n', None),
    ],
    ids=["csv", "jsonl"],
)
def test_score_piped_into_head_ends_quietly(
    tmp_path: Path, fmt: str, first: bytes, second: bytes | None
) -> None:
    """`churnctl score data/sample.csv -o - | head -2`: two lines, then a quiet exit, in
    every stdout format (a single write larger than the pipe must not pass for done)."""
    sample = tmp_path / "sample.csv"
    sample.write_bytes(bundled(SAMPLE).read_bytes())
    before = digest(sample)
    process = subprocess.Popen(
        [*CLI, "score", str(sample), "-o", "-", "--format", fmt],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=cli_env(),
    )
    assert process.stdout is not None and process.stderr is not None
    head = [process.stdout.readline() for _ in range(2)]
    process.stdout.close()
    try:
        stderr = process.stderr.read()
        code = process.wait(timeout=300)
    finally:
        process.kill()
        process.stderr.close()
    assert re.fullmatch(first, head[0]), head[0]
    assert re.fullmatch(second or first, head[1]), head[1]
    assert stderr == b""
    assert code == SIGPIPE_EXIT
    assert digest(sample) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample.csv"]  # no rejects, no .tmp


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["score", "SAMPLE", "-o", "-"], id="score"),
        pytest.param(["score", "-", "-o", "-"], id="score stdin"),
        pytest.param(["inspect"], id="inspect"),
        pytest.param(["--version"], id="version"),
    ],
)
def test_a_closed_stdout_is_no_error(tmp_path: Path, args: list[str]) -> None:
    args = [str(bundled(SAMPLE)) if a == "SAMPLE" else a for a in args]
    result = run_into_closed_pipe(args, tmp_path, stdin=bundled(SAMPLE) if "-" in args else None)
    assert result.stderr == b""
    assert result.returncode == SIGPIPE_EXIT
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["--help"], ["score", "--help"]])
def test_help_into_a_closed_pipe_is_quiet(tmp_path: Path, args: list[str]) -> None:
    """typer prints help through its own rich console, which exits quietly with status 1."""
    result = run_into_closed_pipe(args, tmp_path)
    assert result.stderr == b""
    assert result.returncode == 1


# ------------------------------------------------------------------ 2. escape sequences


@given(st.text())
def test_printable_escapes_exactly_the_control_characters(text: str) -> None:
    shown = cli.printable(text)
    assert unprintable(shown) == [] and "\n" not in shown
    if not unprintable(text) and "\n" not in text:
        assert shown == text


def test_printable_spells_escapes_as_python_does() -> None:
    assert cli.printable(EVIL) == EVIL_SHOWN
    assert cli.printable("a\tb\nc\rd\x7f\x00") == r"a\tb\nc\rd\x7f\x00"
    assert cli.printable("Genève · 東京 ✓") == "Genève · 東京 ✓"


@settings(max_examples=40, deadline=None)
@given(st.text(st.characters(exclude_characters="\x00/"), min_size=1, max_size=12))
def test_any_file_name_gives_one_printable_error_line(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    missing = tmp_path_factory.getbasetemp() / f"{name}.csv"
    result = run(["fit", missing, "-o", tmp_path_factory.getbasetemp() / "s.json"])
    try:
        os.fsencode(missing)
        expected = "input file not found"
    except UnicodeError:  # a lone surrogate: no file can have that name
        expected = "is not a valid file name here"
    assert_one_line_error(result, 2, expected, cli.printable(str(missing)))


def test_escapes_in_a_file_name(tmp_path: Path) -> None:
    result = run(["score", tmp_path / f"in{EVIL}.csv", "-o", tmp_path / "x.csv"])
    assert_one_line_error(result, 2, f"in{EVIL_SHOWN}.csv: input file not found")
    assert list(tmp_path.iterdir()) == []


def test_escapes_in_header_names(tmp_path: Path, rows: list[list[str]]) -> None:
    header = [f"{EVIL}Evil" if c == "Age" else c for c in COLUMNS]
    path = write_csv(tmp_path / "in.csv", header, rows)
    before = digest(path)
    result = run(["score", path, "-o", tmp_path / "x.csv"])
    assert_one_line_error(result, 2, "missing required column(s) Age", f"{EVIL_SHOWN}Evil")
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def _with_label(path: Path, rows: list[list[str]], label: str) -> Path:
    geo = COLUMNS.index("Geography")
    return write_csv(
        path,
        COLUMNS,
        [[*r[:geo], label, *r[geo + 1 :]] if i % 3 == 0 else r for i, r in enumerate(rows)],
    )


def test_escapes_in_a_rejected_category_label(tmp_path: Path, rows: list[list[str]]) -> None:
    path = _with_label(tmp_path / "in.csv", rows, f"{EVIL}Mars")
    before = digest(path)
    result = run(["score", path, "-o", tmp_path / "x.csv", "--max-rejects", "0"])
    assert_one_line_error(result, 3, f"unseen category '{EVIL_SHOWN}Mars'")
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_escapes_in_an_inspected_state(tmp_path: Path, rows: list[list[str]]) -> None:
    train = _with_label(tmp_path / "train.csv", rows, f"{EVIL}Mars")
    state = tmp_path / "state.json"
    assert run(["fit", train, "-o", state]).exit_code == 0
    result = run(["inspect", "--state", state])
    assert unprintable(ANSI.sub("", result.stdout)) == []
    assert r"Geography=\x1b[31m\x1b]0;owned\x07" in plain(result.stdout)  # cropped at 80
    assert unprintable(ANSI.sub("", result.stderr)) == []


def test_escapes_in_summaries_and_warnings(tmp_path: Path) -> None:
    model = logistic_n1(tmp_path / f"m{EVIL}.onnx", 12).path  # not bound: a warning
    out = tmp_path / f"out{EVIL}.csv"
    result = run(["score", bundled(SAMPLE), "--model", model, "-o", out])
    assert result.exit_code == 0, result.output
    err = ANSI.sub("", result.stderr)
    assert unprintable(err) == []
    assert len(err.splitlines()) == 3  # the warning, the bundled state's note, the summary
    assert f"m{EVIL_SHOWN}.onnx is not bound" in err
    assert f"→ {tmp_path}/out{EVIL_SHOWN}.csv; rejects" in err
    assert out.is_file()


def test_escapes_in_usage_errors() -> None:
    result = run(["score", f"--{EVIL}", "x.csv"])
    assert_one_line_error(result, 2, f"No such option: --{EVIL_SHOWN}")


# ------------------------------------------------------------------ 3. --delimiter


@pytest.mark.parametrize(
    ("spec", "char"),
    [
        ("\\t", "\t"),
        ("tab", "\t"),
        ("TAB", "\t"),
        ("\t", "\t"),
        ("\\x09", "\t"),
        ("\\x1f", "\x1f"),
        ("\\u00a6", "\u00a6"),
        (";", ";"),
        ("\\x3b", ";"),
        ("|", "|"),
        ("\\\\", "\\"),
        ("\\", "\\"),
    ],
)
def test_delimiter_spellings(spec: str, char: str) -> None:
    assert cli.parse_delimiter(spec) == char


@pytest.mark.parametrize(
    "spec", ["", ";;", "\\q", "\\x1", "\\xzz", "tabs", '"', "\\n", "\n", "\r", "\\r"]
)
def test_delimiter_refusals(tmp_path: Path, spec: str) -> None:
    with pytest.raises(UsageError, match="--delimiter"):
        cli.parse_delimiter(spec)
    result = run(["score", bundled(SAMPLE), "-o", tmp_path / "x.csv", "--delimiter", spec])
    assert_one_line_error(result, 2, "--delimiter")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spec", ["\\t", "tab"])
def test_tab_separated_input_scores_like_csv(
    tmp_path: Path, rows: list[list[str]], spec: str
) -> None:
    tsv = write_csv(tmp_path / "in.tsv", COLUMNS, rows, sep="\t")
    csv = write_csv(tmp_path / "in.csv", COLUMNS, rows)
    assert run(["score", csv, "-o", tmp_path / "a.csv"]).exit_code == 0
    result = run(["score", tsv, "-o", tmp_path / "b.csv", "--delimiter", spec])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    fitted = run(["fit", tsv, "-o", tmp_path / "s.json", "--delimiter", spec])
    assert fitted.exit_code == 0, fitted.output


# ------------------------------------------------------------------ 4. generate


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(
            ["--seed", "-1", "-o", "g.csv"],
            ["'--seed'", "greater than or equal to 0"],
            id="negative seed",
        ),
        pytest.param(
            ["-n", "-5", "-o", "g.csv"],
            ["'--rows'", "greater than or equal to 0"],
            id="negative rows",
        ),
        pytest.param(
            ["--files", "0", "-o", "g"], ["'--files'", "greater than or equal to 1"], id="no files"
        ),
        pytest.param(
            ["--files", "99999999999999999999", "-o", "g"],
            ["'--files'", "less than or equal to 10000"],
            id="absurd number of files",
        ),
        pytest.param(["-o", ""], ["--output", "empty"], id="empty output"),
        pytest.param(["-o", "g.jsonl"], ["g.jsonl", ".csv, .csv.gz or .parquet"], id="jsonl"),
        pytest.param(["-o", "g"], ["g:", ".csv, .csv.gz or .parquet"], id="no extension"),
        pytest.param(
            ["--files", "3", "-o", "parts.csv"],
            ["parts.csv", "directory"],
            id="file-like directory",
        ),
        pytest.param(
            ["--files", "3", "-o", "parts.csv.gz"],
            ["parts.csv.gz", "directory"],
            id="file-like directory gz",
        ),
        pytest.param(
            ["--files", "2", "-o", "taken"],
            ["taken", "not a directory"],
            id="directory name taken by a file",
        ),
    ],
)
def test_generate_refusals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], fragments: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("mine\n")
    result = run(["generate", "-n", "10", *args])
    assert_one_line_error(result, 2, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert (tmp_path / "taken").read_text() == "mine\n"


def test_generate_into_a_directory_of_parts_still_works(tmp_path: Path) -> None:
    result = run(["generate", "-n", "10", "--files", "2", "-o", tmp_path / "parts"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == [
        "part-00000.csv",
        "part-00001.csv",
    ]


# ------------------------------------------------------------------ 5. help and metavars


COMMANDS = ["fit", "score", "bind", "inspect", "generate"]


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_shows_meaningful_metavars(command: str) -> None:
    result = run([command, "--help"] if command else ["--help"])
    assert result.exit_code == 0, result.output
    text = plain(result.stdout)
    assert re.findall(r"<[a-z][^>]*>", text) == []
    assert "no-allow-state-mismatch" not in text


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "fit",
            [
                "{TRAIN}",
                "--output -o FILE",
                "--pipeline PRESET|FILE",
                "--delimiter CHAR",
                "--encoding NAME",
            ],
        ),
        (
            "score",
            [
                "{INPUT}",
                "--output -o FILE",
                "--state FILE",
                "--train FILE",
                "--save-state FILE",
                "--model FILE",
                "--keep COLUMN",
                "--threshold P",
                "--format csv|jsonl|parquet",
                "--rejects FILE",
                "--max-rejects N|P%",
            ],
        ),
        ("bind", ["--model FILE", "--state FILE", "--output -o FILE"]),
        ("inspect", ["--model FILE", "--state FILE"]),
        ("generate", ["--output -o PATH", "--rows -n N", "--files N", "--seed N"]),
    ],
)
def test_help_names_what_each_option_takes(command: str, expected: list[str]) -> None:
    text = plain(run([command, "--help"]).stdout)
    for fragment in expected:
        assert fragment in text, (fragment, text)


def test_keep_says_it_repeats_and_its_default() -> None:
    text = plain(run(["score", "--help"]).stdout)
    keep = text[text.index("--keep") : text.index("--threshold")]
    assert "repeat" in keep and "[default: CustomerId]" in keep


# ------------------------------------------------------------------ 6. shell completion


def test_completion_options_are_offered() -> None:
    text = plain(run(["--help"]).stdout)
    assert "--install-completion" in text and "--show-completion" in text


def test_show_completion_prints_a_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    result = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="churnctl")
    assert result.exit_code == 0, result.output
    assert "_CHURNCTL_COMPLETE" in result.stdout


@pytest.mark.parametrize(
    ("words", "expected"), [("churnctl sc", "score"), ("churnctl score --ke", "--keep")]
)
def test_completion_completes_commands_and_options(words: str, expected: str) -> None:
    env = cli_env(
        _CHURNCTL_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - 1)
    )
    result = subprocess.run(CLI, capture_output=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout.decode().split()


# ------------------------------------------------------------------ 7. usage errors


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(
            ["score", "--nope", "x.csv"],
            ["No such option: --nope", "Try 'churnctl score --help' for help."],
            id="unknown option",
        ),
        pytest.param(["score"], ["Missing argument 'INPUT'"], id="missing argument"),
        pytest.param(["fit", "x.csv"], ["Missing option '-o' / '--output'"], id="missing option"),
        pytest.param(
            ["generate", "-n", "abc", "-o", "x.csv"], ["'--rows'", "integer"], id="bad int"
        ),
        pytest.param(["score", "x.csv", "--threshold", "high"], ["'--threshold'"], id="bad float"),
        pytest.param(
            ["nosuch"], ["No such command 'nosuch'", "Try 'churnctl --help'"], id="unknown command"
        ),
        pytest.param(["scor"], ["Did you mean 'score'?"], id="typo"),
        pytest.param(["--nope"], ["No such option: --nope"], id="unknown root option"),
        pytest.param(
            ["score", "x.csv", "--keep"],
            ["'--keep' requires an argument"],
            id="option without value",
        ),
    ],
)
def test_usage_errors_are_one_line(args: list[str], fragments: list[str]) -> None:
    assert_one_line_error(run(args), 2, *fragments)


def test_usage_error_in_a_real_process_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "score", "--nope"],
        capture_output=True,
        cwd=tmp_path,
        env=cli_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr.decode().startswith("Error: No such option: --nope")
    assert len(result.stderr.splitlines()) == 1


def test_version_and_bare_help_still_work() -> None:
    version = run(["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("churnctl ")
    bare = run([])
    assert "Usage: churnctl" in plain(bare.output) and "Error" not in bare.output


# ------------------------------------------------------------------ siblings: odd values


@pytest.mark.parametrize(
    ("extra", "code", "fragments"),
    [
        pytest.param(["--encoding", "nonsense"], 2, ["--encoding", "nonsense"], id="encoding"),
        pytest.param(["--encoding", "rot13"], 2, ["--encoding", "rot13"], id="not a text codec"),
        pytest.param(["--threshold", "nan"], 2, ["--threshold", "nan"], id="nan threshold"),
        pytest.param(["--threshold", "1.5"], 2, ["--threshold", "1.5"], id="threshold > 1"),
        pytest.param(["--threshold", "-0.1"], 2, ["--threshold", "-0.1"], id="threshold < 0"),
        pytest.param(["--rejects", ""], 2, ["--rejects", "empty"], id="empty rejects"),
        pytest.param(["-o", ""], 2, ["--output", "empty"], id="empty output"),
        pytest.param(["--state", ""], 2, ["--state", "empty"], id="empty state"),
        pytest.param(["--model", ""], 2, ["--model", "empty"], id="empty model"),
        pytest.param(
            ["--train", "SAMPLE", "--save-state", ""],
            2,
            ["--save-state", "empty"],
            id="empty save-state",
        ),
    ],
)
def test_odd_score_options_are_clean_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    code: int,
    fragments: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    sample = tmp_path / "in.csv"
    sample.write_bytes(bundled(SAMPLE).read_bytes())
    before = digest(sample)
    extra = [str(sample) if a == "SAMPLE" else a for a in extra]
    output = [] if "-o" in extra else ["-o", "x.csv"]
    args = ["score", sample, *output, *extra]
    assert_one_line_error(run(args), code, *fragments)
    assert digest(sample) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["fit", "SAMPLE", "-o", ""], id="fit"),
        pytest.param(["bind", "--model", "MODEL", "--state", "STATE", "-o", ""], id="bind"),
    ],
)
def test_empty_output_paths_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    model = logistic_n1(tmp_path / "m.onnx", 12).path
    named = {"SAMPLE": str(bundled(SAMPLE)), "MODEL": str(model), "STATE": str(bundled(STATE))}
    assert_one_line_error(run([named.get(a, a) for a in args]), 2, "--output", "empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
