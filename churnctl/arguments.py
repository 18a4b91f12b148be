"""The arguments of the public functions, checked: one line naming the argument, what it
got and what it takes (a ``UsageError``), never a ``TypeError`` from deep inside.

Each public entry point (``Scorer``, ``ScorerOptions``, ``fit_state``, ``load_state``,
``extract_features``, ``bind_model``, ``ChurnModel``, the requests of ``score_file`` and
``score_files``, ``WatchSettings`` and ``Watcher``) checks its arguments here before using them.
"""

from __future__ import annotations

import os
from typing import Any

from churnctl.errors import UsageError

SHOWN_CHARS = 40  # of a wrong value's repr in a message
PATH = "a path (str or os.PathLike)"
PATH_TYPES = (str, os.PathLike)


def shown(value: Any) -> str:
    """``int 123``, ``None``, ``DataFrame``: a value's type and a short one-line repr."""
    if value is None:
        return "None"
    kind = type(value).__name__
    try:
        text = " ".join(repr(value).split())
    except Exception:  # a hostile __repr__ still gives a message
        return kind
    if len(text) > SHOWN_CHARS or "\n" in repr(value):
        return kind  # a DataFrame, a long list: its type says enough
    return f"{kind} {text}"


def wrong(function: str, name: str, value: Any, takes: str, hint: str = "") -> UsageError:
    """The one-line error for ``function``'s argument ``name``: what it takes, what it got."""
    extra = f"; {hint}" if hint else ""
    where = f"{function}: " if function else ""
    return UsageError(f"{where}{name} must be {takes}, got {shown(value)}{extra}")


def check_type(
    function: str, name: str, value: Any, types: type | tuple[type, ...], takes: str
) -> None:
    """Refuse ``value`` unless an instance of ``types`` (a bool is no int here)."""
    numbers_only = isinstance(value, bool) and bool not in _as_tuple(types)
    if numbers_only or not isinstance(value, types):
        raise wrong(function, name, value, takes)


def check_path(function: str, name: str, value: Any, takes: str = PATH) -> None:
    """Refuse anything but a non-empty ``str`` or an ``os.PathLike`` giving one."""
    if isinstance(value, os.PathLike):
        value_text = os.fspath(value)
        if isinstance(value_text, str) and value_text:
            return
    elif isinstance(value, str) and value:
        return
    raise wrong(function, name, value, takes)


def check_optional(
    function: str, name: str, value: Any, types: type | tuple[type, ...], takes: str
) -> None:
    """``check_type`` for an argument that may also be None (then ``takes`` says so)."""
    if value is not None:
        check_type(function, name, value, types, f"None or {takes}")


def check_number(function: str, name: str, value: Any) -> None:
    """Refuse anything but an int or a float (a bool is no number here)."""
    check_type(function, name, value, (int, float), "a number")


def check_bool(function: str, name: str, value: Any) -> None:
    check_type(function, name, value, bool, "True or False")


def check_callable(function: str, name: str, value: Any, takes: str) -> None:
    if value is not None and not callable(value):
        raise wrong(function, name, value, takes)


def check_has(function: str, name: str, value: Any, method: str, takes: str) -> None:
    """Refuse a value without a callable ``method`` (a writer without ``write_table``)."""
    if not callable(getattr(value, method, None)):
        raise wrong(function, name, value, takes)


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)
