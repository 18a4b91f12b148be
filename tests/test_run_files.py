"""Which files a run makes: rejects beside a regular output only; nothing before inputs are checked.

Item 8: a default rejects path is derived only from a regular output file; any
other output (stdout, a device, a FIFO, ``/dev/fd/N``, a link to one) sends the
rejects to stderr, so no file appears in ``/dev``, beside a pipe or in the
current folder. Item 9: a missing input (file, folder or pattern) is one
``Error:`` line, exit 2, and nothing is created, for every command and form.
"""

from __future__ import annotations

import csv
import io
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_helpers import run
from csv_rows import csv_bytes, text_rows

from churnctl.atomic import temporaries
from churnctl.samples.generate import COLUMNS

REJECTS_HEADER = "source,line,column,reason,text"


def snapshot(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} | {
        str(p.relative_to(folder)) for p in folder.rglob(".*")
    }


def dev_leftovers() -> list[str]:
    return sorted(n for n in os.listdir("/dev") if "rejects" in n or n.endswith(".tmp"))


def stderr_rejects(stderr: str) -> list[dict[str, str]]:
    """The rejects CSV on stderr: every line but the one summary line (last)."""
    lines = stderr.splitlines(keepends=True)
    text = "".join(line for line in lines[:-1] if not line.startswith(("Warning:", "Note:")))
    if not text:
        return []
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == REJECTS_HEADER.split(",")
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    for name, seed in (("a.csv", 4), ("b.csv", 6), ("train.csv", 5)):
        rows = text_rows(120, seed=seed)
        rows[7][COLUMNS.index("Age")] = "old"  # one reject in each
        (folder / name).write_bytes(csv_bytes(rows))
    return folder


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current folder, to see that nothing lands there."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


# ------------------------------------------------------------------ item 8: output kinds


class Drain:
    """Reads a FIFO or a pipe's end in a thread, as a consumer of the output would."""

    def __init__(self, opener: Callable[[], io.BufferedIOBase]) -> None:
        self.data = b""
        self._thread = threading.Thread(target=self._read, args=(opener,), daemon=True)
        self._thread.start()

    def _read(self, opener: Callable[[], io.BufferedIOBase]) -> None:
        with opener() as handle:
            self.data = handle.read()

    def join(self) -> None:
        self._thread.join(timeout=60)
        assert not self._thread.is_alive()


@pytest.fixture
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, bool]]:
    """(the output argument, whether the rejects go beside it) for each kind of output."""
    kind: str = request.param
    out = tmp_path / "out"
    out.mkdir()
    drain: Drain | None = None
    write_end: int | None = None
    if kind == "stdout":
        yield "-", False
    elif kind == "dev-null":
        yield "/dev/null", False
    elif kind == "fifo":
        os.mkfifo(out / "pipe")
        drain = Drain(lambda: (out / "pipe").open("rb"))
        yield str(out / "pipe"), False
    elif kind == "dev-fd":
        read_end, write_end = os.pipe()
        drain = Drain(lambda: os.fdopen(read_end, "rb"))
        yield f"/dev/fd/{write_end}", False
    elif kind == "link-to-dev-null":
        (out / "null").symlink_to("/dev/null")
        yield str(out / "null"), False
    elif kind == "regular":
        yield str(out / "o.csv"), True
    elif kind == "link-to-regular":
        (out / "real.csv").write_text("old\n")
        (out / "o.csv").symlink_to(out / "real.csv")
        yield str(out / "o.csv"), True
    if write_end is not None:
        os.close(write_end)
    if drain is not None:
        drain.join()


KINDS = ["stdout", "dev-null", "fifo", "dev-fd", "link-to-dev-null", "regular", "link-to-regular"]
COMMANDS: dict[str, Callable[[Path, str], list[str | Path]]] = {
    "score": lambda d, o: ["score", d / "a.csv", "-o", o, "--format", "csv"],
    "score-many": lambda d, o: [
        "score",
        d / "a.csv",
        d / "b.csv",
        "-o",
        o,
        "--format",
        "csv",
        "--workers",
        "1",
    ],
    "fit": lambda d, o: ["fit", d / "train.csv", "-o", o],
}
REJECTED = {"score": 1, "score-many": 2, "fit": 1}


@pytest.mark.parametrize("target", KINDS, indirect=True)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_rejects_go_beside_a_regular_output_only(
    data: Path, cwd: Path, target: tuple[str, bool], command: str
) -> None:
    output, beside = target
    out = Path(output).parent
    before, dev_before = snapshot(out) if beside else set(), dev_leftovers()
    result = run(COMMANDS[command](data, output))
    assert result.exit_code == 0, result.output
    assert snapshot(cwd) == set()  # nothing in the current folder
    assert dev_leftovers() == dev_before  # nothing in /dev
    summary = result.stderr.splitlines()[-1]
    if beside:
        rejects = out / "o.rejects.csv"
        record = {"o.csv.lineage.json"} if command.startswith("score") else set()  # its lineage
        assert snapshot(out) - before == {"o.rejects.csv"} | record | (
            {"o.csv"} if "o.csv" not in before else set()
        )
        assert rejects.read_text().count("\n") == 1 + REJECTED[command]
        assert f"rejects → {rejects}" in summary
        assert REJECTS_HEADER not in result.stderr
    else:
        assert "rejects → stderr" in summary
        assert len(stderr_rejects(result.stderr)) == REJECTED[command]
        assert [p.name for p in Path(output).parent.glob("*rejects*")] == []
        assert temporaries(Path(output).parent) == []


