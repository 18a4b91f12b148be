"""Row counts, the one owner of "every row read ends scored or rejected".

Every runtime counts with ``RowCounts``: one file (``score_file``), many files
(``score_files``), the watcher (its events, its report and its manifest) and the
Flink job's ``files/`` records. A run's counts are the sum of its files' counts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RowCounts:
    """Rows read, scored and rejected: never negative, and ``read == scored + rejected``."""

    read: int = 0
    scored: int = 0
    rejected: int = 0

    def __post_init__(self) -> None:
        if min(self.scored, self.rejected) < 0 or self.read != self.scored + self.rejected:
            raise ValueError(
                f"{self.read} rows read is not {self.scored} scored + {self.rejected} rejected"
            )

    @classmethod
    def of(cls, scored: int, rejected: int) -> RowCounts:
        """The counts of ``scored`` rows scored and ``rejected`` rejected."""
        return cls(scored + rejected, scored, rejected)

    def __add__(self, other: object) -> RowCounts:
        if not isinstance(other, RowCounts):
            return NotImplemented
        return RowCounts.of(self.scored + other.scored, self.rejected + other.rejected)

    def per_second(self, seconds: float) -> float:
        """Rows read per second over ``seconds`` (0 for no time at all)."""
        return self.read / seconds if seconds > 0 else 0.0
