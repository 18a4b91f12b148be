"""The churnctl scoring job on Apache Flink (PyFlink's Table API): build it and run it.

The job reads CSV through Flink's filesystem connector, every needed column as
text (so that a rejected row keeps its original values), scores each Arrow
batch with churnctl's own ``Scorer.score_aligned`` inside a vectorized (pandas)
UDF, and writes two filesystem sinks: ``OUT_DIR/scored/`` (the kept columns,
``raw``, ``exited``) and ``OUT_DIR/rejects/`` (``source, line, column, reason,
text``, as ``score``'s rejects file; ``line`` is empty: Flink does not tell a
record's position). Nothing here re-implements feature extraction.

The ``Scorer`` travels to the workers pickled (state JSON and model bytes
inside it) and the ``churnctl`` package is shipped with the job, so workers
need not share the client's file system. PyFlink is imported only here.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import churnctl
from churnctl.errors import UsageError
from churnctl.inputs import check_decimal
from churnctl.scorer import Scorer
from churnctl.sources import ReadOptions, check_read_options

HEADER = "#header"  # the reason given to a file's header line, which is dropped
BOM = "\ufeff"  # Flink's CSV reader keeps a UTF-8 byte order mark in a file's first value
ARROW_BATCH = 10_000  # rows per Arrow batch and per bundle: Flink's 1000 is ~2x slower
SCORED, REJECTS = "scored", "rejects"


@dataclass(frozen=True)
class FlinkJobSpec:
    """Everything the job needs; every value is plain data, so a job file can spell it."""

    input: str  # a CSV file or a folder of CSV files
    out_dir: str  # scored/ and rejects/ part files are written below it
    state: str
    model: str
    columns: tuple[str, ...]  # the input files' header, in order
    delimiter: str = ","  # the input files' field delimiter
    decimal: str = "."  # the decimal mark of their numbers: "." or ","
    keep: tuple[str, ...] = ("CustomerId",)
    threshold: float = 0.5
    allow_state_mismatch: bool = False
    streaming: bool = False
    parallelism: int = 1
    monitor_interval: str = "1 s"  # streaming: how often the folder is listed
    checkpoint_interval: str = "2 s"  # streaming: sink files are committed at checkpoints
    python_executable: str = field(default_factory=lambda: sys.executable)

    def __post_init__(self) -> None:
        """Refuse what no job could run (and no job file could spell as a literal)."""
        if not 0 <= self.threshold <= 1:  # also NaN and infinities
            raise UsageError(f"threshold must be within [0, 1], got {self.threshold!r}")
        if self.parallelism < 1:
            raise UsageError(f"parallelism must be >= 1, got {self.parallelism}")
        check_read_options(self.input, ReadOptions(delimiter=self.delimiter))
        check_decimal(self.decimal)


def build_scorer(spec: FlinkJobSpec) -> Scorer:
    """The job's Scorer, one ONNX Runtime thread per worker."""
    return Scorer(spec.state, spec.model, keep=list(spec.keep), threshold=spec.threshold,
                  allow_state_mismatch=spec.allow_state_mismatch, threads=1,
                  decimal=spec.decimal)  # fmt: skip


def run_job(spec: FlinkJobSpec, *, wait: bool = True) -> Any:
    """Build the job and submit it; the TableResult.

    ``wait``: wait for a bounded (batch) job to finish, and for a streaming job too when
    this process runs Flink embedded (its own MiniCluster), which ends when it exits.
    """
    scorer = build_scorer(spec)
    t_env = _environment(spec)
    _create_tables(t_env, spec, scorer)
    t_env.create_temporary_view("scored_rows", _scored_table(t_env, scorer))
    kept = ", ".join(_quote(name) for name in scorer.keep)
    statements = t_env.create_statement_set()
    statements.add_insert_sql(
        f"INSERT INTO {SCORED} SELECT {kept}, `raw`, exited FROM scored_rows"
        " WHERE reject_reason IS NULL"
    )
    statements.add_insert_sql(
        f"INSERT INTO {REJECTS} SELECT source, CAST(NULL AS BIGINT), reject_column,"
        f" reject_reason, text FROM scored_rows WHERE reject_reason <> '{HEADER}'"
    )
    result = statements.execute()
    if wait and (not spec.streaming or _embedded()):
        result.wait()
    return result


def _embedded() -> bool:
    """Whether PyFlink starts its own JVM here (``flink run`` passes its gateway's port)."""
    return "PYFLINK_GATEWAY_PORT" not in os.environ


def _environment(spec: FlinkJobSpec) -> Any:
    from pyflink.table import EnvironmentSettings, TableEnvironment

    mode = EnvironmentSettings.in_streaming_mode() if spec.streaming else (
        EnvironmentSettings.in_batch_mode())  # fmt: skip
    t_env = TableEnvironment.create(mode)
    settings = {
        "parallelism.default": str(spec.parallelism),
        "python.fn-execution.arrow.batch.size": str(ARROW_BATCH),
        "python.fn-execution.bundle.size": str(ARROW_BATCH),
        "python.executable": spec.python_executable,
        "python.client.executable": spec.python_executable,
        "pipeline.name": f"churnctl score {Path(spec.input).name}",
    }
    if spec.streaming:
        settings["execution.checkpointing.interval"] = spec.checkpoint_interval
    for key, value in settings.items():
        t_env.get_config().set(key, value)
    t_env.add_python_file(str(Path(churnctl.__file__).parent))
    return t_env


