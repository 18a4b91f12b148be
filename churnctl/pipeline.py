"""The feature pipeline: an ordered list of stages, its presets and its spec files."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from churnctl.errors import Fix, NotFittedError, PipelineSpecError
from churnctl.frame import Frame
from churnctl.inputs import InputSchema
from churnctl.stages import STAGE_TYPES, Accumulator, ColumnNames, Shape, Stage

NUMERIC_FEATURES = ("CreditScore", "Age", "Tenure", "Balance", "NumOfProducts", "EstimatedSalary")


def _preset(assembled: list[str], ddof: int) -> dict[str, Any]:
    return {
        "stages": [
            {
                "type": "StringIndexer",
                "input_cols": ["Geography", "Gender"],
                "output_cols": ["GeographyIndex", "GenderIndex"],
                "string_order_type": "alphabetAsc",
                "handle_invalid": "error",
            },
            {
                "type": "OneHotEncoder",
                "input_cols": ["GeographyIndex"],
                "output_cols": ["GeographyVec"],
                "drop_last": False,
            },
            {"type": "VectorAssembler", "input_cols": assembled, "output_col": "raw_features"},
            {
                "type": "StandardScaler",
                "input_col": "raw_features",
                "output_col": "features",
                "with_mean": True,
                "with_std": True,
                "ddof": ddof,
            },
        ]
    }


PRESETS: dict[str, dict[str, Any]] = {
    # The published Flink ML job: [Geography x3, Gender, HasCrCard, IsActiveMember, numerics].
    "reference": _preset(
        ["GeographyVec", "GenderIndex", "HasCrCard", "IsActiveMember", *NUMERIC_FEATURES], ddof=1
    ),
    # A scikit-learn training script's layout (ColumnTransformer order), population std.
    "sklearn": _preset(
        [
            "GeographyVec", "CreditScore", "GenderIndex", "Age", "Tenure", "Balance",
            "NumOfProducts", "HasCrCard", "IsActiveMember", "EstimatedSalary",
        ],
        ddof=0,
    ),
}  # fmt: skip
DEFAULT_PRESET = "reference"
# A fit transforms a batch in slices of rows such that rows * widest column * 8 bytes stays
# under this: memory does not grow with rows * width (each slice holds a few such matrices).
SLICE_BYTES = 8 << 20


class FeaturePipeline:
    """Ordered stages turning raw columns into one float64 feature matrix."""

    def __init__(self, *, stages: list[Stage]) -> None:
        if not stages:
            raise PipelineSpecError("a pipeline needs at least one stage")
        self.stages = list(stages)
        self.input_schema = _derive_schema(self.stages)
        self.output_col = self.stages[-1].output_columns()[0]

    def fit(self, frame: Frame) -> FeaturePipeline:
        """Fit every stage in order on the frame's non-rejected rows."""
        for stage in self.stages:
            stage.fit(frame)
            stage.transform(frame)
        self.feature_names_ = self.compute_feature_names()
        return self

    def is_fitted(self) -> bool:
        return all(stage.is_fitted() for stage in self.stages)

    def transform(self, frame: Frame) -> np.ndarray:
        """Run every stage; return the float64 feature matrix (rejected rows included)."""
        if not self.is_fitted():
            raise NotFittedError(
                "the feature pipeline is not fitted: fit it on training data first "
                "(`churnctl fit TRAIN.csv -o state.json`), or load a fitted state",
                fix=Fix("state", "state.json"),
            )
        for stage in self.stages:
            stage.transform(frame)
        matrix = np.asarray(frame[self.output_col], dtype=np.float64)
        return matrix[:, np.newaxis] if matrix.ndim == 1 else matrix

    def compute_feature_names(self) -> list[str]:
        """The output vector's feature names, in order (``Geography=France``, ``Age``, ...)."""
        names: dict[str, ColumnNames] = {}
        for stage in self.stages:
            names.update(stage.feature_names(names))
        return list(names[self.output_col].features)

    def vocabularies(self) -> dict[str, list[str]]:
        """Every categorical input column → the labels learned for it."""
        learned: dict[str, list[str]] = {}
        for stage in self.stages:
            learned.update(stage.vocabularies())
        return learned

    @property
    def n_features(self) -> int:
        return len(self.feature_names_)

    def slice_rows(self) -> int:
        """How many rows to transform at once: rows x widest column x 8 bytes <= ``SLICE_BYTES``."""
        shapes: dict[str, Shape] = {}
        for stage in self.stages:
            if not stage.is_fitted():
                break  # the widest column the stages fitted so far write
            shapes.update(stage.shapes(shapes))
        widest = max([1, *(shape.width for shape in shapes.values())])
        return max(1, SLICE_BYTES // (8 * widest))


def fitting_levels(stages: list[Stage]) -> list[int]:
    """The pass over the training data (0 first) in which each stage is fitted.

    A stage is fitted after an earlier stage whose output it reads, or whose
    transform may reject rows (it must fit on the rows that survive them): in
    the next pass if that stage needs every row (``NEEDS_ROWS``), in the same
    pass if it is fitted from the pass's first batch alone.
    """
    levels: list[int] = []
    for position, stage in enumerate(stages):
        reads = set(stage.input_columns())
        level = 0
        for earlier, at in zip(stages[:position], levels, strict=True):
            if reads.intersection(earlier.output_columns()) or earlier.rejects_rows():
                level = max(level, at + 1 if earlier.NEEDS_ROWS else at)
        levels.append(level)
    return levels


class StreamingFit:
    """Fits a pipeline one batch at a time, in constant memory, one pass per fitting level.

    For each of ``passes`` passes over the same data: ``update`` with each
    batch's frame, in order, then ``end_pass``. ``update`` applies every stage
    fitted so far to the frame; in the last pass (``last_pass``) the frame
    leaves with the rejections the fitted pipeline makes (with one more pass
    than the levels when the last level's stages may reject rows).
    """

    def __init__(self, pipeline: FeaturePipeline) -> None:
        self.pipeline = pipeline
        self.levels = fitting_levels(pipeline.stages)
        self.fitting_passes = max(self.levels) + 1
        last = zip(pipeline.stages, self.levels, strict=True)
        rejecting = any(
            stage.NEEDS_ROWS and stage.rejects_rows()
            for stage, level in last
            if level == self.fitting_passes - 1
        )
        self.passes = self.fitting_passes + int(rejecting)
        self.pass_index = 0
        self._open = self._accumulators(0)

    @property
    def last_pass(self) -> bool:
        return self.pass_index == self.passes - 1

    def update(self, frame: Frame) -> Frame:
        """Fit this pass's stages on the frame, after applying the stages fitted before them.

        A wide pipeline takes the frame in slices of rows (``SLICE_BYTES``); the frame
        leaves with their rejections, not with the columns the stages wrote.
        """
        rows = self.pipeline.slice_rows()
        if frame.n_rows <= rows:
            self._update_rows(frame)
            return frame
        for start in range(0, frame.n_rows, rows):
            part = frame.rows(start, min(start + rows, frame.n_rows))
            self._update_rows(part)
            frame.take_rejections(part, start)
        return frame

    def _update_rows(self, frame: Frame) -> None:
        for index, stage in enumerate(self.pipeline.stages):
            accumulator = self._open.get(index)
            if accumulator is not None:
                accumulator.update(frame)
                if stage.NEEDS_ROWS:
                    continue
                accumulator.finish()  # fitted on shapes: applied from this batch on
                del self._open[index]
            if self.levels[index] <= self.pass_index:
                stage.transform(frame)

    def end_pass(self) -> None:
        """Finish the stages fitted in this pass; the pipeline is fitted after the last level."""
        for accumulator in self._open.values():
            accumulator.finish()
        self.pass_index += 1
        if self.pass_index == self.fitting_passes:
            self.pipeline.feature_names_ = self.pipeline.compute_feature_names()
        self._open = self._accumulators(self.pass_index)

    def _accumulators(self, level: int) -> dict[int, Accumulator]:
        pairs = enumerate(zip(self.pipeline.stages, self.levels, strict=True))
        return {index: stage.accumulator() for index, (stage, at) in pairs if at == level}


def _derive_schema(stages: list[Stage]) -> InputSchema:
    """The raw input columns by kind; a column used against its kind is refused here, once.

    A column is raw input (category text or a number) until a stage writes it; then it
    is one number per row or a vector, as the stage declares. Each output is a new name.
    """
    written: dict[str, Stage] = {}
    raw: dict[str, Stage] = {}  # raw input column -> the first stage reading it
    for position, stage in enumerate(stages, start=1):
        try:
            _check_stage_columns(stage, written, raw)
        except PipelineSpecError as exc:
            raise PipelineSpecError(f"stage {position}: {stage.TYPE}: {exc}") from None
        written.update(dict.fromkeys(stage.output_columns(), stage))
    categorical = tuple(col for col, stage in raw.items() if stage.READS_CATEGORIES)
    numeric = tuple(col for col, stage in raw.items() if not stage.READS_CATEGORIES)
    return InputSchema(categorical, numeric)


def _check_stage_columns(stage: Stage, written: dict[str, Stage], raw: dict[str, Stage]) -> None:
    """Check what one stage reads and writes against the columns before it; note new inputs."""
    for col in stage.input_columns():
        if col in written:
            _check_reads_written(stage, col, written[col])
        elif col in raw:
            _check_same_kind(stage, col, raw[col])
        else:
            raw[col] = stage
    outputs = stage.output_columns()
    clash = written.keys() & set(outputs) | {c for c in outputs if outputs.count(c) > 1}
    if clash:
        raise PipelineSpecError(f"output column(s) {sorted(clash)} written twice")
    overwritten = raw.keys() & set(outputs)
    if overwritten:
        raise PipelineSpecError(
            f"output column(s) {sorted(overwritten)} would overwrite an input column; give "
            "each output a new name"
        )


def _check_reads_written(stage: Stage, col: str, writer: Stage) -> None:
    if stage.READS_CATEGORIES:
        raise PipelineSpecError(
            f"{col} is written by a {writer.TYPE}, but a {stage.TYPE} reads category text "
            "from the input data; give it an input column"
        )
    if writer.WRITES_VECTORS and not stage.READS_VECTORS:
        raise PipelineSpecError(
            f"{col} is a vector (written by a {writer.TYPE}), but a {stage.TYPE} reads one "
            "number per row; give it a single-value column"
        )


def _check_same_kind(stage: Stage, col: str, first: Stage) -> None:
    if stage.READS_CATEGORIES != first.READS_CATEGORIES:
        text, number = (stage, first) if stage.READS_CATEGORIES else (first, stage)
        raise PipelineSpecError(
            f"input column {col} is read as category text by a {text.TYPE} and as a number "
            f"by a {number.TYPE}; read the {text.TYPE}'s output instead"
        )


def build_pipeline(spec: Any, *, source: str = "pipeline spec") -> FeaturePipeline:
    """Build an unfitted pipeline from a spec: ``{"stages": [{"type": ..., params...}]}``."""
    if not isinstance(spec, dict) or set(spec) - {"stages", "description"}:
        raise PipelineSpecError(
            f"{source}: expected a table with a 'stages' list (and optional 'description')"
        )
    stages_spec = spec.get("stages")
    if not isinstance(stages_spec, list) or not stages_spec:
        raise PipelineSpecError(f"{source}: 'stages' must be a non-empty list")
    stages = [_build_stage(s, source, i) for i, s in enumerate(stages_spec)]
    try:
        return FeaturePipeline(stages=stages)
    except PipelineSpecError as exc:
        raise PipelineSpecError(f"{source}: {exc}") from None


def _build_stage(spec: Any, source: str, position: int) -> Stage:
    where = f"{source}: stage {position + 1}"
    if not isinstance(spec, dict) or "type" not in spec:
        raise PipelineSpecError(f"{where}: each stage needs a 'type'")
    params = dict(spec)
    stage_type = params.pop("type")
    cls = STAGE_TYPES.get(stage_type) if isinstance(stage_type, str) else None
    if cls is None:
        raise PipelineSpecError(
            f"{where}: unknown stage type {stage_type!r}; known: {', '.join(STAGE_TYPES)}"
        )
    try:
        return cls.from_params(params)
    except PipelineSpecError as exc:
        raise PipelineSpecError(f"{where}: {exc}") from None


def load_pipeline_spec(name_or_path: str | None) -> tuple[str, FeaturePipeline]:
    """A preset name or a TOML/JSON spec file → (description, unfitted pipeline)."""
    name = name_or_path or DEFAULT_PRESET
    if name in PRESETS:
        return f"preset:{name}", build_pipeline(PRESETS[name], source=f"preset {name}")
    path = Path(name)
    if not path.is_file():
        raise PipelineSpecError(
            f"pipeline {name!r}: neither a preset ({', '.join(PRESETS)}) nor an existing file",
            fix=Fix("pipeline", "reference"),
        )
    return str(path), build_pipeline(_read_spec_file(path), source=str(path))


def _read_spec_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PipelineSpecError(f"{path}: cannot read pipeline spec: {exc}") from None
