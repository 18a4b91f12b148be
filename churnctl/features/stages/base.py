"""Feature-extraction stages with Flink ML semantics.

Each stage follows the scikit-learn estimator contract: keyword-only params
stored in ``__init__``, ``fit(frame)`` returns ``self``, learned state ends in
``_``, and ``transform`` refuses to run before ``fit``. ``params()`` and
``fitted_data()`` are exactly what the JSON state stores; ``from_state`` builds
a fitted stage back from them.

Fitting streams: ``accumulator()`` gathers what a stage learns one batch at a
time (``update``), combines batches gathered apart (``merge``) and sets the
learned state (``finish``); ``fit(frame)`` is that protocol on one batch.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnctl.defaults import MAX_FEATURES
from churnctl.errors import Fix, NotFittedError, PipelineSpecError, listing
from churnctl.features.columns import as_array, empty_as_null
from churnctl.features.frame import Frame
from churnctl.features.moments import Moments

ORDER_TYPES = ("alphabetAsc", "alphabetDesc", "frequencyDesc", "frequencyAsc")
INVALID_POLICIES = ("error", "skip", "keep")


def _check_choice(stage: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise PipelineSpecError(
            f"{stage}: {name} must be one of {', '.join(choices)}; got {value!r}"
        )


def _check_names(stage: str, name: str, value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        raise PipelineSpecError(f"{stage}: {name} must be a non-empty list of column names")
    if not all(isinstance(v, str) and v for v in value):
        raise PipelineSpecError(f"{stage}: {name} must contain only non-empty strings")
    return list(value)


def _check_same_length(stage: str, inputs: list[str], outputs: list[str]) -> None:
    if len(inputs) != len(outputs):
        raise PipelineSpecError(
            f"{stage}: input_cols has {len(inputs)} names but output_cols has {len(outputs)}"
        )


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
    """Common behaviour of all stages.

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

    def params(self) -> dict[str, Any]:
        """The stage's constructor parameters, JSON-ready."""
        raise NotImplementedError

    def input_columns(self) -> list[str]:
        """Columns this stage reads."""
        raise NotImplementedError

    def output_columns(self) -> list[str]:
        """Columns this stage writes."""
        raise NotImplementedError

    def is_fitted(self) -> bool:
        return all(hasattr(self, attr) for attr in self._fitted_attrs)

    def _require_fitted(self) -> None:
        if not self.is_fitted():
            raise NotFittedError(
                f"{self.TYPE} is not fitted: call fit() on training data first, "
                "or load a fitted state (`churnctl fit TRAIN.csv -o state.json`)"
            )

    def fitted_data(self) -> dict[str, Any]:
        """The learned numbers, JSON-ready."""
        self._require_fitted()
        return {attr.rstrip("_"): _to_json(getattr(self, attr)) for attr in self._fitted_attrs}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Self:
        """An unfitted stage from its parameters, unknown or missing ones refused by name."""
        _check_params(cls, params)
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


def _check_params(cls: type[Stage], params: dict[str, Any]) -> None:
    """Refuse unknown or missing constructor parameters by name (not with Python's TypeError)."""
    signature = inspect.signature(cls.__init__).parameters
    known = [name for name, p in signature.items() if p.kind is p.KEYWORD_ONLY]
    unknown = [name for name in params if name not in known]
    if unknown:
        raise PipelineSpecError(
            f"{cls.TYPE}: unknown parameter(s) {listing([repr(n) for n in unknown])}; "
            f"known: {', '.join(known)}"
        )
    missing = [name for name in known if signature[name].default is signature[name].empty]
    missing = [name for name in missing if name not in params]
    if missing:
        raise PipelineSpecError(f"{cls.TYPE}: missing parameter(s) {', '.join(missing)}")


def _whole_numbers(stage: str, key: str, value: Any, minimum: int, meaning: str) -> list[int]:
    """Fitted data that must be a list of whole numbers >= ``minimum``."""
    if not isinstance(value, list) or not all(type(v) is int and v >= minimum for v in value):
        raise PipelineSpecError(
            f"{stage}: fitted {key} must be whole numbers >= {minimum} ({meaning})"
        )
    return value


