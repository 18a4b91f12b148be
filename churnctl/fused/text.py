"""Category matching as ONNX can do it: the trimmed and lower-cased labels as RE2 patterns.

churnctl trims with Arrow's ``utf8_trim_whitespace`` and lower-cases with ``utf8_lower``.
ONNX has no trim and its ``StringNormalizer`` depends on the host's locales, so a value
is matched against each label with ``RegexFullMatch`` (opset 20): surrounding whitespace
(Arrow's own set), then the label, each character standing for every code point that
Arrow lower-cases to it.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SURROGATES = range(0xD800, 0xE000)


@functools.cache
def _characters() -> tuple[list[int], pa.Array]:
    """Every Unicode scalar value, as a number and as a one-character Arrow string."""
    points = [c for c in range(0x110000) if c not in _SURROGATES]
    text = np.array(points, dtype="<u4").tobytes().decode("utf-32-le")
    return points, pa.array(list(text), pa.string())


@functools.cache
def whitespace() -> tuple[int, ...]:
    """The code points that Arrow's ``utf8_trim_whitespace`` trims."""
    points, text = _characters()
    trimmed = pc.equal(pc.utf8_trim_whitespace(text), "").to_numpy(zero_copy_only=False)
    return tuple(point for point, gone in zip(points, trimmed, strict=True) if gone)


@functools.cache
def upper_forms() -> dict[str, tuple[int, ...]]:
    """Each character → the other code points that Arrow's ``utf8_lower`` turns into it."""
    points, text = _characters()
    lowered = pc.utf8_lower(text)
    changed = pc.not_equal(lowered, text).to_numpy(zero_copy_only=False)
    forms: dict[str, list[int]] = {}
    for i in np.flatnonzero(changed):
        forms.setdefault(lowered[int(i)].as_py(), []).append(points[int(i)])
    return {low: tuple(found) for low, found in forms.items()}


def matches_after(label: str, mode: str) -> bool:
    """Whether a normalized value can equal ``label`` (an imported label may not be normal)."""
    if label == "":
        return False  # an empty value is missing, never a category
    trimmed = pc.utf8_trim_whitespace(pa.array([label])).to_pylist()[0]
    if mode == "trim":
        return trimmed == label
    return pc.utf8_lower(pa.array([trimmed])).to_pylist()[0] == label


def label_pattern(label: str, mode: str) -> str:
    """The RE2 pattern a raw value fully matches exactly when ``normalized(value) == label``."""
    space = "[" + "".join(_escaped(c) for c in whitespace()) + "]*"
    if mode == "trim":
        body = "".join(_escaped(ord(c)) for c in label)
    else:
        forms = upper_forms()
        body = "".join(_character(c, forms.get(c, ())) for c in label)
    return f"{space}{body}{space}"


def _character(char: str, others: tuple[int, ...]) -> str:
    if not others:
        return _escaped(ord(char))
    return "[" + _escaped(ord(char)) + "".join(_escaped(c) for c in others) + "]"


def _escaped(point: int) -> str:
    return f"\\x{{{point:x}}}"
