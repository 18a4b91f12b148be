"""churnctl: one JSON feature-extractor state, every runtime, no training/serving skew."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("churnctl")
except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
