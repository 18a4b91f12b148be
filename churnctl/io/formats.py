"""The one registry of file formats: input suffixes, compressions, output formats, endings.

Every list of names churnctl reads or writes derives from here: the names ``score``
and ``watch`` take from a folder, the suffix cut off a derived name, Parquet inputs,
the output format a name implies, and the bytes a complete file ends with. Plain
Python only: the CLI's help imports it without NumPy or Arrow.
"""

from __future__ import annotations

from pathlib import Path

CSV_SUFFIX = ".csv"
PARQUET_SUFFIXES = (".parquet", ".pq")
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}  # suffix -> Arrow codec name
COMPRESSED_CSV_SUFFIXES = tuple(f"{CSV_SUFFIX}{suffix}" for suffix in COMPRESSIONS)
# Longest first: ``a.csv.gz`` is cut as ``a`` + ``.csv.gz``, not ``a.csv`` + ``.gz``.
INPUT_SUFFIXES = (*COMPRESSED_CSV_SUFFIXES, CSV_SUFFIX, *PARQUET_SUFFIXES)
# The names an input folder is read for (``watch``, ``score DIR``, the Flink job).
DEFAULT_PATTERNS = tuple(f"*{s}" for s in (CSV_SUFFIX, *COMPRESSED_CSV_SUFFIXES, *PARQUET_SUFFIXES))

OUTPUT_FORMATS = ("csv", "jsonl", "parquet")
OUTPUT_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}

_ENDINGS = {
    CSV_SUFFIX: (b"\n", "a CSV file ends with a line break"),
    **dict.fromkeys(PARQUET_SUFFIXES, (b"PAR1", "a Parquet file ends with its footer")),
}


def is_parquet(name: str | Path) -> bool:
    """Whether ``name`` is read as Parquet (by its suffix, in any case)."""
    return str(name).lower().endswith(PARQUET_SUFFIXES)


def split_input_suffix(name: str) -> tuple[str, str]:
    """``part-1.csv.gz`` → (``part-1``, ``.csv.gz``): the stem and the input-format suffix."""
    for suffix in INPUT_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    return name, ""


def compression_suffix(name: str) -> str | None:
    """The Arrow codec a name's last suffix names (``.gz`` → ``gzip``), or None."""
    return COMPRESSIONS.get(Path(name).suffix.lower())


def complete_ending(name: str) -> tuple[bytes, str]:
    """The bytes a complete file named ``name`` ends with (``b""``: cannot tell), and why."""
    suffix = Path(name.lower()).suffix
    return _ENDINGS.get(suffix, (b"", "its end cannot be checked"))
