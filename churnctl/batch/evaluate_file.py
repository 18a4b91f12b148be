"""Evaluating a model on a labelled file: read it, score it, pair each label with its raw.

The file is read with churnctl's own reader (``open_source``) and scored batch by batch
with a ``Scorer`` (``score_aligned``), exactly as ``score`` scores it; a rejected row
(or a malformed line) is counted and left out. The figures are ``scoring.metrics``'.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnctl.arguments import PATH, check_path, check_type
from churnctl.errors import Fix, InputError, UsageError
from churnctl.io.sources import Columns, ReadOptions, check_input, open_source
from churnctl.scoring.metrics import Metrics, metrics
from churnctl.scoring.scorer import Scorer

LABEL = "Exited"  # the bundled sample's and the public data set's label column


@dataclass(frozen=True)
class Evaluation:
    """The figures, and the rows they were computed on and left out."""

    input: str
    label: str
    metrics: Metrics
    rejected: int  # rows the scorer rejected and malformed lines: left out

    @property
    def read(self) -> int:
        return self.metrics.rows + self.rejected


@dataclass
class _Pairs:
    labels: list[np.ndarray] = field(default_factory=list)
    raw: list[np.ndarray] = field(default_factory=list)
    rejected: int = 0
    seen: int = 0  # data rows so far, for a bad label's row number


def evaluate_file(
    input: str,
    scorer: Scorer,
    *,
    label: str = LABEL,
    read_options: ReadOptions | None = None,
) -> Evaluation:
    """AUC, log-loss, the confusion matrix, precision and recall at the scorer's threshold,
    and the calibration table by decile, of ``scorer`` on ``input``'s ``label`` column."""
    check_path("evaluate_file", "input", input, PATH)
    check_type("evaluate_file", "scorer", scorer, Scorer, "a Scorer")
    check_label(label)
    options = read_options or ReadOptions()
    check_type("evaluate_file", "read_options", options, ReadOptions, "a ReadOptions")
    check_input(input)
    required = list(dict.fromkeys([*scorer.required_columns, label]))
    columns = Columns((*scorer.keep, label), every=scorer.keeps_all)
    source = open_source(input, required, options, columns=columns)
    pairs = _Pairs()
    try:
        for part in source.batches:
            _pair(pairs, part.rows, scorer, label, source.name)
            pairs.rejected += len(part.bad_lines)
    finally:
        source.close()
    labels = np.concatenate(pairs.labels) if pairs.labels else np.zeros(0, np.int8)
    raw = np.concatenate(pairs.raw) if pairs.raw else np.zeros(0, np.float32)
    if len(labels) == 0:
        raise InputError(f"{source.name}: no row was scored ({pairs.rejected:,} rejected)")
    return Evaluation(str(input), label, metrics(labels, raw, scorer.threshold), pairs.rejected)


def _pair(pairs: _Pairs, rows: pa.RecordBatch, scorer: Scorer, label: str, name: str) -> None:
    """Score one batch; keep each scored row's label and raw, count the rejected."""
    aligned = scorer.score_aligned(rows)
    valid = aligned.column("raw").is_valid()
    labels = binary_labels(rows.column(label), name, label, pairs.seen)
    pairs.seen += rows.num_rows
    keep = valid.to_numpy(zero_copy_only=False)
    pairs.rejected += int((~keep).sum())
    pairs.labels.append(labels[keep])
    pairs.raw.append(aligned.column("raw").filter(valid).to_numpy())


def binary_labels(column: pa.Array, name: str, label: str, before: int = 0) -> np.ndarray:
    """A label column as 0/1 (numbers 0 and 1, true/false, or their text), else one error."""
    if pa.types.is_boolean(column.type):
        values = column
    elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        values = pc.cast(column, pa.float64())
    else:
        values = _parsed(pc.utf8_trim_whitespace(pc.cast(column, pa.string())))
    numbers = values.to_numpy(zero_copy_only=False).astype(np.float64)
    bad = np.flatnonzero(~np.isin(numbers, (0.0, 1.0)))  # null (NaN) included
    if len(bad):
        first = column[int(bad[0])].as_py()
        raise InputError(
            f"{name}: label column {label!r} must hold 0 or 1 on every row; data row "
            f"{before + int(bad[0]) + 1:,} holds {first!r} ({len(bad):,} such rows in its batch)",
            fix=Fix("label", LABEL, "naming the column that holds 0 or 1"),
        )
    return numbers.astype(np.int8)


def _parsed(text: pa.Array) -> pa.Array:
    """Text labels as numbers: ``0``/``1`` (``1.0`` too), ``true``/``false``; else NaN."""
    lowered = pc.utf8_lower(text)
    words = pc.if_else(
        pc.equal(lowered, "true"), "1", pc.if_else(pc.equal(lowered, "false"), "0", text)
    )
    numeric = pc.match_substring_regex(words, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
    cleaned = pc.if_else(numeric, words, pa.scalar(None, pa.string()))
    return pc.cast(cleaned, pa.float64())


def check_label(label: str) -> str:
    """A label column name: refuse the empty name."""
    if not isinstance(label, str) or not label:
        raise UsageError("label names the column that holds 0 or 1", fix=Fix("label", LABEL))
    return label
