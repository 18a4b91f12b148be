"""What a Flink job may be given to read: paths Flink reads as they are, and (bounded)
input files ``score`` would read, each checked before Flink starts."""

from __future__ import annotations

from pathlib import Path

from churnctl.errors import InputError, UsageError
from churnctl.flink.folders import check_layout
from churnctl.io.held import kind_of
from churnctl.io.listing import NameRules, scan_folder
from churnctl.io.sources import Columns, ReadOptions, open_source
from churnctl.scoring.scorer import Scorer


def check_locations(input: str | Path, out_dir: str | Path) -> None:
    """The input and output folder a job can use: no folder that feeds back (``check_layout``),
    no path Flink would misread or skip (``check_paths``)."""
    check_layout(Path(input), Path(out_dir))
    check_paths(str(input), str(out_dir))


def check_paths(input: str, out_dir: str) -> None:
    """Refuse a path Flink would read as another one (it takes a backslash for a slash), and
    an input it would not read at all (a hidden name)."""
    for what, path in (("input", input), ("output folder", out_dir)):
        if "\\" in str(Path(path).resolve()):
            raise UsageError(
                f"{path}: Flink reads a backslash in a path as '/', so it cannot "
                f"use this {what}; rename it without a backslash"
            )
    if Path(input).resolve().name.startswith((".", "_")):
        raise UsageError(
            f"{input}: Flink skips a name that starts with '.' or '_', so it "
            "would read nothing of this input; rename it"
        )


def check_inputs(files: list[str], scorer: Scorer, options: ReadOptions) -> None:
    """Before a bounded job: refuse now each input file ``score`` would refuse (no needed
    column by its own header, unreadable ...) and any other entry with an input name in an
    input folder (a link, a FIFO, a folder: Flink would read it)."""
    for folder in sorted({str(Path(f).parent) for f in files}):
        others = scan_folder(Path(folder), NameRules()).others
        for name, stat in sorted(others.items()):
            raise InputError(
                f"{Path(folder) / name}: is a {kind_of(stat.st_mode)}, not a "
                "regular file: Flink would read it; move it out of the input "
                "folder"
            )
    for file in files:
        opened = open_source(file, scorer.required_columns, options, columns=Columns(scorer.keep))
        opened.close()
