"""The churnctl scoring job on Apache Flink: build it and run it.

Flink does what an engine is for: it lists the input (once, or every
``monitor_interval`` when streaming; which files it has read is part of its
checkpoints), spreads the files over the workers, and commits the outputs
exactly once (at each checkpoint when streaming). churnctl does the rest, in
one Python function per file (``flink.scoring.ScoreFiles``): it reads the file
by its own header with its own reader and scores it as ``score`` does. So a job
scores the same rows as ``score``, rejects the same ones with the same lines and
reasons, and spells every value the same way.

The graph: Flink's filesystem source in ``raw`` format (only the file's path and
size are used: one record per file is kept, the first) → rebalanced over the
workers → ``ScoreFiles`` → three file sinks under ``out_dir``: ``scored/``,
``rejects/`` and ``files/``, CSV part files named ``part-….csv``, without a
header (``write_schema`` writes their columns beside them, in ``_schema.json``).

The ``Scorer`` travels to the workers pickled (state and model inside it) and
the ``churnctl`` package is shipped with the job. PyFlink is imported only here.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import churnctl
from churnctl.errors import UsageError
from churnctl.features.input_policy import check_decimal
from churnctl.flink.scoring import FILES_COLUMNS, OUTPUTS, FileReading, ScoreFiles
from churnctl.io.formats import DEFAULT_PATTERNS
from churnctl.io.rejects import REJECTS_SCHEMA
from churnctl.io.sources import ReadOptions, check_read_options
from churnctl.scoring.scorer import Scorer, ScorerOptions, output_schema, scorer_from

SCORED, REJECTS, FILES = OUTPUTS
SCHEMA_FILE = "_schema.json"
URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")  # file:/…, file:///…, s3://…
FILES_DONE_METRIC = "files/__Writer.numRecordsIn"  # one files record per input file done
CHECKPOINT_METADATA = "_metadata"


@dataclass(frozen=True)
class FlinkJobSpec:
    """Everything the job needs; every value is plain data, so a job file can spell it."""

    input: str  # a CSV or Parquet file, or a folder of them (score's names, no sub-folder)
    out_dir: str  # scored/, rejects/ and files/ part files are written below it
    state: str
    model: str
    # every field of ScorerOptions, by its name (build_scorer passes them all on)
    keep: tuple[str, ...] = ("CustomerId",)
    threshold: float = 0.5
    logits: bool = False
    allow_state_mismatch: bool = False
    delimiter: str = ","  # the input files' field delimiter
    decimal: str = "."  # the decimal mark of their numbers: "." or ","
    encoding: str = "utf-8"
    streaming: bool = False
    parallelism: int = 1
    monitor_interval: str = "1 s"  # streaming: how often the folder is listed
    checkpoint_interval: str = "2 s"  # streaming: outputs are committed at checkpoints
    settle: float = 1.0  # streaming: seconds a file must hold still before it is read
    checkpoint_dir: str | None = None  # kept checkpoints; a new run resumes from the latest
    python_executable: str = field(default_factory=lambda: sys.executable)

    def __post_init__(self) -> None:
        """Refuse what no job could run (and no job file could spell as a literal)."""
        if not 0 <= self.threshold <= 1:  # also NaN and infinities
            raise UsageError(f"threshold must be within [0, 1], got {self.threshold!r}")
        if self.parallelism < 1:
            raise UsageError(f"parallelism must be >= 1, got {self.parallelism}")
        if not 0 <= self.settle < 3600:
            raise UsageError(f"settle must be within [0, 3600) seconds, got {self.settle!r}")
        if "*" in self.keep:
            raise UsageError("keep names the columns to copy: resolve '*' against a header first")
        check_read_options(self.input, self.read_options)
        check_decimal(self.decimal)

    @property
    def read_options(self) -> ReadOptions:
        return ReadOptions(delimiter=self.delimiter, encoding=self.encoding)


def build_scorer(spec: FlinkJobSpec) -> Scorer:
    """The job's Scorer, one ONNX Runtime thread per worker."""
    options = ScorerOptions(**{name: getattr(spec, name) for name in ScorerOptions.names()})
    return scorer_from(spec.state, spec.model, options, threads=1)


