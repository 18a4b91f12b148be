"""The Flink installation churnctl runs on: the apache-flink package's distribution, Java,
and the commands that run a job file embedded or on a session cluster."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from churnctl.errors import FlinkError
from churnctl.flink.job import FlinkJobSpec, has_scheme


@dataclass
class FlinkHome:
    """The apache-flink package's Flink distribution: its ``flink`` script, its jars."""

    root: Path
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def flink(self) -> Path:
        return self.root / "bin" / "flink"


def flink_home() -> FlinkHome:
    """The installed apache-flink package, with Java checked; a clear error otherwise."""
    root = pyflink_root()
    if root is None:
        raise FlinkError(
            "Flink is not installed: install churnctl's Flink extra, pip install 'churnctl[flink]'"
        )
    check_java()
    return FlinkHome(root, {**os.environ, "FLINK_HOME": str(root)})


def pyflink_root() -> Path | None:
    """The apache-flink package's folder (its ``bin/flink``), found without importing it."""
    found = importlib.util.find_spec("pyflink")
    return None if found is None or found.origin is None else Path(found.origin).parent


def flink_uri(location: str) -> str:
    """A savepoint or checkpoint location as Flink takes it: a URI (``file:///sp``,
    ``file:/sp``, ``s3://bucket/sp``, ``hdfs://nn/sp``) unchanged, a plain path made absolute."""
    return location if has_scheme(location) else str(Path(location).resolve())


def cluster_command(
    flink: Path | str,
    jobmanager: str,
    job: Path,
    python: str,
    *,
    detached: bool = False,
    savepoint: str | None = None,
) -> list[str]:
    """``flink run`` of a job file on a session cluster, its client and its workers on
    ``python`` (one with churnctl); ``detached``: return once the job is submitted."""
    command = [str(flink), "run", "-m", jobmanager, *(["-d"] if detached else [])]
    command += ["-s", savepoint] if savepoint is not None else []
    return [*command, "-py", str(job), "-pyclientexec", python, "-pyexec", python]


def run_commands(
    job: Path, spec: FlinkJobSpec, jobmanager: str | None
) -> tuple[list[str], list[str]]:
    """The commands that run an emitted job file: embedded, and on a session cluster
    (at ``jobmanager``, or ``HOST:PORT`` to fill in) through the package's ``flink``."""
    root = pyflink_root()
    flink = root / "bin" / "flink" if root is not None else "flink"
    job = job.absolute()
    embedded = [spec.python_executable, str(job)]
    cluster = cluster_command(
        flink, jobmanager or "HOST:PORT", job, spec.python_executable, detached=spec.streaming
    )
    return embedded, cluster


def check_java() -> None:
    """Java 11 or newer (Flink 2 runs on 11, 17 or 21)."""
    java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else None
    command = str(java) if java and java.exists() else shutil.which("java")
    if command is None:
        raise FlinkError(
            "Java not found: Flink needs Java 11 or newer; install it or set JAVA_HOME"
        )
    done = subprocess.run([command, "-version"], capture_output=True, text=True, timeout=30)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr)
    major = int(match.group(1)) if match else 0
    major = int(match.group(2) or 0) if major == 1 and match else major
    if major < 11:
        raise FlinkError(
            f"{command} is Java {major or 'of an unknown version'}: Flink needs "
            "Java 11 or newer; install it or set JAVA_HOME"
        )
