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
import json
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
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from cli_helpers import assert_clean_error, cli_env, plain, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from process_helpers import Proc, group, launcher_of, wait_until_gone
from test_flink_submit_units import hint_lines

from churnctl.batch.lineage_files import read_output_lineage
from churnctl.errors import UsageError
from churnctl.flink.job import SCHEMA_FILE, FlinkJobSpec
from churnctl.flink.launch import GRACE
from churnctl.flink.outputs import count_outputs, finished_parts
from churnctl.flink.render import render_job
from churnctl.flink.submit import WORK_FOLDER, root_cause
from churnctl.samples.bundled import STATE, bundled
from churnctl.samples.generate import COLUMNS
from churnctl.scoring.lineage import Lineage
from churnctl.scoring.scorer import Scorer
from tests.csv_rows import text_rows
from tests.hostile_inputs import NOTE, write_hostile_folder

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


# ------------------------------------------------------------------ 1, 2: the rendered job


def golden_spec() -> FlinkJobSpec:
    return FlinkJobSpec(
        input="/data/landing/customers.csv",
        out_dir="/data/scored",
        state="/models/state.json",
        model="/models/churn_mlp.onnx",
        delimiter=";",
        decimal=",",
        encoding="latin-1",
        keep=("CustomerId", "Surname"),
        threshold=0.4,
        logits=True,
        streaming=True,
        parallelism=2,
        monitor_interval="500 ms",
        settle=0.5,
        checkpoint_dir="/data/scored/.churnctl-flink/checkpoints",
        python_executable="/opt/venv/bin/python",
    )


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
    "it's",
    'say "hi"',
    "'''",
    '"""',
    "a\\b\\",
    "\\",
    "line\nbreak",
    "cr\rlf\r\n",
    "tab\t",
    '"); import os; os.system("touch /tmp/pwned") #',
    "'); import os; os.system('touch /tmp/pwned') #",
    "''' + __import__('os').system('touch /tmp/pwned') + '''",
    '""" + __import__("os").system("touch /tmp/pwned") + """',
    "{input}",
    "{0}",
    "%s",
    "\x00nul",
    "\udcff surrogate",
    "é ü 日本 \u2028 \u0085",
    "\\N{BULLET}",
]


def assert_inert(text: str, spec: FlinkJobSpec, tmp_path: Path) -> None:
    """The job parses, spells ``spec`` exactly, and its top level only builds SPEC."""
    assert spec_keywords(text) == asdict(spec)
    code = compile(text, "job.py", "exec")
    before = set(tmp_path.iterdir())
    cwd = Path.cwd()
    with mock.patch("churnctl.flink.job.run_job") as run_job, mock.patch("os.system") as system:
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
        input=f"/in/{nasty}.csv",
        out_dir=nasty,
        state=f"{nasty}/s.json",
        model=nasty,
        keep=(nasty, "CustomerId"),
        monitor_interval=nasty,
        checkpoint_interval=nasty,
        checkpoint_dir=nasty,
        encoding="utf-8",
        python_executable=nasty,
    )
    assert_inert(render_job(spec), spec, tmp_path)
    assert not Path("/tmp/pwned").exists()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    paths=st.lists(st.text(min_size=0, max_size=30), min_size=5, max_size=5),
    columns=st.lists(st.text(max_size=10).filter(lambda t: t != "*"), max_size=4).map(tuple),
    threshold=st.floats(0, 1),
)
def test_any_text_stays_a_string(
    paths: list[str], columns: tuple[str, ...], threshold: float, tmp_path: Path
) -> None:
    input_, out_dir, state, model, python = paths
    spec = FlinkJobSpec(
        input=input_,
        out_dir=out_dir,
        state=state,
        model=model,
        keep=columns,
        threshold=threshold,
        checkpoint_dir=out_dir,
        python_executable=python,
    )
    assert_inert(render_job(spec), spec, tmp_path)


def test_every_spec_field_is_rendered() -> None:
    assert set(spec_keywords(render_job(golden_spec()))) == {f.name for f in fields(FlinkJobSpec)}


# ------------------------------------------------------------------ 3, 4, 7: one batch run each

KEEP = ["--keep", f"CustomerId,{NOTE}"]  # Note holds quoted line breaks: rows are records


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class BatchRuns:
    input: Path  # a folder of files with their own headers, widths and formats
    out: Path  # --max-rejects 100%
    limited_out: Path  # the default --max-rejects 5%
    run: Done
    limited: Done
    model: Path  # the bundled model saved with external data, beside neither file nor cwd


