"""The pipeline's column graph: what each stage reads and writes, checked once, by kind.

A column is raw input (category text or a number) until a stage writes it; then it
is one number per row or a vector, as the stage declares. The raw inputs found on
the way are the pipeline's input schema.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from churnctl.errors import PipelineSpecError, listing
from churnctl.features.input_policy import InputSchema
from churnctl.features.stages import Stage


def input_schema_of(stages: list[Stage]) -> InputSchema:
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
