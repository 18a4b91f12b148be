"""``python -m churnctl`` and the console script: the signal handlers first, then the CLI.

The handlers are installed before the CLI's imports (a few tenths of a second), so
that a SIGINT or SIGTERM during start-up ends the run as one at work does.
"""

from __future__ import annotations

import churnctl.interrupts as interrupts


def main() -> None:
    interrupts.install()
    from churnctl.cli.app import leave, run

    try:
        run()
    except SystemExit as exit:
        leave(exit.code if isinstance(exit.code, int) else 1)


if __name__ == "__main__":
    main()