def _numbers(stage: str, key: str, value: Any) -> np.ndarray:
    """Fitted data that must be a list of numbers (not booleans), as float64."""
    if not isinstance(value, list) or not all(type(v) in (int, float) for v in value):
        raise PipelineSpecError(f"{stage}: fitted {key} must be a list of numbers")
    return np.asarray(value, dtype=np.float64)


def _label_lists(stage: str, value: Any) -> list[list[str]]:
    """Fitted labels: one list of text labels per column."""
    lists = isinstance(value, list) and all(isinstance(v, list) for v in value)
    if not lists or not all(isinstance(label, str) for v in value for label in v):
        raise PipelineSpecError(
            f"{stage}: fitted labels must be one list of text labels per column"
        )
    return value


def _names_of(names: NameMap, column: str) -> tuple[str, ...]:
    """A column's feature names; a raw input column is one feature named after itself."""
    return names[column].features if column in names else (column,)


def _to_json(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


class StringIndexer(Stage):
    """Maps string categories to float indices, in a chosen label order."""

    TYPE = "StringIndexer"
    READS_CATEGORIES = True
    WRITES_VECTORS = False  # one index per row
    WRITES_INDICES = True
    _fitted_attrs = ("labels_",)

    def __init__(
        self,
        *,
        input_cols: list[str],
        output_cols: list[str],
        string_order_type: str = "alphabetAsc",
        handle_invalid: str = "error",
        normalize: list[str] | None = None,
    ) -> None:
        self.input_cols = _check_names(self.TYPE, "input_cols", input_cols)
        self.output_cols = _check_names(self.TYPE, "output_cols", output_cols)
        _check_same_length(self.TYPE, self.input_cols, self.output_cols)
        _check_choice(self.TYPE, "string_order_type", string_order_type, ORDER_TYPES)
        _check_choice(self.TYPE, "handle_invalid", handle_invalid, INVALID_POLICIES)
        self.string_order_type = string_order_type
        self.handle_invalid = handle_invalid
        self.normalize = _check_normalize(normalize, len(self.input_cols))

    def params(self) -> dict[str, Any]:
        return {
            "input_cols": self.input_cols,
            "output_cols": self.output_cols,
            "string_order_type": self.string_order_type,
            "handle_invalid": self.handle_invalid,
            "normalize": self.normalize,
        }

    def input_columns(self) -> list[str]:
        return list(self.input_cols)

    def output_columns(self) -> list[str]:
        return list(self.output_cols)

    def accumulator(self) -> LabelCounts:
        """Counts each column's labels; their order is decided at the end."""
        return LabelCounts(self)

    def rejects_rows(self) -> bool:
        return self.handle_invalid != "keep"

    def _set_fitted(self, fitted: dict[str, Any]) -> None:
        labels = _label_lists(self.TYPE, fitted["labels"])
        if len(labels) != len(self.input_cols):
            raise PipelineSpecError(
                f"StringIndexer: {len(labels)} label lists for {len(self.input_cols)} columns"
            )
        for col, col_labels in zip(self.input_cols, labels, strict=True):
            if len(set(col_labels)) != len(col_labels):
                raise PipelineSpecError(f"StringIndexer: duplicate labels for column {col}")
        self.labels_ = [list(col_labels) for col_labels in labels]

    def transform(self, frame: Frame) -> Frame:
        """Add float index columns; unseen or null values follow ``handle_invalid``."""
        self._require_fitted()
        columns = zip(self.input_cols, self.output_cols, self.labels_, self.normalize, strict=True)
        for col, out, labels, mode in columns:
            frame[out] = self._index_column(frame, col, labels, mode)
        return frame

    def _index_column(self, frame: Frame, col: str, labels: list[str], mode: str) -> np.ndarray:
        values = as_array(frame[col])
        matched = normalized(values, mode)
        found = pc.index_in(matched, value_set=pa.array(labels, type=pa.string()))
        invalid = found.is_null().to_numpy(zero_copy_only=False)
        index = found.fill_null(len(labels)).to_numpy(zero_copy_only=False).astype(np.float64)
        if invalid.any() and self.handle_invalid != "keep":
            frame.reject(invalid, col, self._invalid_reasons(values, matched, invalid))
        return index

    def _invalid_reasons(
        self, values: pa.Array, matched: pa.Array, invalid: np.ndarray
    ) -> np.ndarray | str:
        if self.handle_invalid == "skip":
            return "skipped"
        reasons = np.full(len(values), None, dtype=object)
        for i in np.flatnonzero(invalid):
            empty = matched[int(i)].as_py() is None
            reasons[i] = "empty value" if empty else f"unseen category {values[int(i)].as_py()!r}"
        return reasons

    def vocabularies(self) -> dict[str, list[str]]:
        self._require_fitted()
        return {
            col: list(labels) for col, labels in zip(self.input_cols, self.labels_, strict=True)
        }

    def feature_names(self, names: NameMap) -> dict[str, ColumnNames]:
        """Each index column is one feature named after its input, carrying its labels."""
        return {
            out: ColumnNames(_names_of(names, col), tuple(labels))
            for col, out, labels in zip(
                self.input_cols, self.output_cols, self.labels_, strict=True
            )
        }

    def shapes(self, shapes: ShapeMap) -> dict[str, Shape]:
        """One index per row: ``keep`` adds one index, for the unseen values."""
        result = {}
        for col, out, labels in zip(self.input_cols, self.output_cols, self.labels_, strict=True):
            if len(labels) > MAX_FEATURES:
                raise too_wide(col, f"{len(labels):,} categories")
            result[out] = Shape(1, len(labels) + int(self.handle_invalid == "keep"))
        return result


NORMALIZE_MODES = ("exact", "trim", "trim-lower")


def _check_normalize(normalize: list[str] | None, n_cols: int) -> list[str]:
    if normalize is None:
        return ["exact"] * n_cols
    if not isinstance(normalize, list | tuple) or len(normalize) != n_cols:
        raise PipelineSpecError(
            f"StringIndexer: normalize needs one mode per input column ({n_cols})"
        )
    for mode in normalize:
        _check_choice("StringIndexer", "normalize", mode, NORMALIZE_MODES)
    return list(normalize)


def normalized(values: pa.Array, mode: str) -> pa.Array:
    """Category values as matched: exact, trimmed, or trimmed and lower-cased ("" → null)."""
    if mode == "exact":
        return values
    values = pc.utf8_trim_whitespace(values)
    if mode == "trim-lower":
        values = pc.utf8_lower(values)
    return empty_as_null(values)


class LabelCounts(Accumulator):
    """A StringIndexer's label counts per input column (of the normalized, non-null values)."""

    def __init__(self, stage: StringIndexer) -> None:
        self.stage = stage
        self.counts: list[Counter[str]] = [Counter() for _ in stage.input_cols]

    def update(self, frame: Frame) -> None:
        ok = pa.array(frame.ok)
        for counts, col, mode in zip(
            self.counts, self.stage.input_cols, self.stage.normalize, strict=True
        ):
            counts.update(count_labels(pc.filter(normalized(as_array(frame[col]), mode), ok)))
            if len(counts) > MAX_FEATURES:  # refused as soon as counted: memory stays bounded
                raise too_wide(col, f"{len(counts):,} categories so far")

    def merge(self, other: LabelCounts) -> None:
        for counts, more in zip(self.counts, other.counts, strict=True):
            counts.update(more)

    def finish(self) -> None:
        order = self.stage.string_order_type
        self.stage.labels_ = [order_labels(counts, order) for counts in self.counts]


def count_labels(values: pa.Array) -> Counter[str]:
    """How often each non-null label occurs."""
    counts = pc.value_counts(values.drop_null()).to_pylist()
    return Counter({c["values"]: c["counts"] for c in counts})


def order_labels(counts: Mapping[str, int], order: str) -> list[str]:
    """Labels with their counts, in the given order; frequency ties break alphabetically."""
    pairs = list(counts.items())
    if order == "alphabetAsc":
        pairs.sort(key=lambda p: p[0])
    elif order == "alphabetDesc":
        pairs.sort(key=lambda p: p[0], reverse=True)
    elif order == "frequencyDesc":
        pairs.sort(key=lambda p: (-p[1], p[0]))
    else:
        pairs.sort(key=lambda p: (p[1], p[0]))
    return [label for label, _ in pairs]


class OneHotEncoder(Stage):
    """Maps float indices to one-hot vectors; ``drop_last`` drops the last category."""

    TYPE = "OneHotEncoder"
    READS_VECTORS = False  # one index per row
    READS_INDICES = True  # a StringIndexer's output
    _fitted_attrs = ("category_sizes_",)

    def __init__(
        self,
        *,
        input_cols: list[str],
        output_cols: list[str],
        drop_last: bool = True,
        handle_invalid: str = "error",
    ) -> None:
        self.input_cols = _check_names(self.TYPE, "input_cols", input_cols)
        self.output_cols = _check_names(self.TYPE, "output_cols", output_cols)
        _check_same_length(self.TYPE, self.input_cols, self.output_cols)
        if not isinstance(drop_last, bool):
            raise PipelineSpecError(
                f"OneHotEncoder: drop_last must be true or false, got {drop_last!r}"
            )
        _check_choice(self.TYPE, "handle_invalid", handle_invalid, ("error", "keep"))
        self.drop_last = drop_last
        self.handle_invalid = handle_invalid

    def params(self) -> dict[str, Any]:
        return {
            "input_cols": self.input_cols,
            "output_cols": self.output_cols,
            "drop_last": self.drop_last,
            "handle_invalid": self.handle_invalid,
        }

    def input_columns(self) -> list[str]:
        return list(self.input_cols)

    def output_columns(self) -> list[str]:
        return list(self.output_cols)

    def accumulator(self) -> LargestIndex:
        """Learns each column's number of categories (largest index + 1)."""
        return LargestIndex(self)

    def rejects_rows(self) -> bool:
        return self.handle_invalid == "error"

    def _set_fitted(self, fitted: dict[str, Any]) -> None:
        sizes = _whole_numbers(
            self.TYPE, "category_sizes", fitted["category_sizes"], 1,
            "one positive category size per column",
        )  # fmt: skip
        if len(sizes) != len(self.input_cols):
            raise PipelineSpecError("OneHotEncoder: one positive category size per column needed")
        self.category_sizes_ = [int(s) for s in sizes]

    def transform(self, frame: Frame) -> Frame:
        """Add one-hot matrix columns; an index past the vocabulary follows ``handle_invalid``."""
        self._require_fitted()
        for col, out, size in zip(
            self.input_cols, self.output_cols, self.category_sizes_, strict=True
        ):
            frame[out] = self._encode(frame, col, size)
        return frame

    def _encode(self, frame: Frame, col: str, size: int) -> np.ndarray:
        index = np.asarray(frame[col], dtype=np.float64)
        valid = (index >= 0) & (index < size) & (index == np.floor(index))
        if self.handle_invalid == "error":
            frame.reject(~valid, col, f"index out of range for {size} categories")
        width = size - 1 if self.drop_last else size
        encoded = np.zeros((len(index), width), dtype=np.float64)
        hot = valid & (index < width)
        encoded[np.flatnonzero(hot), index[hot].astype(np.intp)] = 1.0
        return encoded

    def feature_names(self, names: NameMap) -> dict[str, ColumnNames]:
        """``Geography=France``, ...: one feature per kept category, named by its label."""
        result = {}
        for col, out, size in zip(
            self.input_cols, self.output_cols, self.category_sizes_, strict=True
        ):
            known = names[col].labels if col in names else ()
            labels = [*known, *(str(i) for i in range(len(known), size))]
            width = size - 1 if self.drop_last else size
            base = _names_of(names, col)[0]
            result[out] = ColumnNames(tuple(f"{base}={label}" for label in labels[:width]))
        return result

    def shapes(self, shapes: ShapeMap) -> dict[str, Shape]:
        """A vector per input; a category size past its indexer's labels is refused."""
        result = {}
        for col, out, size in zip(
            self.input_cols, self.output_cols, self.category_sizes_, strict=True
        ):
            shape = shapes.get(col, RAW)
            if shape.categories is not None and size > shape.categories:
                raise PipelineSpecError(
                    f"OneHotEncoder: category size {size:,} for {col}, which holds "
                    f"{shape.categories:,} categories"
                )
            width = size - 1 if self.drop_last else size
            if width > MAX_FEATURES:
                raise too_wide(col, f"{size:,} categories")
            result[out] = Shape(width)
        return result


class LargestIndex(Accumulator):
    """A OneHotEncoder's largest index per input column (-1 before any row)."""

    def __init__(self, stage: OneHotEncoder) -> None:
        self.stage = stage
        self.largest = [-1.0] * len(stage.input_cols)

    def update(self, frame: Frame) -> None:
        self.largest = [
            max(largest, float(np.max(_indices(frame, col), initial=-1)))
            for largest, col in zip(self.largest, self.stage.input_cols, strict=True)
        ]
        for col, largest in zip(self.stage.input_cols, self.largest, strict=True):
            if largest - int(self.stage.drop_last) >= MAX_FEATURES:
                raise too_wide(col, f"an index of {largest:,.0f} ({largest + 1:,.0f} categories)")

    def merge(self, other: LargestIndex) -> None:
        self.largest = [max(a, b) for a, b in zip(self.largest, other.largest, strict=True)]

    def finish(self) -> None:
        for col, largest in zip(self.stage.input_cols, self.largest, strict=True):
            if largest < 0:
                raise PipelineSpecError(
                    f"OneHotEncoder: no training row has a valid index (a whole number >= 0) "
                    f"in {col}; encode a column of category indices (a StringIndexer's output)"
                )
        self.stage.category_sizes_ = [int(largest) + 1 for largest in self.largest]


def _indices(frame: Frame, col: str) -> np.ndarray:
    """The column's valid category indices (whole numbers >= 0) in the non-rejected rows."""
    values = np.asarray(frame[col], dtype=np.float64)[frame.ok]
    return values[(values >= 0) & (values == np.floor(values))]


class VectorAssembler(Stage):
    """Concatenates scalar and vector columns, in the given order, into one vector."""

    TYPE = "VectorAssembler"
    NEEDS_ROWS = False  # fitted from the column shapes of one batch
    _fitted_attrs = ("input_sizes_",)

    def __init__(self, *, input_cols: list[str], output_col: str) -> None:
        self.input_cols = _check_names(self.TYPE, "input_cols", input_cols)
        self.output_col = _check_names(self.TYPE, "output_col", [output_col])[0]

    def params(self) -> dict[str, Any]:
        return {"input_cols": self.input_cols, "output_col": self.output_col}

    def input_columns(self) -> list[str]:
        return list(self.input_cols)

    def output_columns(self) -> list[str]:
        return [self.output_col]

    def accumulator(self) -> InputSizes:
        """Records each input's size (1 for a scalar column)."""
        return InputSizes(self)

    def rejects_rows(self) -> bool:
        return False

    def _set_fitted(self, fitted: dict[str, Any]) -> None:
        sizes = _whole_numbers(
            self.TYPE, "input_sizes", fitted["input_sizes"], 0, "one input size per column"
        )
        if len(sizes) != len(self.input_cols):
            raise PipelineSpecError("VectorAssembler: one input size (>= 0) per column needed")
        self.input_sizes_ = [int(s) for s in sizes]

    def transform(self, frame: Frame) -> Frame:
        """Add the assembled float64 matrix column, checking every input's size."""
        self._require_fitted()
        parts = []
        for col, size in zip(self.input_cols, self.input_sizes_, strict=True):
            values = as_matrix(frame[col])
            if values.shape[1] != size:
                raise PipelineSpecError(
                    f"VectorAssembler: column {col} has size {values.shape[1]}, expected {size}"
                )
            parts.append(values)
        frame[self.output_col] = np.hstack(parts) if parts else np.zeros((frame.n_rows, 0))
        return frame

    def feature_names(self, names: NameMap) -> dict[str, ColumnNames]:
        flat = [name for col in self.input_cols for name in _names_of(names, col)]
        return {self.output_col: ColumnNames(tuple(flat))}

    def shapes(self, shapes: ShapeMap) -> dict[str, Shape]:
        """The sum of the inputs' widths, each as fitted."""
        for col, size in zip(self.input_cols, self.input_sizes_, strict=True):
            if size != shapes.get(col, RAW).width:
                raise PipelineSpecError(
                    f"VectorAssembler: input size {size:,} for {col}, whose width is "
                    f"{shapes.get(col, RAW).width:,}"
                )
        return {self.output_col: _assembled(self, self.input_sizes_)}


def _assembled(stage: VectorAssembler, sizes: list[int]) -> Shape:
    """The shape of an assembled vector, refused past the width cap (naming its widest inputs)."""
    if sum(sizes) > MAX_FEATURES:
        widest = sorted(zip(sizes, stage.input_cols, strict=True), reverse=True)[:3]
        parts = ", ".join(f"{col} {size:,}" for size, col in widest)
        raise too_wide(stage.output_col, f"{sum(sizes):,} features (widest: {parts})")
    return Shape(sum(sizes))


class InputSizes(Accumulator):
    """A VectorAssembler's input sizes: the column shapes of the first frame seen."""

    def __init__(self, stage: VectorAssembler) -> None:
        self.stage = stage
        self.sizes: list[int] | None = None

    def update(self, frame: Frame) -> None:
        if self.sizes is None:
            self.sizes = [_width(frame[col]) for col in self.stage.input_cols]

    def merge(self, other: InputSizes) -> None:
        if self.sizes is None:
            self.sizes = other.sizes

    def finish(self) -> None:
        if self.sizes is None:
            raise NotFittedError("VectorAssembler: no training batch was seen, nothing to fit")
        _assembled(self.stage, self.sizes)
        self.stage.input_sizes_ = list(self.sizes)


def _width(values: np.ndarray | pa.Array) -> int:
    array = np.asarray(values)
    return 1 if array.ndim == 1 else int(array.shape[1])


def as_matrix(values: np.ndarray | pa.Array) -> np.ndarray:
    """A column as a float64 matrix [N, width]: a scalar column is a vector of width 1."""
    matrix = np.asarray(values, dtype=np.float64)
    return matrix[:, np.newaxis] if matrix.ndim == 1 else matrix


class StandardScaler(Stage):
    """Centres and/or scales each feature; a zero (or denormal) std scales that feature to 0."""

    TYPE = "StandardScaler"
    _fitted_attrs = ("mean_", "std_")

    def __init__(
        self,
        *,
        input_col: str,
        output_col: str,
        with_mean: bool = False,
        with_std: bool = True,
        ddof: int = 1,
    ) -> None:
        self.input_col = _check_names(self.TYPE, "input_col", [input_col])[0]
        self.output_col = _check_names(self.TYPE, "output_col", [output_col])[0]
        for name, flag in (("with_mean", with_mean), ("with_std", with_std)):
            if not isinstance(flag, bool):
                raise PipelineSpecError(f"StandardScaler: {name} must be true or false")
        if isinstance(ddof, bool) or not isinstance(ddof, int) or ddof not in (0, 1):
            raise PipelineSpecError(f"StandardScaler: ddof must be 0 or 1, got {ddof!r}")
        self.with_mean, self.with_std, self.ddof = with_mean, with_std, ddof

    def params(self) -> dict[str, Any]:
        return {
            "input_col": self.input_col,
            "output_col": self.output_col,
            "with_mean": self.with_mean,
            "with_std": self.with_std,
            "ddof": self.ddof,
        }

    def input_columns(self) -> list[str]:
        return [self.input_col]

    def output_columns(self) -> list[str]:
        return [self.output_col]

    def accumulator(self) -> ScalerMoments:
        """Float64 means and stds of the non-rejected rows, merged batch by batch."""
        return ScalerMoments(self)

    def rejects_rows(self) -> bool:
        return False

    def _set_fitted(self, fitted: dict[str, Any]) -> None:
        mean = _numbers(self.TYPE, "mean", fitted["mean"])
        std = _numbers(self.TYPE, "std", fitted["std"])
        if mean.shape != std.shape:
            raise PipelineSpecError("StandardScaler: mean and std must be equal-length lists")
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std >= 0).all()):
            raise PipelineSpecError("StandardScaler: mean and std must be finite, std >= 0")
        self.mean_, self.std_ = mean, std

    def transform(self, frame: Frame) -> Frame:
        """Add ``(x - mean) / std`` (each part as configured) as a float64 matrix."""
        self._require_fitted()
        matrix = as_matrix(frame[self.input_col])
        if matrix.shape[1] != len(self.mean_):
            raise PipelineSpecError(
                f"StandardScaler: {self.input_col} has {matrix.shape[-1]} features, "
                f"fitted on {len(self.mean_)}"
            )
        frame[self.output_col] = scale(matrix, self.mean_, self.std_, self.with_mean, self.with_std)
        return frame

    def feature_names(self, names: NameMap) -> dict[str, ColumnNames]:
        return {self.output_col: ColumnNames(_names_of(names, self.input_col))}

    def shapes(self, shapes: ShapeMap) -> dict[str, Shape]:
        """As wide as its input: one mean and one std per feature."""
        width = shapes.get(self.input_col, RAW).width
        if len(self.mean_) != width:
            raise PipelineSpecError(
                f"StandardScaler: {len(self.mean_):,} means for {self.input_col}, whose width "
                f"is {width:,}"
            )
        return {self.output_col: Shape(width)}


