"""The files of one run must be distinct: an output must never replace an input."""

from __future__ import annotations

import os
import stat
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


def _files(roles: Mapping[str, str | Path | None]) -> list[tuple[str, str | Path]]:
    return [(r, n) for r, n in roles.items() if n is not None and str(n) not in (STREAM, "")]


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def _is_device(path: Path) -> bool:
    try:
        return stat.S_ISCHR(path.stat().st_mode)
    except OSError:
        return False
