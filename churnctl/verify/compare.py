"""Each runtime's outcome against the reference's (``score_file``): the report of a run."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from churnctl.batch.counts import RowCounts
from churnctl.verify.runtimes import FAILED, RAN, Outcome

TOLERANCE = 1e-6  # max |Δ raw| a runtime may differ from the reference by


@dataclass(frozen=True)
class RuntimeResult:
    """One runtime against the reference; ``agrees`` is None when it did not run."""

    runtime: str
    status: str  # ran, skipped, failed
    reason: str | None
    rows: RowCounts  # rows this runtime scored and rejected
    max_delta: float | None  # max |Δ raw| over the rows both scored
    flipped: int  # rows both scored whose decision (exited) differs
    missing: int  # rows the reference scored and this runtime did not
    extra: int  # rows this runtime scored and the reference did not (or twice)
    same_rejects: bool | None  # the same (line, column, reason) rejects (fused: lines), as often
    agrees: bool | None
    seconds: float


@dataclass(frozen=True)
class VerifyReport:
    """Every runtime's result, the sample's size and the tolerance they were held to."""

    input: str
    rows: int
    tolerance: float
    results: tuple[RuntimeResult, ...]

    @property
    def disagreeing(self) -> list[RuntimeResult]:
        """The runtimes that failed or differ from the reference."""
        return [r for r in self.results if r.status == FAILED or r.agrees is False]

    @property
    def passed(self) -> bool:
        return not self.disagreeing


def compare(reference: Outcome, other: Outcome, tolerance: float) -> RuntimeResult:
    """``other`` against ``reference``: rows, rejects, max |Δ raw|, decisions flipped."""
    if other.status != RAN:
        return _not_run(other)
    common = reference.scored.keys() & other.scored.keys()
    deltas = [abs(reference.scored[r][0] - other.scored[r][0]) for r in common]
    flipped = sum(reference.scored[r][1] != other.scored[r][1] for r in common)
    missing = len(reference.scored.keys() - other.scored.keys())
    extra = other.rows - len(common)
    same_rejects = _rejects(reference, other.lines_only) == _rejects(other, other.lines_only)
    max_delta = max(deltas) if deltas else None
    within = max_delta is None or max_delta <= tolerance
    agrees = within and same_rejects and not missing and not extra and not flipped
    return RuntimeResult(
        runtime=other.name,
        status=other.status,
        reason=other.reason,
        rows=RowCounts.of(other.rows, len(other.rejects)),
        max_delta=max_delta,
        flipped=flipped,
        missing=missing,
        extra=extra,
        same_rejects=same_rejects,
        agrees=agrees,
        seconds=other.seconds,
    )


def _rejects(outcome: Outcome, lines_only: bool) -> Counter[object]:
    """The rejects, as many times each; by line alone for a runtime that names no column."""
    if lines_only:
        return Counter(line for line, _, _ in outcome.rejects)
    return Counter(outcome.rejects)


def _not_run(outcome: Outcome) -> RuntimeResult:
    return RuntimeResult(
        runtime=outcome.name,
        status=outcome.status,
        reason=outcome.reason,
        rows=RowCounts(),
        max_delta=None,
        flipped=0,
        missing=0,
        extra=0,
        same_rejects=None,
        agrees=None,
        seconds=outcome.seconds,
    )