class ScalerMoments(Accumulator):
    """A StandardScaler's column moments: each batch by the two-pass method, merged by Chan's."""

    def __init__(self, stage: StandardScaler) -> None:
        self.stage = stage
        self.moments: Moments | None = None

    def update(self, frame: Frame) -> None:
        matrix = as_matrix(frame[self.stage.input_col])[frame.ok]
        if matrix.shape[0]:
            self._add(Moments.of(matrix))

    def merge(self, other: ScalerMoments) -> None:
        if other.moments is not None:
            self._add(other.moments)

    def _add(self, moments: Moments) -> None:
        if self.moments is None:
            self.moments = moments
        elif self.moments.hi.shape != moments.hi.shape:
            raise PipelineSpecError(
                f"StandardScaler: {self.stage.input_col} changes its number of features "
                f"between batches ({self.moments.hi.shape} and {moments.hi.shape})"
            )
        else:
            self.moments = self.moments.merged(moments)

    def finish(self) -> None:
        self.stage.mean_, self.stage.std_ = moments_mean_and_std(self.moments, ddof=self.stage.ddof)


def mean_and_std(matrix: np.ndarray, *, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """Column means and stds in float64 with a corrected two-pass method.

    Pass one: the mean, refined by the mean residual (so a constant column gets
    its exact value and std 0). Pass two: squared deviations, scaled by the
    largest deviation so that huge magnitudes do not overflow.
    """
    return moments_mean_and_std(Moments.of(matrix) if matrix.shape[0] else None, ddof=ddof)


def moments_mean_and_std(moments: Moments | None, *, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """The means and stds of gathered moments; too few rows or too large values are refused."""
    n = moments.n if moments is not None else 0
    if moments is None or n <= ddof:
        raise PipelineSpecError(f"StandardScaler: need more than {ddof} training rows, got {n}")
    mean, std = moments.mean, moments.std(ddof)
    mean[moments.constant] = moments.first[moments.constant]
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise PipelineSpecError("StandardScaler: training values are too large to scale")
    return mean, std


def scale(
    matrix: np.ndarray, mean: np.ndarray, std: np.ndarray, with_mean: bool, with_std: bool
) -> np.ndarray:
    """Apply standard scaling; a feature whose std is 0 becomes 0 when scaling by std.

    A std below the smallest normal float64 (a denormal, whose reciprocal
    overflows) counts as 0 too. Values that overflow become ±inf without a
    warning: the caller quarantines the rows that hold them.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        result = matrix - mean if with_mean else matrix.copy()
        if with_std:
            zero = ~(std >= np.finfo(np.float64).tiny)
            np.divide(result, np.where(zero, 1.0, std), out=result)
            result[:, zero] = 0.0
    return result


STAGE_TYPES: dict[str, type[Stage]] = {
    cls.TYPE: cls for cls in (StringIndexer, OneHotEncoder, VectorAssembler, StandardScaler)
}
