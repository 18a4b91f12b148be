"""The documentation runs as written.

Every shell command (a line of a ```bash, ```sh or ```console block, or a line starting with
``$ ``) and every ```python block of README.md and docs/*.md is run here, or named in
SKIPPED with the reason, or in AS_RUN with the command run in its place and why. A new
example is run by default: one that cannot run as written fails until the doc is fixed or
the example is listed. A fence in another language must be one of DATA (shown, not run).

Shell commands run with bash, in one scratch folder per page that holds what the examples
name (``data/``, ``in.csv``, ``parts/`` ...), with this environment's ``bin/`` (where
``./dev.sh`` puts ``churnctl``) first on PATH. Python blocks run from the repository's root,
as docs/python-api.md says.
"""

from __future__ import annotations

import gzip
import importlib
import re
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import ROOT, cli_env

from churnctl.batch.lineage_files import PARQUET_KEY
from churnctl.moved import MOVED
from churnctl.samples.generate import generate_files
from churnctl.scoring.binding import BINDING_KEYS

PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "console"}
PYTHON = {"python"}
DATA = {"jsonc", "json", "toml", "text"}  # shown, not run (a state, a spec, an output)
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)
TIMEOUT = 120  # seconds, per example
# a file of the project named in backticks: churnctl/io/sources.py, docs/state-format.md ...
PROJECT_FILE = (
    r"`((?:churnctl|tests|docs|scripts|benchmarks|models|data)/[\w./-]*"
    r"\.(?:py|md|toml|csv|json|onnx))`"
)

FLINK = "a Flink job: the JVM's start-up alone takes 10+ s; tests/test_flink_embedded.py runs it"
CLUSTER = "needs a Flink session cluster (HOST:8081); tests/test_flink_cluster.py starts one"
FOREVER = "runs until Ctrl-C; run with --once in its place (see AS_RUN)"

#: Examples not run: "page: command" (or "page > heading" for a Python block) -> why.
SKIPPED: dict[str, str] = {
    "README.md: ./dev.sh demo": "installs software (uv into .tools/, the locked .venv/)",
    "README.md: ./dev.sh test": "installs software, then runs the whole suite twice (minutes)",
    "README.md: churnctl flink-submit data/sample.csv --out scored/": FLINK,
    "README.md: churnctl flink-submit landing/ --out scored/ --streaming": FLINK
    + ", and it runs until Ctrl-C",
    "README.md: churnctl flink-submit landing/ --out scored/ --jobmanager 127.0.0.1:8081 "
    "--parallelism 4": CLUSTER,
    "README.md: churnctl flink-submit landing/ --out scored/ --streaming --jobmanager "
    "HOST:8081": CLUSTER,
    "README.md: churnctl flink-submit data/sample.csv --out scored/ --emit job.py": "aborts at "
    "exit about 1 run in 4 (exit 134, 'terminate called without an active exception'): "
    "pyarrow 16.1's streaming CSV reader, opened by flink.inputs.check_inputs and dropped "
    "mid-file, still reads as the interpreter ends; a known bug, reported, not fixed here",
    "docs/training.md > 1. The training script, the export, the import": "it is "
    "docs/examples/train_sklearn.py (tests/test_from_sklearn.py checks the block is that file), "
    "run with its arguments by the page's next block",
    "docs/training.md: churnctl flink-submit data/sample.csv --out flink-scored/ "
    "--state serving/state.json --model serving/model.onnx": FLINK,
    "README.md: churnctl flink-submit --stop JOB_ID --savepoint /savepoints --jobmanager "
    "HOST:8081": CLUSTER,
    "README.md: churnctl flink-submit landing/ --out scored/ --streaming --jobmanager "
    "HOST:8081 --from-savepoint PATH": CLUSTER,
}

#: Examples run in another form: "page: command" -> (the command run, why).
SERVING = "--state serving/state.json --model serving/model.onnx"
AS_RUN: dict[str, tuple[str, str]] = {
    f"docs/training.md: churnctl verify data/sample.csv {SERVING} --rows 2000": (
        f"churnctl verify data/sample.csv {SERVING} --rows 2000 --skip flink",
        FLINK + "; tests/test_verify.py runs verify's Flink runtime",
    ),
    f"docs/training.md: churnctl watch arrivals/ --out watched/ {SERVING}": (
        f"churnctl watch arrivals/ --out watched/ {SERVING} --once",
        FOREVER,
    ),
    "README.md: churnctl verify data/sample.csv --rows 2000": (
        "churnctl verify data/sample.csv --rows 2000 --skip flink",
        FLINK + "; tests/test_verify.py runs verify's Flink runtime",
    ),
    "README.md: churnctl watch landing/ --out scored/": (
        "churnctl watch landing/ --out scored/ --once",
        FOREVER,
    ),
    "README.md: churnctl watch landing/ --out scored/ --after archive --log-json watch.jsonl": (
        "churnctl watch landing/ --out scored/ --after archive --log-json watch.jsonl --once",
        FOREVER,
    ),
    "README.md: churnctl watch landing/ --out scored/ --poll 2": (
        "churnctl watch landing/ --out scored/ --poll 2 --once",
        FOREVER,
    ),
}


