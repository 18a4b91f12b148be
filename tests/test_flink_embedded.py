"""``flink-submit`` and its job file: the rendered job, embedded Flink runs, clean failures.

Flink runs are slow to start (30-40 s on a loaded machine), so the module runs only three:
one batch job with ``--max-rejects 100%`` and one with the default limit, both started
at once by a module-scoped fixture and shared by several tests, and one streaming job.
The batch run also stands for "``python job.py`` of an emitted job": ``flink-submit``
runs the job file it writes with ``python job.py``, and ``--emit`` writes the same file.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import io
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from process_helpers import Proc, group, launcher_of, wait_until_gone
from test_cli import assert_clean_error, plain, run
from test_flink_submit_units import hint_lines

from churnctl.errors import UsageError
from churnctl.flink_job import FlinkJobSpec
from churnctl.flink_launch import GRACE
from churnctl.flink_render import render_job
from churnctl.flink_submit import (
    WORK_FOLDER,
    count_outputs,
    finished_parts,
    input_records,
    root_cause,
)  # fmt: skip
from churnctl.generate import COLUMNS
from tests.csv_rows import text_rows

pytestmark = pytest.mark.flink

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "flink_job.py"
CLI = [sys.executable, "-c", "from churnctl.cli import run; run()"]


def _flink_available() -> bool:
    import importlib.util

    java = os.environ.get("JAVA_HOME")
    has_java = shutil.which("java") is not None or bool(java and Path(java, "bin", "java").exists())
    return has_java and importlib.util.find_spec("pyflink") is not None


needs_flink = pytest.mark.skipif(not _flink_available(), reason="needs apache-flink and Java")


def cli_env(**changes: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


# ------------------------------------------------------------------ 1, 2: the rendered job


def golden_spec() -> FlinkJobSpec:
    return FlinkJobSpec(
        input="/data/landing/customers.csv", out_dir="/data/scored", state="/models/state.json",
        model="/models/churn_mlp.onnx", columns=tuple(COLUMNS), delimiter=";", decimal=",",
        keep=("CustomerId", "Surname"),
        threshold=0.4, streaming=True, parallelism=2, monitor_interval="500 ms",
        python_executable="/opt/venv/bin/python",
    )  # fmt: skip


def spec_keywords(text: str) -> dict[str, Any]:
    """The keyword values of the job file's ``SPEC = FlinkJobSpec(...)``, as literals."""
    tree = ast.parse(text)
    [call] = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["SPEC"]  # type: ignore[attr-defined]
    ]
    assert isinstance(call, ast.Call) and call.func.id == "FlinkJobSpec"  # type: ignore[attr-defined]
    assert not call.args
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords}


def test_rendered_job_matches_the_golden_file() -> None:
    """UPDATE_GOLDEN=1 rewrites tests/golden/flink_job.py (review the diff)."""
    text = render_job(golden_spec())
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), "rerun with UPDATE_GOLDEN=1 and review"
    compile(text, "job.py", "exec")
    assert spec_keywords(text) == asdict(golden_spec())


# Paths meant to break out of a string literal, or to read as code if they did.
NASTY = [
    "it's", 'say "hi"', "'''", '"""', "a\\b\\", "\\", "line\nbreak", "cr\rlf\r\n", "tab\t",
    '"); import os; os.system("touch /tmp/pwned") #',
    "'); import os; os.system('touch /tmp/pwned') #",
    "''' + __import__('os').system('touch /tmp/pwned') + '''",
    '""" + __import__("os").system("touch /tmp/pwned") + """',
    "{input}", "{0}", "%s", "\x00nul", "\udcff surrogate", "é ü 日本 \u2028 \u0085", "\\N{BULLET}",
]  # fmt: skip


def assert_inert(text: str, spec: FlinkJobSpec, tmp_path: Path) -> None:
    """The job parses, spells ``spec`` exactly, and its top level only builds SPEC."""
    assert spec_keywords(text) == asdict(spec)
    code = compile(text, "job.py", "exec")
    before = set(tmp_path.iterdir())
    cwd = Path.cwd()
    with mock.patch("churnctl.flink_job.run_job") as run_job, mock.patch("os.system") as system:
        os.chdir(tmp_path)
        try:
            namespace: dict[str, Any] = {"__name__": "job"}
            exec(code, namespace)
        finally:
            os.chdir(cwd)
    assert not run_job.called and not system.called
    assert namespace["SPEC"] == spec
    assert set(tmp_path.iterdir()) == before


