"""The files of one run must be distinct: an output must never replace an input."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from churnctl.errors import UsageError

STREAM = "-"  # stdin or stdout: never a file of its own


def check_distinct(files: Mapping[str, str | Path | None]) -> None:
    """Refuse two roles (input, output, rejects, state, ...) naming the same file.

    Give the inputs first: the message names the later role as the one to move.

    Paths are compared resolved (links followed) and by ``os.path.samefile``
    (hard links). A character device such as ``/dev/null`` may serve twice.
    """
    seen: list[tuple[str, Path]] = []
    for role, name in files.items():
        if name is None or str(name) in (STREAM, ""):
            continue
        path = Path(name)
        for other_role, other in seen:
            if _same_file(path, other) and not _is_device(path):
                raise UsageError(
                    f"the {role} {name} is the same file as the {other_role} {other}: one "
                    f"would overwrite the other; choose another path for the {role}"
                )
        seen.append((role, path))


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