@dataclass(frozen=True)
class Example:
    page: str
    kind: str  # "shell" or "python"
    key: str  # "page: command" or "page > heading"
    code: str


def strip_comment(line: str) -> str:
    return re.sub(r"\s+#\s.*$", "", line).strip()


def shell_commands(block: str, prompt_only: bool) -> list[str]:
    """The commands of a block: each line (continuations joined), or only ``$ `` lines."""
    commands: list[str] = []
    pending = ""
    for raw in block.splitlines():
        line = raw.strip()
        if not pending:
            if prompt_only and not line.startswith("$ "):
                continue
            line = line.removeprefix("$ ")
            if not line or line.startswith("#"):
                continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        commands.append(pending + line)
        pending = ""
    return commands


def page_examples(page: str) -> list[Example]:
    text = (ROOT / page).read_text(encoding="utf-8")
    found: list[Example] = []
    outside = FENCE.sub("", text)
    for fence in FENCE.finditer(text):
        language, body = fence.group(1), fence.group(2)
        headings = HEADING.findall(FENCE.sub("", text[: fence.start()]))  # not a # comment
        if language in PYTHON:
            key = f"{page} > {headings[-1] if headings else page}"
            taken = sum(e.key.startswith(key) for e in found)
            found.append(Example(page, "python", key + (f" #{taken + 1}" if taken else ""), body))
            continue
        assert language in SHELL | DATA, f"{page}: a ```{language} block: neither run nor data"
        for command in shell_commands(body, prompt_only=language not in {"bash", "sh"}):
            found.append(Example(page, "shell", f"{page}: {strip_comment(command)}", command))
    for command in shell_commands(outside, prompt_only=True):
        found.append(Example(page, "shell", f"{page}: {strip_comment(command)}", command))
    return found


EXAMPLES = [e for page in PAGES for e in page_examples(page)]


