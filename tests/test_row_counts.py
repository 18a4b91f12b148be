"""RowCounts: the one owner of row counts; every runtime's counts add up the same way."""

from __future__ import annotations

import ast
import dataclasses
import functools
import operator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from churnctl.batch.counts import RowCounts

counts = st.builds(RowCounts.of, st.integers(0, 10**12), st.integers(0, 10**12))


@given(st.lists(counts, max_size=20))
def test_a_sum_of_counts_is_the_sum_of_each_count_and_still_adds_up(parts: list[RowCounts]) -> None:
    total = functools.reduce(operator.add, parts, RowCounts())
    assert total == sum(parts, RowCounts())
    assert (total.read, total.scored, total.rejected) == tuple(
        sum(getattr(p, name) for p in parts) for name in ("read", "scored", "rejected")
    )
    assert total.read == total.scored + total.rejected


@pytest.mark.parametrize("read, scored, rejected", [(1, 0, 0), (0, 1, 0), (5, 4, 2), (3, 4, -1)])
def test_counts_that_do_not_add_up_are_refused(read: int, scored: int, rejected: int) -> None:
    with pytest.raises(ValueError, match=r"rows read is not .* scored"):
        RowCounts(read, scored, rejected)


def test_counts_are_frozen_and_add_only_counts() -> None:
    counts = RowCounts.of(4, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        counts.read = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        counts + 1  # type: ignore[operator]
    assert (counts.per_second(2.0), counts.per_second(0.0)) == (2.5, 0.0)


# Records of a file format, not counts of a run: a manifest row (its SQL columns) and a
# Flink ``files/`` record (its CSV columns).
RECORDS = {("watch/manifest.py", "Entry"), ("flink/scoring.py", "FileCounts")}


def test_no_other_class_counts_rows_its_own_way() -> None:
    """Row counts have one owner: no class grows its own rows_read / rows_scored again."""
    package = Path(__file__).resolve().parents[1] / "churnctl"
    own_ways = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            names = {
                n.target.id
                for n in node.body
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
            }
            names |= {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
            where = (path.relative_to(package).as_posix(), node.name)
            if names & {"rows_read", "rows_scored", "rows_rejected"} and where not in RECORDS:
                own_ways.append(where)
    assert own_ways == []
