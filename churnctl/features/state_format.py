"""The state file's format: its name and version, JSON Schema, checksum and safe parsing.

``read_document`` turns a state file's text into a checked document: parsed
without constants (NaN, Infinity) or huge whole numbers, its format version
checked, its SHA-256 verified, then its structure validated against
``STATE_SCHEMA`` (jsonschema, imported only then), unless the same text passed
before (``validated_states``). What the stages hold is checked when ``state``
builds them.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import TYPE_CHECKING, Any

from churnctl.defaults import MAX_FEATURES
from churnctl.errors import REFIT, StateError, Step
from churnctl.features.spec import check_depth
from churnctl.features.stages import STAGE_TYPES
from churnctl.features.validated_states import passed, record_pass
from churnctl.version import package_version

if TYPE_CHECKING:
    import jsonschema

FORMAT = "churnctl-feature-state"
FORMAT_VERSION = 2  # 2: the optional training profile ("profile"); version 1 is still read
READ_VERSIONS = (1, 2)
MAX_PROFILE_EDGES = 1_000  # bin edges per numeric column in a profile (a fit records 9)
MAX_INT_DIGITS = 100  # far beyond any count a state holds; Python refuses past 4,300

_STRINGS = {"type": "array", "items": {"type": "string"}}
FITTED_PROVENANCE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "training_file",
        "training_sha256",
        "rows",
        "rows_rejected",
        "fitted_at",
        "pipeline",
    ],
    "properties": {
        "training_file": {"type": "string"},
        "training_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "rows": {"type": "integer", "minimum": 0},
        "rows_rejected": {"type": "integer", "minimum": 0},
        "fitted_at": {"type": "string"},
        "pipeline": {"type": "string"},
    },
}
# A state imported from fitted scikit-learn objects (features.sklearn): nothing fitted.
IMPORTED_PROVENANCE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["imported_from", "steps", "imported_at"],
    "properties": {
        "imported_from": {"type": "string"},
        "steps": {"type": "string"},
        "imported_at": {"type": "string"},
        "model_not_imported": {"type": "string"},
    },
}
_SHARE = {"type": "number", "minimum": 0, "maximum": 1}
_NUMBER_PROFILE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "type", "edges", "shares", "mean", "std", "null_share"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "type": {"const": "number"},
        "edges": {"type": "array", "items": {"type": "number"}, "maxItems": MAX_PROFILE_EDGES},
        "shares": {"type": "array", "items": _SHARE, "maxItems": MAX_PROFILE_EDGES + 1},
        "mean": {"type": "number"},
        "std": {"type": "number", "minimum": 0},
        "null_share": _SHARE,
    },
}
_CATEGORY_PROFILE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "type", "labels", "shares", "null_share", "unseen_share"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "type": {"const": "category"},
        "labels": {**_STRINGS, "maxItems": MAX_FEATURES},
        "shares": {"type": "array", "items": _SHARE, "maxItems": MAX_FEATURES},
        "null_share": _SHARE,
        "unseen_share": _SHARE,
    },
}
# The training distribution (features.profile): covered by the checksum, not the fingerprint.
PROFILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["rows", "reject_rate", "columns"],
    "properties": {
        "rows": {"type": "integer", "minimum": 0},
        "reject_rate": _SHARE,
        "columns": {
            "type": "array",
            "maxItems": MAX_FEATURES,
            "items": {
                "if": {"type": "object", "properties": {"type": {"const": "number"}}},
                "then": _NUMBER_PROFILE,
                "else": _CATEGORY_PROFILE,
            },
        },
    },
}
STATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "format",
        "format_version",
        "churnctl_version",
        "input_schema",
        "stages",
        "output",
        "provenance",
        "checksum",
    ],
    "properties": {
        "format": {"const": FORMAT},
        "format_version": {"enum": list(READ_VERSIONS)},
        "churnctl_version": {"type": "string"},
        "input_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["columns"],
            "properties": {
                "columns": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "type"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "type": {"enum": ["category", "number"]},
                            "vocabulary": _STRINGS,
                        },
                    },
                }
            },
        },
        "stages": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["type", "params", "fitted"],
                "properties": {
                    "type": {"enum": sorted(STAGE_TYPES)},
                    "params": {"type": "object"},
                    "fitted": {"type": "object"},
                },
            },
        },
        "output": {
            "type": "object",
            "additionalProperties": False,
            "required": ["column", "feature_names"],
            "properties": {"column": {"type": "string"}, "feature_names": _STRINGS},
        },
        "provenance": {  # fitted on a file, or imported from a training script's objects
            "if": {"type": "object", "required": ["imported_from"]},
            "then": IMPORTED_PROVENANCE,
            "else": FITTED_PROVENANCE,
        },
        "profile": PROFILE_SCHEMA,
        "checksum": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
    },
}


def _items(validator: Any, items: Any, instance: Any, schema: dict[str, Any]) -> Any:
    """``items``, with a fast path for the long lists of strings (labels, feature names)."""
    strings = items == _STRINGS["items"] and isinstance(instance, list)
    if strings and all(isinstance(item, str) for item in instance):
        return
    import jsonschema  # loaded by then: state_validator_class imported it

    standard = jsonschema.Draft202012Validator.VALIDATORS["items"]
    yield from standard(validator, items, instance, schema)


@functools.cache
def state_validator_class() -> Any:
    """Draft 2020-12 with the fast ``items``: checking millions of labels one by one
    through jsonschema takes minutes; this takes seconds."""
    import jsonschema

    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"items": _items})


@functools.cache
def state_validator() -> Any:
    """The validator of ``STATE_SCHEMA``, built once (``jsonschema.validate`` checks the
    schema itself again at every call: half of a small state's load time)."""
    return state_validator_class()(STATE_SCHEMA)


@functools.cache
def schema_key() -> str:
    """What a record of a passed text is bound to: the format and the schema itself."""
    schema = hashlib.sha256(canonical_json(STATE_SCHEMA).encode("utf-8")).hexdigest()
    return f"{FORMAT}/{'.'.join(map(str, READ_VERSIONS))}/{schema}"


def read_document(text: str, source: str) -> dict[str, Any]:
    """A state document, parsed and checked against the format (``StateError`` otherwise)."""
    document = _parse_json(text, source)
    _check_version(document, source)
    _verify_checksum(document, source)  # cheap: before the item-by-item schema validation
    if not passed(text, schema_key()):
        _validate_structure(document, source)
        record_pass(text, schema_key())
    return document


def _validate_structure(document: dict[str, Any], source: str) -> None:
    import jsonschema

    exc = jsonschema.exceptions.best_match(state_validator().iter_errors(document))
    if exc is not None:
        where = "/".join(str(p) for p in exc.absolute_path) or "top level"
        raise StateError(f"{source}: invalid state at {where}: {_problem(exc)}") from None


MESSAGE_CHARS = 200  # of a schema violation's message: it may quote a whole list


def _problem(exc: jsonschema.ValidationError) -> str:
    """The violation in a few words: a list too long by its length, not its items."""
    if exc.validator == "maxItems" and isinstance(exc.instance, list):
        return f"{len(exc.instance):,} items, more than the {exc.validator_value:,} allowed"
    message = exc.message
    return message if len(message) <= MESSAGE_CHARS else message[:MESSAGE_CHARS] + "…"


def canonical_json(content: Any) -> str:
    """The canonical text the checksum covers: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def content_checksum(content: dict[str, Any]) -> str:
    body = {key: value for key, value in content.items() if key != "checksum"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _verify_checksum(document: dict[str, Any], source: str) -> None:
    try:
        expected = "sha256:" + content_checksum(document)
    except ValueError:  # 1e400 parses as inf, which canonical JSON refuses
        raise StateError(
            f"{source}: a number is out of range for float64 (numbers must be finite)",
            step=REFIT,
        ) from None
    if document.get("checksum") != expected:
        raise StateError(
            f"{source}: checksum mismatch: the file was edited or corrupted", step=REFIT
        )


def _parse_json(text: str, source: str) -> dict[str, Any]:
    if not text.strip():
        raise StateError(f"{source}: not valid JSON (the file is empty)", step=REFIT)
    try:
        document = json.loads(
            text.removeprefix("\ufeff"), parse_constant=_refuse_constant, parse_int=_bounded_int
        )
    except json.JSONDecodeError as exc:
        raise StateError(f"{source}: {_json_problem(exc)}", step=OR_REFIT) from None
    except RecursionError:
        raise StateError(f"{source}: not a state document: nested too deeply") from None
    except ValueError as exc:
        raise StateError(f"{source}: not a valid state document: {exc}") from None
    if not isinstance(document, dict):
        raise StateError(f"{source}: a state file must hold a JSON object")
    check_depth(document, f"{source}: not a state document", error=StateError)
    return document


def _json_problem(exc: json.JSONDecodeError) -> str:
    """``not valid JSON: expecting ',' delimiter at line 3, column 7; ...``, a whole sentence."""
    what = exc.msg[:1].lower() + exc.msg[1:]
    where = f"line {exc.lineno}, column {exc.colno}"
    located = f"{what} {where}" if what.endswith(" at") else f"{what} at {where}"
    return f"not valid JSON: {located}; the file is truncated or damaged: restore it"


OR_REFIT = Step(REFIT.action, "or refit it")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in a state file (numbers must be finite)")


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise ValueError(f"a whole number with {len(text):,} digits is too large")
    return int(text)


def _check_version(document: dict[str, Any], source: str) -> None:
    if document.get("format") != FORMAT:
        raise StateError(f"{source}: not a churnctl state file (format {FORMAT!r} expected)")
    version = document.get("format_version")
    if version in READ_VERSIONS and type(version) is int:
        return
    reads = f"this churnctl ({package_version()}) reads (version {FORMAT_VERSION})"
    if type(version) is int and version > FORMAT_VERSION:
        raise StateError(
            f"{source}: state format version {version} is newer than {reads}; upgrade churnctl "
            "to read it"
        )
    if type(version) is int:
        raise StateError(
            f"{source}: state format version {version} is older than {reads}", step=REFIT
        )
    raise StateError(
        f"{source}: unsupported state format version {version!r}; this churnctl "
        f"({package_version()}) reads version {FORMAT_VERSION}",
        step=REFIT,
    )
