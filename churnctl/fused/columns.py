"""The columns of the feature subgraph as it is built: what each stage emitter reads and writes."""

from __future__ import annotations

import numpy as np

from churnctl.errors import PipelineSpecError
from churnctl.fused.builder import GraphBuilder


class FeatureGraph:
    """The columns written so far (float64 [N, width]) and the validity flags gathered."""

    def __init__(self, builder: GraphBuilder) -> None:
        self.builder = builder
        self.columns: dict[str, tuple[str, int]] = {}
        self.texts: dict[str, str] = {}
        self.flags: list[str] = []  # bool [N] each; a row is valid where all are true
        self._flat_shape = builder.const(np.array([-1], dtype=np.int64), "flat-shape")
        self._column_shape = builder.const(np.array([-1, 1], dtype=np.int64), "column-shape")

    def text(self, name: str) -> str:
        """A category column as strings [N]."""
        return self.texts[name]

    def column(self, name: str) -> str:
        """A numeric column as float64 [N, width]."""
        if name not in self.columns:
            raise PipelineSpecError(f"the fused export found no numeric column {name}")
        return self.columns[name][0]

    def set_column(self, name: str, tensor: str, width: int) -> None:
        self.columns[name] = (tensor, width)

    def require(self, flag: str) -> None:
        """Rows where ``flag`` (bool [N]) is false are invalid."""
        self.flags.append(flag)

    def flat(self, tensor: str, hint: str) -> str:
        return self.builder.op("Reshape", [tensor, self._flat_shape], hint)

    def as_column(self, tensor: str, hint: str) -> str:
        return self.builder.op("Reshape", [tensor, self._column_shape], f"{hint}-column")