def run_job(spec: FlinkJobSpec, *, on_submitted: Callable[[str], None] | None = None) -> None:
    """Build the job, submit it, and wait for it unless it is a streaming job on a cluster.

    An embedded job (its own MiniCluster, ended with this process) is always waited for.
    ``on_submitted`` receives the job id as soon as Flink has it.
    """
    from pyflink.common import Types

    scorer = build_scorer(spec)
    env = job_environment(spec)
    reading = FileReading(spec.read_options, settle=spec.settle if spec.streaming else 0.0)
    chunks = (
        listed_files(env, spec)
        .rebalance()
        .flat_map(ScoreFiles(scorer, reading), Types.TUPLE([Types.STRING(), Types.STRING()]))
        .name("churnctl: score each file")
        .uid("churnctl-score")
    )
    write_outputs(chunks, Path(spec.out_dir))
    client = env.execute_async(f"churnctl: scoring {Path(spec.input).name}")
    if on_submitted is not None:
        on_submitted(str(client.get_job_id()))
    if not spec.streaming or _embedded():
        client.get_job_execution_result().result()


def write_outputs(chunks: Any, out_dir: Path) -> None:
    """Each (output, text) chunk into its output's part files under ``out_dir``."""
    from pyflink.common import Types

    for output in OUTPUTS:
        text = chunks.filter(lambda chunk, o=output: chunk[0] == o).map(
            lambda chunk: chunk[1], Types.STRING()
        )
        sink = part_file_sink(out_dir / output)
        text.sink_to(sink).name(f"{output}/").uid(f"sink-{output}")


def _embedded() -> bool:
    """Whether PyFlink starts its own JVM here (``flink run`` passes its gateway's port)."""
    return "PYFLINK_GATEWAY_PORT" not in os.environ


def job_environment(spec: FlinkJobSpec) -> Any:
    from pyflink.common import Configuration
    from pyflink.datastream import RuntimeExecutionMode, StreamExecutionEnvironment

    config = Configuration()
    for key, value in job_settings(spec).items():
        config.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    if not spec.streaming:
        env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    env.set_parallelism(spec.parallelism)
    if not _embedded():  # a cluster's workers get churnctl with the job; embedded ones have it
        env.add_python_file(str(Path(churnctl.__file__).parent))  # (and it costs ~10 s at exit)
    return env


