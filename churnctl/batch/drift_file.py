"""Drift of one input file against a state's training profile: the I/O around ``features.drift``.

The file is read with the same reader, options and input policy as ``score``, so a
value ``score`` would refuse is counted as ``score`` sees it (an unreadable number in
its column's missing share, an unknown label as unseen); malformed lines are counted
apart. Nothing is scored and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from churnctl.arguments import check_callable, check_path, check_type
from churnctl.errors import REFIT, NoProfileError
from churnctl.features.drift import DriftReport, drift_accumulator
from churnctl.features.input_policy import check_decimal, frame_from_batch
from churnctl.features.profile import ParsedColumns
from churnctl.features.state import FeatureState
from churnctl.io.sources import Progress, ReadOptions, open_source


@dataclass(frozen=True)
class FileDrift:
    """A file's drift report, and its lines too malformed to be parsed into rows."""

    input: str
    report: DriftReport
    malformed_lines: int = 0


def drift_file(
    input: str | Path,
    state: FeatureState,
    *,
    read_options: ReadOptions | None = None,
    decimal: str = ".",
    on_progress: Callable[[Progress], None] | None = None,
) -> FileDrift:
    """Compare ``input`` (CSV, CSV.gz, Parquet) with ``state``'s training profile.

    A state without a profile cannot judge: ``NoProfileError`` (refit it to record one).
    """
    check_path("drift_file", "input", input)
    check_type("drift_file", "state", state, FeatureState, "a FeatureState (load_state)")
    if read_options is not None:
        check_type("drift_file", "read_options", read_options, ReadOptions, "a ReadOptions")
    check_callable("drift_file", "on_progress", on_progress, "a function of a Progress")
    check_decimal(decimal)
    accumulator = drift_accumulator(state)
    if accumulator is None:
        raise NoProfileError(
            f"{state.source}: cannot judge drift: the state records no training profile "
            "(fitted before state format 2, or imported without training_data)",
            step=replace(REFIT, what="refit it to record one"),
        )
    schema = state.pipeline.input_schema
    malformed = 0
    source = open_source(str(input), schema.columns, read_options or ReadOptions())
    try:
        for part in source.batches:
            malformed += len(part.bad_lines)
            accumulator.observe(
                ParsedColumns.of(frame_from_batch(part.rows, schema, decimal=decimal))
            )
            if on_progress is not None:
                share = source.read_share
                fraction = share(accumulator.rows) if share is not None else None
                on_progress(Progress(accumulator.rows, fraction))
    finally:
        source.close()
    return FileDrift(str(input), accumulator.report(), malformed)
