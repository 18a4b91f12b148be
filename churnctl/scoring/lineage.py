"""The lineage record: what produced an output (state, model, options, churnctl, time).

One small JSON object, the same in every output: a Parquet file's key-value metadata,
the ``<output>.lineage.json`` beside a CSV or JSON Lines file, an output folder's
``_lineage.json`` (``batch.lineage_files`` says where). ``read_lineage`` parses one
from an untrusted text: bounded size, exactly these keys of these types.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnctl.errors import InputError
from churnctl.scoring.model import read_model_file
from churnctl.scoring.scorer import Scorer
from churnctl.version import package_version

FORMAT = "churnctl-lineage"
VERSION = 1
MAX_BYTES = 64 * 1024  # a record is a few hundred bytes; a kept column list may be long
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DIGEST_PREFIX = "sha256:"
# each key and its JSON type, in the record's order
KEYS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "version": int,
    "state_fingerprint": str,
    "model_digest": str,
    "threshold": (int, float),
    "logits": bool,
    "keep": list,
    "churnctl_version": str,
    "scored_at": str,
}


@dataclass(frozen=True)
class Lineage:
    """What produced an output: the state and model, the options that change its rows, when.

    ``state_fingerprint`` and ``model_digest`` are ``sha256:`` and 64 hex digits;
    ``scored_at`` is UTC, ISO 8601 to the second, ending in ``Z``.
    """

    state_fingerprint: str
    model_digest: str
    threshold: float
    logits: bool
    keep: tuple[str, ...]
    churnctl_version: str
    scored_at: str

    @classmethod
    def of(cls, scorer: Scorer, at: datetime | None = None) -> Lineage:
        """The record of outputs ``scorer`` writes, scored at ``at`` (default: now)."""
        return cls(
            state_fingerprint=scorer.state.fingerprint,
            model_digest=DIGEST_PREFIX + scorer.model_digest,
            threshold=scorer.threshold,
            logits=scorer.logits,
            keep=tuple(scorer.keep),
            churnctl_version=package_version(),
            scored_at=utc_text(at or datetime.now(UTC)),
        )

    def document(self) -> dict[str, Any]:
        """The record as JSON data, its keys in ``KEYS``'s order."""
        return {"format": FORMAT, "version": VERSION, **asdict(self), "keep": list(self.keep)}

    def to_json(self) -> str:
        """The record as one JSON text ending in a line break."""
        return json.dumps(self.document(), indent=2, ensure_ascii=False) + "\n"

    @property
    def scored_time(self) -> datetime:
        """``scored_at`` as an aware UTC time."""
        return datetime.strptime(self.scored_at, TIME_FORMAT).replace(tzinfo=UTC)


def model_digest_of(path: Path) -> str:
    """``sha256:`` and the digest of a model file's bytes, its external data inline: the
    ``model_digest`` a ``Scorer`` of it records."""
    return DIGEST_PREFIX + hashlib.sha256(read_model_file(path)).hexdigest()


def utc_text(at: datetime) -> str:
    """``at`` in UTC to the second, ``2026-12-07T17:10:48Z``."""
    return at.astimezone(UTC).strftime(TIME_FORMAT)


def read_lineage(text: str | bytes, source: str) -> Lineage:
    """The record in ``text`` (from ``source``), or one ``InputError`` line saying what is wrong."""
    if len(text) > MAX_BYTES:
        raise _bad(source, f"larger than {MAX_BYTES // 1024} KiB")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(source, f"not JSON ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise _bad(source, "nested too deeply") from None
    if not isinstance(data, dict):
        raise _bad(source, "not a JSON object")
    _check_keys(data, source)
    if (data["format"], data["version"]) != (FORMAT, VERSION):
        raise _bad(
            source,
            f"format {data['format']!r} version {data['version']!r} is not "
            f"{FORMAT!r} version {VERSION}",
        )
    fields = {key: data[key] for key in KEYS if key not in ("format", "version")}
    _check_values(fields, source)
    return Lineage(
        **{**fields, "keep": tuple(fields["keep"]), "threshold": float(fields["threshold"])}
    )


def _check_keys(data: dict[str, Any], source: str) -> None:
    missing, extra = KEYS.keys() - data.keys(), data.keys() - KEYS.keys()
    if missing or extra:
        what = [f"missing {', '.join(sorted(missing))}"] if missing else []
        what += [f"unknown {', '.join(sorted(map(repr, extra)))[:200]}"] if extra else []
        raise _bad(source, "; ".join(what))
    for key, kind in KEYS.items():
        value = data[key]
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise _bad(source, f"{key} is not a {_type_name(kind)}")


def _check_values(fields: dict[str, Any], source: str) -> None:
    for key in ("state_fingerprint", "model_digest"):
        digest = fields[key].removeprefix(DIGEST_PREFIX)
        if not fields[key].startswith(DIGEST_PREFIX) or not _is_hex64(digest):
            raise _bad(source, f"{key} is not sha256: and 64 hex digits")
    threshold = fields["threshold"]
    if not (math.isfinite(threshold) and 0 <= threshold <= 1):
        raise _bad(source, "threshold is not within [0, 1]")
    if not all(isinstance(name, str) for name in fields["keep"]):
        raise _bad(source, "keep is not a list of column names")
    try:
        datetime.strptime(fields["scored_at"], TIME_FORMAT)
    except ValueError:
        raise _bad(source, "scored_at is not a UTC time such as 2026-12-07T17:10:48Z") from None


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "text", int: "whole number", bool: "true/false", list: "list"}
    return "number" if isinstance(kind, tuple) else names[kind]


def _bad(source: str, what: str) -> InputError:
    return InputError(f"{source}: not a churnctl lineage record: {what}"[:400])
