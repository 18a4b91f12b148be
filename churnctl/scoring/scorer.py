"""``Scorer``: scoring as a pure function of (state, model, record batch), for every runtime.

A ``Scorer`` is built once from a fitted state and an ONNX model; the binding
check (``binding.check_pair``) runs there, so a mismatched pair is refused
before any row is read. It then takes a pyarrow ``RecordBatch`` or ``Table``,
or a pandas ``DataFrame``, and offers three views of the same computation:

* ``features(batch)``: the float32 matrix, the valid-row mask, and per row the
  column and reason of a rejection;
* ``score(batch)``: the scored rows, and the rejected rows apart;
* ``score_aligned(batch)``: one output row per input row, in input order, with
  ``raw``/``exited`` null where the row was rejected (what a Flink UDF needs).

It pickles as its settings plus the state's JSON text and the model's bytes;
the ONNX Runtime session is opened lazily in the process that scores, with
``threads`` intra-op threads (use 1 in pool workers and Flink tasks).
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from churnctl.arguments import PATH, check_bool, check_type, wrong
from churnctl.errors import Fix, FixedBatchWarning, UsageError
from churnctl.features.extraction import FeatureBatch, extract_features, rejected_rows
from churnctl.features.input_policy import Batch, BatchLike, arrow_batch, check_decimal
from churnctl.features.profile import ParsedColumns
from churnctl.features.state import FeatureState, load_state, state_from_text
from churnctl.scoring.binding import PairCheck, check_pair, short
from churnctl.scoring.kept import kept_array, kept_type
from churnctl.scoring.model import ChurnModel, check_threads

if TYPE_CHECKING:
    import pandas as pd

REJECT_FIELDS = [pa.field("reject_column", pa.string()), pa.field("reject_reason", pa.string())]
# Columns every scorer writes itself: a kept input column may not take their names.
OWN_COLUMNS = ("raw", "exited", *(field.name for field in REJECT_FIELDS))
NOT_FINITE_OUTPUT = "model output not finite"
KEEP_ALL = "*"  # keep every column of the input, in its order
STATE_TAKES = f"a FeatureState or {PATH} to a state file"
MODEL_TAKES = f"a ChurnModel, {PATH} to an ONNX model, or the model's bytes"


@dataclass(frozen=True)
class ScoredBatch:
    """Scored rows (kept columns, ``raw``, ``exited``) and rejected rows of one batch."""

    scored: pa.Table
    rejects: pa.Table  # ROW_REJECT_SCHEMA; ``row`` is 0-based within the batch
    # the batch's raw columns as typed for scoring, for observers (features.drift)
    parsed: ParsedColumns | None = field(default=None, compare=False, repr=False)

    @property
    def n_read(self) -> int:
        return self.scored.num_rows + self.rejects.num_rows


def output_schema(keep: Sequence[str], types: Mapping[str, pa.DataType] | None = None) -> pa.Schema:
    """Schema of scored rows: the kept columns (of ``types``, else text), the probability,
    the decision."""
    fields = [pa.field(name, (types or {}).get(name, pa.string())) for name in keep]
    return pa.schema([*fields, pa.field("raw", pa.float32()), pa.field("exited", pa.bool_())])


def aligned_schema(
    keep: Sequence[str], types: Mapping[str, pa.DataType] | None = None
) -> pa.Schema:
    """Schema of ``score_aligned``: the output schema plus the reject column and reason."""
    return pa.schema([*output_schema(keep, types), *REJECT_FIELDS])


@dataclass(frozen=True)
class ScorerOptions:
    """How a ``Scorer`` scores, apart from its state and model: one group for every runtime.

    ``score``, ``watch`` and ``flink-submit`` build their scorers from it (``scorer_from``),
    and the Flink job spec carries each of its fields, so an option added here reaches
    every runtime. Checked when a ``Scorer`` is built from it.
    """

    keep: tuple[str, ...] = ("CustomerId",)
    threshold: float = 0.5
    allow_state_mismatch: bool = False
    logits: bool = False
    decimal: str = "."

    def __post_init__(self) -> None:
        """Each option checked as the ``Scorer`` checks it; ``keep`` becomes a tuple."""
        given = {name: getattr(self, name) for name in self.names()}
        for name, value in _checked_options("ScorerOptions", **given).items():
            object.__setattr__(self, name, value)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in fields(cls))


def scorer_from(
    state: FeatureState | str | Path,
    model: ChurnModel | str | Path | bytes,
    options: ScorerOptions,
    *,
    threads: int | None = None,
) -> Scorer:
    """A ``Scorer`` of ``state`` and ``model`` with ``options`` (``threads``: see ``Scorer``)."""
    check_type("scorer_from", "options", options, ScorerOptions, "a ScorerOptions")
    return Scorer(state, model, threads=threads, **asdict(options))


class Scorer:
    """One picklable, row-aligned scoring object: a state and a model checked to fit."""

    def __init__(
        self,
        state: FeatureState | str | Path,
        model: ChurnModel | str | Path | bytes,
        *,
        keep: Sequence[str] = ("CustomerId",),
        threshold: float = 0.5,
        allow_state_mismatch: bool = False,
        threads: int | None = None,
        logits: bool = False,
        decimal: str = ".",
    ) -> None:
        """Load what is given as a path, then refuse a model and state that do not fit.

        ``threads``: ONNX Runtime intra-op threads wherever the model is opened
        (default: those of a given ``ChurnModel``, else 0, ONNX Runtime's choice), and
        how many batches ``score_file`` scores at once (0: one per usable core, at most 4).
        ``logits``: the model outputs log-odds; ``raw`` is their sigmoid.
        ``decimal``: the decimal mark of numbers written as text, ``.`` or ``,``.
        ``keep``: the input columns copied to the output, each of its own type (see
        ``scoring.kept``; ``with_kept_types`` fixes them); ``("*",)`` keeps every column
        of each batch (``kept_columns``), ``()`` none.
        """
        _check_pair_arguments(state, model)
        checked = _checked_options(
            "Scorer",
            keep=keep,
            threshold=threshold,
            allow_state_mismatch=allow_state_mismatch,
            logits=logits,
            decimal=decimal,
        )
        self.keep, self.threshold = checked["keep"], checked["threshold"]
        self.decimal = checked["decimal"]
        if threads is None:
            threads = model.threads if isinstance(model, ChurnModel) else 0
        threads = check_threads(threads)
        self.state = state if isinstance(state, FeatureState) else load_state(Path(state))
        opened = model if isinstance(model, ChurnModel) else ChurnModel(model, threads=threads)
        if logits:
            opened.check_logits()
        self.threads, self.logits = threads, logits
        self.allow_state_mismatch = allow_state_mismatch
        self.check: PairCheck = check_pair(opened, self.state, allow_mismatch=allow_state_mismatch)
        self._model_bytes, self._model_name = opened.data, opened.name
        self._model: ChurnModel | None = opened
        # each kept column's output type, fixed for a file output; None: each batch's own
        self.kept_types: dict[str, pa.DataType] | None = None

    @property
    def model(self) -> ChurnModel:
        """The ONNX model, its session opened on first use in this process."""
        if self._model is None:
            with warnings.catch_warnings():  # noted once, when this scorer was built
                warnings.simplefilter("ignore", FixedBatchWarning)
                self._model = ChurnModel(
                    self._model_bytes, threads=self.threads, name=self._model_name
                )
        return self._model

    @property
    def model_name(self) -> str:
        """The model's path as given (or ``<model bytes>``)."""
        return self._model_name

    @property
    def model_digest(self) -> str:
        """SHA-256 of the model's bytes."""
        return hashlib.sha256(self._model_bytes).hexdigest()

    @property
    def keeps_all(self) -> bool:
        """Whether every input column is kept (``keep=("*",)``)."""
        return self.keep == (KEEP_ALL,)

    @property
    def required_columns(self) -> list[str]:
        """The input columns a batch must hold: the state's inputs, then the kept columns."""
        kept = () if self.keeps_all else self.keep
        return list(dict.fromkeys([*self.state.pipeline.input_schema.columns, *kept]))

    def kept_columns(self, columns: Sequence[str]) -> tuple[str, ...]:
        """The columns kept from an input whose columns are ``columns`` (all of them for ``*``)."""
        return _checked_keep(columns, every=True) if self.keeps_all else self.keep

    @property
    def options(self) -> ScorerOptions:
        """This scorer's options (``keep`` as given: ``*`` is not spelled out)."""
        return ScorerOptions(**{name: getattr(self, name) for name in ScorerOptions.names()})

    def keeping(self, columns: Sequence[str]) -> Scorer:
        """This scorer with ``*`` spelled out as ``columns``: for outputs that share one schema."""
        if not self.keeps_all:
            return self
        return self._with(keep=self.kept_columns(columns))

    def with_kept_types(self, types: Mapping[str, pa.DataType]) -> Scorer:
        """This scorer writing each kept column as ``types`` says (a column it does not
        name, and a type no output holds, as text): for an output whose schema is fixed
        before its first row. ``{}`` writes every kept column as text."""
        takes = "a mapping of column names to pyarrow types"
        check_type("Scorer.with_kept_types", "types", types, Mapping, takes)
        if not all(isinstance(kind, pa.DataType) for kind in types.values()):
            raise wrong("Scorer.with_kept_types", "types", types, takes)
        if self.keeps_all:
            raise UsageError("name the kept columns (Scorer.keeping) before fixing their types")
        return self._with(
            kept_types={name: kept_type(types.get(name, pa.string())) for name in self.keep}
        )

    def _with(self, **changes: Any) -> Scorer:
        """This scorer with ``changes``, sharing its state and its open model (``copy.copy``
        would go through ``__getstate__``: parse the state and open the model again)."""
        derived = object.__new__(type(self))  # a subclass stays itself
        derived.__dict__.update(self.__dict__, **changes)
        return derived

    def _kept(self, table: Batch, name: str) -> pa.Array:
        """A kept column as the output holds it."""
        kind = None if self.kept_types is None else self.kept_types.get(name, pa.string())
        return kept_array(table.column(name), kind)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "state": self.state.dumps(),
            "state_source": self.state.source,
            "model": self._model_bytes,
            "model_name": self._model_name,
            "keep": self.keep,
            "threshold": self.threshold,
            "threads": self.threads,
            "logits": self.logits,
            "decimal": self.decimal,
            "allow_state_mismatch": self.allow_state_mismatch,
            "check": self.check,
            "kept_types": self.kept_types,
        }

    def __setstate__(self, settings: dict[str, Any]) -> None:
        self.state = state_from_text(settings["state"], source=settings["state_source"])
        self._model_bytes, self._model_name = settings["model"], settings["model_name"]
        self._model = None
        self.keep, self.threshold = settings["keep"], settings["threshold"]
        self.threads, self.logits = settings["threads"], settings["logits"]
        self.decimal = settings.get("decimal", ".")  # a Scorer pickled before the setting
        self.allow_state_mismatch = settings["allow_state_mismatch"]
        self.check = settings["check"]
        self.kept_types = settings.get("kept_types")  # a Scorer pickled before the setting

    def features(self, batch: BatchLike) -> FeatureBatch:
        """The float32 feature matrix, the valid-row mask and each row's reject column/reason."""
        return extract_features(self.state, self._arrow(batch), decimal=self.decimal)

    def score(self, batch: BatchLike) -> ScoredBatch:
        """Scored rows and rejected rows; together they hold every input row once."""
        table = self._arrow(batch)
        features, raw = self._predict(table)
        valid = pa.array(features.valid)
        keep = self.kept_columns(table.schema.names)
        kept = [self._kept(table, name).filter(valid) for name in keep]
        raw = raw[features.valid].astype(np.float32)
        columns = [*kept, pa.array(raw, pa.float32()), pa.array(raw > self.threshold)]
        types = {name: column.type for name, column in zip(keep, kept, strict=True)}
        scored = pa.Table.from_arrays(columns, schema=output_schema(keep, types))
        return ScoredBatch(scored, rejected_rows(table, features), features.parsed)

    def score_aligned(self, batch: BatchLike) -> pa.Table:
        """One row per input row, in input order: kept columns, raw, exited, reject reason."""
        table = self._arrow(batch)
        keep = self.kept_columns(table.schema.names)
        features, raw = self._predict(table)
        raw = np.where(features.valid, raw, 0.0).astype(np.float32)
        missing = ~features.valid
        kept = [self._kept(table, name) for name in keep]
        columns = [
            *kept,
            pa.array(raw, pa.float32(), mask=missing),
            pa.array(raw > self.threshold, pa.bool_(), mask=missing),
            features.reject_column,
            features.reject_reason,
        ]
        types = {name: column.type for name, column in zip(keep, kept, strict=True)}
        return pa.Table.from_arrays(columns, schema=aligned_schema(keep, types))

    def predict_proba(self, batch: BatchLike) -> np.ndarray:
        """Class probabilities as scikit-learn gives them: float64 [N, 2], one row per input
        row in input order (column 1 is ``raw``, column 0 is 1 - ``raw``); NaN rows where
        the row was rejected (``score_aligned`` says why)."""
        _, raw = self._predict(self._arrow(batch))
        positive = raw.astype(np.float32).astype(np.float64)  # the value ``raw`` holds
        return np.column_stack([1.0 - positive, positive])

    def predict(self, batch: BatchLike) -> pd.DataFrame:
        """``score_aligned`` as a pandas DataFrame: a DataFrame in, a DataFrame out (MLflow
        pyfunc's convention), on the input's own index (a RangeIndex for Arrow input).

        Columns: the kept columns (as the input holds them), ``raw`` (float32, NaN where
        rejected), ``exited`` (pandas' nullable boolean), ``reject_column``, ``reject_reason``.
        """
        import pandas as pd

        aligned = self.score_aligned(batch)
        frame = aligned.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
        keep = self.kept_columns(aligned.schema.names[: -len(OWN_COLUMNS)])
        if isinstance(batch, pd.DataFrame):
            frame.index = batch.index
            for name in keep:
                frame[name] = batch[name].array  # by position: the index may repeat
        else:
            for name in keep:
                frame[name] = batch.column(name).to_pandas()
        return frame

    def __repr__(self) -> str:
        names = self.state.feature_names
        status = self.check.status.value
        keep = ", ".join(self.keep) or "none"
        return (
            f"<Scorer {len(names)} features, {len(self.state.pipeline.stages)} stages, state "
            f"{short(self.state.fingerprint)}, model {self._model_name} ({status}), "
            f"threshold {self.threshold:g}, keep {keep}>"
        )

    def _predict(self, table: Batch) -> tuple[FeatureBatch, np.ndarray]:
        """Features and each row's probability (NaN where rejected); non-finite output rejects."""
        features = self.features(table)
        rows = np.flatnonzero(features.valid)
        raw = np.full(table.num_rows, np.nan)
        matrix = features.matrix if len(rows) == len(raw) else features.matrix[rows]  # no copy
        raw[rows] = self.model.predict_proba(matrix, logits=self.logits, rows=rows)
        return features.rejecting(np.isnan(raw), None, NOT_FINITE_OUTPUT), raw

    def _arrow(self, batch: BatchLike) -> Batch:
        """The batch as Arrow, checked to hold every required column."""
        return arrow_batch(batch, self.required_columns, kept=self.keep)


