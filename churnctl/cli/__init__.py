"""The command line: a thin layer over the library. Only this package imports typer/rich.

``app`` is the Typer application, ``run`` the console script. One module per command
group: ``score`` (fit, score), ``model`` (bind, inspect), ``export`` (export-onnx),
``generate``, ``flink`` (flink-submit), ``watching`` (watch, watch-status), ``checks``
(evaluate, verify), ``drift`` (drift).
Each command parses its options and calls its runtime's entry point in the library;
``options`` holds the option types they share, ``console`` what and how they print,
``report`` and ``documents`` the tables and JSON documents, ``remedies`` a library
remedy in the running command's own words.
"""

# imported in this order, the commands are listed in this order by --help
from churnctl.cli import score, model, export, generate, flink, watching, checks, drift  # noqa: F401, I001
from churnctl.cli.app import app, run
from churnctl.cli.console import printable
from churnctl.cli.options import parse_delimiter

__all__ = ["app", "parse_delimiter", "printable", "run"]