def _create_tables(t_env: Any, spec: FlinkJobSpec, scorer: Scorer) -> None:
    columns = ", ".join(f"{_quote(name)} STRING" for name in spec.columns)
    monitor = (
        f", 'source.monitor-interval' = {_sql(spec.monitor_interval)}" if spec.streaming else ""
    )
    t_env.execute_sql(
        f"CREATE TABLE source_files ({columns}, "
        "`source` STRING NOT NULL METADATA FROM 'file.path' VIRTUAL) WITH ("
        f"'connector' = 'filesystem', 'path' = {_sql(spec.input)}, 'format' = 'csv', "
        f"'csv.field-delimiter' = {_sql_char(spec.delimiter)}, "
        f"'csv.ignore-parse-errors' = 'true'{monitor})"
    )
    kept = ", ".join(f"{_quote(name)} STRING" for name in scorer.keep)
    for name, schema in (
        (SCORED, f"{kept}, `raw` DOUBLE, exited BOOLEAN"),
        (REJECTS, "source STRING, line BIGINT, `column` STRING, reason STRING, text STRING"),
    ):
        path = str(Path(spec.out_dir) / name)
        t_env.execute_sql(f"CREATE TABLE {name} ({schema}) WITH ('connector' = 'filesystem', "
                          f"'path' = {_sql(path)}, 'format' = 'csv')")  # fmt: skip


def _scored_table(t_env: Any, scorer: Scorer) -> Any:
    from pyflink.table import DataTypes
    from pyflink.table.expressions import col
    from pyflink.table.udf import udf

    needed = scorer.required_columns
    fields = [DataTypes.FIELD(name, DataTypes.STRING()) for name in scorer.keep]
    fields += [
        DataTypes.FIELD("raw", DataTypes.DOUBLE()),
        DataTypes.FIELD("exited", DataTypes.BOOLEAN()),
    ]
    fields += [DataTypes.FIELD(name, DataTypes.STRING())
               for name in ("reject_column", "reject_reason", "source", "text")]  # fmt: skip
    score = udf(ScoreBatch(scorer, needed), result_type=DataTypes.ROW(fields), func_type="pandas")
    return t_env.from_path("source_files").select(*(col(n) for n in [*needed, "source"])).map(score)


class ScoreBatch:
    """The pandas UDF: one batch of text columns in, one row out per row in (rejects in place)."""

    def __init__(self, scorer: Scorer, needed: list[str]) -> None:
        self.scorer, self.needed = scorer, needed

    def __call__(self, batch: Any) -> Any:
        import numpy as np
        import pyarrow as pa

        # column by column: Table.from_pandas starts a thread pool per call (~8 ms a batch)
        arrays = [pa.array(batch[name], pa.string(), from_pandas=True) for name in self.needed]
        table = pa.Table.from_arrays(arrays, names=self.needed)
        aligned = self.scorer.score_aligned(table).to_pandas()
        aligned.loc[self._header_rows(table), "reject_reason"] = HEADER
        aligned["raw"] = aligned["raw"].astype("float64")
        rejected = np.flatnonzero(aligned["reject_reason"].notna().to_numpy())
        # source and text only where a rejects row needs them: less to send back to the JVM
        source = np.full(len(aligned), None, dtype=object)
        source[rejected] = batch["source"].to_numpy()[rejected]
        text = np.full(len(aligned), None, dtype=object)
        text[rejected] = [_csv_line(row) for row in table.take(pa.array(rejected)).to_pylist()]
        aligned["source"], aligned["text"] = source, text
        return aligned

    def _header_rows(self, table: Any) -> list[int]:
        """The rows that repeat the header (a file's first line; its first value may hold a BOM).

        Only rows whose first value is the first name are compared in full: cheap per batch.
        """
        import pyarrow.compute as pc

        first = self.needed[0]
        found = pc.is_in(table.column(first), value_set=pa_strings([first, BOM + first]))
        candidates = pc.indices_nonzero(found.fill_null(False)).to_pylist()
        names = [first, *self.needed[1:]]
        return [i for i in candidates
                if [str(v).removeprefix(BOM) for v in table.slice(i, 1).to_pylist()[0].values()]
                == names]  # fmt: skip


def pa_strings(values: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(values, pa.string())


def _csv_line(row: dict[str, Any]) -> str:
    """A row's values as one CSV line (what a rejects file's ``text`` holds)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(["" if v is None else v for v in row.values()])
    return buffer.getvalue()


def _quote(name: str) -> str:
    """A column name as a Flink SQL identifier (backticks; ``raw`` is a reserved word)."""
    return "`" + name.replace("`", "``") + "`"


def _sql(text: str) -> str:
    """A Flink SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _sql_char(char: str) -> str:
    """One character as a Flink SQL literal: as it is if printable, else a Unicode escape
    (``U&'\\0009'``: Flink's CSV options read a backslash as the start of an escape)."""
    if char.isprintable() and char not in "\\'":
        return _sql(char)
    return f"U&'\\{ord(char):04X}'"
