"""The installed churnctl's version, looked up once and only when asked (it costs ~70 ms)."""

from __future__ import annotations

import functools


@functools.cache
def package_version() -> str:
    """The version of the installed distribution, or a marker in a bare source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("churnctl")
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "0.0.0+unknown"
