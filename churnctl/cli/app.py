"""The Typer application: one-line usage errors, flag-spelled fixes, signals, the entry point.

Usage errors, like library errors, are one ``Error: ...`` line with exit code 2;
a reader of stdout that goes away (``| head``) ends the run quietly. SIGINT and
SIGTERM end a run with 130 and 143 (see ``churnctl.interrupts``).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

import churnctl.interrupts as interrupts
from churnctl.cli.console import SIGPIPE_EXIT, fail, is_closed_pipe, stdout, stop_quietly
from churnctl.cli.remedies import spell, spell_step
from churnctl.errors import ChurnctlError, FixedBatchWarning, UsageError
from churnctl.version import package_version

HELP_OPTIONS = ["-h", "--help"]
F = TypeVar("F", bound=Callable[..., Any])
# The context of the command running now: its options spell remedies, its path usage hints.
_running: contextvars.ContextVar[Any] = contextvars.ContextVar("churnctl_command", default=None)


def _usage_message(exc: typer.TyperException) -> str:
    """A usage error (unknown option, bad value, ...) as one line, with where to get help."""
    return with_help_hint(exc.format_message().strip(), getattr(exc, "ctx", None))


def with_help_hint(message: str, ctx: Any) -> str:
    """``message`` ending with where to get help: ``Try 'churnctl CMD --help' for help.``."""
    if ctx is None:
        return message
    stop = "" if message.endswith((".", "?", "!")) else "."
    return f"{message}{stop} Try '{ctx.command_path} --help' for help."


@contextlib.contextmanager
def _clean_exits() -> Iterator[None]:
    """Usage errors become one `Error:` line (exit 2); a closed stdout pipe a quiet exit."""
    try:
        yield
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # help shown; typer tests the name too
            raise
        fail(_usage_message(exc), exc.exit_code)
    except OSError as exc:
        if not is_closed_pipe(exc):
            raise
        stop_quietly()


def _tidy_metavars(params: list[Any]) -> list[Any]:
    """Help shows a flag with no value, an argument by name alone (not `<bool>`, `<str>`)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        elif param.param_type_name == "argument" and param.metavar is not None:
            param.display_type_rich = _no_type  # typer shows an argument's type beside its name
    return params


def _no_type(ctx: Any) -> None:
    return None


class _Command(TyperCommand):
    """A churnctl command: flags (``--help`` included) without a metavar."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _tidy_metavars(super().get_params(ctx))

    def invoke(self, ctx: Any) -> Any:
        token = _running.set(ctx)
        try:
            return super().invoke(ctx)
        finally:
            _running.reset(token)


class _Group(TyperGroup):
    """The churnctl group: parsing and running every command under ``_clean_exits``."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _clean_exits():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _clean_exits():
            return super().invoke(ctx)

    def get_params(self, ctx: Any) -> list[Any]:
        return _tidy_metavars(super().get_params(ctx))


app = typer.Typer(
    name="churnctl",
    cls=_Group,
    help="Score customer churn with one JSON feature-extractor state for every runtime.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": HELP_OPTIONS},
)


