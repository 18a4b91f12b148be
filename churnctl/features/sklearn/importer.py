"""A training script's fitted scikit-learn preprocessing, imported as a ``FeatureState``.

``from_sklearn`` reads the fitted objects' learned numbers (vocabularies, ``mean_``,
``scale_``) and never refits anything. Objects are recognised by their class name
(and a ``sklearn`` module), so importing churnctl never imports scikit-learn.

The importer follows the array as the training script saw it, column by column: a
``Slot`` says where each position's value comes from (an input column, or an element
of a column a stage writes). Each step turns the layout into the next; at the end,
the stages that write what the last layout holds are the state's pipeline. Anything
the stages cannot compute exactly is refused by ``UnsupportedStepError``, naming the
object and the step: never an approximation.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

import churnctl.features.sklearn.fitted as sk
from churnctl.arguments import shown, wrong
from churnctl.errors import ChurnctlError, UsageError
from churnctl.features.input_policy import arrow_batch
from churnctl.features.pipeline import FeaturePipeline
from churnctl.features.profile import Profile, profile_of
from churnctl.features.sklearn.fitted import (
    Layout,
    ModelNotImportedWarning,
    Slot,
    Step,
    UnsupportedStepError,
)
from churnctl.features.stages import (
    GIVEN,
    OneHotEncoder,
    Stage,
    StandardScaler,
    StringIndexer,
    VectorAssembler,
)
from churnctl.features.state import FeatureState, state_from_text

PROFILE_BATCH_ROWS = 65_536  # rows of training data profiled at once
TRAINING_DATA_TAKES = "a pandas DataFrame or a pyarrow Table (the data the steps were fitted on)"

OUTPUT = "features"


@dataclass
class _Builder:
    """The stages written so far, with fresh column names."""

    taken: set[str]
    stages: list[Stage] = field(default_factory=list)
    widths: dict[str, int] = field(default_factory=dict)  # written column -> its width

    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name

    def add(self, stage: Stage, width: int = 1) -> str:
        self.stages.append(stage)
        out = stage.output_columns()[0]
        self.widths[out] = width
        return out

    def assemble(self, columns: list[str], base: str) -> str:
        """A VectorAssembler of whole columns, in order."""
        stage = VectorAssembler(input_cols=columns, output_col=self.fresh(base))
        stage.input_sizes_ = [self.widths.get(column, 1) for column in columns]
        return self.add(stage, sum(stage.input_sizes_))


def from_sklearn(
    steps: Any, columns: Sequence[str] | None = None, *, training_data: Any = None
) -> FeatureState:
    """A state computing what the fitted scikit-learn ``steps`` compute, nothing refitted.

    ``steps``: the fitted objects in the order the training script applied them (a
    ``LabelEncoder`` as ``(column_name, encoder)``), or one fitted ``Pipeline`` or
    ``ColumnTransformer``. ``columns``: the input array's column names, in order
    (optional when the first object was fitted on a DataFrame). A Pipeline ending
    with a model imports its preprocessing; the state's provenance names the model,
    which must be exported separately (skl2onnx), and a ``ModelNotImportedWarning``
    says so. Anything a state cannot express exactly raises ``UnsupportedStepError``.
    ``training_data``: the pandas ``DataFrame`` (or pyarrow Table) the steps were fitted
    on; the state then records its profile, against which drift is judged (without it,
    the state has no profile).
    """
    listed = _as_steps(steps)
    names = _input_columns(listed, columns)
    builder = _Builder(taken=set(names))
    layout: Layout = [Slot(name, name=name, raw=True) for name in names]
    model = None
    for position, step in enumerate(listed, start=1):
        where = Step(f"from_sklearn: steps[{position - 1}] ({sk.kind(sk.object_of(step))})")
        if sk.is_pipeline(step) and position == len(listed):
            layout, model = _model_pipeline(step, layout, builder, where)
        else:
            layout = _apply(step, layout, builder, where)
    state = _state(builder, layout, _provenance(listed, model))
    if training_data is not None:
        state.profile = _profile(state, training_data)
    return state


def _profile(state: FeatureState, training_data: Any) -> Profile:
    """The training profile of ``training_data``, read as ``Scorer.score`` reads a batch."""
    pandas = sys.modules.get("pandas")  # not imported: the data cannot be a DataFrame
    frame = pandas is not None and isinstance(training_data, pandas.DataFrame)
    if not (frame or isinstance(training_data, pa.Table | pa.RecordBatch)):
        raise wrong("from_sklearn", "training_data", training_data, TRAINING_DATA_TAKES)
    schema = state.pipeline.input_schema
    table = arrow_batch(training_data, schema.columns, name="from_sklearn: training_data")
    batches = table.to_batches(max_chunksize=PROFILE_BATCH_ROWS)
    return profile_of(state.pipeline, batches)


def _as_steps(steps: Any) -> list[Any]:
    if sk.is_pipeline(steps) or sk.named(steps, "ColumnTransformer"):
        return [steps]
    if isinstance(steps, list | tuple) and steps and not _column_step(steps):
        return list(steps)
    raise UsageError(
        "from_sklearn: steps must be a list of fitted scikit-learn objects, in the order "
        f"they were applied, or a fitted Pipeline or ColumnTransformer; got {sk.kind(steps)}"
    )


def _column_step(steps: Any) -> bool:
    """A lone ``(column, encoder)`` pair passed as the whole list."""
    return len(steps) == 2 and isinstance(steps[0], str | int) and sk.is_sklearn(steps[1])


def _input_columns(steps: list[Any], columns: Sequence[str] | None) -> list[str]:
    """The input array's column names: ``columns``, or the first object's ``feature_names_in_``."""
    first = sk.object_of(steps[0])
    known = getattr(first, "feature_names_in_", None)
    if columns is None:
        if known is None:
            raise UsageError(
                f"from_sklearn: {sk.kind(first)} was fitted on an array without column names: "
                "give columns, the array's column names in order"
            )
        return [str(name) for name in known]
    if not isinstance(columns, list | tuple) or not all(isinstance(c, str) and c for c in columns):
        raise UsageError(
            f"from_sklearn: columns must be a list of non-empty column names, got {shown(columns)}"
        )
    names = list(columns)
    if len(set(names)) != len(names):
        raise UsageError("from_sklearn: columns names a column twice")
    if known is not None and [str(n) for n in known] != names:
        raise UsageError(
            f"from_sklearn: columns differ from the names {sk.kind(first)} was fitted on "
            "(feature_names_in_); leave columns out"
        )
    return names


def _apply(step: Any, layout: Layout, builder: _Builder, where: Step) -> Layout:
    """The layout after one step of the training script."""
    if isinstance(step, tuple) and len(step) == 2 and sk.named(step[1], "LabelEncoder"):
        return _label_encoder(step[0], step[1], layout, builder, where)
    if isinstance(step, tuple):
        raise where.refuse(
            sk.object_of(step),
            "comes as a (column, object) pair, which only a LabelEncoder takes",
            "pass other fitted objects alone, in the list",
        )
    return _transform(step, layout, builder, where)


def _transform(obj: Any, layout: Layout, builder: _Builder, where: Step) -> Layout:
    """The layout after a fitted transformer read all of it."""
    if obj is None or sk.is_word(obj, "passthrough") or sk.identity(obj):
        return layout
    kinds: dict[str, Callable[[Any, Layout, _Builder, Step], Layout]] = {
        "Pipeline": _pipeline,
        "ColumnTransformer": _column_transformer,
        "OneHotEncoder": _one_hot,
        "OrdinalEncoder": _ordinal,
        "StandardScaler": _scaler,
    }
    handler = kinds.get(type(obj).__name__) if sk.is_sklearn(obj) else None
    if handler is None:
        raise where.refuse(
            obj,
            "has no churnctl equivalent",
            "from_sklearn imports OneHotEncoder, OrdinalEncoder, LabelEncoder, StandardScaler, "
            "ColumnTransformer and Pipeline",
        )
    _check_width(obj, layout, where)
    return handler(obj, layout, builder, where)


def _check_width(obj: Any, layout: Layout, where: Step) -> None:
    expected = getattr(obj, "n_features_in_", None)
    if expected is not None and expected != len(layout):
        raise where.refuse(
            obj,
            f"was fitted on {expected} columns, but the array has {len(layout)} at this step",
            "give the steps in the order the training script applied them, and columns as "
            "the first step saw them",
        )


def _pipeline(pipe: Any, layout: Layout, builder: _Builder, where: Step) -> Layout:
    for name, obj in sk.fitted(pipe, "steps", where):
        layout = _transform(obj, layout, builder, where.inner(f"{name!r}"))
    return layout


def _model_pipeline(
    pipe: Any, layout: Layout, builder: _Builder, where: Step
) -> tuple[Layout, Any]:
    """A top-level Pipeline: its preprocessing, and its final model if it has one."""
    steps = sk.fitted(pipe, "steps", where)
    last = steps[-1][1]
    model = last if sk.is_model(last) else None
    for name, obj in steps[:-1] if model is not None else steps:
        layout = _transform(obj, layout, builder, where.inner(f"{name!r}"))
    return layout, model


def _label_encoder(column: Any, encoder: Any, layout: Layout, b: _Builder, where: Step) -> Layout:
    """``X[:, i] = le.transform(X[:, i])``: the column becomes its category index."""
    where = where.inner(f"column {column!r}")
    labels = sk.labels(encoder, sk.fitted(encoder, "classes_", where), where)
    at = sk.positions(column, layout, encoder, where)[0]
    source = sk.raw(layout[at], encoder, where)
    out = _indexed(source, labels, "error", b)
    return [*layout[:at], Slot(out, name=layout[at].name), *layout[at + 1 :]]


def _column_transformer(ct: Any, layout: Layout, builder: _Builder, where: Step) -> Layout:
    """Each transformer on its columns, their outputs side by side in output order."""
    fitted = sk.fitted(ct, "transformers_", where)
    given = {name: spec for name, spec, _ in getattr(ct, "transformers", [])}
    given["remainder"] = ct.remainder
    order = getattr(ct, "output_indices_", {})
    parts = sorted(fitted, key=lambda part: sk.start(order.get(part[0])))
    result: Layout = []
    for name, obj, columns in parts:
        inner = where.inner(f"{name!r}")
        picked = [layout[i] for i in sk.positions(columns, layout, ct, inner)]
        spec = given.get(name, obj)
        if not picked or sk.is_word(spec, "drop"):
            continue
        result += (
            picked if sk.is_word(spec, "passthrough") else _transform(obj, picked, builder, inner)
        )
    return result


def _one_hot(encoder: Any, layout: Layout, b: _Builder, where: Step) -> Layout:
    """Per column: a StringIndexer with the encoder's categories, then a OneHotEncoder."""
    sk.refuse_infrequent(encoder, where)
    keep = sk.unknown_policy(encoder, where, sk.UNKNOWN_ONE_HOT)
    policy = "keep" if keep else "error"
    dropped = getattr(encoder, "drop_idx_", None)
    result: Layout = []
    categories = sk.fitted(encoder, "categories_", where)
    for i, (slot, learned) in enumerate(zip(layout, categories, strict=True)):
        source = sk.raw(slot, encoder, where)
        labels = sk.labels(encoder, learned, where)
        index = _indexed(source, labels, policy, b)
        drop = None if dropped is None or dropped[i] is None else int(dropped[i])
        vector = OneHotEncoder(
            input_cols=[index],
            output_cols=[b.fresh(f"{source}_onehot")],
            drop_last=False,
            handle_invalid=policy,
            drop_index=[drop],
        )
        vector.category_sizes_ = [len(labels)]
        width = len(labels) - (drop is not None)
        out = b.add(vector, width)
        result += [Slot(out, k, width) for k in range(width)]
    return result


