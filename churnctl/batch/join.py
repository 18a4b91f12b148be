"""Joining each input's part files into one output and one rejects file, in input order.

Every input is scored into temporary part files; the parts are appended in input
order (the CSV header once, JSON Lines as they are, Parquet row group by row group),
and the output and one rejects file, whose ``source`` column names each reject's
input, are published together, with the output's lineage record (``lineage_files``).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import pyarrow as pa

import churnctl.interrupts as interrupts
from churnctl.atomic import is_write_through, publishing
from churnctl.batch.jobs import FileResult
from churnctl.batch.lineage_files import publish_sidecar, with_lineage
from churnctl.errors import OutputError
from churnctl.io.rejects import REJECTS_SCHEMA, STDERR
from churnctl.io.sinks import STDOUT, CsvWriter, open_stream
from churnctl.names import fit_name, name_max
from churnctl.scoring.lineage import Lineage

if TYPE_CHECKING:
    import pyarrow.parquet as pq

COPY_CHUNK = 1 << 20
PARTS_TAIL = len(".") + len(".XXXXXXXX.parts")  # what mkdtemp adds around the output's name


class Joined:
    """One output and one rejects file, assembled from each input's parts in input order.

    The parts are scored into a temporary folder beside the output (or, for stdout or a
    special file, in the system's); each is appended as soon as every part before it
    is, then removed. The output and rejects are published together at the end.

    Each thing it makes is registered at once on the caller's ``stack``, whose end
    publishes the output and rejects, or discards them after any failure (a signal
    included, wherever it lands), and removes the parts folder: ``close`` the appenders
    last in the ``with`` block.
    """

    def __init__(
        self,
        output: str,
        rejects: str,
        fmt: str,
        schema: pa.Schema,
        stack: contextlib.ExitStack,
        lineage: Lineage | None = None,
    ) -> None:
        """``lineage``: the output's record, in its Parquet metadata or its sidecar."""
        self._waiting: dict[int, FileResult] = {}
        self._next = 0
        publication = stack.enter_context(publishing())
        if lineage is not None:
            if fmt == "parquet":
                schema = with_lineage(schema, lineage)
            else:
                publish_sidecar(publication, output, lineage)
        # rejects first: a bad rejects path fails before anything is written
        rejects_stream = open_stream(rejects, "csv", publication, dash=sys.stderr.buffer)
        self._rejects = Appender(
            stack.enter_context(rejects_stream),
            REJECTS_SCHEMA,
            "csv",
            header_with_first_row=rejects == STDERR,
        )
        output_stream = open_stream(output, fmt, publication)
        self._out = Appender(stack.enter_context(output_stream), schema, fmt)
        with interrupts.deferred():  # made and held for removal, or neither
            self.parts = _parts_folder(output)
            stack.callback(_remove_folder, self.parts)

    def close(self) -> None:
        """Finish the output and the rejects (every part appended): ready to publish."""
        self._out.close()
        self._rejects.close()

    def take(self, index: int, result: FileResult) -> None:
        """Append every part whose turn has come, in input order."""
        self._waiting[index] = result
        while self._next in self._waiting:
            done = self._waiting.pop(self._next)
            if not done.failed:
                self._out.append(Path(str(done.output)))
                self._rejects.append(Path(str(done.rejects)))
            self._next += 1


def _remove_folder(folder: str) -> None:
    """Remove a temporary folder, never cut short by a signal."""
    with interrupts.cleaning():
        shutil.rmtree(folder, ignore_errors=True)


def _parts_folder(output: str) -> str:
    target = Path(output)
    beside = output != STDOUT and not is_write_through(target)
    where = target.parent if beside else None
    name = fit_name(target.name, "", name_max(where) - PARTS_TAIL) if where else "churnctl"
    try:
        return tempfile.mkdtemp(prefix=f".{name}.", suffix=".parts", dir=where)
    except OSError as exc:
        raise OutputError(
            f"{where or tempfile.gettempdir()}: cannot write here "
            f"({exc.strerror or exc}); choose another path"
        ) from None


class Appender:
    """Appends part files of one format to an open output stream."""

    def __init__(
        self, stream: BinaryIO, schema: pa.Schema, fmt: str, *, header_with_first_row: bool = False
    ) -> None:
        """``header_with_first_row``: a CSV header only once a row follows it (stderr)."""
        self._stream = stream
        self._header = b""
        self._header_due = False
        self._parquet: pq.ParquetWriter | None = None
        if fmt == "csv":
            header = io.BytesIO()
            CsvWriter(header, schema)  # type: ignore[arg-type]
            self._header = header.getvalue()
            self._header_due = True
            if not header_with_first_row:
                self._write_header()
        elif fmt == "parquet":
            import pyarrow.parquet as pq  # here: 10-40 ms that a CSV run need not pay

            self._parquet = pq.ParquetWriter(stream, schema)

    def append(self, part: Path) -> None:
        if self._parquet is not None:
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(part)
            for group in range(parquet.num_row_groups):
                self._parquet.write_table(parquet.read_row_group(group))
            part.unlink()
            return
        with part.open("rb") as handle:
            if handle.read(len(self._header)) != self._header:
                raise OutputError(f"{part}: a part file does not start with the CSV header")
            rows = handle.read(COPY_CHUNK)
            if rows:
                self._write_header()
                self._stream.write(rows)
                shutil.copyfileobj(handle, self._stream, COPY_CHUNK)  # type: ignore[misc]
        part.unlink()

    def _write_header(self) -> None:
        if self._header_due:
            self._stream.write(self._header)
            self._header_due = False

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self._stream.flush()
