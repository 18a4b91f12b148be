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

Also the checks that keep a run's files apart: an output never names an input or
another output (``check_distinct``), and the content digest that derived names carry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import churnctl.interrupts as interrupts
from churnctl.errors import OutputError, UsageError
from churnctl.faults import checkpoint
from churnctl.names import fit_name, name_max

TEMPORARY_SUFFIX = ".tmp"
TEMPORARY_GLOB = f".*{TEMPORARY_SUFFIX}"  # every temporary file churnctl makes: hidden, .tmp
TEMPORARY_TAIL = len(".") + len(f".XXXXXXXX{TEMPORARY_SUFFIX}")  # what mkstemp adds


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

    def __init__(self, *, steps: bool = True) -> None:
        """``steps``: reach the fault-injection steps (``faults``) when committing; False
        for a file written beside a run's outputs, not one of them (a folder's record)."""
        self._pending: list[tuple[Path, Path]] = []  # (temporary, final)
        self._steps = steps

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
        self._checkpoint("after-temp-write")
        with interrupts.publishing_renames():
            self._rename_all(folders)

    def _rename_all(self, folders: list[Path]) -> None:
        with _locked(folders):
            for tmp, final in reversed(self._pending):
                with _as_output_error(final, "cannot publish the output"):
                    os.replace(tmp, final)
        self._checkpoint("after-rename")
        for folder in folders:
            with _as_output_error(folder, "cannot publish the output"):
                _fsync(folder)
        self._pending.clear()

    def _checkpoint(self, step: str) -> None:
        if self._steps:
            checkpoint(step)

    def discard(self) -> None:
        """Remove the temporary files not published (never cut short by a signal)."""
        with interrupts.cleaning():
            for tmp, _ in self._pending:
                tmp.unlink(missing_ok=True)
            self._pending.clear()


@contextlib.contextmanager
def publishing(*, steps: bool = True) -> Iterator[Publication]:
    """A publication committed when the block succeeds, discarded when it fails or is killed
    (``steps``: see ``Publication``)."""
    publication = Publication(steps=steps)
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
        fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=TEMPORARY_SUFFIX, dir=final.parent)
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
        fd, name = tempfile.mkstemp(prefix=".churnctl-probe.", suffix=TEMPORARY_SUFFIX, dir=folder)
        try:
            os.write(fd, bytes(4096))
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)


def temporaries(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The temporary files of churnctl's in ``folder`` (those a killed run left), sorted.

    Only this module names them; the watcher's clean-up and the tests ask it.
    """
    found = Path(folder).rglob(TEMPORARY_GLOB) if recursive else Path(folder).glob(TEMPORARY_GLOB)
    return sorted(found)


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


# ------------------------------------------------------------------ a run's files

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


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's content, in hex: what derived names are tagged with."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
