"""File names that fit the file system's limit: one rule for every name churnctl derives.

A name is at most ``NAME_MAX`` bytes (255 on Linux and macOS file systems, less on a
few). A derived name (an output, a rejects, archive or quarantine name, an error
record, a temporary name) is the input's name plus a tail; when the whole would be
too long, the part taken from the input is cut at a UTF-8 character boundary and
followed by ``~`` and 8 hex digits of its full SHA-256, then the tail. The same name
always gives the same cut, and two names that differ give different cuts.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

NAME_MAX = 255  # bytes
MARK = "~"  # between the cut part and its hash
HASH_DIGITS = 8


def name_max(folder: str | Path) -> int:
    """The longest name ``folder``'s file system takes, in bytes (at most ``NAME_MAX``)."""
    try:
        return min(NAME_MAX, os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # not there yet, or no pathconf
        return NAME_MAX


def fit_name(part: str, tail: str = "", limit: int = NAME_MAX) -> str:
    """``part + tail``, with ``part`` cut (and its hash added) when the whole is over ``limit``.

    ``tail`` must leave room for the hash: at most ``limit - 9`` bytes.
    """
    raw, end = os.fsencode(part), os.fsencode(tail)
    if len(raw) + len(end) <= limit:
        return part + tail
    digest = hashlib.sha256(raw).hexdigest()[:HASH_DIGITS]
    room = max(limit - len(end) - len(MARK) - HASH_DIGITS, 0)
    return f"{os.fsdecode(_cut(raw, room))}{MARK}{digest}{tail}"


def _cut(raw: bytes, size: int) -> bytes:
    """The first ``size`` bytes at most, never ending inside a UTF-8 character."""
    if len(raw) <= size:
        return raw
    while size > 0 and (raw[size] & 0xC0) == 0x80:  # a continuation byte: back off
        size -= 1
    return raw[:size]
