"""The stage protocol: what every feature-extraction stage is, and the helpers they share.

Each stage follows the scikit-learn estimator contract, with Flink ML semantics:
keyword-only params, declared once as the fields of a dataclass (``params.param``)
and checked when it is built, ``fit(frame)`` returns ``self``, learned state ends
in ``_``, and ``transform`` refuses to run before ``fit``. ``params()`` and
``fitted_data()`` are exactly what the JSON state stores; ``from_state`` builds a
fitted stage back from them.

Fitting streams: ``accumulator()`` gathers what a stage learns one batch at a
time (``update``), combines batches gathered apart (``merge``) and sets the
learned state (``finish``); ``fit(frame)`` is that protocol on one batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pyarrow as pa

from churnctl.defaults import MAX_FEATURES
from churnctl.errors import REFIT, Fix, NotFittedError, PipelineSpecError, Step
from churnctl.features.frame import Frame
from churnctl.features.stages.params import Param, check_keys, clean_params, declared


@dataclass(frozen=True)
class ColumnNames:
    """What a column carries: its feature names, and the category labels behind an index."""

    features: tuple[str, ...]
    labels: tuple[str, ...] = ()


NameMap = Mapping[str, ColumnNames]
WIDTH_FIX = Fix(
    "pipeline",
    None,
    "to a spec that leaves the column out, or group its rare categories "
    "into one value before fitting",
)


@dataclass(frozen=True)
class Shape:
    """A column's width, and for an index column the number of indices it can hold."""

    width: int
    categories: int | None = None


ShapeMap = Mapping[str, Shape]
RAW = Shape(1)  # a raw input column: one value per row


def too_wide(column: str, what: str) -> PipelineSpecError:
    """The error for a column past the width cap: ``what`` says how many it has."""
    return PipelineSpecError(
        f"{column} has {what}, more than the {MAX_FEATURES:,} features a pipeline may produce",
        fix=WIDTH_FIX,
    )


class Accumulator:
    """What a stage learns from training rows, gathered one batch at a time."""

    def update(self, frame: Frame) -> None:
        """Add the frame's non-rejected rows."""
        raise NotImplementedError

    def merge(self, other: Self) -> None:
        """Add the rows another accumulator of the same stage gathered."""
        raise NotImplementedError

    def finish(self) -> None:
        """Set the stage's learned state from the rows gathered."""
        raise NotImplementedError


