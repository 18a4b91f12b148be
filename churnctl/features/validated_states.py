"""State texts that passed the schema walk, recorded so that the same text skips it next time.

Checking a state against its JSON Schema imports jsonschema and walks the document:
about 50 ms, a sixth of a one-row ``score`` run (issue 21). The walk's verdict depends
on nothing but the text and the schema, so once a text passes, a record of it (an empty
file named by the SHA-256 of the schema's key and the text) lets the next load of the
same text skip the walk and the import. Every other check of a load still runs: JSON
without constants, the format version, the checksum, each stage's contents. A text
that fails is never recorded; a changed schema has another key.

The records are kept in ``$CHURNCTL_CACHE_DIR``, else ``$XDG_CACHE_HOME/churnctl``, else
``~/.cache/churnctl``, under ``validated-states/``; an empty ``CHURNCTL_CACHE_DIR``
turns them off. Only a folder owned by the current user and writable by no one else
is trusted, read or written. A record that cannot be written (a read-only home) is
skipped without a word: the next load walks the schema again.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

CACHE_ENV = "CHURNCTL_CACHE_DIR"
FOLDER = "validated-states"


def records_folder() -> Path | None:
    """Where the records are kept, or None when they are turned off."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured) / FOLDER if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "churnctl" / FOLDER


def passed(text: str, key: str) -> bool:
    """Whether ``text`` passed the schema named by ``key`` before (a trusted record)."""
    path = _record(text, key)
    return path is not None and _trusted(path.parent) and path.is_file()


def record_pass(text: str, key: str) -> None:
    """Record that ``text`` passed the schema named by ``key``; silently not, if it cannot."""
    path = _record(text, key)
    if path is None:
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _trusted(path.parent):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
    except OSError:
        pass


def _record(text: str, key: str) -> Path | None:
    folder = records_folder()
    if folder is None:
        return None
    digest = hashlib.sha256(key.encode("utf-8"))
    digest.update(b"\0")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return folder / digest.hexdigest()


def _trusted(folder: Path) -> bool:
    """A folder of the current user's that no one else may write in."""
    if not hasattr(os, "getuid"):  # no owners to check (Windows): never trusted
        return False
    try:
        info = folder.stat()
    except OSError:
        return False
    mine = info.st_uid == os.getuid()
    return stat.S_ISDIR(info.st_mode) and mine and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
