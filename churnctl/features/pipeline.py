"""The feature pipeline: an ordered list of stages, its presets and its spec files."""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from churnctl.errors import ChurnctlError, Fix, NotFittedError, PipelineSpecError, listing
from churnctl.features.frame import Frame
from churnctl.features.input_policy import InputSchema
from churnctl.features.stages import STAGE_TYPES, Accumulator, ColumnNames, Shape, Stage

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
        self.raw_names = _raw_names(self.stages)

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
        name_raw_columns(frame, self.raw_names)
        matrix = np.asarray(frame[self.output_col], dtype=np.float64)
        return matrix[:, np.newaxis] if matrix.ndim == 1 else matrix

    def compute_feature_names(self) -> list[str]:
        """The output vector's feature names, in order (``Geography=France``, ``Age``, ...)."""
        names: dict[str, ColumnNames] = {}
        for stage in self.stages:
            names.update(stage.feature_names(names))
        features = list(names[self.output_col].features)
        if not features:
            raise PipelineSpecError(
                f"the pipeline's output {self.output_col} has no features (a one-hot encoder "
                "with drop_last over a single category leaves none); a model needs at least one"
            )
        repeated = sorted(name for name, n in Counter(features).items() if n > 1)
        if repeated:
            raise PipelineSpecError(
                f"feature name(s) {listing(repeated)} appear twice in {self.output_col} (a "
                "binding matches features by name); assemble each input once"
            )
        return features

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


def _raw_names(stages: list[Stage]) -> dict[str, str]:
    """Each index column -> the input column it indexes (what a reject on it names)."""
    return {
        out: col
        for stage in stages
        if stage.WRITES_INDICES
        for col, out in zip(stage.input_columns(), stage.output_columns(), strict=True)
    }


def name_raw_columns(frame: Frame, raw_names: dict[str, str]) -> None:
    """Rejects on an index column name the input column behind it (Geography, not its index)."""
    if frame.reject_column is None or not raw_names:
        return
    for written, raw in raw_names.items():
        frame.reject_column[frame.reject_column == written] = raw


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
        else:
            for start in range(0, frame.n_rows, rows):
                part = frame.rows(start, min(start + rows, frame.n_rows))
                self._update_rows(part)
                frame.take_rejections(part, start)
        name_raw_columns(frame, self.pipeline.raw_names)  # reasons name the raw column
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
    writers: dict[str, int] = {}  # column -> the first stage writing it
    for position, stage in enumerate(stages, start=1):
        for col in stage.output_columns():
            writers.setdefault(col, position)
    for position, stage in enumerate(stages, start=1):
        with _naming(stage, position):
            _check_read_order(stage, position, writers)
            _check_stage_columns(stage, written, raw)
        written.update(dict.fromkeys(stage.output_columns(), stage))
    read = {col for stage in stages for col in stage.input_columns()}  # all before their writer
    for position, stage in enumerate(stages, start=1):
        with _naming(stage, position):
            _check_used(stage, position == len(stages), read, stages[-1])
    categorical = tuple(col for col, stage in raw.items() if stage.READS_CATEGORIES)
    numeric = tuple(col for col, stage in raw.items() if not stage.READS_CATEGORIES)
    return InputSchema(categorical, numeric)


@contextmanager
def _naming(stage: Stage, position: int) -> Iterator[None]:
    """A spec error prefixed with the stage's position and type."""
    try:
        yield
    except PipelineSpecError as exc:
        raise PipelineSpecError(f"stage {position}: {stage.TYPE}: {exc}") from None


def _check_read_order(stage: Stage, position: int, writers: dict[str, int]) -> None:
    """Refuse reading a column that this stage or a later one writes (a cycle, or misordered)."""
    inputs = stage.input_columns()
    repeated = sorted(col for col, n in Counter(inputs).items() if n > 1)
    if repeated:
        raise PipelineSpecError(
            f"input column(s) {listing(repeated)} named twice; name each input once"
        )
    for col in inputs:
        if writers.get(col, 0) >= position:
            raise PipelineSpecError(
                f"reads {col}, which stage {writers[col]} writes; a stage reads only the input "
                "data and columns written before it: reorder the stages (no cycles)"
            )


def _check_used(stage: Stage, last: bool, read: set[str], final: Stage) -> None:
    """Every output but the last stage's single one is read later: no dead stage, one output."""
    outputs = stage.output_columns()
    if last:
        if len(outputs) > 1:
            raise PipelineSpecError(
                f"the last stage writes the pipeline's output, one column; this one writes "
                f"{len(outputs)} ({listing(outputs)}): end with a VectorAssembler of them"
            )
        return
    unread = [col for col in outputs if col not in read]
    if unread:
        raise PipelineSpecError(
            f"output column(s) {listing(unread)} read by no later stage; the pipeline's output "
            f"is the last stage's ({final.output_columns()[0]}): remove the dead "
            "stage or column, or read it later"
        )


def _check_stage_columns(stage: Stage, written: dict[str, Stage], raw: dict[str, Stage]) -> None:
    """Check what one stage reads and writes against the columns before it; note new inputs."""
    for col in stage.input_columns():
        if col in written:
            _check_reads_written(stage, col, written[col])
        elif col in raw:
            _check_same_kind(stage, col, raw[col])
        elif stage.READS_INDICES:
            raise PipelineSpecError(
                f"{col} is an input column, but a {stage.TYPE} reads category indices; "
                f"index {col} with a StringIndexer first and encode its output"
            )
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
    if stage.READS_INDICES and not writer.WRITES_INDICES:
        raise PipelineSpecError(
            f"{col} is written by a {writer.TYPE}, but a {stage.TYPE} reads category indices; "
            "encode a StringIndexer's output"
        )
    if stage.READS_INDICES and stage.rejects_rows() and not writer.rejects_rows():
        raise PipelineSpecError(
            f"{col} keeps unseen categories (its {writer.TYPE} has handle_invalid keep), "
            f"which this {stage.TYPE} (handle_invalid error) would reject; set its "
            "handle_invalid to keep as well (an unseen category is then all zeros)"
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


MAX_DEPTH = 32  # lists and tables nested in a spec or a state document (a preset needs 4)


def _read_spec_file(path: Path) -> Any:
    """A TOML/JSON spec document (a UTF-8 byte order mark allowed), nested at most MAX_DEPTH."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        document = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except RecursionError:
        raise PipelineSpecError(
            f"{path}: cannot read pipeline spec: nested more than {MAX_DEPTH} levels deep"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problem = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise PipelineSpecError(f"{path}: cannot read pipeline spec: {problem}") from None
    check_depth(document, f"{path}: cannot read pipeline spec", error=PipelineSpecError)
    return document


def check_depth(document: Any, where: str, *, error: type[ChurnctlError]) -> None:
    """Refuse a parsed document nested deeper than MAX_DEPTH (walked without recursion)."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise error(f"{where}: nested more than {MAX_DEPTH} levels deep")
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict | list):
            pending.extend((child, depth + 1) for child in children)