def job_settings(spec: FlinkJobSpec) -> dict[str, str]:
    """The job's Flink configuration: Python, and (streaming) checkpoints and where to resume."""
    settings = {
        "python.executable": spec.python_executable,
        "python.client.executable": spec.python_executable,
        "python.fn-execution.bundle.size": "1",  # a file a bundle: its outputs go on at once
        "metrics.fetcher.update-interval": "1000",  # an embedded job's REST metrics, each second
    }
    if not spec.streaming:
        # Flink's adaptive batch scheduler sizes an operator by its input, here a record per
        # file: it would run the scoring on one worker whatever the parallelism
        settings["execution.batch.adaptive.auto-parallelism.enabled"] = "false"
        return settings
    settings["execution.checkpointing.interval"] = spec.checkpoint_interval
    if spec.checkpoint_dir is not None:
        settings["execution.checkpointing.dir"] = as_uri(spec.checkpoint_dir)
        settings["execution.checkpointing.externalized-checkpoint-retention"] = (
            "RETAIN_ON_CANCELLATION"
        )
        latest = latest_checkpoint(Path(spec.checkpoint_dir)) if _embedded() else None
        if latest is not None:
            settings["execution.state-recovery.path"] = as_uri(str(latest))
    return settings


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint (``<job>/chk-N`` with its ``_metadata``) under ``folder``."""
    found = [m.parent for m in folder.glob(f"*/chk-*/{CHECKPOINT_METADATA}") if m.is_file()]
    return max(found, key=lambda p: (p / CHECKPOINT_METADATA).stat().st_mtime_ns, default=None)


def has_scheme(location: str) -> bool:
    """Whether a location is a URI (``file:/sp``, ``file:///sp``, ``s3://…``, ``hdfs://…``)."""
    return URI_SCHEME.match(location) is not None


def as_uri(location: str) -> str:
    """A location with a scheme as it is; a local path as a file URI."""
    return location if has_scheme(location) else Path(location).resolve().as_uri()


def listed_files(env: Any, spec: FlinkJobSpec) -> Any:
    """One record (path, size) per input file, from Flink's filesystem source."""
    from pyflink.table import StreamTableEnvironment

    t_env = StreamTableEnvironment.create(env)
    options = {"connector": "filesystem", "path": spec.input, "format": "raw"}
    if Path(spec.input).is_dir():
        options["source.path.regex-pattern"] = input_pattern(spec.input)
    if spec.streaming:
        options["source.monitor-interval"] = spec.monitor_interval
    listed = ", ".join(f"{_sql(k)} = {_sql(v)}" for k, v in options.items())
    t_env.execute_sql(
        "CREATE TEMPORARY TABLE input_files (line BYTES, "
        "path STRING NOT NULL METADATA FROM 'file.path' VIRTUAL, "
        "size BIGINT NOT NULL METADATA FROM 'file.size' VIRTUAL, "
        f"listed_at AS PROCTIME()) WITH ({listed})"
    )
    first = t_env.sql_query(
        "SELECT path, size FROM (SELECT path, size, ROW_NUMBER() OVER "
        "(PARTITION BY path ORDER BY listed_at) AS n FROM input_files) WHERE n = 1"
    )
    return t_env.to_data_stream(first)


def input_pattern(folder: str, patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> str:
    """A Java regular expression for the input files ``score`` takes in ``folder``: its own
    (no sub-folder's) files named by ``patterns``, case-insensitive, never hidden names."""
    root = str(Path(folder)).rstrip("/")  # as Flink names it: the path it was given
    names = "|".join(_glob_regex(p) for p in patterns)
    return f"{_java_quote(root)}/(?![._])(?i:{names})"


def _glob_regex(pattern: str) -> str:
    parts = re.split(r"([*?])", pattern)
    wild = {"*": "[^/]*", "?": "[^/]"}
    return "".join(wild.get(p) or (_java_quote(p) if p else "") for p in parts)


def _java_quote(text: str) -> str:
    """``text`` as a literal in a Java regular expression (``Pattern.quote``)."""
    return "\\Q" + text.replace("\\E", "\\E\\\\E\\Q") + "\\E"


def part_file_sink(folder: Path) -> Any:
    from pyflink.common import Encoder
    from pyflink.datastream.connectors.file_system import (
        BucketAssigner,
        FileSink,
        OutputFileConfig,
        RollingPolicy,
    )

    names = OutputFileConfig.builder().with_part_prefix("part").with_part_suffix(".csv").build()
    return (
        FileSink.for_row_format(str(folder), Encoder.simple_string_encoder("UTF-8"))
        .with_output_file_config(names)
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner())
        .with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy())
        .build()
    )


def output_columns(keep: tuple[str, ...]) -> dict[str, list[str]]:
    """The columns of each output's part files."""
    return {
        SCORED: output_schema(keep).names,
        REJECTS: REJECTS_SCHEMA.names,
        FILES: list(FILES_COLUMNS),
    }


def write_schema(out_dir: Path, columns: dict[str, list[str]]) -> Path:
    """``OUT_DIR/_schema.json``: each output folder's columns, for part files without a header."""
    document = {
        "written_by": f"churnctl {churnctl.__version__}",
        "part_files": "CSV, comma-separated, UTF-8, no header; quoted as the csv module does",
        "columns": columns,
    }
    path = out_dir / SCHEMA_FILE
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def _sql(text: str) -> str:
    """A Flink SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
