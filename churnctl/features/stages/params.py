"""Stage parameters, declared once: each a typed field with its constraint and default.

A stage is a keyword-only dataclass whose fields are made by ``param``. Everything
else reads that one declaration: validation (``clean_params``, run by the
dataclass's ``__init__``), ``params()`` (what the JSON state stores) and the check
of a spec's keys (``check_keys``), so no stage writes that boilerplate by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from churnctl.errors import PipelineSpecError, listing

REQUIRED: Any = dataclasses.MISSING  # the default of a parameter that has none


class Constraint(Protocol):
    """What a parameter's value must be."""

    def clean(self, stage: str, name: str, value: Any, earlier: Mapping[str, Any]) -> Any:
        """The value as stored; ``earlier``: the parameters declared (and cleaned) before it.

        Raises a ``PipelineSpecError`` naming the stage type and the parameter.
        """
        ...


@dataclass(frozen=True)
class Param:
    """One constructor parameter of a stage: its name, constraint and default."""

    name: str
    constraint: Constraint
    default: Any = REQUIRED
    unset: Callable[[Any], bool] | None = None  # true: left out of ``params()`` (see ``param``)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def stored(self, value: Any) -> bool:
        """Whether ``params()`` (and so the state) holds this value."""
        return self.unset is None or not self.unset(value)


def param(
    constraint: Constraint, default: Any = REQUIRED, *, unset: Callable[[Any], bool] | None = None
) -> Any:
    """A stage's field declaring a parameter (required when it has no default).

    ``unset``: for a parameter added after states were written, true for the cleaned
    value that means "not used"; such a value is left out of ``params()``, so every
    state written before the parameter existed keeps its exact JSON and fingerprint.
    """
    return dataclasses.field(default=default, metadata={"constraint": constraint, "unset": unset})


def declared(cls: type) -> tuple[Param, ...]:
    """A stage class's parameters, in declaration order."""
    return tuple(
        Param(f.name, f.metadata["constraint"], f.default, f.metadata["unset"])
        for f in dataclasses.fields(cls)
    )


def clean_params(
    stage: str, parameters: tuple[Param, ...], values: dict[str, Any]
) -> dict[str, Any]:
    """Each value checked (and normalised) by its constraint, in declaration order."""
    cleaned: dict[str, Any] = {}
    for p in parameters:
        cleaned[p.name] = p.constraint.clean(stage, p.name, values[p.name], cleaned)
    return cleaned


def check_keys(stage: str, parameters: tuple[Param, ...], given: Mapping[str, Any]) -> None:
    """Refuse unknown or missing parameters by name (not with Python's TypeError)."""
    known = [p.name for p in parameters]
    unknown = [name for name in given if name not in known]
    if unknown:
        raise PipelineSpecError(
            f"{stage}: unknown parameter(s) {listing([repr(n) for n in unknown])}; "
            f"known: {', '.join(known)}"
        )
    missing = [p.name for p in parameters if p.required and p.name not in given]
    if missing:
        raise PipelineSpecError(f"{stage}: missing parameter(s) {', '.join(missing)}")


def _names(stage: str, name: str, value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        raise PipelineSpecError(f"{stage}: {name} must be a non-empty list of column names")
    if not all(isinstance(v, str) and v for v in value):
        raise PipelineSpecError(f"{stage}: {name} must contain only non-empty strings")
    return list(value)


@dataclass(frozen=True)
class Columns:
    """A non-empty list of column names; ``like``: as many as that earlier parameter has."""

    like: str | None = None

    def clean(self, stage: str, name: str, value: Any, earlier: Mapping[str, Any]) -> list[str]:
        names = _names(stage, name, value)
        if self.like is not None and len(names) != len(earlier[self.like]):
            raise PipelineSpecError(
                f"{stage}: {self.like} has {len(earlier[self.like])} names but {name} has "
                f"{len(names)}"
            )
        return names


@dataclass(frozen=True)
class Column:
    """One column name."""

    def clean(self, stage: str, name: str, value: Any, earlier: Mapping[str, Any]) -> str:
        return _names(stage, name, [value])[0]


@dataclass(frozen=True)
class OneOf:
    """One of a few words."""

    choices: tuple[str, ...]

    def clean(self, stage: str, name: str, value: Any, earlier: Mapping[str, Any]) -> str:
        if value not in self.choices:
            raise PipelineSpecError(
                f"{stage}: {name} must be one of {', '.join(self.choices)}; got {value!r}"
            )
        return value


@dataclass(frozen=True)
class Flag:
    """True or false (not a number, not text)."""

    def clean(self, stage: str, name: str, value: Any, earlier: Mapping[str, Any]) -> bool:
        if not isinstance(value, bool):
            raise PipelineSpecError(f"{stage}: {name} must be true or false, got {value!r}")
        return value


@dataclass(frozen=True)
class WholeNumber:
    """One of a few whole numbers (not a boolean, not a float)."""

    choices: tuple[int, ...]

    def clean(self, stage: str, name: str, value: Any, earlier: Mapping[str, Any]) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value not in self.choices:
            allowed = " or ".join(str(choice) for choice in self.choices)
            raise PipelineSpecError(f"{stage}: {name} must be {allowed}, got {value!r}")
        return value


@dataclass(frozen=True)
class OnePerColumn:
    """One word per column of the earlier parameter ``of``; None: ``fill`` for each."""

    of: str
    words: OneOf
    fill: str

    def clean(self, stage: str, name: str, value: Any, earlier: Mapping[str, Any]) -> list[str]:
        n_cols = len(earlier[self.of])
        if value is None:
            return [self.fill] * n_cols
        if not isinstance(value, list | tuple) or len(value) != n_cols:
            raise PipelineSpecError(f"{stage}: {name} needs one mode per input column ({n_cols})")
        return [self.words.clean(stage, name, word, earlier) for word in value]


@dataclass(frozen=True)
class DroppedIndices:
    """Per column of ``of``, the category index left out of its vector, or None.

    None: None for each column.
    """

    of: str

    def clean(
        self, stage: str, name: str, value: Any, earlier: Mapping[str, Any]
    ) -> list[int | None]:
        n_cols = len(earlier[self.of])
        if value is None:
            return [None] * n_cols
        whole = all(v is None or (type(v) is int and v >= 0) for v in _listed(value))
        if not isinstance(value, list | tuple) or len(value) != n_cols or not whole:
            raise PipelineSpecError(
                f"{stage}: {name} needs one category index (a whole number >= 0) or null per "
                f"input column ({n_cols})"
            )
        return list(value)


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def none_dropped(value: list[int | None]) -> bool:
    """A ``DroppedIndices`` value that drops nothing."""
    return all(v is None for v in value)
