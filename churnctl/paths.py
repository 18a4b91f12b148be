"""The files of one run must be distinct: an output must never replace an input."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

from churnctl.errors import UsageError

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
