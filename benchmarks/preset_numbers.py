"""The fitted numbers of a reference-pipeline state, read from its JSON as a user would.

The hand-written baselines (``floor.py``, ``record_loop.py``, ``sklearn_baseline.py``)
read the state's JSON themselves instead of using churnctl's stages: they stand for
what users write without churnctl. They cover the reference pipeline only
(StringIndexer, OneHotEncoder, VectorAssembler, StandardScaler); anything else is
refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PresetNumbers:
    """Labels per indexed column, one-hot columns, the assembled order, mean and std."""

    labels: dict[str, list[str]]  # input column -> its labels, index order
    indexed: dict[str, str]  # index output column -> its input column
    onehot: dict[str, str]  # one-hot output column -> its index column
    assembled: list[str]  # the VectorAssembler's inputs, in order
    mean: list[float]
    std: list[float]

    @classmethod
    def load(cls, state_path: str | Path) -> PresetNumbers:
        state = json.loads(Path(state_path).read_text(encoding="utf-8"))
        labels: dict[str, list[str]] = {}
        indexed: dict[str, str] = {}
        onehot: dict[str, str] = {}
        assembled: list[str] = []
        mean: list[float] = []
        std: list[float] = []
        for stage in state["stages"]:
            kind, params, fitted = stage["type"], stage["params"], stage.get("fitted", {})
            if kind == "StringIndexer":
                columns = zip(params["input_cols"], params["output_cols"], strict=True)
                for (source, out), names in zip(columns, fitted["labels"], strict=True):
                    labels[source], indexed[out] = list(names), source
            elif kind == "OneHotEncoder":
                onehot.update(zip(params["output_cols"], params["input_cols"], strict=True))
            elif kind == "VectorAssembler":
                assembled = list(params["input_cols"])
            elif kind == "StandardScaler":
                mean, std = fitted["mean"], fitted["std"]
            else:
                raise ValueError(f"the hand-written baselines do not cover a {kind} stage")
        return cls(labels, indexed, onehot, assembled, mean, std)

    @property
    def numeric(self) -> list[str]:
        """The assembled input columns read as numbers, in order."""
        return [c for c in self.assembled if c not in self.onehot and c not in self.indexed]

    @property
    def needed(self) -> list[str]:
        """Every input column the features read."""
        return [*self.labels, *self.numeric]
