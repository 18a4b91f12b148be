"""flink-submit's checks that need no Flink: the extra, Java's version, counts, addresses."""

from __future__ import annotations

import csv
import importlib.util
import socket
from pathlib import Path

import pytest

from churnctl import flink_submit
from churnctl.errors import UsageError
from churnctl.flink_submit import (
    FlinkError,
    FlinkRequest,
    check_java,
    check_reachable,
    count_outputs,
)  # fmt: skip


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        flink_submit.importlib.util, "find_spec",
        lambda name, *a: None if name == "pyflink" else real(name, *a),
    )  # fmt: skip
    with pytest.raises(FlinkError, match=r"pip install 'churnctl\[flink\]'"):
        flink_submit.flink_home()


@pytest.mark.parametrize(
    ("printed", "fragment"),
    [('java version "1.8.0_292"', "is Java 8"), ("no version here", "of an unknown version")],
)
def test_an_old_java_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, printed: str, fragment: str
) -> None:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text(f"#!/bin/sh\necho '{printed}' >&2\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(FlinkError, match=f"{fragment}.*Java 17"):
        check_java()


def test_java_17_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("#!/bin/sh\necho 'openjdk version \"17.0.15\" 2025-04-15' >&2\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    check_java()


def test_an_address_is_host_and_port_and_must_answer() -> None:
    with pytest.raises(UsageError, match="HOST:PORT"):
        check_reachable("localhost")
    with socket.socket() as probe:  # a free port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FlinkError, match=f"cannot reach the Flink cluster at 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}")


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
    assert (counts.rows_scored, counts.rows_rejected, counts.rows_read) == (9, 1, 10)
    assert [f.source for f in counts.failed] == ["/in/b.csv"]
    assert counts.files[2].source == "/in/c,\nd.csv"


def test_a_file_changed_after_it_was_read_is_reported_and_recorded(tmp_path: Path) -> None:
    """Flink lists a file once: rows appended after the job read it would be lost unseen.
    A file whose size or mtime is not what was read is reported, and recorded beside the
    rejects; a file removed after it was read, or one not read at all, is not."""
    from churnctl.flink_scoring import FileCounts
    from churnctl.flink_submit import CHANGES_FILE, FlinkResult, changed_after_read, record_changes

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
    from churnctl.bundled import MODEL, bundled
    from churnctl.flink_job import FlinkJobSpec

    out = tmp_path / "out"
    spec = FlinkJobSpec(input=str(tmp_path), out_dir=str(out), state=str(state),
                        model=str(bundled(MODEL)), streaming=True,
                        checkpoint_dir=str(out / ".churnctl-flink" / "checkpoints"))  # fmt: skip
    return FlinkRequest(spec)


def test_a_streaming_run_resumes_only_its_own_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into an OUT_DIR with earlier results: refused without a checkpoint to resume from;
    with one, resumed only by the same job (here: refused with another state)."""
    import shutil

    from churnctl.bundled import STATE, bundled
    from churnctl.errors import OutputError
    from churnctl.flink_submit import submit

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
    from churnctl.fitting import fit_state
    from tests.csv_rows import csv_bytes, text_rows

    (tmp_path / "train.csv").write_bytes(csv_bytes(text_rows(50, 3)))
    fit_state(str(tmp_path / "train.csv")).save(state)  # another state
    with pytest.raises(OutputError, match="another state"):
        submit(request)