def _ordinal(encoder: Any, layout: Layout, b: _Builder, where: Step) -> Layout:
    """Per column: a StringIndexer with the encoder's categories (its index as a number)."""
    sk.refuse_infrequent(encoder, where)
    keep = sk.unknown_policy(encoder, where, {"error": False, "use_encoded_value": True})
    categories = sk.fitted(encoder, "categories_", where)
    if keep and any(encoder.unknown_value != len(c) for c in categories):
        raise where.refuse(
            encoder,
            f"maps unknown categories to unknown_value={encoder.unknown_value!r}; a state "
            "maps them to the number of known categories",
            "set unknown_value to len(categories) (one column), or handle_unknown='error'",
        )
    policy = "keep" if keep else "error"
    result: Layout = []
    for slot, labels in zip(layout, categories, strict=True):
        source = sk.raw(slot, encoder, where)
        index = _indexed(source, sk.labels(encoder, labels, where), policy, b)
        result.append(Slot(index, name=slot.name))
    return result


def _indexed(source: str, labels: list[str], policy: str, b: _Builder) -> str:
    """A StringIndexer of input column ``source`` with the encoder's labels."""
    return b.add(_indexer(source, b.fresh(f"{source}_index"), labels, policy))


def _scaler(scaler: Any, layout: Layout, b: _Builder, where: Step) -> Layout:
    """A StandardScaler with the scaler's own ``mean_`` and ``scale_`` (1 where var is 0)."""
    n = len(layout)
    sk.fitted(scaler, "n_features_in_", where)
    mean = getattr(scaler, "mean_", None)
    scale = getattr(scaler, "scale_", None)
    source = _whole(layout, scaler, b, where)
    stage = StandardScaler(
        input_col=source,
        output_col=b.fresh("scaled"),
        with_mean=bool(scaler.with_mean),
        with_std=bool(scaler.with_std),
        ddof=0,  # scikit-learn's: the population variance (fitting only; the numbers are its)
    )
    stage.mean_ = np.zeros(n) if mean is None else np.array(mean, dtype=np.float64)
    stage.std_ = np.ones(n) if scale is None else np.array(scale, dtype=np.float64)
    out = b.add(stage, n)
    return [Slot(out, k, n) for k in range(n)]


