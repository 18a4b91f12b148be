"""Terminal-safe output, and the quiet or one-line ways a command ends.

What churnctl prints goes through two consoles that show any control character
of the text (an escape sequence in a file name, a CSV header or a category label)
as an escape such as ``\\x1b``, never raw to the terminal.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sys
from typing import IO, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

SIGPIPE_EXIT = 141  # 128 + SIGPIPE: the status a shell reports for a writer whose reader left


# C0, DEL, C1, lone surrogates, line/paragraph separators and bidirectional controls
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def printable(text: str) -> str:
    """``text`` safe for a terminal: each control character spelled as Python would (``\\x1b``)."""
    return _UNPRINTABLE.sub(_escape_character, text)


def _escape_character(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT_ESCAPES.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


class _SafeConsole(Console):
    """A rich Console that turns control characters into escapes in every string it renders.

    Rich renders each printed string, table cell and title through ``render_str``: the
    one place where text from files and names can be neutralised. Emoji codes
    (``:smile:``) in names stay text too.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(emoji=False, highlight=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(printable(text), **kwargs)

    def on_broken_pipe(self) -> None:
        """The reader went away: stop quietly (rich's default would exit with status 1)."""
        self.quiet = True
        stop_quietly(self.file)


stderr = _SafeConsole(stderr=True, soft_wrap=True)
stdout = _SafeConsole()


def error_line(message: str) -> None:
    """One ``Error: ...`` line on stderr."""
    stderr.print(f"[bold red]Error:[/] {escape(message)}")


def fail(message: str, code: int) -> NoReturn:
    error_line(message)
    raise typer.Exit(code) from None


def is_closed_pipe(exc: OSError) -> bool:
    return isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE


def stop_quietly(stream: IO[str] | None = None) -> NoReturn:
    """The reader of stdout (or ``stream``) has gone (``| head``): stop without a word.

    The stream is pointed at the null device, so that flushing what is still buffered
    at exit cannot fail ("Exception ignored ... BrokenPipeError").
    """
    with contextlib.suppress(OSError, ValueError):  # a test runner's stream has no descriptor
        fd = (stream or sys.stdout).fileno()
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    raise typer.Exit(SIGPIPE_EXIT)
