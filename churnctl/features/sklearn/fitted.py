"""What a fitted scikit-learn object says, read without importing scikit-learn.

The importer's vocabulary: a ``Slot`` of the array, the ``Step`` the importer is at
(for messages), the refusal (``UnsupportedStepError``), and the readers of fitted
attributes (categories, column selections, unknown-category policies), each refusing
what a state cannot express.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from churnctl.errors import UsageError

# A OneHotEncoder's handle_unknown -> whether an unknown category is kept (as all zeros);
# without infrequent categories (refused), "warn" and "infrequent_if_exist" are "ignore".
UNKNOWN_ONE_HOT = {"error": False, "ignore": True, "warn": True, "infrequent_if_exist": True}


class UnsupportedStepError(UsageError):
    """A fitted scikit-learn object (or one of its settings) that a state cannot express."""


class ModelNotImportedWarning(UserWarning):
    """A Pipeline ended with a model: only its preprocessing was imported."""


@dataclass(frozen=True)
class Slot:
    """One position of the array: element ``element`` of churnctl column ``column``.

    ``width``: that column's width; ``name``: what a later step may call the position
    (the input column's name, or None); ``raw``: an input column, untransformed.
    """

    column: str
    element: int = 0
    width: int = 1
    name: str | None = None
    raw: bool = False


Layout = list[Slot]


@dataclass(frozen=True)
class Step:
    """Where the importer is: the step's position and what it is, for messages."""

    label: str

    def refuse(self, obj: Any, problem: str, remedy: str) -> UnsupportedStepError:
        return UnsupportedStepError(f"{self.label}: {kind(obj)} {problem}; {remedy}")

    def inner(self, what: str) -> Step:
        return Step(f"{self.label} > {what}")


# --- reading the fitted objects ---------------------------------------------------------


def labels(encoder: Any, categories: Any, where: Step) -> list[str]:
    """An encoder's categories as the state's labels: text, sorted, none empty or missing."""
    values = list(categories)
    if not all(isinstance(v, str) for v in values):
        raise where.refuse(
            encoder,
            f"has non-text categories ({', '.join(repr(v) for v in values[:3])}...)",
            "a state matches category text: encode text columns (missing values and numbers "
            "as categories are not supported)",
        )
    labels = [str(v) for v in values]
    if "" in labels or len(set(labels)) != len(labels):
        raise where.refuse(
            encoder,
            "has an empty or repeated category, which a state cannot hold",
            "give each category once, as non-empty text",
        )
    return labels


def refuse_infrequent(encoder: Any, where: Step) -> None:
    if getattr(encoder, "_infrequent_enabled", False):
        raise where.refuse(
            encoder,
            "groups infrequent categories (min_frequency or max_categories), which a state "
            "cannot express",
            "fit it without min_frequency and max_categories",
        )


def unknown_policy(encoder: Any, where: Step, policies: dict[str, bool]) -> bool:
    """Whether unknown categories are kept (all zeros, or the unknown index)."""
    policy = getattr(encoder, "handle_unknown", "error")
    if policy not in policies:
        raise where.refuse(
            encoder,
            f"has handle_unknown={policy!r}, which a state cannot express",
            f"use handle_unknown {' or '.join(repr(p) for p in policies)}",
        )
    return policies[policy]


def positions(columns: Any, layout: Layout, obj: Any, where: Step) -> list[int]:
    """The layout positions a column selection names (indices, names, a slice or a mask)."""
    if callable(columns):
        raise where.refuse(obj, "selects columns with a callable", "select them by index or name")
    if isinstance(columns, slice):
        if not all(isinstance(v, int | None) for v in (columns.start, columns.stop)):
            raise where.refuse(obj, "selects columns by a slice of names", "list the names")
        return list(range(len(layout)))[columns]
    items = list(columns) if isinstance(columns, list | tuple | np.ndarray) else [columns]
    if items and all(isinstance(v, bool | np.bool_) for v in items):
        return [int(i) for i in np.flatnonzero(items)]
    return [position(item, layout, obj, where) for item in items]


def position(item: Any, layout: Layout, obj: Any, where: Step) -> int:
    if isinstance(item, int | np.integer) and -len(layout) <= int(item) < len(layout):
        return int(item) % len(layout)
    named = [i for i, slot in enumerate(layout) if slot.name is not None and slot.name == item]
    if isinstance(item, str) and len(named) == 1:
        return named[0]
    raise where.refuse(
        obj,
        f"selects column {item!r}, which the array does not hold at this step "
        f"({len(layout)} columns)",
        "check columns and the order of the steps",
    )


def raw(slot: Slot, obj: Any, where: Step) -> str:
    """The input column an encoder reads: it must not be encoded or scaled already."""
    if not slot.raw:
        raise where.refuse(
            obj,
            f"encodes a column an earlier step already transformed ({slot.name or slot.column})",
            "encode input columns (category text) only",
        )
    return slot.column


def fitted(obj: Any, attribute: str, where: Step) -> Any:
    value = getattr(obj, attribute, None)
    if value is None:
        raise where.refuse(
            obj, "is not fitted", "fit it first: from_sklearn imports fitted objects"
        )
    return value


def start(indices: Any) -> int:
    return indices.start if isinstance(indices, slice) and indices.start is not None else 0


def is_word(spec: Any, word: str) -> bool:
    return isinstance(spec, str) and spec == word


def is_sklearn(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "sklearn"


def named(obj: Any, name: str) -> bool:
    return is_sklearn(obj) and type(obj).__name__ == name


def identity(obj: Any) -> bool:
    """A FunctionTransformer without a function: scikit-learn's own passthrough."""
    return named(obj, "FunctionTransformer") and getattr(obj, "func", True) is None


def is_pipeline(obj: Any) -> bool:
    return named(obj, "Pipeline")


def is_model(obj: Any) -> bool:
    """A final estimator that predicts rather than transforms."""
    predicts = any(hasattr(obj, m) for m in ("predict", "predict_proba", "decision_function"))
    return predicts and not hasattr(obj, "transform")


def object_of(step: Any) -> Any:
    return step[1] if isinstance(step, tuple) and len(step) == 2 else step


def kind(obj: Any) -> str:
    return obj if isinstance(obj, str) else type(obj).__name__