@pytest.mark.parametrize("nasty", NASTY)
def test_nasty_paths_stay_strings(nasty: str, tmp_path: Path) -> None:
    spec = FlinkJobSpec(
        input=f"/in/{nasty}.csv", out_dir=nasty, state=f"{nasty}/s.json", model=nasty,
        columns=(nasty, "CustomerId"), keep=(nasty,), monitor_interval=nasty,
        checkpoint_interval=nasty, python_executable=nasty,
    )  # fmt: skip
    assert_inert(render_job(spec), spec, tmp_path)
    assert not Path("/tmp/pwned").exists()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    paths=st.lists(st.text(min_size=0, max_size=30), min_size=5, max_size=5),
    columns=st.lists(st.text(max_size=10), max_size=4).map(tuple),
    threshold=st.floats(0, 1),
)
def test_any_text_stays_a_string(
    paths: list[str], columns: tuple[str, ...], threshold: float, tmp_path: Path
) -> None:
    input_, out_dir, state, model, python = paths
    spec = FlinkJobSpec(input=input_, out_dir=out_dir, state=state, model=model, columns=columns,
                        keep=columns, threshold=threshold, python_executable=python)  # fmt: skip
    assert_inert(render_job(spec), spec, tmp_path)


def test_every_spec_field_is_rendered() -> None:
    assert set(spec_keywords(render_job(golden_spec()))) == {f.name for f in fields(FlinkJobSpec)}


# ------------------------------------------------------------------ 3, 4, 7: one batch run each

ORDER = ["CustomerId", *(c for c in reversed(COLUMNS) if c != "CustomerId")]  # not COLUMNS
SHORT_ID, LONG_ID = "900001", "900002"  # rows with one field too few / too many


def messy_file(path: Path, *, euro: bool = False) -> Path:
    """42 rows in the file's own column order, after a BOM: 3 rejects, quotes, 2 odd rows.

    ``euro``: the same rows as a European export writes them, `;` between fields and
    `,` as the decimal mark.
    """
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in text_rows(40, 11)]
    for i, row in enumerate(rows):
        row["CustomerId"] = str(800_000 + i)
    rows[3]["Geography"] = "Atlantis"
    rows[10]["CreditScore"] = "abc"
    rows[20]["Age"] = ""
    rows[5]["Surname"] = "Smith, Jr."
    rows[6]["Surname"] = "two\nlines"
    rows[7]["Surname"] = 'say "hi", twice'
    if euro:
        for row in rows:
            row.update({c: row[c].replace(".", ",") for c in NUMBERS})
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if euro else ",", lineterminator="\n")
    writer.writerow(ORDER)
    writer.writerows([row[c] for c in ORDER] for row in rows)
    short = [rows[0][c] for c in ORDER][:-1]  # RowNumber (not needed) is missing
    long = [*(rows[1][c] for c in ORDER), "extra"]
    writer.writerow([SHORT_ID, *short[1:]])
    writer.writerow([LONG_ID, *long[1:]])
    path.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8"))
    return path


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class BatchRuns:
    input: Path  # the messy file, as `score` and the limited run read it
    out: Path  # --max-rejects 100%, on the same rows written the European way (below)
    limited_out: Path  # the default --max-rejects 5%
    run: Done
    limited: Done
    euro: Path  # the rows of `input` with `;` and decimal commas: the first run's input
    model: Path  # the bundled model saved with external data, beside neither file nor cwd


NUMBERS = ("CreditScore", "Age", "Tenure", "Balance", "NumOfProducts", "HasCrCard",
           "IsActiveMember", "EstimatedSalary")  # fmt: skip
EURO = ["--delimiter", ";", "--decimal", ","]


