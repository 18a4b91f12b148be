"""Column means and standard deviations gathered batch by batch, in float64.

``Moments.of(batch)`` summarises a batch with the corrected two-pass method;
``merged`` combines two summaries with Chan et al.'s parallel update (the
Welford-style ``(n, mean, M2)`` merge). Two details keep the result equal to a
two-pass computation over all rows, within a few units in the last place:

- the mean is kept as an unevaluated sum ``hi + lo`` (a double-double), so the
  difference of two batch means, on which the merge rests, stays exact even
  when both are large (an offset of 1e9 with small noise);
- the sum of squared deviations ``M2`` is stored as ``scale² · ssq`` (so that
  huge values do not overflow), measured, as the two-pass method measures it,
  from the mean rounded to float64.

A summary of a single batch, never merged, gives bit for bit the two-pass result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Moments:
    """Per-column count, mean (``hi + lo``) and squared deviations (``scale² · ssq``)."""

    n: int
    hi: np.ndarray
    lo: np.ndarray
    scale: np.ndarray
    ssq: np.ndarray  # scale² · ssq = Σ (x - fl(hi + lo))²
    constant: np.ndarray  # every value of the column equals ``first``
    first: np.ndarray

    @classmethod
    def of(cls, matrix: np.ndarray) -> Moments:
        """Summarise ``matrix`` [n ≥ 1, k] (one batch) with the corrected two-pass method."""
        n = matrix.shape[0]
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: inf, refused by the caller
            hi = (matrix / n).sum(axis=0)
            lo = (matrix - hi).sum(axis=0) / n
            first = matrix[0].copy()
            constant = (matrix == first).all(axis=0)
            hi[constant], lo[constant] = first[constant], 0.0
            deviations = matrix - (hi + lo)
            largest = np.abs(deviations).max(axis=0)
            unit = np.where(largest > 0, largest, 1.0)
            ssq = ((deviations / unit) ** 2).sum(axis=0)
        return cls(n, hi, lo, largest, ssq, constant, first)

    @property
    def mean(self) -> np.ndarray:
        """The column means, rounded to float64."""
        return self.hi + self.lo

    def std(self, ddof: int) -> np.ndarray:
        """The column standard deviations with ``n - ddof`` degrees of freedom (0 if constant)."""
        with np.errstate(over="ignore", invalid="ignore"):
            std = self.scale * np.sqrt(self.ssq / (self.n - ddof))
        std[self.constant] = 0.0
        return std

    def merged(self, other: Moments) -> Moments:
        """The summary of both batches' rows together (Chan et al.'s pairwise update)."""
        n = self.n + other.n
        with np.errstate(over="ignore", invalid="ignore"):
            delta = (other.hi - self.hi) + (other.lo - self.lo)
            hi, lo = _two_sum(self.hi, self.lo + delta * (other.n / n))
            squares = [
                (self.scale, self.ssq),
                (other.scale, other.ssq),
                (np.abs(delta) * np.sqrt(self.n * (other.n / n)), 1.0),
                (_rounding(hi, lo) * np.sqrt(n), 1.0),
            ]
            removed = [(_rounding(m.hi, m.lo) * np.sqrt(m.n), 1.0) for m in (self, other)]
            scale, ssq = _sum_of_squares(squares, removed)
        constant = self.constant & other.constant & (self.first == other.first)
        return Moments(n, hi, lo, scale, ssq, constant, self.first)


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a + b`` as its float64 rounding and the exact rounding error (Knuth's TwoSum)."""
    total = a + b
    b_part = total - a
    return total, (a - (total - b_part)) + (b - b_part)


def _rounding(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """How far the float64 mean ``fl(hi + lo)`` is from the exact ``hi + lo``."""
    return np.abs((hi - (hi + lo)) + lo)


def _sum_of_squares(
    added: list[tuple[np.ndarray, np.ndarray | float]],
    removed: list[tuple[np.ndarray, np.ndarray | float]],
) -> tuple[np.ndarray, np.ndarray]:
    """Σ scale²·ssq of ``added`` minus that of ``removed``, as (scale, ssq), never below 0.

    ``M2`` about the float64 mean is ``M2`` about the exact mean plus ``n · rounding²``:
    the merge removes each part's rounding term and adds the merged mean's.
    """
    scale = np.maximum.reduce([np.asarray(s) for s, _ in added + removed])
    unit = np.where(scale > 0, scale, 1.0)
    total = sum(ssq * (s / unit) ** 2 for s, ssq in added)
    total = total - sum(ssq * (s / unit) ** 2 for s, ssq in removed)
    return scale, np.maximum(total, 0.0)
