"""The one exception hierarchy of churnctl.

Every error a user can cause is a ``ChurnctlError`` whose message says what is
wrong and where. When a setting would fix it, the error carries a structured
``Fix`` naming the library's setting (``encoding``, ``max_rejects``, ...), not a
command-line flag: the CLI turns it into ``--encoding ...``, a Flink job or a
notebook shows ``set encoding='latin-1'``. The CLI turns these errors into
``Error: ...`` and an exit code in one place; nothing else prints or exits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Fix:
    """A remedy: set the library setting ``setting`` (e.g. to ``example``); ``note`` says when.

    ``example`` True marks a switch (``allow_state_mismatch=True``).
    """

    setting: str
    example: str | bool | None = None
    note: str | None = None

    def describe(self) -> str:
        """``set encoding='latin-1' if the file uses another encoding``."""
        text = f"set {self.setting}" + ("" if self.example is None else f"={self.example!r}")
        return text if self.note is None else f"{text} {self.note}"


@dataclass(frozen=True)
class Step:
    """A remedy that is an action, not a setting: ``action`` is the library function
    (``fit_state``, ``bind_model``); ``what`` says it in words (``refit it``).

    The library says ``refit it (fit_state)``; the CLI names its own command for the
    action (``refit it with `churnctl fit` ``): the library never names a command.
    """

    action: str
    what: str

    def describe(self) -> str:
        return f"{self.what} ({self.action})"


REFIT = Step("fit_state", "refit it")
BIND = Step("bind_model", "bind the model to its state")


class ChurnctlError(Exception):
    """Base class: an actionable, user-facing error, with an optional structured ``Fix``
    (a setting) and ``Step`` (an action)."""

    exit_code = 1

    def __init__(self, message: str, *, fix: Fix | None = None, step: Step | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.step = step

    def __str__(self) -> str:
        remedies = [r.describe() for r in (self.step, self.fix) if r is not None]
        return "; ".join([self.message, *remedies])


class UsageError(ChurnctlError):
    """Bad options or arguments."""

    exit_code = 2


class InputError(ChurnctlError):
    """An input file cannot be read as asked (missing, unreadable, wrong shape)."""

    exit_code = 2


class NoValidRowsError(InputError):
    """A training file none of whose rows can be used (its rejects explain why)."""


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


class NoProfileError(StateError):
    """A state without a training profile (older, or imported without training data):
    drift against the training distribution cannot be judged."""


class NotFittedError(ChurnctlError):
    """A stage or pipeline was used before ``fit``."""


class ModelError(ChurnctlError):
    """An ONNX model cannot be loaded or used as a binary churn classifier."""

    exit_code = 2


class CompatibilityError(ChurnctlError):
    """A state and a model do not fit together (width, feature order or fingerprint)."""

    exit_code = 2


class TooManyRejectsError(ChurnctlError):
    """More rows were rejected than the reject limit allows."""

    exit_code = 3


class FilesFailedError(ChurnctlError):
    """Some of the files a run was given failed (each is quarantined with its reason)."""

    exit_code = 4


class RuntimesDisagreeError(ChurnctlError):
    """Runtimes scored the same rows differently, or one of them failed (``verify``)."""

    exit_code = 5


class FlinkError(ChurnctlError):
    """Flink is missing, unreachable, or the job failed."""

    exit_code = 1


LISTED = 20  # names a message lists before "... (N more)"


def listing(names: Sequence[str], limit: int = LISTED) -> str:
    """Names joined by commas for a message: the first ``limit`` of them and how many more."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names) - limit:,} more)"


class FixedBatchWarning(UserWarning):
    """A model with a fixed batch size: it works, fed in chunks of that size, but slower.

    Given once when such a model is loaded (``ChurnModel.fixed_batch_note``); the CLI
    shows the same note on stderr instead.
    """
