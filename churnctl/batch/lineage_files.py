"""Where an output's lineage record lives, per format and runtime, and reading it back.

* a Parquet file: its key-value metadata, key ``churnctl.lineage`` (``with_lineage``);
* a CSV or JSON Lines file: ``<output>.lineage.json`` beside it, published in the same
  publication as the output and its rejects (``publish_sidecar``); none for stdout, a
  device or a pipe;
* an output folder (``watch``, ``flink-submit``): ``_lineage.json`` in it
  (``write_folder_lineage``).

``read_output_lineage`` finds and parses the record of any of them.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from churnctl.arguments import check_path
from churnctl.atomic import Publication, publishing
from churnctl.errors import InputError
from churnctl.io.rejects import STDERR, rejects_path
from churnctl.names import fit_name, name_max
from churnctl.scoring.lineage import MAX_BYTES, Lineage, read_lineage

PARQUET_KEY = "churnctl.lineage"
SIDECAR_SUFFIX = ".lineage.json"
FOLDER_FILE = "_lineage.json"
PARQUET_MAGIC = b"PAR1"


def with_lineage(schema: pa.Schema, lineage: Lineage) -> pa.Schema:
    """``schema`` carrying the record: a Parquet writer of it writes it to the file's footer."""
    return schema.with_metadata({**(schema.metadata or {}), PARQUET_KEY: lineage.to_json()})


def sidecar_path(output: str) -> Path | None:
    """``<output>.lineage.json`` (cut to fit the folder's name limit, as a rejects file's
    name is); None where no file goes beside the output: stdout, a device, a pipe (see
    ``rejects_path``: the sidecar goes where the default rejects file would)."""
    if rejects_path(output) == STDERR:
        return None
    path = Path(output)
    return path.with_name(fit_name(path.name, SIDECAR_SUFFIX, name_max(path.parent)))


def publish_sidecar(publication: Publication, output: str, lineage: Lineage) -> None:
    """Write ``output``'s sidecar in ``publication`` (published with it, or not at all).

    Register it before the output: renames run in reverse, so it is renamed after it.
    """
    path = sidecar_path(output)
    if path is None:
        return
    with publication.file(path) as temporary:
        temporary.write_text(lineage.to_json(), encoding="utf-8")


def write_folder_lineage(folder: Path, lineage: Lineage) -> Path:
    """``FOLDER/_lineage.json``, written atomically; its path. Written beside the outputs,
    not as one of them: outside the numbered steps a crash test kills a run at."""
    path = Path(folder) / FOLDER_FILE
    with publishing(steps=False) as publication, publication.file(path) as temporary:
        temporary.write_text(lineage.to_json(), encoding="utf-8")
    return path


def read_output_lineage(output: str | Path) -> Lineage:
    """The record of an output file or folder (or a record file named outright), or one
    ``InputError`` line saying why none."""
    check_path("read_output_lineage", "output", output)
    path = Path(output)
    if path.is_dir():
        return _read_file(path / FOLDER_FILE, f"{path}: an output folder", "in it")
    if not path.is_file():
        raise InputError(f"{path}: no such output file or folder")
    if path.name.endswith(SIDECAR_SUFFIX) or path.name == FOLDER_FILE:  # a record itself
        return _read_file(path, f"{path}: a lineage record", "")
    if _is_parquet(path):
        return _read_parquet(path)
    sidecar = sidecar_path(str(path)) or Path(f"{path}{SIDECAR_SUFFIX}")
    return _read_file(sidecar, f"{path}: a CSV or JSON Lines output", "beside it")


def _read_file(record: Path, what: str, where: str) -> Lineage:
    try:
        with record.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise _none(what, f"no {record.name} {where}") from None
    except OSError as exc:
        raise InputError(f"{record}: cannot read ({exc.strerror or exc})") from None
    return read_lineage(data, str(record))


def _read_parquet(path: Path) -> Lineage:
    import pyarrow.parquet as pq  # here: 10-40 ms that a CSV run need not pay

    try:
        metadata = pq.read_metadata(path).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        raise InputError(
            f"{path}: cannot read its Parquet footer ({exc})".splitlines()[0]
        ) from None
    text = metadata.get(PARQUET_KEY.encode())
    if text is None:
        raise _none(f"{path}: a Parquet output", f"its metadata has no {PARQUET_KEY} key")
    return read_lineage(text, f"{path} (metadata {PARQUET_KEY})")


def _is_parquet(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(PARQUET_MAGIC)) == PARQUET_MAGIC
    except OSError:
        return False


def _none(what: str, why: str) -> InputError:
    return InputError(
        f"{what} without a lineage record ({why}): written before churnctl recorded lineage, "
        "by another program, or not an output"
    )