def external_data_model(folder: Path) -> Path:
    """The bundled model as `model.onnx` + `model.onnx.data` (issue 15, item 15)."""
    import onnx

    folder.mkdir()
    onnx.save_model(onnx.load_model(str(REPO / "models" / "churn_mlp.onnx")),
                    str(folder / "model.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="model.onnx.data",
                    size_threshold=0)  # fmt: skip
    return folder / "model.onnx"


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> BatchRuns:
    """The two batch runs, started together (each mostly waits for its JVM)."""
    if not _flink_available():
        pytest.skip("needs apache-flink and Java")
    root = tmp_path_factory.mktemp("flink-batch")
    source, euro = messy_file(root / "messy.csv"), messy_file(root / "euro.csv", euro=True)
    model = external_data_model(root / "model")
    elsewhere = root / "cwd"  # the first run's working folder: not the model's
    elsewhere.mkdir()
    out, limited_out = root / "out", root / "limited"
    first = [euro, "--out", out, "--max-rejects", "100%", "--model", "../model/model.onnx", *EURO]
    runs = [
        start([*CLI, "flink-submit", *args], stdout=subprocess.PIPE, cwd=cwd)
        for args, cwd in ((first, elsewhere), ([source, "--out", limited_out], None))
    ]
    done = []
    for process in runs:
        with stopped(process):
            stdout, stderr = process.communicate(timeout=300)
        done.append(Done(process.returncode, stdout, stderr))
    return BatchRuns(source, out, limited_out, *done, euro=euro, model=model)


def start(
    command: list[Any], stdout: Any = subprocess.PIPE, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """The CLI in a process of its own session, so that it and its JVM can be stopped."""
    return subprocess.Popen(command, env=cli_env(), stdout=stdout, stderr=stdout, text=True,
                            start_new_session=True, cwd=cwd)  # fmt: skip


@contextlib.contextmanager
def stopped(process: subprocess.Popen[Any]) -> Iterator[None]:
    """Whatever happens, the process and its session end, and so does its job's own
    process group (flink-submit runs the job, its JVM and Python workers, in one)."""
    try:
        yield
    finally:
        launcher = launcher_of(process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # children of the group may outlive its leader
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        for proc in wait_until_gone(launcher.pgid, GRACE + 5) if launcher else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)


def records(folder: Path) -> list[list[str]]:
    """The CSV records of a sink folder's finished part files."""
    rows: list[list[str]] = []
    for part in finished_parts(folder):
        with part.open(encoding="utf-8", newline="") as handle:
            rows += list(csv.reader(handle))
    return rows


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def scored_by_score(batch: BatchRuns, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``churnctl score`` on the same file."""
    folder = tmp_path_factory.mktemp("score")
    result = run(["score", batch.input, "-o", folder / "scored.csv", "--rejects",
                  folder / "rejects.csv", "--max-rejects", "100%"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return folder


ODD = {SHORT_ID, LONG_ID}


def test_batch_job_scores_like_score(batch: BatchRuns, scored_by_score: Path) -> None:
    """Same ids scored, same raw (to 1e-6), same exited; the BOM and column order are fine.

    Flink read the European spelling with a model saved with external data, run from a
    folder that is not the model's; `score` the plain file with the bundled model.
    """
    assert batch.run.returncode == 0, batch.run.stderr
    flink = {row[0]: (float(row[1]), row[2]) for row in records(batch.out / "scored")}
    ours = {r["CustomerId"]: (float(r["raw"]), r["exited"])
            for r in read_csv(scored_by_score / "scored.csv")}  # fmt: skip
    assert len(flink) == len(records(batch.out / "scored"))  # each row once
    assert set(flink) - ODD == set(ours) and len(ours) == 37
    for key, (raw, exited) in ours.items():
        assert abs(flink[key][0] - raw) <= 1e-6, key
        assert flink[key][1] == exited, key
    assert "800006" in flink  # the row with a quoted newline in Surname


def test_batch_job_rejects_like_score(batch: BatchRuns, scored_by_score: Path) -> None:
    """The same (id, column, reason) rejects; Flink's line is empty, its text the needed values."""
    flink = records(batch.out / "rejects")
    assert all(row[0] == str(batch.euro) and row[1] == "" for row in flink)
    flink_triples = {(next(csv.reader([row[4]]))[-1], row[2], row[3]) for row in flink}
    ours = read_csv(scored_by_score / "rejects.csv")
    our_triples = {
        (next(csv.reader([r["text"]]))[0], r["column"], r["reason"])
        for r in ours
        if r["text"][:6] not in ODD
    }
    assert flink_triples == our_triples == {
        ("800003", "Geography", "unseen category 'Atlantis'"),
        ("800010", "CreditScore", "not a number"),
        ("800020", "Age", "empty value"),
    }  # fmt: skip
    assert len(flink) == 3  # the header line was dropped, not rejected


def test_wrong_field_counts_are_not_seen_by_flink(batch: BatchRuns, scored_by_score: Path) -> None:
    """A known difference: Flink's positional CSV reader fills a short row's missing last
    column with null (here RowNumber, not needed, so the row is scored) and skips a row with
    a field too many (csv.ignore-parse-errors), which the summary warns of; ``score``
    rejects both."""
    flink_ids = {row[0] for row in records(batch.out / "scored")}
    flink_rejects = {next(csv.reader([r[4]]))[-1] for r in records(batch.out / "rejects")}
    assert SHORT_ID in flink_ids and LONG_ID not in flink_ids | flink_rejects
    ours = {r["text"][:6]: r["reason"] for r in read_csv(scored_by_score / "rejects.csv")}
    assert ours[SHORT_ID] == "expected 14 fields, found 13"
    assert ours[LONG_ID] == "expected 14 fields, found 15"
    assert input_records(str(batch.input)) == 42  # 40 rows, the short one and the long one
    skipped = "the input holds 42 records but the job read 41: Flink's CSV reader skips 1"
    assert skipped in plain(batch.run.stderr)  # not silent: the summary says so


def test_batch_summary_matches_the_outputs(batch: BatchRuns) -> None:
    scored, rejected = len(records(batch.out / "scored")), len(records(batch.out / "rejects"))
    assert (scored, rejected) == (38, 3)
    summary = plain(batch.run.stderr)
    assert f"read {scored + rejected} rows: {scored} scored, {rejected} rejected" in summary
    assert "Traceback" not in batch.run.stderr and batch.run.stdout == ""
    counts = count_outputs(batch.out)
    assert (counts.rows_scored, counts.rows_rejected) == (scored, rejected)
    work = batch.out / WORK_FOLDER
    left = sorted(p.name for p in work.iterdir())
    assert {"job.log", "job.py"} <= set(left)
    assert not [name for name in left if name.startswith("staging")]  # staging removed


def test_reject_limit_publishes_nothing(batch: BatchRuns) -> None:
    """3 of 41 rows rejected is over the default 5%: exit 3, no part file published."""
    assert batch.limited.returncode == 3, batch.limited.stderr
    message = plain(batch.limited.stderr.strip().splitlines()[-1])  # after the progress lines
    assert message.startswith("Error: 3 of 41 rows rejected"), message
    assert "nothing was published" in message and "Traceback" not in batch.limited.stderr
    for name in ("scored", "rejects"):
        folder = batch.limited_out / name
        assert not folder.exists() or not finished_parts(folder)
    work = batch.limited_out / WORK_FOLDER
    assert not [p for p in work.iterdir() if p.name.startswith("staging")]


def test_emit_writes_the_job_flink_submit_runs(batch: BatchRuns, tmp_path: Path) -> None:
    """--emit writes the job file and starts no Flink (fast); it is the file the batch run
    left in OUT (its run had a copy pointing into its staging folder, removed with it)."""
    job = tmp_path / "job.py"
    started = time.monotonic()
    result = run(["flink-submit", batch.euro, "--out", batch.out, "--max-rejects", "100%",
                  "--emit", job, "--model", batch.model, *EURO])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 20
    assert f"wrote {job}" in plain(result.stderr)
    emitted = spec_keywords(job.read_text(encoding="utf-8"))
    ran = spec_keywords((batch.out / WORK_FOLDER / "job.py").read_text(encoding="utf-8"))
    assert emitted["out_dir"] == str(batch.out)
    assert emitted == ran
    assert emitted["columns"] == tuple(ORDER)  # the file's own order, without its BOM


# ------------------------------------------------------------------ 5: streaming


def clean_file(path: Path, first_id: int, n: int, seed: int) -> set[str]:
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in text_rows(n, seed)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i, row in enumerate(rows):
        row["CustomerId"] = str(first_id + i)
        writer.writerow([row[c] for c in COLUMNS])
    hidden = path.with_name(f".{path.name}.tmp")
    hidden.write_text(buffer.getvalue(), encoding="utf-8")
    hidden.rename(path)
    return {r["CustomerId"] for r in rows}


def wait_for(ids: set[str], scored: Path, process: subprocess.Popen[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "flink-submit --streaming ended"
        if scored.is_dir() and ids <= {row[0] for row in records(scored)}:
            return
        time.sleep(0.5)
    pytest.fail(f"not all of {len(ids)} rows scored within {timeout} s")


@needs_flink
def test_streaming_scores_each_new_file_once(tmp_path: Path) -> None:
    landing, out = tmp_path / "in", tmp_path / "out"
    landing.mkdir()
    expected = clean_file(landing / "a.csv", 100_000, 30, 1)
    command = [*CLI, "flink-submit", landing, "--out", out, "--streaming",
               "--monitor-interval", "500 ms"]  # fmt: skip
    log = tmp_path / "flink-submit.log"
    with log.open("w") as output:
        process = start(command, stdout=output)
    with stopped(process):
        wait_for(expected, out / "scored", process, timeout=120)  # the job runs
        for name, first_id, seed in (("b.csv", 200_000, 2), ("c.csv", 300_000, 3)):
            expected |= clean_file(landing / name, first_id, 25, seed)
        wait_for(expected, out / "scored", process, timeout=60)
    ids = Counter(row[0] for row in records(out / "scored"))
    assert set(ids) == expected and set(ids.values()) == {1}
    assert count_outputs(out).rows_rejected == 0  # the three header lines were dropped
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 0)
        pytest.fail("a process of the streaming job outlived it")


# ------------------------------------------------------------------ the process group (item 7)


def big_file(path: Path, n: int) -> Path:
    """``n`` clean rows: enough for the job to be still scoring when the test acts."""
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in text_rows(1000, 9)]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in range(n):
            row = rows[i % len(rows)]
            row["CustomerId"] = str(1_000_000 + i)
            writer.writerow([row[c] for c in COLUMNS])
    return path


def job_group(process: subprocess.Popen[Any], has: Any, what: str, timeout: float) -> int:
    """The process group of ``process``'s job, once one of its members satisfies ``has``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"flink-submit ended before {what}"
        launcher = launcher_of(process.pid)
        if launcher is not None and any(has(p) for p in group(launcher.pgid)):
            return launcher.pgid
        time.sleep(0.2)
    pytest.fail(f"no {what} within {timeout} s")


def is_java(proc: Proc) -> bool:
    return Path(proc.cmdline.split(" ", 1)[0]).name == "java"


def is_worker(proc: Proc) -> bool:  # a Python worker of the job (Beam's boot)
    return "pyflink.fn_execution" in proc.cmdline


def assert_gone(pgid: int, timeout: float) -> None:
    left = wait_until_gone(pgid, timeout)
    for proc in left:  # never left behind, even when the test fails
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    assert left == [], left


@needs_flink
def test_a_killed_run_leaves_no_job_behind_and_the_next_run_cleans_up(tmp_path: Path) -> None:
    """SIGKILL of flink-submit while its job scores: the JVM and the Python workers end
    with it; its staging folder is left. The next run into the same OUT removes it and
    says so; Ctrl-C stops that run and its job too (exit 130, nothing published)."""
    out = tmp_path / "out"
    command = [*CLI, "flink-submit", big_file(tmp_path / "big.csv", 200_000), "--out", out]
    first = start(command)
    with stopped(first):
        pgid = job_group(first, is_worker, "a Python worker scoring", timeout=240)
        assert any(is_java(p) for p in group(pgid))
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        assert_gone(pgid, GRACE + 10)
    work = out / WORK_FOLDER
    [staging] = [p for p in work.iterdir() if p.is_dir() and p.name.startswith("staging-")]
    second = start(command)
    with stopped(second):
        pgid = job_group(second, is_java, "the JVM", timeout=120)
        os.kill(second.pid, signal.SIGINT)
        _, output = second.communicate(timeout=GRACE + 30)  # flink-submit tells on stderr
        assert second.returncode == 130, output
        assert_gone(pgid, 5)
    said = plain(output)
    assert f"removed 1 staging folder(s) of earlier runs that ended without cleaning up: " \
           f"{staging}" in said  # fmt: skip
    assert "starting Flink (embedded local MiniCluster)" in said and "Traceback" not in output
    assert not [p for p in work.iterdir() if p.name.startswith("staging-")]
    assert not (out / "scored").exists() and not (out / "rejects").exists()


# ------------------------------------------------------------------ the emitted job (item 13)


@needs_flink
def test_the_printed_command_runs_the_emitted_job(tmp_path: Path) -> None:
    """The command printed after --emit, run literally (shlex.split, from another folder),
    runs the job; paths holding $(...) and spaces stay paths. OUT and the job file lie in
    hidden sub-folders of IN ("." and "_"), which Flink never lists: nothing is read twice."""
    folder = tmp_path / "in $(touch pwned) dir"
    folder.mkdir()
    expected = clean_file(folder / "a.csv", 500, 12, 6)
    (folder / "_jobs").mkdir()
    job, out = folder / "_jobs" / "job $(touch pwned2).py", folder / ".scored"
    result = run(["flink-submit", folder, "--out", out, "--emit", job])
    assert result.exit_code == 0, result.output
    embedded, _ = hint_lines(result.stderr)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    process = start(shlex.split(embedded), cwd=elsewhere)
    with stopped(process):
        stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stdout + stderr
    assert {row[0] for row in records(out / "scored")} == expected
    assert len(records(out / "scored")) == len(expected) and records(out / "rejects") == []
    assert not list(tmp_path.rglob("pwned*"))


# ------------------------------------------------------------------ 6: clean failures


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.csv"
    clean_file(path, 1, 5, 4)
    return path


def test_java_missing_is_one_line(small: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-java"
    empty.mkdir()
    done = subprocess.run(
        [*CLI, "flink-submit", small, "--out", tmp_path / "out"], capture_output=True,
        text=True, env=cli_env(PATH=str(empty), JAVA_HOME=str(empty)), timeout=120,
    )  # fmt: skip
    if "Flink is not installed" in done.stderr:
        pytest.skip("needs apache-flink")
    assert done.returncode == 1, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    message = plain(done.stderr)
    assert message.startswith("Error: Java not found") and "Java 17" in message
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "out").exists()  # checked before anything is written


def free_closed_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


@needs_flink
def test_unreachable_cluster_is_named(small: Path, tmp_path: Path) -> None:
    port = free_closed_port()
    result = run(["flink-submit", small, "--out", tmp_path / "out", "--jobmanager",
                  f"127.0.0.1:{port}"])  # fmt: skip
    assert_clean_error(result, 1, f"cannot reach the Flink cluster at 127.0.0.1:{port}")
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_missing_column_is_refused_before_flink(tmp_path: Path) -> None:
    source = tmp_path / "no-age.csv"
    header = [c for c in COLUMNS if c != "Age"]
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in text_rows(3, 5)]
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([row[c] for c in header] for row in rows)
    with mock.patch("churnctl.flink_submit.submit") as submit:
        result = run(["flink-submit", source, "--out", tmp_path / "out"])
        emitted = run(["flink-submit", source, "--out", tmp_path / "out", "--emit",
                       tmp_path / "job.py"])  # fmt: skip
    assert not submit.called and not (tmp_path / "job.py").exists()
    for outcome in (result, emitted):
        assert_clean_error(outcome, 2, "missing required column(s) Age")


# Captured from an embedded run on a CSV file with a UTF-8 BOM (before input_columns dropped it).
PY4J_LOG = """\
$ /venv/bin/python /tmp/out/.churnctl-flink/job.py
Traceback (most recent call last):
  File "/tmp/out/.churnctl-flink/job.py", line 36, in <module>
    run_job(SPEC)
  File "/venv/lib/python3.11/site-packages/py4j/protocol.py", line 326, in get_return_value
    raise Py4JJavaError(
py4j.protocol.Py4JJavaError: An error occurred while calling o92.select.
: org.apache.flink.table.api.ValidationException: Cannot resolve field [CustomerId], input \
field list:[\ufeffCustomerId, Exited, source].
\tat org.apache.flink.table.expressions.resolver.rules.ReferenceResolverRule$ExpressionResolver\
Visitor.failForField(ReferenceResolverRule.java:91)
\tat java.base/java.lang.Thread.run(Thread.java:840)

"""

# The shape of a failure inside a Python worker: a Java stack whose deepest cause holds the
# worker's Python traceback.
WORKER_LOG = """\
py4j.protocol.Py4JJavaError: An error occurred while calling o118.await.
: java.util.concurrent.ExecutionException: org.apache.flink.table.api.TableException: Failed \
to wait job finish
\tat java.base/java.util.concurrent.CompletableFuture.reportGet(CompletableFuture.java:396)
Caused by: org.apache.flink.runtime.client.JobExecutionException: Job execution failed.
\tat org.apache.flink.runtime.jobmaster.JobResult.toJobExecutionResult(JobResult.java:144)
Caused by: org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoff\
TimeStrategy
\t... 4 more
Caused by: java.lang.RuntimeException: Error received from SDK harness for instruction 2: \
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/apache_beam/runners/worker/sdk_worker.py", line \
311, in _execute
    response = task()
  File "/tmp/python-dist/churnctl/scorer.py", line 194, in _arrow
    check_header("batch", batch.schema.names, self.required_columns)
churnctl.errors.SchemaError: batch: missing required column(s) Age; found: CustomerId

\tat org.apache.beam.runners.fnexecution.control.FnApiControlClient$ResponseStreamObserver\
.onNext(FnApiControlClient.java:180)
\t... 3 more
"""


@pytest.mark.parametrize(
    ("log", "cause"),
    [
        (PY4J_LOG, "org.apache.flink.table.api.ValidationException: Cannot resolve field "
                   "[CustomerId], input field list:[\ufeffCustomerId, Exited, source]."),
        (WORKER_LOG, "churnctl.errors.SchemaError: batch: missing required column(s) Age; "
                     "found: CustomerId"),
        (WORKER_LOG.replace("churnctl.errors.SchemaError", "ValueError"),
         "java.lang.RuntimeException: Error received from SDK harness for instruction 2: "
         "Traceback (most recent call last):"),
        ("Exception in thread main\nKeyError: 'x'\nsome last words\n", "KeyError: 'x'"),
        ("nothing useful\nat all\n", "at all"),
        ("", "no output"),
    ],
)  # fmt: skip
def test_root_cause(log: str, cause: str) -> None:
    assert root_cause(log) == cause


def test_root_cause_is_short() -> None:
    assert len(root_cause("Caused by: java.lang.Error: " + "x" * 1000)) == 401


@pytest.mark.parametrize("threshold", [float("inf"), float("nan"), -0.1, 1.5])
def test_a_spec_refuses_a_threshold_no_job_file_could_spell(threshold: float) -> None:
    with pytest.raises(UsageError, match="threshold"):
        FlinkJobSpec(input="in.csv", out_dir="out", state="s.json", model="m.onnx",
                     columns=("a",), threshold=threshold)  # fmt: skip


def test_the_udf_marks_headers_and_keeps_rejected_text() -> None:
    """ScoreBatch without Flink: one row out per row in, headers (BOM or not) marked, a
    rejected row's needed values as CSV, the same raw as the Scorer's."""
    import pandas as pd

    from churnctl.bundled import MODEL, STATE, bundled
    from churnctl.flink_job import BOM, HEADER, ScoreBatch
    from churnctl.scorer import Scorer

    scorer = Scorer(bundled(STATE), bundled(MODEL))
    needed = scorer.required_columns
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in text_rows(6, 3)]
    rows[2]["Geography"] = "Atlantis"
    rows[4]["Surname"] = "a, b"
    frame = pd.DataFrame([{c: r[c] for c in needed} for r in rows])
    header = {c: c for c in needed}
    frame = pd.concat([pd.DataFrame([{**header, needed[0]: BOM + needed[0]}]), frame,
                       pd.DataFrame([header])], ignore_index=True)  # fmt: skip
    frame["source"] = "file:/in.csv"
    out = ScoreBatch(scorer, needed)(frame)
    assert len(out) == len(frame)
    assert list(out["reject_reason"].isna()) == [False, True, True, False, True, True, True, False]
    assert out.loc[[0, 7], "reject_reason"].tolist() == [HEADER, HEADER]
    assert out.loc[3, "reject_column"] == "Geography"
    assert out.loc[3, "text"].split(",") == [rows[2][c] for c in needed]
    assert out["text"].isna().tolist() == out["reject_reason"].isna().tolist()
    expected = scorer.score(pa_table(rows, needed)).scored.column("raw").to_pylist()
    valid = out["reject_reason"].isna()
    assert out.loc[valid, "raw"].tolist() == pytest.approx(expected, abs=1e-7)
    assert out.loc[~valid, "source"].eq("file:/in.csv").all()  # where a rejects row needs it
    assert out.loc[valid, "source"].isna().all()  # and nothing more to send back to the JVM


def pa_table(rows: list[dict[str, str]], needed: list[str]) -> object:
    import pyarrow as pa

    return pa.table({c: [r[c] for r in rows] for c in needed})