def _whole(layout: Layout, obj: Any, b: _Builder, where: Step) -> str:
    """One column holding the layout's values in order (assembled unless it is one already)."""
    columns = _whole_columns(layout, obj, where)
    return columns[0] if len(columns) == 1 else b.assemble(columns, "assembled")


def _whole_columns(layout: Layout, obj: Any, where: Step) -> list[str]:
    """The columns whose elements, in order and complete, make up the layout."""
    columns: list[str] = []
    i = 0
    while i < len(layout):
        slot = layout[i]
        run = layout[i : i + slot.width]
        expected = [(slot.column, k) for k in range(slot.width)]
        if slot.element != 0 or [(s.column, s.element) for s in run] != expected:
            raise where.refuse(
                obj,
                "reads part of an encoded or scaled block of columns, or reorders it",
                "apply it to whole blocks, in the order the earlier step wrote them",
            )
        columns.append(slot.column)
        i += slot.width
    return columns


def _state(builder: _Builder, layout: Layout, provenance: dict[str, Any]) -> FeatureState:
    """The state of the stages that write the last layout, checked as a loaded state is."""
    if not layout:
        raise UsageError("from_sklearn: the steps leave no column for a model")
    where = Step("the last step")
    columns = _whole_columns(layout, "the output", where)
    last = builder.stages[-1].output_columns() if builder.stages else []
    if columns != last:
        builder.assemble(columns, OUTPUT)
    stages = _needed(builder.stages)
    try:
        pipeline = FeaturePipeline(stages=stages)
        pipeline.feature_names_ = pipeline.compute_feature_names()
        state = FeatureState(pipeline, provenance, source="the imported state")
        return state_from_text(state.dumps(), source="the imported state")
    except ChurnctlError as exc:
        raise UnsupportedStepError(f"from_sklearn: the steps give no valid state: {exc}") from None


