"""Which files are inputs: the names of a folder taken as inputs, and a run's INPUT arguments.

``NameRules`` say which names are inputs (``watch``, ``score DIR`` and the Flink job
share them); ``scan_folder`` lists a folder by them, regular files apart from other
entries (links, FIFOs, folders ...). ``expand_inputs`` turns INPUT arguments (files,
folders, glob patterns) into one sorted list.

A folder means its input files by the names ``watch`` takes (``NameRules``:
``*.csv``, ``*.csv.gz``, ``*.parquet`` ..., never hidden or temporary names; no
sub-folders). A glob pattern the shell left unexpanded (quoted, or matching
nothing there) is expanded here as the shell would; a folder it matches means
that folder's input files. A file named outright is taken whatever its name.
The files are de-duplicated (two spellings, or links, of one file are one
input, under its shortest spelling) and sorted by path, so that a run's order,
and its concatenated output, never depend on the order of the arguments or of a
folder listing.
"""

from __future__ import annotations

import fnmatch
import functools
import glob
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from churnctl.errors import InputError, UsageError
from churnctl.io.formats import DEFAULT_PATTERNS
from churnctl.io.sources import STDIN, check_input

TEMPORARY_SUFFIXES = (".tmp", ".part", ".crdownload")


@dataclass(frozen=True)
class NameRules:
    """Which names are inputs: the patterns, never hidden or temporary names, never markers."""

    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    done_marker: str | None = None

    def __post_init__(self) -> None:
        if self.done_marker is not None and not self.done_marker.strip(". "):
            raise UsageError(
                f"a done marker needs a suffix such as '.done', got {self.done_marker!r}"
            )

    def is_input(self, name: str) -> bool:
        if name.startswith((".", "_")) or name.lower().endswith(TEMPORARY_SUFFIXES):
            return False
        if self.done_marker is not None and name.endswith(self.done_marker):
            return False
        return _matcher(self.patterns)(name.lower()) is not None

    def input_of_marker(self, name: str) -> str | None:
        """For a done-marker name, the input it marks."""
        if self.done_marker is None or not name.endswith(self.done_marker):
            return None
        return name[: -len(self.done_marker)] or None


@functools.cache
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], re.Match[str] | None]:
    """One compiled regular expression for all the patterns, case-insensitive."""
    return re.compile("|".join(fnmatch.translate(p.lower()) for p in patterns)).match


@dataclass
class Listing:
    """One look at a folder: its input files, and the other entries with input names."""

    inputs: dict[str, os.stat_result] = field(default_factory=dict)
    others: dict[str, os.stat_result] = field(default_factory=dict)  # links, FIFOs, folders ...


def scan_folder(folder: Path, rules: NameRules) -> Listing:
    """What ``folder`` holds under input names (no sub-folders' content), by ``lstat``."""
    found = Listing()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not rules.is_input(entry.name):
                    continue
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone between the listing and the stat
                regular = entry.is_file(follow_symlinks=False)
                (found.inputs if regular else found.others)[entry.name] = stat
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None
    return found


def list_inputs(folder: Path, rules: NameRules) -> dict[str, os.stat_result]:
    """The input files now in ``folder`` (regular files only, no sub-folders), with their stat."""
    return scan_folder(folder, rules).inputs


def expand_inputs(specs: Sequence[str], rules: NameRules | None = None) -> list[str]:
    """The input files that ``specs`` name, de-duplicated and sorted; ``-`` (stdin) alone.

    One plain name (no folder, no pattern) is returned as it is once it exists (see
    ``sources.check_input``): a single input is opened, and refused if need be, exactly
    as ``score_file`` does. A name, folder or pattern that matches no input file is an
    ``InputError``, raised before anything is created.
    """
    rules = rules or NameRules()
    if not specs:
        raise UsageError("name at least one input file, folder or glob pattern")
    if STDIN in specs:
        if len(specs) > 1:
            raise UsageError("- (stdin) can only be the one input; name files or folders instead")
        return [STDIN]
    if len(specs) == 1 and not (_is_folder(specs[0]) or _is_unmatched_pattern(specs[0])):
        check_input(specs[0])
        return [specs[0]]
    found: dict[object, str] = {}
    for spec in specs:
        for path in _expand(spec, rules):
            key = _identity(path)
            found[key] = min(found.get(key, path), path, key=_shortest)
    return sorted(found.values())


def _expand(spec: str, rules: NameRules) -> list[str]:
    if _is_folder(spec):
        return _folder_inputs(spec, rules, spec)
    if os.path.lexists(spec):
        return [spec]
    if not glob.has_magic(spec):
        raise InputError(f"{spec}: input file not found")
    paths: list[str] = []
    for match in sorted(glob.glob(spec)):
        paths += _folder_inputs(match, rules, spec, quiet=True) if _is_folder(match) else [match]
    if not paths:
        raise InputError(f"{spec}: input file not found, and no input file matches it as a pattern")
    return paths


def _folder_inputs(folder: str, rules: NameRules, spec: str, *, quiet: bool = False) -> list[str]:
    names = sorted(list_inputs(Path(folder), rules))
    if not names and not quiet:
        raise InputError(
            f"{spec}: is a directory with no input file in it (names {', '.join(rules.patterns)}"
            "; hidden and temporary names are skipped)"
        )
    return [os.path.join(folder, name) for name in names]


def _is_folder(spec: str) -> bool:
    return os.path.isdir(spec)


def _is_unmatched_pattern(spec: str) -> bool:
    """A glob pattern that is not itself the name of a file (``a[1].csv`` may be one)."""
    return glob.has_magic(spec) and not os.path.lexists(spec)


def _shortest(path: str) -> tuple[int, str]:
    """Of two spellings of one file, the shorter is kept (then the first in sort order)."""
    return len(path), path


def _identity(path: str) -> object:
    """One key for every spelling of one file: (device, inode), or the resolved path."""
    try:
        info = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (info.st_dev, info.st_ino)