def _check_pair_arguments(state: Any, model: Any) -> None:
    check_type("Scorer", "state", state, (FeatureState, str, os.PathLike), STATE_TAKES)
    check_type("Scorer", "model", model, (ChurnModel, str, os.PathLike, bytes), MODEL_TAKES)


def _checked_options(
    function: str,
    *,
    keep: Sequence[str],
    threshold: Any,
    allow_state_mismatch: Any,
    logits: Any,
    decimal: Any,
) -> dict[str, Any]:
    """The scoring options, each checked (one line naming it), ``keep`` as a tuple: the one
    check of ``Scorer`` and ``ScorerOptions`` alike."""
    check_bool(function, "allow_state_mismatch", allow_state_mismatch)
    check_bool(function, "logits", logits)
    return {
        "keep": _checked_keep(keep),
        "threshold": _checked_threshold(threshold),
        "allow_state_mismatch": allow_state_mismatch,
        "logits": logits,
        "decimal": check_decimal(decimal),
    }


def _checked_keep(keep: Sequence[str], *, every: bool = False) -> tuple[str, ...]:
    """Column names to keep (``every``: an input's columns, all kept for ``*``), checked."""
    listed = isinstance(keep, Sequence) and not isinstance(keep, str | bytes)
    if not listed or not all(isinstance(k, str) and (k or every) for k in keep):
        raise wrong("Scorer", "columns" if every else "keep", keep, "a list of column names")
    if KEEP_ALL in keep and len(keep) > 1 and not every:
        raise UsageError(
            f"keep {KEEP_ALL!r} keeps every input column: name no other column beside it",
            fix=Fix("keep", KEEP_ALL),
        )
    clash = [name for name in keep if name in OWN_COLUMNS]
    if clash:
        why = "the input has a column" if every else "cannot keep column"
        raise UsageError(
            f"{why} '{clash[0]}': the scorer writes its own '{clash[0]}' column "
            f"({', '.join(OWN_COLUMNS)} are reserved); name the columns to keep, or rename "
            "it in the input",
            fix=Fix("keep", "CustomerId"),
        )
    return tuple(dict.fromkeys(keep))


def _checked_threshold(threshold: Any) -> float:
    number = isinstance(threshold, Real) and not isinstance(threshold, bool)
    if not (number and math.isfinite(threshold) and 0 <= threshold <= 1):
        raise UsageError(
            f"threshold must be a number from 0 to 1 (exited = raw > threshold), got {threshold!r}",
            fix=Fix("threshold", "0.5"),
        )
    return float(threshold)
