"""flink-submit's checks that need no Flink: the extra, Java's version, counts, addresses,
the REST probe, savepoint URIs, the folders' layout, the hints to run an emitted job."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_helpers import assert_clean_error, plain, run
from test_cli import write_rows

from churnctl.errors import UsageError
from churnctl.flink import home as flink_install
from churnctl.flink import submit as flink_submit
from churnctl.flink.folders import check_layout, remove_stale_staging, staging_folder
from churnctl.flink.home import check_java, flink_uri
from churnctl.flink.job import FlinkJobSpec
from churnctl.flink.outputs import count_outputs
from churnctl.flink.render import shebang
from churnctl.flink.rest import cancel_job, check_rest, split_address
from churnctl.flink.submit import FlinkError, FlinkRequest
from tests.csv_rows import text_rows


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        flink_install.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pyflink" else real(name, *a),
    )
    with pytest.raises(FlinkError, match=r"pip install 'churnctl\[flink\]'"):
        flink_install.flink_home()


@pytest.mark.parametrize(
    ("printed", "fragment"),
    [
        ('java version "1.8.0_292"', "is Java 8"),
        ('openjdk version "10.0.2"', "is Java 10"),
        ("no version here", "of an unknown version"),
    ],
)
def test_an_old_java_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, printed: str, fragment: str
) -> None:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text(f"#!/bin/sh\necho '{printed}' >&2\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(FlinkError, match=f"{fragment}.*Java 11 or newer"):
        check_java()


@pytest.mark.parametrize("version", ["11.0.2", "17.0.15", "21.0.1"])
def test_java_11_and_newer_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    """What Flink 2 runs on is accepted: the messages say "Java 11 or newer", as the check does."""
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2025-04-15' >&2\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    check_java()


def test_counts_come_from_the_committed_files_records(tmp_path: Path) -> None:
    """Rows are counted by the job's own reader (records, not lines), from the ``files/``
    records Flink committed; an in-progress part file is not counted."""
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "part-a-0.csv").write_text(
        '/in/a.csv,10,1,2,1,read,\n/in/b.csv,5,1,0,0,failed,"not read: gone"\n'
        '"/in/c,\nd.csv",9,1,7,0,read,\n'
    )
    (tmp_path / "files" / ".part-b-0.csv.inprogress.x").write_text("/in/e.csv,1,1,3,0,read,\n")
    counts = count_outputs(tmp_path)
    assert (counts.rows.scored, counts.rows.rejected, counts.rows.read) == (9, 1, 10)
    assert [f.source for f in counts.failed] == ["/in/b.csv"]
    assert counts.files[2].source == "/in/c,\nd.csv"


def test_a_file_changed_after_it_was_read_is_reported_and_recorded(tmp_path: Path) -> None:
    """Flink lists a file once: rows appended after the job read it would be lost unseen.
    A file whose size or mtime is not what was read is reported, and recorded beside the
    rejects; a file removed after it was read, or one not read at all, is not."""
    from churnctl.flink.outputs import (
        CHANGES_FILE,
        FlinkResult,
        changed_after_read,
        record_changes,
    )
    from churnctl.flink.scoring import FileCounts

    kept, grown, gone, failed = (tmp_path / f"{n}.csv" for n in ("kept", "grown", "gone", "bad"))
    result = FlinkResult()
    for path in (kept, grown, gone, failed):
        path.write_text("a\n1\n")
        stat = path.stat()
        status = "failed" if path is failed else "read"
        result.add(FileCounts(str(path), stat.st_size, stat.st_mtime_ns, 1, 0, status))
    gone.unlink()
    with grown.open("a") as handle:
        handle.write("2\n")
    failed.write_text("changed too")
    [changed] = changed_after_read(result)
    assert changed.source == str(grown) and changed.bytes == 6 and changed.status == "changed"
    assert "4 bytes read, 6 now" in changed.detail
    path = record_changes(tmp_path / "out", [changed])
    assert path == tmp_path / "out" / "rejects" / CHANGES_FILE
    [row] = list(csv.reader(path.open(encoding="utf-8")))
    assert row[0] == str(grown) and row[1:3] == ["", ""] and "rename them" in row[3]
    assert record_changes(tmp_path / "out", []) is None


def streaming_request(tmp_path: Path, state: Path) -> FlinkRequest:
    from churnctl.flink.job import FlinkJobSpec
    from churnctl.samples.bundled import MODEL, bundled

    out = tmp_path / "out"
    (tmp_path / "in").mkdir(exist_ok=True)
    spec = FlinkJobSpec(
        input=str(tmp_path / "in"),
        out_dir=str(out),
        state=str(state),
        model=str(bundled(MODEL)),
        streaming=True,
        checkpoint_dir=str(out / ".churnctl-flink" / "checkpoints"),
    )
    return FlinkRequest(spec)


def test_a_streaming_run_resumes_only_its_own_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into an OUT_DIR with earlier results: refused without a checkpoint to resume from;
    with one, resumed only by the same job (here: refused with another state)."""
    import shutil

    from churnctl.errors import OutputError
    from churnctl.flink.submit import submit
    from churnctl.samples.bundled import STATE, bundled

    monkeypatch.setattr(flink_submit, "flink_home", lambda: None)
    monkeypatch.setattr(flink_submit, "_run", lambda *args: None)
    state = tmp_path / "state.json"
    shutil.copy(bundled(STATE), state)
    request = streaming_request(tmp_path, state)
    out = Path(request.spec.out_dir)
    submit(request)  # a first run: nothing earlier
    (out / "scored").mkdir()
    (out / "scored" / "part-a-0.csv").write_text("1,0.5,true\n")
    with pytest.raises(OutputError, match="holds the part files of an earlier job"):
        submit(request)  # earlier results, and no checkpoint to resume from
    checkpoint = out / ".churnctl-flink" / "checkpoints" / "job" / "chk-3"
    checkpoint.mkdir(parents=True)
    (checkpoint / "_metadata").write_bytes(b"x")
    state.write_text(state.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    submit(request)  # the same job resumes (the same state, whatever its file's bytes)
    from churnctl.batch.fit_file import fit_state
    from tests.csv_rows import csv_bytes, text_rows

    (tmp_path / "train.csv").write_bytes(csv_bytes(text_rows(50, 3)))
    fit_state(str(tmp_path / "train.csv")).save(state)  # another state
    with pytest.raises(OutputError, match="another state"):
        submit(request)


@contextlib.contextmanager
def loopback(answer: Callable[[socket.socket, bytes], None] | None) -> Iterator[str]:
    """A TCP server on 127.0.0.1; its HOST:PORT. ``answer`` gets each connection and the
    request read from it; None: connections are accepted (by the kernel) and never answered."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request and (chunk := connection.recv(4096)):
                    request += chunk
                assert answer is not None
                with contextlib.suppress(OSError):
                    answer(connection, request)

    thread = threading.Thread(target=serve, daemon=True)
    if answer is not None:
        thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        done.set()
        if answer is not None:
            thread.join(timeout=10)
        server.close()


def http(status: str, body: bytes, content_type: str = "application/json") -> Callable[..., None]:
    def answer(connection: socket.socket, request: bytes) -> None:
        connection.sendall(
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    return answer


def closed_port() -> str:
    with socket.socket() as probe:  # a free port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


FLINK_CONFIG = json.dumps({"flink-version": "2.3.0", "refresh-interval": 3000}).encode()


def test_flink_s_rest_endpoint_passes_and_gives_its_version() -> None:
    with loopback(http("200 OK", FLINK_CONFIG)) as address:
        assert check_rest(address) == "2.3.0"


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        (http("404 Not Found", b"<html>nope</html>", "text/html"), "answers HTTP (404 Not Found)"),
        (http("200 OK", b"<html>a web site</html>", "text/html"), "answers HTTP (200 OK)"),
        (http("200 OK", b'{"version": "1"}'), "gave no flink-version"),
        (http("200 OK", b"[1, 2]"), "gave no flink-version"),
        (
            lambda connection, request: connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n"),
            "accepted the connection but gave no HTTP answer",
        ),
        (lambda connection, request: None, "accepted the connection but gave no HTTP answer"),
    ],
)
def test_an_endpoint_that_is_not_flink_s_is_named(
    answer: Callable[..., None], fragment: str
) -> None:
    with loopback(answer) as address, pytest.raises(FlinkError) as raised:
        check_rest(address, timeout=5)
    message = str(raised.value)
    assert message.startswith(address) and fragment in message, message
    assert "not a Flink REST endpoint" in message and "jobmanager='127.0.0.1:8081'" in message


def drip(connection: socket.socket, request: bytes) -> None:
    """An answer that never ends: one byte of a header every 0.1 s (each read succeeds)."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(200):
        connection.sendall(b"a")
        time.sleep(0.1)


@pytest.mark.parametrize(("answer", "what"), [(None, "silent"), (drip, "dripping")])
def test_the_probe_is_bounded_in_all(answer: Callable[..., None] | None, what: str) -> None:
    """A server that accepts and says nothing, or drips its answer: the bound holds in all."""
    with loopback(answer) as address:
        started = time.monotonic()
        with pytest.raises(
            FlinkError, match=f"^{address} accepted the connection but sent no answer within 0.5 s"
        ):
            check_rest(address, timeout=0.5)
        assert time.monotonic() - started < 2, what


def test_a_closed_port_is_named() -> None:
    address = closed_port()
    with pytest.raises(
        FlinkError,
        match=f"cannot reach the Flink cluster at {address} "
        r"\(Connection refused\); is it running\?",
    ):
        check_rest(address)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:8081", ("127.0.0.1", 8081)),
        ("flink.example:1", ("flink.example", 1)),
        ("[::1]:8081", ("::1", 8081)),
        ("localhost", None),
        (":8081", None),
        ("h:", None),
        ("h:http", None),
        ("h:0", None),
        ("h:65536", None),
        ("h:-1", None),
    ],
)
def test_an_address_is_host_and_port(address: str, expected: tuple[str, int] | None) -> None:
    if expected is None:
        with pytest.raises(UsageError, match="HOST:PORT"):
            split_address(address)
    else:
        assert split_address(address) == expected