def external_data_model(folder: Path) -> Path:
    """The bundled model as `model.onnx` + `model.onnx.data` (issue 15, item 15)."""
    import onnx

    folder.mkdir()
    onnx.save_model(
        onnx.load_model(str(REPO / "models" / "churn_mlp.onnx")),
        str(folder / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    return folder / "model.onnx"


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> BatchRuns:
    """The two batch runs, started together (each mostly waits for its JVM)."""
    if not _flink_available():
        pytest.skip("needs apache-flink and Java")
    root = tmp_path_factory.mktemp("flink-batch").resolve()
    folder = root / "in (1)+[x]$^.E"  # nothing in its name is read as a regular expression
    write_hostile_folder(folder)
    model = external_data_model(root / "model")
    elsewhere = root / "cwd"  # the first run's working folder: not the model's
    elsewhere.mkdir()
    out, limited_out = root / "out", root / "limited"
    first = [
        folder,
        "--out",
        out,
        "--max-rejects",
        "100%",
        "--model",
        "../model/model.onnx",
        "--parallelism",
        "2",
        *KEEP,
    ]
    runs = [
        start([*CLI, "flink-submit", *args], stdout=subprocess.PIPE, cwd=cwd)
        for args, cwd in ((first, elsewhere), ([folder, "--out", limited_out, *KEEP], None))
    ]
    done = []
    for process in runs:
        with stopped(process):
            stdout, stderr = process.communicate(timeout=300)
        done.append(Done(process.returncode, stdout, stderr))
    return BatchRuns(folder, out, limited_out, *done, model=model)


def start(
    command: list[Any], stdout: Any = subprocess.PIPE, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """The CLI in a process of its own session, so that it and its JVM can be stopped."""
    return subprocess.Popen(
        command,
        env=cli_env(),
        stdout=stdout,
        stderr=stdout,
        text=True,
        start_new_session=True,
        cwd=cwd,
    )


@contextlib.contextmanager
def stopped(process: subprocess.Popen[Any]) -> Iterator[None]:
    """Whatever happens, the process and its session end, and so does its job's own
    process group (flink-submit runs the job, its JVM and Python workers, in one)."""
    try:
        yield
    finally:
        kill_session(process)


def kill_session(process: subprocess.Popen[Any], first: int = signal.SIGTERM) -> None:
    """End the process, its session, and its job's own process group (with the launcher's
    grace), whatever it takes."""
    launcher = launcher_of(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, first)
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
        assert part.suffix == ".csv", part
        with part.open(encoding="utf-8", newline="") as handle:
            rows += list(csv.reader(handle))
    return rows


@pytest.fixture(scope="module")
def scored_by_score(batch: BatchRuns, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``churnctl score`` on the same folder: an output and a rejects file per input."""
    folder = tmp_path_factory.mktemp("score")
    result = run(["score", batch.input, "--out-dir", folder, "--max-rejects", "100%", *KEEP])
    assert result.exit_code == 0, result.output
    return folder


def score_records(folder: Path, kind: str) -> list[list[str]]:
    rows: list[list[str]] = []
    for path in sorted(folder.glob(f"*.{kind}.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            rows += list(csv.reader(handle))[1:]
    return rows


def test_batch_job_scores_like_score(batch: BatchRuns, scored_by_score: Path) -> None:
    """Each file by its own header (column orders, a BOM, CRLF, gzip, Parquet), with a model
    saved with external data, run from a folder that is not the model's: the very records
    `score` writes, each once."""
    assert batch.run.returncode == 0, batch.run.stderr
    flink = records(batch.out / "scored")
    ours = score_records(scored_by_score, "scored")
    assert sorted(flink) == sorted(ours) and len(ours) == 37 + 30 + 25 + 20
    assert len({row[0] for row in flink}) == len(flink)
    assert any("\n" in row[1] for row in flink)  # multi-line kept values, as records
    writers = {part.name.rsplit("-", 1)[0] for part in finished_parts(batch.out / "scored")}
    assert len(writers) == 2  # --parallelism 2 reaches the scoring: 4 files on 2 workers


def test_batch_job_rejects_like_score(batch: BatchRuns, scored_by_score: Path) -> None:
    """The same rejects: the same source, line, column, reason and text, record for record
    (the records of the wrong width too), and never a header."""
    flink = records(batch.out / "rejects")
    ours = score_records(scored_by_score, "rejects")
    assert sorted(flink) == sorted(ours) and len(ours) >= 6
    reasons = {row[3] for row in flink}
    assert {"unseen category 'Atlantis'", "not a number", "empty value"} < reasons
    assert sum(r.startswith("expected 15 fields") for r in (row[3] for row in flink)) == 3


def test_batch_summary_counts_records(batch: BatchRuns, scored_by_score: Path) -> None:
    scored, rejected = len(records(batch.out / "scored")), len(records(batch.out / "rejects"))
    assert scored == 112 and rejected == len(score_records(scored_by_score, "rejects"))
    summary = plain(batch.run.stderr)
    assert f"4 file(s): read {scored + rejected} rows: {scored} scored, {rejected} rejected" in (
        summary
    )
    assert "Traceback" not in batch.run.stderr and batch.run.stdout == ""
    counts = count_outputs(batch.out)
    assert (counts.rows.scored, counts.rows.rejected) == (scored, rejected)
    assert sorted(Path(f.source).name for f in counts.files) == [
        "a.csv",
        "b.csv",
        "c.csv.gz",
        "d.parquet",
    ]
    work = batch.out / WORK_FOLDER
    left = sorted(p.name for p in work.iterdir())
    assert {"job.log", "job.py"} <= set(left)
    assert not [name for name in left if name.startswith("staging")]  # staging removed
    schema = json.loads((batch.out / SCHEMA_FILE).read_text(encoding="utf-8"))
    assert schema["columns"]["scored"] == ["CustomerId", NOTE, "raw", "exited"]
    # its lineage, beside: what the scorer of the same state, model and options records
    scorer = Scorer(bundled(STATE), batch.model, keep=("CustomerId", NOTE))
    assert replace(read_output_lineage(batch.out), scored_at="") == replace(
        Lineage.of(scorer), scored_at=""
    )


def test_reject_limit_publishes_nothing(batch: BatchRuns) -> None:
    """8 of 120 rows rejected is over the default 5%: exit 3, no part file published."""
    assert batch.limited.returncode == 3, batch.limited.stderr
    message = plain(batch.limited.stderr.strip().splitlines()[-1])  # after the progress lines
    assert message.startswith("Error: 8 of 120 rows rejected"), message
    assert "nothing was published" in message and "Traceback" not in batch.limited.stderr
    for name in ("scored", "rejects", "files"):
        folder = batch.limited_out / name
        assert not folder.exists() or not finished_parts(folder)
    work = batch.limited_out / WORK_FOLDER
    assert not [p for p in work.iterdir() if p.name.startswith("staging")]


def test_emit_writes_the_job_flink_submit_runs(batch: BatchRuns, tmp_path: Path) -> None:
    """--emit writes the job file and starts no Flink (fast); it is the file the batch run
    left in OUT (its run had a copy pointing into its staging folder, removed with it)."""
    job = tmp_path / "job.py"
    started = time.monotonic()
    result = run(
        [
            "flink-submit",
            batch.input,
            "--out",
            batch.out,
            "--max-rejects",
            "100%",
            "--emit",
            job,
            "--model",
            batch.model,
            "--parallelism",
            "2",
            *KEEP,
        ]
    )
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 20
    assert f"wrote {job}" in plain(result.stderr)
    emitted = spec_keywords(job.read_text(encoding="utf-8"))
    ran = spec_keywords((batch.out / WORK_FOLDER / "job.py").read_text(encoding="utf-8"))
    assert emitted["out_dir"] == str(batch.out)
    assert emitted == ran
    assert emitted["keep"] == ("CustomerId", NOTE)


# ------------------------------------------------------------------ 5: streaming


def clean_file(path: Path, first_id: int, n: int, seed: int) -> set[str]:
    """A file renamed into the folder (the producer convention); its ids."""
    text, ids = file_text(first_id, n, seed)
    hidden = path.with_name(f".{path.name}.tmp")
    hidden.write_text(text, encoding="utf-8")
    hidden.rename(path)
    return ids


def file_text(first_id: int, n: int, seed: int) -> tuple[str, set[str]]:
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in text_rows(n, seed)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i, row in enumerate(rows):
        row["CustomerId"] = str(first_id + i)
        writer.writerow([row[c] for c in COLUMNS])
    return buffer.getvalue(), {r["CustomerId"] for r in rows}


def written_in_place(path: Path, first_id: int, n: int, seed: int) -> set[str]:
    """A file written where it lands, in chunks a little apart (against the convention)."""
    text, ids = file_text(first_id, n, seed)
    lines = text.splitlines(keepends=True)
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, len(lines), len(lines) // 4 + 1):
            handle.write("".join(lines[start : start + len(lines) // 4 + 1]))
            handle.flush()
            time.sleep(0.25)
    return ids


def wait_for(ids: set[str], scored: Path, process: subprocess.Popen[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "flink-submit --streaming ended"
        if scored.is_dir() and ids <= {row[0] for row in records(scored)}:
            return
        time.sleep(0.5)
    pytest.fail(f"not all of {len(ids)} rows scored within {timeout} s")


@needs_flink
def test_streaming_restarts_score_every_row_exactly_once(tmp_path: Path) -> None:
    """Stopped (its whole process group killed) and started again three times while files
    arrive, the embedded job resumes from its latest checkpoint under OUT: every id is
    scored exactly once. A file written in place is read once it is quiet (all its rows),
    and a file without a needed column is recorded and skipped."""
    landing, out = tmp_path / "in", tmp_path / "out"
    landing.mkdir()
    command = [
        *CLI,
        "flink-submit",
        landing,
        "--out",
        out,
        "--streaming",
        "--monitor-interval",
        "500 ms",
        "--settle",
        "400",
    ]
    expected = clean_file(landing / "a0.csv", 100_000, 30, 1)
    log = tmp_path / "flink-submit.log"
    for round in range(4):
        with log.open("a") as output:
            process = start(command, stdout=output)
        with stopped(process):
            wait_for(expected, out / "scored", process, timeout=150)
            base = 200_000 + 10_000 * round
            expected |= clean_file(landing / f"b{round}.csv", base, 20, round + 2)
            if round == 1:
                expected |= written_in_place(landing / "slow.csv", 900_000, 200, 9)
                write_hostile_folder(tmp_path / "h", with_missing_column=True)
                shutil.copy(tmp_path / "h" / "e.csv", landing / ".e.csv")
                os.rename(landing / ".e.csv", landing / "e.csv")
            wait_for(expected, out / "scored", process, timeout=60)
            expected |= clean_file(landing / f"c{round}.csv", base + 5_000, 20, round + 7)
            if round == 3:
                wait_for(expected, out / "scored", process, timeout=60)
            time.sleep(0.3)  # files arrive as the job is stopped
        if round < 3:
            expected |= clean_file(landing / f"d{round}.csv", base + 8_000, 10, round + 20)
    ids = Counter(row[0] for row in records(out / "scored"))
    assert set(ids) == expected and set(ids.values()) == {1}, ids.most_common(3)
    assert "resuming from the latest checkpoint" in log.read_text()
    counts = count_outputs(out)
    [failed] = counts.failed
    assert Path(failed.source).name == "e.csv" and "missing required column(s) Age" in (
        failed.detail
    )
    assert counts.rows.scored == len(expected) and counts.rows.rejected == 0


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
    assert (
        f"removed 1 staging folder(s) of earlier runs that ended without cleaning up: "
        f"{staging}" in said
    )
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
        [*CLI, "flink-submit", small, "--out", tmp_path / "out"],
        capture_output=True,
        text=True,
        env=cli_env(PATH=str(empty), JAVA_HOME=str(empty)),
        timeout=120,
    )
    if "Flink is not installed" in done.stderr:
        pytest.skip("needs apache-flink")
    assert done.returncode == 1, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    message = plain(done.stderr)
    assert message.startswith("Error: Java not found") and "Java 11 or newer" in message
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "out").exists()  # checked before anything is written


def free_closed_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


@needs_flink
def test_unreachable_cluster_is_named(small: Path, tmp_path: Path) -> None:
    port = free_closed_port()
    result = run(
        ["flink-submit", small, "--out", tmp_path / "out", "--jobmanager", f"127.0.0.1:{port}"]
    )
    assert_clean_error(result, 1, f"cannot reach the Flink cluster at 127.0.0.1:{port}")
    assert not (tmp_path / "out").exists()  # checked before anything is written


def refused_entry(kind: str, folder: Path) -> Path:
    """An entry of the input folder a bounded job refuses before Flink starts."""
    path = folder / "x.csv"
    if kind == "no needed column":
        header = [c for c in COLUMNS if c != "Age"]
        path.write_text(",".join(header) + "\n" + ",".join(header) + "\n", encoding="utf-8")
    elif kind == "symlink":
        path.symlink_to(folder / "a.csv")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    return path


@pytest.mark.parametrize("name", [".landing", "_landing", "_x.csv"])
def test_an_input_flink_would_not_read_is_refused(name: str, tmp_path: Path) -> None:
    """Flink skips names starting with '.' or '_', the input's own name included."""
    path = tmp_path / name
    if name.endswith(".csv"):
        clean_file(path, 1, 5, 1)
    else:
        path.mkdir()
        clean_file(path / "a.csv", 1, 5, 1)
    for streaming in ([], ["--streaming"]):
        with mock.patch("churnctl.flink.submit.submit") as submit:
            result = run(["flink-submit", path, "--out", tmp_path / "out", *streaming])
        assert not submit.called and not (tmp_path / "out").exists()
        assert_clean_error(result, 2, "Flink skips a name that starts with '.' or '_'")


def test_a_path_flink_would_misread_is_refused(tmp_path: Path) -> None:
    """Flink reads a backslash in a path as a folder separator: refused, named, up front."""
    folder = tmp_path / "in\\put"
    folder.mkdir()
    clean_file(folder / "a.csv", 1, 5, 1)
    for args in ([folder, "--out", tmp_path / "out"], [tmp_path / "x.csv", "--out", folder]):
        if not Path(args[0]).exists():
            clean_file(Path(args[0]), 1, 5, 1)
        with mock.patch("churnctl.flink.submit.submit") as submit:
            result = run(["flink-submit", *args])
        assert not submit.called
        assert_clean_error(result, 2, "Flink reads a backslash in a path as '/'")


@pytest.mark.parametrize("kind", ["no needed column", "symlink", "fifo", "folder", "empty"])
def test_bounded_inputs_are_checked_before_flink(kind: str, tmp_path: Path) -> None:
    """Every file the job would read is checked as ``score`` checks it, by its own header,
    before anything starts (also for --emit): one line naming the file, nothing written."""
    folder = tmp_path / "in"
    folder.mkdir()
    clean_file(folder / "a.csv", 1, 5, 1)
    entry = refused_entry(kind, folder)
    with mock.patch("churnctl.flink.submit.submit") as submit:
        result = run(["flink-submit", folder, "--out", tmp_path / "out"])
        emitted = run(
            ["flink-submit", folder, "--out", tmp_path / "out", "--emit", tmp_path / "job.py"]
        )
    assert not submit.called and not (tmp_path / "job.py").exists()
    assert not (tmp_path / "out").exists()
    for outcome in (result, emitted):
        assert outcome.exit_code in (1, 2), outcome.output
        message = plain(outcome.stderr)
        assert message.startswith("Error: ") and str(entry) in message, message
        assert len(message.strip().splitlines()) <= 2 and "Traceback" not in message


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
  File "/tmp/python-dist/churnctl/scoring/scorer.py", line 194, in _arrow
    check_header("batch", batch.schema.names, self.required_columns)
churnctl.errors.SchemaError: batch: missing required column(s) Age; found: CustomerId

\tat org.apache.beam.runners.fnexecution.control.FnApiControlClient$ResponseStreamObserver\
.onNext(FnApiControlClient.java:180)
\t... 3 more
"""


@pytest.mark.parametrize(
    ("log", "cause"),
    [
        (
            PY4J_LOG,
            "org.apache.flink.table.api.ValidationException: Cannot resolve field "
            "[CustomerId], input field list:[\ufeffCustomerId, Exited, source].",
        ),
        (
            WORKER_LOG,
            "churnctl.errors.SchemaError: batch: missing required column(s) Age; found: CustomerId",
        ),
        (
            WORKER_LOG.replace("churnctl.errors.SchemaError", "ValueError"),
            "java.lang.RuntimeException: Error received from SDK harness for instruction 2: "
            "Traceback (most recent call last):",
        ),
        ("Exception in thread main\nKeyError: 'x'\nsome last words\n", "KeyError: 'x'"),
        ("nothing useful\nat all\n", "at all"),
        ("", "no output"),
    ],
)
def test_root_cause(log: str, cause: str) -> None:
    assert root_cause(log) == cause


def test_root_cause_is_short() -> None:
    assert len(root_cause("Caused by: java.lang.Error: " + "x" * 1000)) == 401


@pytest.mark.parametrize("threshold", [float("inf"), float("nan"), -0.1, 1.5])
def test_a_spec_refuses_a_threshold_no_job_file_could_spell(threshold: float) -> None:
    with pytest.raises(UsageError, match="threshold"):
        FlinkJobSpec(
            input="in.csv", out_dir="out", state="s.json", model="m.onnx", threshold=threshold
        )
