"""``flink-submit`` on a real standalone Flink session cluster, started for this module.

The cluster is the apache-flink package's own ``bin/start-cluster.sh`` with a private
FLINK_CONF_DIR (every address 127.0.0.1, free ports, two slots, modest memory), a
private log and pid folder: nothing is written into the venv, parallel runs do not
clash. Teardown runs ``bin/stop-cluster.sh`` and kills what is left of this cluster's
JobManager and TaskManager by pid. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import cli_env
from test_flink_embedded import records

pytestmark = pytest.mark.flink

pyflink = pytest.importorskip("pyflink")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Flink needs Java", allow_module_level=True)

REPO = Path(__file__).resolve().parents[1]
FLINK_HOME = Path(pyflink.__file__).parent
SAMPLE = REPO / "data" / "sample.csv"
START_TIMEOUT = 120.0
JOB_TIMEOUT = 120.0
HOST = "127.0.0.1"


# ------------------------------------------------------------------ the cluster


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Cluster:
    root: Path  # conf/, log/, pid/
    port: int
    env: dict[str, str]

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def rest(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://{self.address}{path}", timeout=5) as response:
            return json.load(response)

    def logs(self) -> str:
        """The tail of every cluster log, for a failure message."""
        parts = []
        for log in sorted((self.root / "log").glob("*")):
            text = log.read_text(errors="replace").splitlines()[-40:]
            parts.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def pids(self) -> list[int]:
        pids = []
        for pid_file in (self.root / "pid").glob("*.pid"):
            pids += [int(line) for line in pid_file.read_text().split() if line.isdigit()]
        return pids

    def job_state(self, job_id: str) -> str | None:
        jobs = self.rest("/jobs/overview")["jobs"]
        return next((job["state"] for job in jobs if job["jid"] == job_id), None)

    def wait_job(self, job_id: str, *states: str) -> str:
        def state() -> str | None:
            found = self.job_state(job_id)
            return found if found in states else None

        return wait_for(state, f"job {job_id} in {states}", self)


def wait_for(
    check: Callable[[], object],
    what: str,
    cluster: Cluster | None = None,
    timeout: float = JOB_TIMEOUT,
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            found = None
        if found:
            return found
        time.sleep(0.5)
    logs = cluster.logs() if cluster else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


def _config(port: int) -> str:
    """config.yaml: the package's JVM options, everything else ours (flat keys)."""
    java_opts = ""
    for line in (FLINK_HOME / "conf" / "config.yaml").read_text().splitlines():
        if line.strip().startswith("all:"):  # env.java.opts.all
            java_opts = line.split(":", 1)[1].strip()
    settings = {
        "env.java.opts.all": java_opts,
        "jobmanager.rpc.address": HOST,
        "jobmanager.rpc.port": free_port(),
        "jobmanager.bind-host": HOST,
        "jobmanager.memory.process.size": "1024m",
        "taskmanager.bind-host": HOST,
        "taskmanager.host": HOST,
        "taskmanager.numberOfTaskSlots": 2,
        "taskmanager.memory.process.size": "1536m",
        "rest.address": HOST,
        "rest.bind-address": HOST,
        "rest.port": port,
        "parallelism.default": 1,
        "python.executable": sys.executable,
    }
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("flink-cluster")
    conf, log, pid = root / "conf", root / "log", root / "pid"
    for folder in (conf, log, pid):
        folder.mkdir()
    for name in (
        "log4j.properties",
        "log4j-cli.properties",
        "log4j-console.properties",
        "log4j-session.properties",
        "logback.xml",
    ):
        shutil.copy(FLINK_HOME / "conf" / name, conf / name)
    port = free_port()
    (conf / "config.yaml").write_text(_config(port))
    (conf / "masters").write_text(f"{HOST}:{port}\n")
    (conf / "workers").write_text(f"{HOST}\n")
    env = {
        **os.environ,
        "FLINK_HOME": str(FLINK_HOME),
        "FLINK_CONF_DIR": str(conf),
        "FLINK_LOG_DIR": str(log),
        "FLINK_PID_DIR": str(pid),
    }
    found = Cluster(root, port, env)
    try:
        subprocess.run(
            [str(FLINK_HOME / "bin" / "start-cluster.sh")],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        wait_for(
            lambda: found.rest("/overview")["slots-available"] >= 1,
            f"a free slot on {found.address}",
            found,
            START_TIMEOUT,
        )
        yield found
    finally:
        _stop_cluster(found)


def _stop_cluster(cluster: Cluster) -> None:
    pids = cluster.pids()
    with contextlib.suppress(subprocess.TimeoutExpired):  # then killed by pid below
        subprocess.run(
            [str(FLINK_HOME / "bin" / "stop-cluster.sh")],
            env=cluster.env,
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    left = [p for p in pids if _alive(p)]
    assert not left, f"Flink processes {left} of {cluster.address} still running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie or a recycled pid: only a java process of ours counts
    try:
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return status != "Z" and b"java" in cmdline


# ------------------------------------------------------------------ helpers


def churnctl(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, as a user runs it."""
    command = [sys.executable, "-c", "from churnctl.cli import run; run()", *map(str, args)]
    return subprocess.run(
        command,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def write_csv(path: Path, header: Sequence[str], body: Sequence[Sequence[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(body)


def sample(n: int, skip: int = 0) -> tuple[list[str], list[list[str]]]:
    with SAMPLE.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        body = list(reader)[skip : skip + n]
    return header, body


SUMMARY = re.compile(r"read ([\d,]+) rows: ([\d,]+) scored, ([\d,]+) rejected")


# ------------------------------------------------------------------ tests


def test_batch_job_on_the_cluster_scores_as_score_does(cluster: Cluster, tmp_path: Path) -> None:
    header, body = sample(400)
    body[3][header.index("CreditScore")] = "abc"
    body[50][header.index("Geography")] = "Atlantis"
    source = tmp_path / "in.csv"
    write_csv(source, header, body)
    out = tmp_path / "out"

    done = ok(
        churnctl(
            "flink-submit",
            source,
            "--out",
            out,
            "--jobmanager",
            cluster.address,
            "--max-rejects",
            "100%",
        )
    )
    summary = SUMMARY.search(done.stderr)
    assert summary, done.stderr
    read, scored, rejected = (int(g.replace(",", "")) for g in summary.groups())
    flink_scored, flink_rejects = records(out / "scored"), records(out / "rejects")
    assert (scored, rejected) == (len(flink_scored), len(flink_rejects)) == (398, 2)
    assert read == len(body)
    assert not list(out.glob(".churnctl-flink/staging-*"))

    reference = tmp_path / "score.csv"
    ok(churnctl("score", source, "--output", reference, "--max-rejects", "100%"))
    with reference.open(encoding="utf-8", newline="") as handle:
        expected = {r["CustomerId"]: float(r["raw"]) for r in csv.DictReader(handle)}
    got = {r[0]: float(r[1]) for r in flink_scored}
    assert got.keys() == expected.keys()
    assert max(abs(got[k] - expected[k]) for k in got) < 1e-6


def test_streaming_job_stops_with_a_savepoint_and_resumes_without_rereading(
    cluster: Cluster, tmp_path: Path
) -> None:
    folder, out, savepoints = tmp_path / "in", tmp_path / "out", tmp_path / "savepoints"
    folder.mkdir()
    header, body = sample(350)
    files = {
        "a.csv": body[:120],
        "b.csv": body[120:200],
        "c.csv": body[200:290],
        "d.csv": body[290:],
    }
    ids = header.index("CustomerId")
    for name in ("a.csv", "b.csv"):
        write_csv(folder / name, header, files[name])

    def submit(*extra: str) -> str:
        done = ok(
            churnctl(
                "flink-submit",
                folder,
                "--out",
                out,
                "--streaming",
                "--jobmanager",
                cluster.address,
                *extra,
            )
        )
        job_id = done.stdout.strip()
        assert re.fullmatch(r"[0-9a-f]{32}", job_id), (done.stdout, done.stderr)
        assert f"http://{cluster.address}/#/job/running/{job_id}/overview" in done.stderr
        cluster.wait_job(job_id, "RUNNING")
        return job_id

    def committed(n: int) -> Callable[[], bool]:
        return lambda: len(records(out / "scored")) >= n

    def stop(job_id: str) -> str:
        done = ok(
            churnctl(
                "flink-submit",
                "--stop",
                job_id,
                "--savepoint",
                savepoints,
                "--jobmanager",
                cluster.address,
            )
        )
        path = done.stdout.strip()
        assert Path(path.removeprefix("file:")).is_dir(), (done.stdout, done.stderr)
        cluster.wait_job(job_id, "FINISHED")
        return path

    first = submit()
    wait_for(committed(200), "the rows of a.csv and b.csv in scored/", cluster)
    savepoint = stop(first)
    assert len(records(out / "scored")) == 200

    for name in ("c.csv", "d.csv"):
        write_csv(folder / name, header, files[name])
    second = submit("--from-savepoint", savepoint)
    assert second != first
    wait_for(committed(350), "the rows of c.csv and d.csv in scored/", cluster)
    stop(second)

    got = Counter(row[0] for row in records(out / "scored"))
    expected = Counter(row[ids] for row in body)
    assert got == expected  # every row of every file once: none read twice after resuming
    assert records(out / "rejects") == []
