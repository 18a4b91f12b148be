"""A column batch flowing through the feature pipeline, with per-row rejections.

Rejected rows keep flowing (with placeholder values) so every stage stays
vectorised; the first reason recorded for a row wins, and the scorer drops
rejected rows at the end and reports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

Column = np.ndarray | pa.Array


@dataclass
class Frame:
    """Named columns of equal length plus the rows rejected so far."""

    columns: dict[str, Column]
    n_rows: int
    rejected: np.ndarray = field(init=False)
    reject_column: np.ndarray | None = field(init=False, default=None)
    reject_reason: np.ndarray | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.rejected = np.zeros(self.n_rows, dtype=bool)

    @classmethod
    def from_columns(cls, columns: Mapping[str, Column]) -> Frame:
        """Build a frame, checking that all columns have the same length."""
        lengths = {len(col) for col in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns have different lengths: {sorted(lengths)}")
        return cls(dict(columns), lengths.pop() if lengths else 0)

    def __getitem__(self, name: str) -> Column:
        return self.columns[name]

    def __setitem__(self, name: str, values: Column) -> None:
        self.columns[name] = values

    def reject(self, mask: np.ndarray, column: str | None, reason: str | np.ndarray) -> None:
        """Reject the rows in ``mask`` for ``column``; a row's first reason wins."""
        fresh = mask & ~self.rejected
        if not fresh.any():
            return
        if self.reject_reason is None:
            self.reject_column = np.full(self.n_rows, None, dtype=object)
            self.reject_reason = np.full(self.n_rows, None, dtype=object)
        self.reject_column[fresh] = column
        self.reject_reason[fresh] = reason[fresh] if isinstance(reason, np.ndarray) else reason
        self.rejected |= fresh

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of the rows not rejected."""
        return ~self.rejected

    def rows(self, start: int, stop: int) -> Frame:
        """Rows ``start .. stop - 1`` as a frame of views, with their rejections so far."""
        part = Frame({name: col[start:stop] for name, col in self.columns.items()}, stop - start)
        part.rejected = self.rejected[start:stop].copy()
        if self.reject_reason is not None and self.reject_column is not None:
            part.reject_column = self.reject_column[start:stop].copy()
            part.reject_reason = self.reject_reason[start:stop].copy()
        return part

    def take_rejections(self, part: Frame, start: int) -> None:
        """Record the rejections of ``part``, the frame's rows from ``start`` on."""
        stop = start + part.n_rows
        fresh = part.rejected & ~self.rejected[start:stop]
        if not fresh.any() or part.reject_column is None or part.reject_reason is None:
            return
        if self.reject_reason is None or self.reject_column is None:
            self.reject_column = np.full(self.n_rows, None, dtype=object)
            self.reject_reason = np.full(self.n_rows, None, dtype=object)
        self.reject_column[start:stop][fresh] = part.reject_column[fresh]
        self.reject_reason[start:stop][fresh] = part.reject_reason[fresh]
        self.rejected[start:stop] |= fresh