def command(fn: F) -> F:
    """Register a command; the one place where ChurnctlError becomes `Error: ...` + exit code.

    The command runs with pandas hidden (``pandas_hidden``).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with interrupts.handled():
            try:
                with pandas_hidden(), warnings.catch_warnings():
                    # the commands print this note themselves (report.pair_warning)
                    warnings.simplefilter("ignore", FixedBatchWarning)
                    result = fn(*args, **kwargs)
            except ChurnctlError as exc:
                interrupts.check()  # a signal swallowed on the way wins over the error it caused
                fail(flag_message(exc), exc.exit_code)
            except OSError as exc:  # the file system said no: still one actionable line
                interrupts.check()
                if is_closed_pipe(exc):
                    stop_quietly()
                fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), 1)
            except Exception:  # a signal raised inside a C extension comes back as its error
                interrupts.check()  # (pybind11: "ImportError: initialization failed")
                raise
            interrupts.check()  # a signal Python could not raise (in a __del__) is never lost
            return result

    app.command(fn.__name__.replace("_", "-"), cls=_Command)(wrapper)
    return fn


@contextlib.contextmanager
def pandas_hidden() -> Iterator[None]:
    """Run as if pandas were not installed: some tenths of a second less for a command at work.

    Arrow imports pandas, when it is installed, at its first conversion of Python or
    NumPy values (``pa.array``, a compute call with a scalar) and in ``to_numpy``; the
    commands never hand Arrow a pandas object, and Arrow works without pandas. Nothing
    changes when pandas is already loaded (a test runner that imported it).
    """
    if "pandas" in sys.modules:
        yield
        return
    sys.meta_path.insert(0, _NoPandas)
    try:
        yield
    finally:
        sys.meta_path.remove(_NoPandas)


class _NoPandas:
    """An import finder for which pandas does not exist."""

    @staticmethod
    def find_spec(name: str, *args: Any) -> None:
        if name.partition(".")[0] == "pandas":
            raise ModuleNotFoundError("pandas is hidden from Arrow", name=name)


def flag_message(exc: ChurnctlError, command: str | None = None) -> str:
    """The error's message, its fix in the running command's own options.

    Outside a running command, those of ``command`` (a command's name) if given. A usage
    error ends with where to get help, as Typer's own do.
    """
    ctx = _running.get()
    params = ctx.command.params if ctx is not None else _params_of(command)
    step = [] if exc.step is None else [spell_step(exc.step)]
    fix = [] if exc.fix is None else [spell(exc.fix, params)]
    message = "; ".join([exc.message, *step, *fix])
    return with_help_hint(message, ctx) if isinstance(exc, UsageError) else message


def _params_of(command: str | None) -> list[Any]:
    if command is None:
        return []
    return list(typer.main.get_command(app).commands[command].params)  # type: ignore[attr-defined]


def _version(value: bool) -> None:
    if value:
        stdout.print(f"churnctl {package_version()}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """churnctl: batch and stream churn scoring without training/serving skew."""


def run() -> None:
    """The console script: the app; after SIGINT, SIGTERM (cleaned up) or a closed stdout
    pipe, an immediate exit.

    Exiting at once skips interpreter finalisation, which would abort while an
    Arrow I/O thread is still blocked reading a pipe. A signal recorded but never
    raised (it came where Python could not raise it) still sets the exit code,
    unless it came after the run's outputs were published.
    """
    interrupts.install()
    code: Any = 0
    try:
        app()
    except SystemExit as exit:  # Interrupted is one
        code = exit.code
    code = code if isinstance(code, int) else 1 if code else 0
    try:
        code = interrupts.settle(code)
    except interrupts.Interrupted as exc:  # it came just now, before the outcome was settled
        code = interrupts.settle(exc.exit_code)
    if code in interrupts.CODES or code == SIGPIPE_EXIT:  # an Arrow thread may still run
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    sys.exit(code)


def leave(code: int) -> None:
    """Exit with ``code``: at once when nothing is left to do but tear the modules down
    (``python -m churnctl`` and the console script, after ``run``), else as usual."""
    if _finished():
        os._exit(code)
    sys.exit(code)


def _finished() -> bool:
    """Whether the process has nothing left to do but tear its modules down (about 90 ms
    at the end of every run, a fifth of a small file's whole run; issue 21): no other
    thread of ours runs, no profiler or tracer waits to write what it saw, the exit
    handlers ran, and stdout and stderr are flushed. When a stream cannot be flushed,
    the interpreter's own exit reports it as it always did."""
    watched = sys.getprofile() is not None or sys.gettrace() is not None
    main = threading.main_thread()
    working = any(not t.daemon for t in threading.enumerate() if t is not main)
    if watched or working or not _flushed():
        return False
    atexit._run_exitfuncs()  # what the interpreter runs first at exit: multiprocessing's clean-up
    return _flushed()


def _flushed() -> bool:
    try:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    except (OSError, ValueError):
        return False
    return True
