"""Names derived from an input's name and content hash: outputs, rejects, archive copies."""

from __future__ import annotations

from churnctl.io.formats import split_input_suffix
from churnctl.names import NAME_MAX, fit_name

TAG_LENGTH = 16  # hex digits of the content hash in derived names


def derived_names(name: str, sha256: str, fmt: str, limit: int = NAME_MAX) -> tuple[str, str]:
    """The output and rejects names of one input: from its name and content hash, stable.

    ``part-1.csv`` with content hash ``ab12…`` → ``part-1.ab12….scored.csv`` and
    ``part-1.ab12….rejects.csv``: the same input always gives the same names, and
    new content under the same name gives new ones. A stem too long for ``limit``
    bytes is cut as ``names.fit_name`` cuts it.
    """
    stem, _ = split_input_suffix(name)
    tag = sha256[:TAG_LENGTH]
    return (
        fit_name(stem, f".{tag}.scored.{fmt}", limit),
        fit_name(stem, f".{tag}.rejects.csv", limit),
    )


def tagged_name(name: str, sha256: str, limit: int = NAME_MAX) -> str:
    """``part-1.csv`` → ``part-1.ab12….csv``: a name that cannot clash with another content."""
    stem, suffix = split_input_suffix(name)
    return fit_name(stem, f".{sha256[:TAG_LENGTH]}{suffix}", limit)


def fitting_name(name: str, limit: int = NAME_MAX) -> str:
    """``name`` itself, or cut to ``limit`` bytes (its format suffix kept)."""
    stem, suffix = split_input_suffix(name)
    return fit_name(stem, suffix, limit)


def error_record_name(name: str, limit: int = NAME_MAX) -> str:
    """``bad.csv`` → ``bad.csv.error.json``: the record beside a quarantined file."""
    return fit_name(name, ".error.json", limit)
