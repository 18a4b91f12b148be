"""The files of one run: distinct (an output never replaces an input), and derived names."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

from churnctl.errors import UsageError
from churnctl.names import NAME_MAX, fit_name

STREAM = "-"  # stdin or stdout: never a file of its own


def check_distinct(
    inputs: Mapping[str, str | Path | None], outputs: Mapping[str, str | Path | None]
) -> None:
    """Refuse an output (output, rejects, saved state ...) naming an input or another output.

    Inputs may share a file (score and train on one file). Paths are compared
    resolved (links followed) and by ``os.path.samefile`` (hard links); a
    character device such as ``/dev/null`` may serve twice.
    """
    for role, name in [*_files(inputs), *_files(outputs)]:
        _check_encodable(role, name)
    seen = [(role, Path(name)) for role, name in _files(inputs)]
    for role, name in _files(outputs):
        path = Path(name)
        for other_role, other in seen:
            if _same_file(path, other) and not _is_device(path):
                raise UsageError(
                    f"the {role} {name} is the same file as the {other_role} {other}: writing "
                    f"it would destroy the {other_role}; choose another path for the {role}"
                )
        seen.append((role, path))


def _check_encodable(role: str, name: str | Path) -> None:
    """A name the file system cannot spell (a lone surrogate) is no file at all."""
    try:
        os.fsencode(name)
    except UnicodeError:
        raise UsageError(
            f"the {role} {name} is not a valid file name here (it cannot be encoded as "
            f"{sys.getfilesystemencoding()}); use another name"
        ) from None


def _files(roles: Mapping[str, str | Path | None]) -> list[tuple[str, str | Path]]:
    return [(r, n) for r, n in roles.items() if n is not None and str(n) not in (STREAM, "")]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except (OSError, UnicodeError, ValueError):  # not there yet, or a name no file can have
        return a == b


def _is_device(path: Path) -> bool:
    try:
        return stat.S_ISCHR(path.stat().st_mode)
    except (OSError, UnicodeError, ValueError):
        return False


INPUT_SUFFIXES = (".csv.gz", ".csv.bz2", ".csv.zst", ".csv", ".parquet", ".pq")
TAG_LENGTH = 16  # hex digits of the content hash in derived names


def split_suffix(name: str) -> tuple[str, str]:
    """``part-1.csv.gz`` → (``part-1``, ``.csv.gz``): the stem and the input-format suffix."""
    for suffix in INPUT_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], name[-len(suffix) :]
    return name, ""


def derived_names(name: str, sha256: str, fmt: str, limit: int = NAME_MAX) -> tuple[str, str]:
    """The output and rejects names of one input: from its name and content hash, stable.

    ``part-1.csv`` with content hash ``ab12…`` → ``part-1.ab12….scored.csv`` and
    ``part-1.ab12….rejects.csv``: the same input always gives the same names, and
    new content under the same name gives new ones. A stem too long for ``limit``
    bytes is cut as ``names.fit_name`` cuts it.
    """
    stem, _ = split_suffix(name)
    tag = sha256[:TAG_LENGTH]
    return (
        fit_name(stem, f".{tag}.scored.{fmt}", limit),
        fit_name(stem, f".{tag}.rejects.csv", limit),
    )


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's content, in hex: what derived names are tagged with."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def tagged_name(name: str, sha256: str, limit: int = NAME_MAX) -> str:
    """``part-1.csv`` → ``part-1.ab12….csv``: a name that cannot clash with another content."""
    stem, suffix = split_suffix(name)
    return fit_name(stem, f".{sha256[:TAG_LENGTH]}{suffix}", limit)


def fitting_name(name: str, limit: int = NAME_MAX) -> str:
    """``name`` itself, or cut to ``limit`` bytes (its format suffix kept)."""
    stem, suffix = split_suffix(name)
    return fit_name(stem, suffix, limit)


def error_record_name(name: str, limit: int = NAME_MAX) -> str:
    """``bad.csv`` → ``bad.csv.error.json``: the record beside a quarantined file."""
    return fit_name(name, ".error.json", limit)
