"""The command line: a thin layer over the library. Only this package imports typer/rich.

``app`` is the Typer application, ``run`` the console script; ``commands`` holds
the commands (each calls one library function), ``options`` their option types,
``console`` what and how they print, ``report`` the ``inspect`` tables,
``watching`` the ``watch`` commands, ``flink`` ``flink-submit``.
"""

from churnctl.cli import commands, flink, watching  # noqa: F401  (register the commands)
from churnctl.cli.app import app, run
from churnctl.cli.console import printable
from churnctl.cli.options import parse_delimiter

__all__ = ["app", "parse_delimiter", "printable", "run"]
