"""Limits and choices that the command line shows in its help: no heavy imports here.

They live apart from the modules that use them (``generate``, ``sinks``) so that
defining the CLI's options, and ``churnctl --help``, imports neither NumPy nor Arrow.
"""

from __future__ import annotations

MAX_FILES = 10_000  # part files per `generate` call: more is a typo, not a data set
OUTPUT_FORMATS = ("csv", "jsonl", "parquet")