def write_scene(folder: Path) -> None:
    """What the README's commands name, made small: its files, folders and models."""
    (folder / "data").symlink_to(ROOT / "data")
    (folder / "docs").symlink_to(ROOT / "docs")  # docs/examples/train_sklearn.py
    sample = (ROOT / "data" / "sample.csv").read_bytes()
    lines = sample.splitlines(keepends=True)
    (folder / "in.csv").write_bytes(b"".join(lines[:301]))
    (folder / "in.csv.gz").write_bytes(gzip.compress(b"".join(lines[:301]), mtime=0))
    (folder / "train.csv").write_bytes(sample)  # the bundled model's training data
    shutil.copy(ROOT / "models" / "churn_mlp.onnx", folder / "m.onnx")
    shutil.copy(ROOT / "models" / "churn_state.json", folder / "state.json")
    shutil.copy(ROOT / "docs" / "examples" / "reference-pipeline.toml", folder / "my-pipeline.toml")
    generate_files(folder / "parts", n_rows=600, files=3, seed=1)
    generate_files(folder / "more" / "extra.parquet", n_rows=200, seed=2)
    (folder / "landing").mkdir()
    (folder / "landing" / "a.csv").write_bytes(b"".join(lines[:101]))


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One scratch folder per page; the shell examples of a page run there, in page order."""
    made: dict[str, Path] = {}
    for page in sorted({e.page for e in EXAMPLES if e.kind == "shell"}):
        made[page] = tmp_path_factory.mktemp("scene")
        write_scene(made[page])
    return made


def example_env() -> dict[str, str]:
    """This checkout's churnctl, with the environment's bin/ (churnctl, python) first."""
    env = cli_env()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def run_example(example: Example, cwd: Path) -> subprocess.CompletedProcess[str]:
    if example.kind == "python":
        command = [sys.executable, "-c", example.code]
    else:
        command = ["bash", "-c", "set -eo pipefail; " + AS_RUN.get(example.key, (example.code,))[0]]
    return subprocess.run(
        command, cwd=cwd, env=example_env(), capture_output=True, text=True, timeout=TIMEOUT
    )


@pytest.mark.parametrize(
    "example",
    [pytest.param(e, id=e.key) for e in EXAMPLES if e.key not in SKIPPED],
)
def test_the_example_runs_as_written(example: Example, scenes: dict[str, Path]) -> None:
    cwd = ROOT if example.kind == "python" else scenes[example.page]
    done = run_example(example, cwd)
    assert done.returncode == 0, (example.key, done.stdout[-2000:], done.stderr[-3000:])
    assert "Traceback" not in done.stderr and "Error:" not in done.stderr, done.stderr


def test_the_tables_name_examples_that_exist() -> None:
    """A table entry whose example has gone (edited or removed) is stale: update it."""
    keys = {e.key for e in EXAMPLES}
    assert sorted((set(SKIPPED) | set(AS_RUN)) - keys) == []
    assert set(SKIPPED) & set(AS_RUN) == set()


def test_the_pages_have_examples() -> None:
    """The extraction finds what the pages hold: both kinds, from README and docs."""
    kinds = {(e.page, e.kind) for e in EXAMPLES}
    assert {("README.md", "shell"), ("docs/python-api.md", "python")} <= kinds
    assert len([e for e in EXAMPLES if e.kind == "shell"]) >= 20


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("```bash\na --x \\\n  --y   # note\n# only a comment\n\nb\n```\n", ["a --x --y", "b"]),
        ("```console\n$ churnctl -h\nUsage: ...\n```\n", ["churnctl -h"]),
        ("text\n$ churnctl --version\nmore text\n", ["churnctl --version"]),
        ('```jsonc\n{"a": 1}\n```\n', []),
    ],
)
def test_commands_are_found_in_every_form(tmp_path: Path, text: str, expected: list[str]) -> None:
    (tmp_path / "page.md").write_text(text)
    found = page_examples(str(tmp_path / "page.md"))
    assert [strip_comment(e.code) for e in found] == expected


def test_a_block_in_an_unknown_language_fails(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text("```zsh\nchurnctl -h\n```\n")
    with pytest.raises(AssertionError, match="neither run nor data"):
        page_examples(str(tmp_path / "page.md"))


def test_no_doc_tells_to_run_uv_from_path() -> None:
    """``./dev.sh`` installs uv into .tools/bin, not on PATH: a bare ``uv run`` fails."""
    for page in PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        assert re.findall(r"(?<![\w./-])uv run", text) == [], page


def named_in_docs(pattern: str) -> list[tuple[str, str]]:
    """Each (page, name) that ``pattern`` finds (its first group, if it has one), once."""
    found = []
    for page in PAGES:
        names = set(re.findall(pattern, (ROOT / page).read_text(encoding="utf-8")))
        found += [(page, name) for name in sorted(names)]
    return found


def resolves(dotted: str) -> bool:
    """``churnctl.a.b.Name``: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


@pytest.mark.parametrize(
    ("page", "dotted"),
    [
        (p, d)
        for p, d in named_in_docs(r"\bchurnctl(?:\.[A-Za-z_]\w*)+")
        if d not in (*BINDING_KEYS, PARQUET_KEY)
    ],
)
def test_every_module_path_named_in_the_docs_imports(page: str, dotted: str) -> None:
    """A module, or a name in one (the ONNX metadata keys of a binding, and the Parquet
    metadata key of a lineage record, are not)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the moved paths, listed as such
        assert resolves(dotted), f"{page} names {dotted}, which does not import"


@pytest.mark.parametrize(("page", "path"), named_in_docs(PROJECT_FILE))
def test_every_file_named_in_the_docs_exists(page: str, path: str) -> None:
    assert (ROOT / path).exists(), f"{page} names {path}, which does not exist"


def test_the_moved_modules_table_is_the_one_the_code_serves() -> None:
    """docs/python-api.md lists every old module path as churnctl.moved serves it, and
    each old path is the module at its new one, with a DeprecationWarning naming it."""
    text = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    section = text[text.index("## Moved modules") :]
    assert (
        dict(re.findall(r"^\| `(churnctl\.\w+)` \| `(churnctl\.[\w.]+)` \|$", section, re.M))
        == MOVED
    )
    for old, new in MOVED.items():
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=re.escape(new)):
            assert importlib.import_module(old) is importlib.import_module(new)