def _needed(stages: list[Stage]) -> list[Stage]:
    """The stages the last one depends on (a column a later step dropped needs none)."""
    needed = set(stages[-1].output_columns())
    kept: list[Stage] = []
    for stage in reversed(stages):
        if needed.intersection(stage.output_columns()):
            kept.append(stage)
            needed.update(stage.input_columns())
    return kept[::-1]


def _provenance(steps: list[Any], model: Any) -> dict[str, Any]:
    sklearn = sys.modules.get("sklearn")
    version = getattr(sklearn, "__version__", "unknown version")
    provenance = {
        "imported_from": f"scikit-learn {version}",
        "steps": ", ".join(sk.kind(sk.object_of(step)) for step in steps),
        "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if model is not None:
        note = f"{sk.kind(model)}: export it separately (skl2onnx) and bind it to this state"
        provenance["model_not_imported"] = note
        warnings.warn(
            f"from_sklearn imported the preprocessing only; the model {note}",
            ModelNotImportedWarning,
            stacklevel=3,
        )
    return provenance


def _indexer(source: str, output: str, labels: list[str], policy: str) -> StringIndexer:
    """A fitted StringIndexer holding an encoder's labels, in its order."""
    order = "alphabetAsc" if labels == sorted(labels) else GIVEN  # sorted: as a fit orders
    indexer = StringIndexer(
        input_cols=[source], output_cols=[output], string_order_type=order, handle_invalid=policy
    )
    indexer.labels_ = [labels]
    return indexer