@pytest.mark.parametrize("args", [[], ["--rejects", "-"]], ids=["default", "explicit"])
def test_a_clean_run_prints_no_rejects_header_on_stderr(
    data: Path, cwd: Path, tmp_path: Path, args: list[str]
) -> None:
    clean = tmp_path / "clean.csv"
    clean.write_bytes(csv_bytes(text_rows(50, seed=9)))
    result = run(["score", clean, "-o", "-", *args])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()  # the summary, after the bundled demo pair's note
    assert len(lines) == 2 and lines[0].startswith("Note: used the bundled demo"), lines
    assert "rejects → stderr" in lines[1]
    assert snapshot(cwd) == set()


def test_fit_to_stdout_writes_the_state_there(data: Path, cwd: Path) -> None:
    result = run(["fit", data / "train.csv", "-o", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("{") and '"provenance"' in result.stdout
    assert snapshot(cwd) == set()


# ------------------------------------------------------------------ item 9: inputs first


MISSING: dict[str, Callable[[Path, Path], list[str | Path]]] = {
    "score folder --out-dir": lambda d, w: ["score", "nope/", "--out-dir", w / "o2"],
    "score file --out-dir": lambda d, w: ["score", "nope.csv", "--out-dir", w / "o2"],
    "score pattern --out-dir": lambda d, w: ["score", "nope*.csv", "--out-dir", w / "o2"],
    "score one -o": lambda d, w: ["score", "nope.csv", "-o", w / "o2" / "x.csv"],
    "score many -o": lambda d, w: ["score", d / "a.csv", "nope.csv", "-o", w / "o2" / "x.csv"],
    "score many --out-dir": lambda d, w: ["score", d / "a.csv", "nope/", "--out-dir", w / "o2"],
    "score dangling link --out-dir": lambda d, w: [
        "score",
        w / "dangling.csv",
        "--out-dir",
        w / "o2",
    ],
    "score --train missing": lambda d, w: [
        "score",
        d / "a.csv",
        "--train",
        "nope.csv",
        "--save-state",
        w / "o2" / "s.json",
        "-o",
        w / "o2" / "x.csv",
    ],
    "fit": lambda d, w: ["fit", "nope.csv", "-o", w / "o2" / "s.json"],
    "watch": lambda d, w: ["watch", "nope/", "--out", w / "o2", "--once"],
    "flink-submit --train": lambda d, w: [
        "flink-submit",
        "nope.csv",
        "--train",
        d / "train.csv",
        "--out",
        w / "o2",
    ],
    "flink-submit missing --train": lambda d, w: [
        "flink-submit",
        d / "a.csv",
        "--train",
        "nope.csv",
        "--out",
        w / "o2",
    ],
}


@pytest.mark.parametrize("form", sorted(MISSING))
def test_a_missing_input_is_one_error_line_and_nothing_is_created(
    data: Path, cwd: Path, form: str
) -> None:
    (cwd / "dangling.csv").symlink_to(cwd / "gone.csv")
    before = snapshot(cwd)
    result = run(MISSING[form](data, cwd))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "nope" in result.stderr or "dangling" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(cwd) == before


@pytest.mark.parametrize("extra", [[], ["{data}/b.csv"]], ids=["one input", "two inputs"])
@pytest.mark.parametrize("length", [246, 251], ids=["rejects name over", "output at limit"])
def test_an_output_named_at_the_file_systems_limit_gets_its_rejects_beside_it(
    data: Path, tmp_path: Path, extra: list[str], length: int
) -> None:
    """Every name derived from the output's (rejects, temporary, parts) is cut to fit."""
    out = tmp_path / "long" / ("é" * ((length - 4) // 2) + "x" * ((length - 4) % 2) + ".csv")
    assert len(os.fsencode(out.name)) == length
    out.parent.mkdir()
    inputs = [data / "a.csv", *(e.format(data=data) for e in extra)]
    result = run(["score", *inputs, "-o", out])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.parent.iterdir())
    assert len(names) == 3 and out.name in names, names  # nothing else left behind
    rejects = out.parent / next(n for n in names if n.endswith(".rejects.csv"))
    record = out.parent / next(n for n in names if n.endswith(".lineage.json"))
    assert len(os.fsencode(rejects.name)) <= 255 and len(os.fsencode(record.name)) <= 255
    assert len(csv_data_rows(rejects)) == len(inputs)  # one bad row in each input


def csv_data_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]
