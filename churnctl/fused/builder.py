"""A graph under construction: nodes, constants and unique tensor names, with ``onnx.helper``."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

ML = "ai.onnx.ml"
DOUBLE, FLOAT = TensorProto.DOUBLE, TensorProto.FLOAT


class GraphBuilder:
    """Collects nodes and initializers; each ``op`` returns its (unique) output name.

    ``opset``: the lowest ``ai.onnx`` version the nodes added need (raised by ``needs``).
    """

    def __init__(self, prefix: str = "features/") -> None:
        self.prefix = prefix
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.opset = 13
        self._used: dict[str, int] = {}

    def name(self, hint: str) -> str:
        """A tensor name no other in this graph has: the prefix, the hint, a number if needed."""
        count = self._used.get(hint, 0)
        self._used[hint] = count + 1
        return f"{self.prefix}{hint}" if count == 0 else f"{self.prefix}{hint}#{count}"

    def needs(self, opset: int) -> None:
        self.opset = max(self.opset, opset)

    def const(self, value: Any, hint: str, dtype: Any = None) -> str:
        """A constant tensor (an initializer) holding ``value``."""
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, domain: str = "", **attrs: Any) -> str:
        """Add one node with one output; return that output's name."""
        out = self.name(hint)
        self.nodes.append(
            helper.make_node(op_type, inputs, [out], name=out, domain=domain or None, **attrs)
        )
        return out

    def op_into(self, op_type: str, inputs: list[str], out: str, **attrs: Any) -> str:
        """Add one node writing the given output name (a tensor another graph expects)."""
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def cast(self, value: str, to: int, hint: str) -> str:
        return self.op("Cast", [value], hint, to=to)

    def all_of(self, flags: list[str], hint: str) -> str | None:
        """The logical AND of bool tensors of one shape; None when there are none."""
        if not flags:
            return None
        result = flags[0]
        for flag in flags[1:]:
            result = self.op("And", [result, flag], hint)
        return result

    def finite(self, value: str, hint: str, dtype: Any = np.float64) -> str:
        """True where ``value`` is neither NaN nor ±inf (``x - x`` is 0 exactly then)."""
        difference = self.op("Sub", [value, value], f"{hint}-minus-itself")
        return self.op("Equal", [difference, self.const(0, f"{hint}-zero", dtype)], hint)
