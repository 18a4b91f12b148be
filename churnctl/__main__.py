"""``python -m churnctl`` and the console script: the signal handlers first, then the CLI.

The handlers are installed before the CLI's imports (a few tenths of a second), so
that a SIGINT or SIGTERM during start-up ends the run as one at work does.
"""

from __future__ import annotations

import churnctl.interrupts as interrupts


def main() -> None:
    interrupts.install()
    from churnctl.cli import run

    run()


if __name__ == "__main__":
    main()
