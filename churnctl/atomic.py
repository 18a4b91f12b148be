"""Atomic file publication: write under temporary sibling names, fsync, then rename.

A reader sees either the old file or the complete new one, never a partial
file, and a crash after the rename cannot leave the new name with lost data.
Files that belong together (an output and its rejects) are published together:
the renames run under an exclusive advisory lock (``flock``) on their folders,
so two concurrent runs on the same output publish one run's pair or the
other's, never a mix.

Targets that are not regular files (``/dev/null``, a FIFO, a character device,
a symbolic link such as ``/dev/stdout``) are written straight through: renaming
over them would replace the device or the link with a regular file. A folder
is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import churnctl.interrupts as interrupts
from churnctl.errors import OutputError
from churnctl.faults import checkpoint
from churnctl.names import fit_name, name_max

TEMPORARY_TAIL = len(".") + len(".XXXXXXXX.tmp")  # what mkstemp adds around the final name


def is_write_through(target: Path) -> bool:
    """True for a target written in place: a symbolic link, or an existing non-regular file."""
    if target.is_symlink():
        return True
    try:
        mode = target.stat().st_mode
    except OSError:
        return False  # does not exist yet: published by rename
    if stat.S_ISDIR(mode):
        raise OutputError(f"{target}: is a folder; name a file to write")
    return not stat.S_ISREG(mode)


class Publication:
    """Files written under temporary names, published together on ``commit`` or not at all."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []  # (temporary, final)

    @contextlib.contextmanager
    def file(self, final: Path) -> Iterator[Path]:
        """The path to write ``final``'s content to: a temporary sibling, or ``final`` itself."""
        final = Path(final)
        if is_write_through(final):
            yield final
            return
        with interrupts.deferred():  # created and registered for removal, or neither
            tmp = _temporary_sibling(final)
            self._pending.append((tmp, final))
        yield tmp

    def commit(self) -> None:
        """fsync every temporary file, then rename them into place under the folder locks.

        Renames run in the reverse order of registration: register the main output
        last, and it is renamed first, so that if its rename fails, nothing is published.
        A signal recorded before the first rename publishes nothing (``Interrupted``);
        one during the renames waits for them (see ``interrupts.publishing_renames``).
        """
        folders = sorted({final.parent for _, final in self._pending})
        for tmp, final in self._pending:
            with _as_output_error(final, "cannot publish the output"):
                _fsync(tmp)
        checkpoint("after-temp-write")
        with interrupts.publishing_renames():
            self._rename_all(folders)

    def _rename_all(self, folders: list[Path]) -> None:
        with _locked(folders):
            for tmp, final in reversed(self._pending):
                with _as_output_error(final, "cannot publish the output"):
                    os.replace(tmp, final)
        checkpoint("after-rename")
        for folder in folders:
            with _as_output_error(folder, "cannot publish the output"):
                _fsync(folder)
        self._pending.clear()

    def discard(self) -> None:
        """Remove the temporary files not published (never cut short by a signal)."""
        with interrupts.cleaning():
            for tmp, _ in self._pending:
                tmp.unlink(missing_ok=True)
            self._pending.clear()


@contextlib.contextmanager
def publishing() -> Iterator[Publication]:
    """A publication committed when the block succeeds, discarded when it fails or is killed."""
    publication = Publication()
    try:
        yield publication
        publication.commit()
    finally:
        publication.discard()


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place only on success."""
    with publishing() as publication, publication.file(final) as path:
        yield path


def atomic_write_text(final: Path, text: str) -> None:
    """Write text to ``final`` atomically."""
    atomic_write_bytes(final, text.encode("utf-8"))


def atomic_write_bytes(final: Path, data: bytes) -> None:
    """Write bytes to ``final`` atomically."""
    with atomic_path(final) as path, path.open("wb") as handle:
        handle.write(data)


def _temporary_sibling(final: Path) -> Path:
    """``.{name}.XXXXXXXX.tmp`` beside ``final`` (``name`` cut to fit: see ``names``)."""
    with _as_output_error(final, "cannot write here", "; choose another path"):
        final.parent.mkdir(parents=True, exist_ok=True)
        name = fit_name(final.name, "", name_max(final.parent) - TEMPORARY_TAIL)
        fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
    tmp = Path(path)
    tmp.chmod(0o666 & ~_umask())
    return tmp


@contextlib.contextmanager
def _locked(folders: list[Path]) -> Iterator[None]:
    """Hold an exclusive advisory lock on each folder (in sorted order, so no deadlock)."""
    with contextlib.ExitStack() as stack:
        for folder in folders:
            fd = os.open(folder, os.O_RDONLY)
            stack.callback(os.close, fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def _as_output_error(path: Path, what: str, hint: str = "") -> Iterator[None]:
    """An OSError inside becomes one ``OutputError`` line naming ``path``."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"{path}: {what} ({exc.strerror or exc}){hint}") from None


def probe_writable(folder: Path, hint: str = "") -> None:
    """``OutputError`` unless a file can be created, written, synced and removed in ``folder``.

    Tells a failure of one file (its name, its content) from one of the whole folder
    (not writable, full, read-only, gone). ``hint`` ends the error's message.
    A signal meanwhile is raised once the probe file is gone (a critical section).
    """
    with _as_output_error(folder, "cannot write here", hint), interrupts.deferred():
        fd, name = tempfile.mkstemp(prefix=".churnctl-probe.", suffix=".tmp", dir=folder)
        try:
            os.write(fd, bytes(4096))
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)


def fsync_folder(folder: Path) -> None:
    """Make a folder's entries (a rename, a new or deleted file) durable."""
    _fsync(folder)


def _fsync(path: Path) -> None:
    """Flush a file's data (or a folder's entries) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
