"""Feature helpers the tests need and the package does not (moved out of churnctl.features)."""

from __future__ import annotations

import numpy as np

from churnctl.features.extraction import FeatureBatch
from churnctl.features.moments import Moments
from churnctl.features.stages import moments_mean_and_std


def mean_and_std(matrix: np.ndarray, *, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """Column means and stds in float64 with a corrected two-pass method, as a scaler fits them.

    Pass one: the mean, refined by the mean residual (so a constant column gets
    its exact value and std 0). Pass two: squared deviations, scaled by the
    largest deviation so that huge magnitudes do not overflow.
    """
    return moments_mean_and_std(Moments.of(matrix) if matrix.shape[0] else None, ddof=ddof)


def feature_rows(features: FeatureBatch, start: int, length: int) -> FeatureBatch:
    """Rows ``start .. start + length - 1`` of a feature batch."""
    end = start + length
    return FeatureBatch(
        features.matrix[start:end],
        features.valid[start:end],
        features.reject_column.slice(start, length),
        features.reject_reason.slice(start, length),
    )