def test_cancel_asks_the_rest_endpoint() -> None:
    requests: list[bytes] = []

    def accept(connection: socket.socket, request: bytes) -> None:
        requests.append(request)
        http("202 Accepted", b"{}")(connection, request)

    with loopback(accept) as address:
        assert cancel_job(address, "ab" * 16)
    assert requests[0].startswith(b"PATCH /jobs/" + b"ab" * 16 + b"?mode=cancel HTTP/1.1")
    assert not cancel_job(closed_port(), "ab" * 16)  # best effort: no error


# ------------------------------------------------------------------ savepoint URIs (item 10)


@pytest.mark.parametrize(
    "uri",
    [
        "file:///data/sp",
        "file:/data/sp",
        "s3://bucket/savepoints",
        "s3a://b/sp",
        "hdfs://nn:8020/sp",
        "gs://b/sp",
        "oss://b/sp",
        "abfss://c@a.dfs.core.windows.net/sp",
        "viewfs://cluster/sp",
    ],
)
def test_a_uri_passes_through_unchanged(uri: str) -> None:
    assert flink_uri(uri) == uri


@pytest.mark.parametrize("path", ["sp", "./savepoints", "a/b/../c", "with space/sp", "sp:x"])
def test_a_plain_path_is_made_absolute(
    path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert flink_uri(path) == str((tmp_path / path).resolve())
    assert flink_uri(str(tmp_path / path)) == str((tmp_path / path).resolve())


# ------------------------------------------------------------------ folders that feed back (6)


def layout(tmp_path: Path, source: str, out: str) -> str | None:
    """check_layout's refusal for INPUT and OUT below ``tmp_path`` (``in`` holds a.csv)."""
    (tmp_path / "in" / "sub").mkdir(parents=True, exist_ok=True)
    (tmp_path / "in" / "a.csv").write_text("x\n", encoding="utf-8")
    with contextlib.suppress(FileExistsError):
        (tmp_path / "link-to-in").symlink_to(tmp_path / "in")
    try:
        check_layout(tmp_path / source, tmp_path / out)
    except UsageError as exc:
        return exc.message
    return None


@pytest.mark.parametrize(
    ("source", "out", "refusal"),
    [
        ("in", "in", "is the input folder"),
        ("in", "in/", "is the input folder"),
        ("in", "in/sub/..", "is the input folder"),
        ("in", "link-to-in", "is the input folder"),
        ("in", "in/scored", "lies inside the input folder"),
        ("in", "in/sub/deeper", "lies inside the input folder"),
        ("in", "link-to-in/out", "lies inside the input folder"),
        ("in/sub", "in", "lies inside the output folder"),
        ("in", ".", "lies inside the output folder"),
        ("in/a.csv", "in/a.csv", "is the input file"),
        ("in/a.csv", "in", "lies inside the output folder"),
        ("link-to-in/a.csv", "in", "lies inside the output folder"),
        # Flink never lists a name starting with "." or "_": nothing written there is read
        ("in", "in/.scored", None),
        ("in", "in/_scored", None),
        ("in", "in/sub/.out", None),
        ("in", "in/.hidden/out", None),
        ("in", "out", None),
        ("in/a.csv", "in/out", None),
        ("in", "in-scored", None),  # a name that starts like the input's, beside it
    ],
)
def test_folders_that_feed_back_are_refused(
    tmp_path: Path, source: str, out: str, refusal: str | None
) -> None:
    found = layout(tmp_path, source, out)
    if refusal is None:
        assert found is None, found
        return
    assert found is not None and refusal in found, found
    named = [str((tmp_path / source).resolve()), str((tmp_path / out).resolve())]
    assert all(path in found for path in named), found


def small_input(tmp_path: Path, name: str = "in") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    write_rows(folder / "a.csv", text_rows(3, 1))
    return folder


@pytest.mark.parametrize("mode", [[], ["--streaming"], ["--emit", "JOB"]])
@pytest.mark.parametrize("out", ["in", "in/scored"])
def test_the_cli_refuses_them_before_anything_is_written(
    tmp_path: Path, mode: list[str], out: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 2, one line naming both folders; no Flink looked for, nothing written."""
    folder = small_input(tmp_path)
    looked = []
    monkeypatch.setattr(flink_submit, "flink_home", lambda: looked.append(1))
    args = [str(tmp_path / "job.py") if a == "JOB" else a for a in mode]
    before = sorted(tmp_path.rglob("*"))
    result = run(["flink-submit", folder, "--out", tmp_path / out, *args])
    assert_clean_error(result, 2, str(folder.resolve()), str((tmp_path / out).resolve()))
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(tmp_path.rglob("*")) == before and not looked


# ------------------------------------------------------------------ the emitted job (item 13)


@pytest.mark.parametrize(
    ("python", "line"),
    [
        ("/opt/venv/bin/python", "#!/opt/venv/bin/python\n"),
        ("/opt/vé nv/bin/python", ""),  # the kernel would cut it at the space
        ("/opt/venv/bin/python\nimport os", ""),
        ("/opt/venv/bin/python\rimport os", ""),
        ("/opt/venv\tbin/python", ""),
        ("/opt/venv/bin/python\u2028x", ""),
        ("python3", ""),  # not a path the kernel can run
        ("/" + "v" * 130, ""),  # past what every kernel reads of a "#!" line
        ("/opt/é/python", "#!/opt/é/python\n"),
    ],
)
def test_the_job_names_its_python_where_it_can(python: str, line: str) -> None:
    assert shebang(python) == line


def hint_lines(stderr: str) -> tuple[str, str]:
    """The two commands printed after --emit (each line as printed, not reflowed)."""
    lines = stderr.splitlines()
    embedded = next(line for line in lines if "; run it embedded with: " in line)
    cluster = next(
        line for line in lines if line.startswith("or on a Flink session cluster with: ")
    )
    return embedded.split("; run it embedded with: ", 1)[1], cluster.split(": ", 1)[1]


def test_the_printed_commands_are_shell_quoted(tmp_path: Path) -> None:
    """Pasted into a shell, each printed command is the argv meant, and runs nothing else."""
    folder = small_input(tmp_path, "in $(touch pwned) 'q' dir")
    job = tmp_path / "job $(touch pwned2) `touch pwned3`.py"
    result = run(
        [
            "flink-submit",
            folder,
            "--out",
            folder / ".out",
            "--emit",
            job,
            "--jobmanager",
            "127.0.0.1:8081",
        ]
    )
    assert result.exit_code == 0, result.output
    root = flink_install.pyflink_root()
    flink = str(root / "bin" / "flink") if root else "flink"
    python = sys.executable
    expected = (
        [python, str(job)],
        [
            flink,
            "run",
            "-m",
            "127.0.0.1:8081",
            "-py",
            str(job),
            "-pyclientexec",
            python,
            "-pyexec",
            python,
        ],
    )
    for command, argv in zip(hint_lines(result.stderr), expected, strict=True):
        assert shlex.split(command) == argv
        shell = subprocess.run(
            ["sh", "-c", f"printf '%s\\n' {command}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert shell.stdout.splitlines() == argv, shell.stderr
    assert not list(tmp_path.rglob("pwned*")) and not list(Path.cwd().glob("pwned*"))
    assert job.read_text(encoding="utf-8").startswith(f"#!{python}\n")
    assert os.access(job, os.X_OK)


def test_the_cluster_hint_is_the_command_flink_submit_runs(tmp_path: Path) -> None:
    spec = FlinkJobSpec(
        input="/in",
        out_dir="/out",
        state="/s.json",
        model="/m.onnx",
        streaming=True,
        python_executable="/venv/bin/python",
    )
    embedded, cluster = flink_install.run_commands(tmp_path / "job.py", spec, "h:1")
    assert embedded == ["/venv/bin/python", str(tmp_path / "job.py")]
    ran = flink_install.cluster_command(
        cluster[0], "h:1", tmp_path / "job.py", "/venv/bin/python", detached=True
    )
    assert cluster == ran and "-d" in ran


# ------------------------------------------------------------------ a run, with a fake job (11, 14)

JOB_ID = "0123456789abcdef0123456789abcdef"
# What a fake job does where the real one runs Flink: it says its id, commits part files
# into its out_dir, pauses (a tick of the progress sees the first part), commits more.
FAKE_JOB = """\
#!/bin/false
import pathlib, time
OUT_DIR = {out_dir!r}
out = pathlib.Path(OUT_DIR)
print("Job has been submitted with JobID {job_id}", flush=True)
for name in ("scored", "rejects", "files"):
    (out / name).mkdir(parents=True, exist_ok=True)
(out / "scored" / "part-0.csv").write_text("1,0.5,true\\n2,0.1,false\\n")
(out / "files" / "part-0.csv").write_text("/in/a.csv,10,1,2,0,read,\\n")
time.sleep({pause})
(out / "scored" / "part-1.csv").write_text("3,0.2,false\\n")
(out / "rejects" / "part-0.csv").write_text("/in/b.csv,2,Age,empty value,x\\n")
(out / "files" / "part-1.csv").write_text("/in/b.csv,10,1,1,1,read,\\n")
"""


@pytest.fixture
def fake_flink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """flink_home without Flink or Java; a bin/flink that records its arguments."""
    root = tmp_path / "flink"
    (root / "bin").mkdir(parents=True)
    script = root / "bin" / "flink"
    here = shlex.quote(str(root))
    script.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > {here}/args\n'
        f"cat {here}/answer 2>/dev/null\n"
        f'exit "$(cat {here}/code 2>/dev/null || echo 0)"\n'
    )
    script.chmod(0o755)
    home = flink_install.FlinkHome(root, dict(os.environ))
    monkeypatch.setattr(flink_submit, "flink_home", lambda: home)
    return root


def fake_job(monkeypatch: pytest.MonkeyPatch, pause: float) -> None:
    render = lambda spec: FAKE_JOB.format(out_dir=spec.out_dir, job_id=JOB_ID, pause=pause)  # noqa: E731
    monkeypatch.setattr(flink_submit, "render_job", render)


def test_progress_is_told_from_the_first_second(
    tmp_path: Path, fake_flink: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, out = small_input(tmp_path), tmp_path / "out"
    fake_job(monkeypatch, pause=2 * flink_submit.PROGRESS_EVERY)  # a tick sees its first part
    result = run(["flink-submit", folder, "--out", out, "--max-rejects", "100%"])
    assert result.exit_code == 0, result.output
    lines = [line for line in plain_lines(result.stderr) if not line.startswith("Note:")]
    log = out / ".churnctl-flink" / "job.log"
    assert lines[0] == f"starting Flink (embedded local MiniCluster); log: {log}"
    assert lines[1] == f"job {JOB_ID} submitted"  # an embedded MiniCluster has no web UI
    assert lines[2] == "rows so far: 2 scored, 0 rejected"
    assert lines[-1].startswith("2 file(s): read 4 rows: 3 scored, 1 rejected in ")
    # the job file left for the user points at the output folder, not at a staging folder
    job = (out / ".churnctl-flink" / "job.py").read_text(encoding="utf-8")
    assert f"OUT_DIR = {str(out.resolve())!r}" in job
    assert sorted(p.name for p in (out / ".churnctl-flink").iterdir()) == ["job.log", "job.py"]


def plain_lines(text: str) -> list[str]:
    return [plain(line) for line in text.splitlines() if line.strip()]


def test_quiet_prints_the_summary_only(
    tmp_path: Path, fake_flink: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, out = small_input(tmp_path), tmp_path / "out"
    fake_job(monkeypatch, pause=0)
    result = run(["flink-submit", folder, "--out", out, "--max-rejects", "100%", "--quiet"])
    assert result.exit_code == 0, result.output
    lines = [line for line in plain_lines(result.stderr) if not line.startswith("Note:")]
    assert len(lines) == 1 and lines[0].startswith("2 file(s): read 4 rows: 3 scored, 1 rejected")


def test_a_streaming_job_on_a_cluster_says_where_and_how_to_stop_it(
    tmp_path: Path, fake_flink: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (fake_flink / "answer").write_text(f"Job has been submitted with JobID {JOB_ID}\n")
    folder, out = small_input(tmp_path), tmp_path / "out"
    with loopback(http("200 OK", FLINK_CONFIG)) as address:
        result = run(
            [
                "flink-submit",
                folder,
                "--out",
                out,
                "--streaming",
                "--jobmanager",
                address,
                "--from-savepoint",
                "sp",
            ]
        )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == JOB_ID, (result.stdout, result.stderr)
    lines = plain_lines(result.stderr)
    ui = f"http://{address}/#/job/running/{JOB_ID}/overview"
    assert lines[0].startswith(f"submitting to the Flink cluster at {address}; log: ")
    assert lines[1] == f"job {JOB_ID} submitted; web UI: {ui}"
    stop = f"churnctl flink-submit --stop {JOB_ID} --savepoint DIR --jobmanager {address}"
    assert lines[-1].endswith(f"stop it with: {stop}") and ui in lines[-1]
    argv = (fake_flink / "args").read_text().splitlines()
    assert argv[:8] == [
        "run",
        "-m",
        address,
        "-d",
        "-s",
        str(Path("sp").resolve()),
        "-py",
        str((out / ".churnctl-flink" / "job.py").resolve()),
    ]


# ------------------------------------------------------------------ early failures (item 14)


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--jobmanager", "CLOSED"], 1, "cannot reach the Flink cluster at"),
        (["--jobmanager", "SILENT"], 1, "accepted the connection but"),
        (["--jobmanager", "localhost"], 2, "the job manager must be HOST:PORT"),
        (["--from-savepoint", "sp"], 2, "a savepoint is restored on a cluster only"),
    ],
)
@pytest.mark.parametrize("train", [False, True], ids=["state", "train"])
def test_an_early_failure_writes_nothing(
    tmp_path: Path,
    fake_flink: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    code: int,
    fragment: str,
    train: bool,
) -> None:
    """Not the output folder, not the job file, not a state fitted with --train."""
    monkeypatch.setattr("churnctl.flink.rest.REST_TIMEOUT", 0.5)
    folder, out = small_input(tmp_path), tmp_path / "out"
    training = ["--train", folder / "a.csv", "--allow-state-mismatch"] if train else []
    with loopback(None) as silent:
        args = [{"CLOSED": closed_port(), "SILENT": silent}.get(a, a) for a in args]
        result = run(["flink-submit", folder, "--out", out, *training, *args])
    assert_clean_error(result, code, fragment)
    assert not out.exists()


# ------------------------------------------------------------------ --stop (items 10, 14)


@pytest.fixture
def own_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


@pytest.mark.parametrize("savepoint", ["sp", "file:///data/sp", "s3://bucket/sp"])
def test_stop_writes_nothing_but_the_savepoint(
    tmp_path: Path,
    fake_flink: Path,
    own_temp: Path,
    monkeypatch: pytest.MonkeyPatch,
    savepoint: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (fake_flink / "answer").write_text("Savepoint completed. Path: file:/data/sp/savepoint-1\n")
    with loopback(http("200 OK", FLINK_CONFIG)) as address:
        result = run(
            ["flink-submit", "--stop", JOB_ID, "--savepoint", savepoint, "--jobmanager", address]
        )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "file:/data/sp/savepoint-1"
    argv = (fake_flink / "args").read_text().splitlines()
    given = savepoint if ":" in savepoint else str(tmp_path / savepoint)
    assert argv == ["stop", "-m", address, "--savepointPath", given, JOB_ID]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flink", "temp"]
    assert not (tmp_path / "sp").exists() and not Path("file:").exists()
    assert list(own_temp.iterdir()) == []  # the client's log went, with its success


def test_a_failed_stop_names_its_log_outside_the_savepoint_folder(
    tmp_path: Path, fake_flink: Path, own_temp: Path
) -> None:
    (fake_flink / "answer").write_text("Caused by: java.lang.IllegalStateException: no job\n")
    (fake_flink / "code").write_text("1")
    savepoint = tmp_path / "sp"
    with loopback(http("200 OK", FLINK_CONFIG)) as address:
        result = run(
            ["flink-submit", "--stop", JOB_ID, "--savepoint", savepoint, "--jobmanager", address]
        )
    [log] = own_temp.glob("churnctl-flink-stop-*/stop.log")
    assert_clean_error(
        result,
        1,
        f"stopping job {JOB_ID} on {address} failed: "
        f"java.lang.IllegalStateException: no job (full log: {log})",
    )
    assert "no job" in log.read_text() and not savepoint.exists()


# ------------------------------------------------------------------ staging folders (item 7)


def test_a_staging_folder_is_locked_while_used_and_removed_after(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), staging_folder(tmp_path) as staging:
        (staging / "scored").mkdir()
        assert remove_stale_staging(tmp_path) == []  # its run lives: left alone
        assert staging.is_dir()
        raise RuntimeError("the job failed")
    assert list(tmp_path.iterdir()) == []


def test_stale_staging_folders_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = tmp_path / "staging-11-aaaaaa"
    (dead / "scored").mkdir(parents=True)
    (tmp_path / "staging-11-aaaaaa.lock").write_text("11\n")  # its run died: no lock held
    legacy = tmp_path / "staging-12"  # an older churnctl's, without a lock file
    legacy.mkdir()
    (tmp_path / "staging-13-bbbbbb.lock").write_text("13\n")  # a run killed before its mkdir
    (tmp_path / "job.py").write_text("")
    holder = tmp_path / "staging-14-cccccc"
    holder.mkdir()
    hold = (
        "import sys, time; from churnctl.io.locks import take_lock; "
        f"take_lock(__import__('pathlib').Path({str(holder)!r} + '.lock')); "
        "print('held', flush=True); time.sleep(60)"
    )
    process = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == "held\n"
        assert remove_stale_staging(tmp_path) == [dead, legacy]
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "job.py",
            "staging-14-cccccc",
            "staging-14-cccccc.lock",
        ]
    finally:
        process.kill()
        process.wait(timeout=10)
    assert remove_stale_staging(tmp_path) == [holder]  # its run is gone now
    assert [p.name for p in tmp_path.iterdir()] == ["job.py"]


def test_checkpoints_go_to_a_uri_and_resume_from_the_newest(tmp_path: Path) -> None:
    from churnctl.flink.job import as_uri, latest_checkpoint

    assert as_uri("s3://bucket/ck") == "s3://bucket/ck" and as_uri("file:/ck") == "file:/ck"
    assert as_uri(str(tmp_path / "a b")) == (tmp_path / "a b").resolve().as_uri()
    assert latest_checkpoint(tmp_path) is None
    for job, n, age in (("j1", 7, 30), ("j2", 2, 10), ("j2", 1, 20)):
        folder = tmp_path / job / f"chk-{n}"
        folder.mkdir(parents=True)
        (folder / "_metadata").write_bytes(b"x")
        os.utime(folder / "_metadata", (time.time() - age, time.time() - age))
    (tmp_path / "j3" / "chk-9").mkdir(parents=True)  # begun, never completed: no _metadata
    assert latest_checkpoint(tmp_path) == tmp_path / "j2" / "chk-2"
    from churnctl.flink.resume import prune_checkpoints

    removed = prune_checkpoints(str(tmp_path))
    assert sorted(p.name for p in removed) == ["j1", "j3"]
    assert [p.name for p in tmp_path.iterdir()] == ["j2"]
    assert prune_checkpoints(None) == []


# A streaming job that reads a.csv (its files record says so) and whose producer then
# appends to it, against the convention: what was appended is never read by Flink.
GROWING_JOB = """\
import os, pathlib, time
out = pathlib.Path({out_dir!r})
source = pathlib.Path({source!r})
print("Job has been submitted with JobID {job_id}", flush=True)
stat = source.stat()
(out / "files").mkdir(parents=True, exist_ok=True)
record = f"{{source}},{{stat.st_size}},{{stat.st_mtime_ns}},3,0,read,\\n"
(out / "files" / "part-0.csv").write_text(record)
time.sleep({pause})
with source.open("a") as handle:
    handle.write("late,row\\\\n")
time.sleep({pause})
"""


def test_a_streaming_run_tells_the_files_it_may_not_read_whole(
    tmp_path: Path, fake_flink: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flink lists a file once: an embedded streaming run warns once of each input file that
    changed after the job read it (and records it beside the rejects), and of each still
    unread long after it landed."""
    folder, out = small_input(tmp_path), tmp_path / "out"
    source, unread = folder / "a.csv", folder / "b.csv"
    write_rows(unread, text_rows(2, 2))  # a file the job never reads (empty when listed, say)
    monkeypatch.setattr(flink_submit, "UNREAD_AFTER", flink_submit.PROGRESS_EVERY)
    text = GROWING_JOB.format(
        out_dir=str(out.resolve()),
        source=str(source),
        job_id=JOB_ID,
        pause=1.5 * flink_submit.PROGRESS_EVERY,
    )
    monkeypatch.setattr(flink_submit, "render_job", lambda spec: text)
    result = run(["flink-submit", folder, "--out", out, "--streaming", "--quiet"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in plain_lines(result.stderr) if line.startswith("Warning:")]
    assert len(warnings) == 2, result.stderr  # each told once, though seen at every tick
    [changed] = [w for w in warnings if str(source) in w]
    assert "changed after the job read it" in changed
    [not_read] = [w for w in warnings if str(unread) in w]
    assert "not read 2 s after it landed" in not_read and "Flink will never read it" in not_read
    [row] = list(csv.reader((out / "rejects" / "changed-after-read.csv").open(encoding="utf-8")))
    assert row[0] == str(source) and row[1:3] == ["", ""]