class Stage:
    """Common behaviour of all stages (each a ``dataclass(kw_only=True, eq=False)``).

    Declared attributes tell the layers above what a stage does without naming
    its type: ``READS_CATEGORIES`` (its inputs are raw category text, not
    numbers), ``READS_VECTORS`` (an input may be a vector column; a number is a
    vector of width 1), ``WRITES_VECTORS`` (its outputs are vector columns, not
    one number per row), ``vocabularies()`` (the labels it learned per input column),
    ``NEEDS_ROWS`` (fitting reads every training row; if false, one batch's
    column shapes suffice) and ``rejects_rows()`` (whether ``transform`` may
    reject rows, which the rows a later stage fits on depend on).
    ``WRITES_INDICES``: its outputs are category indices; ``READS_INDICES``: its
    inputs must be such indices, written by an earlier stage (not raw numbers).
    """

    TYPE: ClassVar[str]
    READS_CATEGORIES: ClassVar[bool] = False
    READS_VECTORS: ClassVar[bool] = True
    WRITES_VECTORS: ClassVar[bool] = True
    NEEDS_ROWS: ClassVar[bool] = True
    WRITES_INDICES: ClassVar[bool] = False
    READS_INDICES: ClassVar[bool] = False
    _fitted_attrs: ClassVar[tuple[str, ...]]

    def __post_init__(self) -> None:
        """Check every declared parameter, in order; keep the cleaned values."""
        cleaned = clean_params(self.TYPE, self.parameters(), vars(self))
        for name, value in cleaned.items():
            setattr(self, name, value)

    @classmethod
    def parameters(cls) -> tuple[Param, ...]:
        """The constructor parameters: name, constraint and default of each, in order."""
        return declared(cls)

    def params(self) -> dict[str, Any]:
        """The stage's constructor parameters, JSON-ready."""
        values = ((p, getattr(self, p.name)) for p in self.parameters())
        return {p.name: value for p, value in values if p.stored(value)}

    def accumulator(self) -> Accumulator:
        """A fresh accumulator whose ``finish`` fits this stage."""
        raise NotImplementedError

    def fit(self, frame: Frame) -> Self:
        """Fit on the frame's non-rejected rows (one batch of the streaming protocol)."""
        accumulator = self.accumulator()
        accumulator.update(frame)
        accumulator.finish()
        return self

    def rejects_rows(self) -> bool:
        """Whether ``transform`` may reject rows (when unsure: yes)."""
        return True

    def input_columns(self) -> list[str]:
        """Columns this stage reads."""
        raise NotImplementedError

    def output_columns(self) -> list[str]:
        """Columns this stage writes."""
        raise NotImplementedError

    def transform(self, frame: Frame) -> Frame:
        """Add the output columns to the frame (rows may be rejected on the way)."""
        raise NotImplementedError

    def is_fitted(self) -> bool:
        return all(hasattr(self, attr) for attr in self._fitted_attrs)

    def _require_fitted(self) -> None:
        if not self.is_fitted():
            raise NotFittedError(
                f"{self.TYPE} is not fitted: call fit() on training data first, "
                "or load a fitted state",
                step=Step(REFIT.action, "fit a state"),
            )

    def fitted_data(self) -> dict[str, Any]:
        """The learned numbers, JSON-ready."""
        self._require_fitted()
        return {attr.rstrip("_"): _to_json(getattr(self, attr)) for attr in self._fitted_attrs}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Self:
        """An unfitted stage from its parameters, unknown or missing ones refused by name."""
        check_keys(cls.TYPE, cls.parameters(), params)
        return cls(**params)

    @classmethod
    def from_state(cls, params: dict[str, Any], fitted: dict[str, Any]) -> Stage:
        """Rebuild a fitted stage from its stored params and learned data."""
        stage = cls.from_params(params)
        expected = {attr.rstrip("_") for attr in cls._fitted_attrs}
        if set(fitted) != expected:
            raise PipelineSpecError(
                f"{cls.TYPE}: fitted data must have keys {sorted(expected)}, got {sorted(fitted)}"
            )
        stage._set_fitted(fitted)
        return stage

    def _set_fitted(self, fitted: dict[str, Any]) -> None:
        for attr in self._fitted_attrs:
            setattr(self, attr, fitted[attr.rstrip("_")])

    def vocabularies(self) -> dict[str, list[str]]:
        """Input column → learned category labels (empty for stages that learn none)."""
        return {}

    def feature_names(self, names: NameMap) -> dict[str, ColumnNames]:
        """What each output column carries, given what the input columns carry."""
        raise NotImplementedError

    def shapes(self, shapes: ShapeMap) -> dict[str, Shape]:
        """The output columns' shapes, checking the fitted sizes against the inputs' shapes.

        Allocates nothing: a state's sizes are checked with it before any row is built.
        """
        raise NotImplementedError


def whole_numbers(stage: str, key: str, value: Any, minimum: int, meaning: str) -> list[int]:
    """Fitted data that must be a list of whole numbers >= ``minimum``."""
    if not isinstance(value, list) or not all(type(v) is int and v >= minimum for v in value):
        raise PipelineSpecError(
            f"{stage}: fitted {key} must be whole numbers >= {minimum} ({meaning})"
        )
    return value


def numbers(stage: str, key: str, value: Any) -> np.ndarray:
    """Fitted data that must be a list of numbers (not booleans), as float64."""
    if not isinstance(value, list) or not all(type(v) in (int, float) for v in value):
        raise PipelineSpecError(f"{stage}: fitted {key} must be a list of numbers")
    return np.asarray(value, dtype=np.float64)


def label_lists(stage: str, value: Any) -> list[list[str]]:
    """Fitted labels: one list of text labels per column."""
    lists = isinstance(value, list) and all(isinstance(v, list) for v in value)
    if not lists or not all(isinstance(label, str) for v in value for label in v):
        raise PipelineSpecError(
            f"{stage}: fitted labels must be one list of text labels per column"
        )
    return value


def names_of(names: NameMap, column: str) -> tuple[str, ...]:
    """A column's feature names; a raw input column is one feature named after itself."""
    return names[column].features if column in names else (column,)


def as_matrix(values: np.ndarray | pa.Array) -> np.ndarray:
    """A column as a float64 matrix [N, width]: a scalar column is a vector of width 1."""
    matrix = np.asarray(values, dtype=np.float64)
    return matrix[:, np.newaxis] if matrix.ndim == 1 else matrix


def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
