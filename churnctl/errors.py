"""The one exception hierarchy of churnctl.

Every error a user can cause is a ``ChurnctlError`` whose message says what is
wrong, where, and how to fix it. The CLI turns these into ``Error: ...`` and an
exit code in one place; nothing else in the library prints or exits.
"""

from __future__ import annotations


class ChurnctlError(Exception):
    """Base class: an actionable, user-facing error."""

    exit_code = 1


class UsageError(ChurnctlError):
    """Bad options or arguments."""

    exit_code = 2


class InputError(ChurnctlError):
    """An input file cannot be read as asked (missing, unreadable, wrong shape)."""

    exit_code = 2


class OutputError(ChurnctlError):
    """An output file cannot be written where asked."""

    exit_code = 2


class SchemaError(InputError):
    """An input file lacks a required column or has an unusable header."""


class PipelineSpecError(UsageError):
    """A pipeline description (preset, TOML or JSON file) is invalid."""


class StateError(ChurnctlError):
    """A feature-extractor state file is invalid, tampered with or unsupported."""

    exit_code = 2


class NotFittedError(ChurnctlError):
    """A stage or pipeline was used before ``fit``."""


class ModelError(ChurnctlError):
    """An ONNX model cannot be loaded or used as a binary churn classifier."""

    exit_code = 2


class CompatibilityError(ChurnctlError):
    """A state and a model do not fit together."""

    exit_code = 2


class TooManyRejectsError(ChurnctlError):
    """More rows were rejected than ``--max-rejects`` allows."""

    exit_code = 3
