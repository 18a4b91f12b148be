"""The versioned, self-describing JSON state of a fitted feature pipeline.

Loading never unpickles or imports anything named in the file: the JSON is
parsed, its format version checked, its structure validated against a JSON
Schema, its SHA-256 verified, and only then are stages built from the known
stage types, whose constructors validate every parameter.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pyarrow as pa

from churnctl.arguments import PATH, check_path
from churnctl.atomic import atomic_write_text
from churnctl.errors import ChurnctlError, PipelineSpecError, StateError
from churnctl.features.frame import Frame
from churnctl.features.pipeline import FeaturePipeline
from churnctl.features.spec import check_depth
from churnctl.features.stages import STAGE_TYPES, Shape, Stage
from churnctl.version import package_version

FORMAT = "churnctl-feature-state"
FORMAT_VERSION = 1
# What the fingerprint covers: what the state computes, not where or when it was fitted.
FINGERPRINT_KEYS = ("format_version", "input_schema", "stages", "output")
MAX_INT_DIGITS = 100  # far beyond any count a state holds; Python refuses past 4,300

_STRINGS = {"type": "array", "items": {"type": "string"}}
STATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "format", "format_version", "churnctl_version", "input_schema", "stages",
        "output", "provenance", "checksum",
    ],
    "properties": {
        "format": {"const": FORMAT},
        "format_version": {"const": FORMAT_VERSION},
        "churnctl_version": {"type": "string"},
        "input_schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["columns"],
            "properties": {"columns": {"type": "array", "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "type"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "type": {"enum": ["category", "number"]},
                    "vocabulary": _STRINGS,
                },
            }}},
        },
        "stages": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["type", "params", "fitted"],
            "properties": {
                "type": {"enum": sorted(STAGE_TYPES)},
                "params": {"type": "object"},
                "fitted": {"type": "object"},
            },
        }},
        "output": {
            "type": "object",
            "additionalProperties": False,
            "required": ["column", "feature_names"],
            "properties": {"column": {"type": "string"}, "feature_names": _STRINGS},
        },
        "provenance": {
            "type": "object",
            "additionalProperties": False,
            "required": ["training_file", "training_sha256", "rows", "rows_rejected",
                         "fitted_at", "pipeline"],
            "properties": {
                "training_file": {"type": "string"},
                "training_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "rows": {"type": "integer", "minimum": 0},
                "rows_rejected": {"type": "integer", "minimum": 0},
                "fitted_at": {"type": "string"},
                "pipeline": {"type": "string"},
            },
        },
        "checksum": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
    },
}  # fmt: skip


_ITEMS = jsonschema.Draft202012Validator.VALIDATORS["items"]


def _items(validator: Any, items: Any, instance: Any, schema: dict[str, Any]) -> Any:
    """``items``, with a fast path for the long lists of strings (labels, feature names)."""
    strings = items == _STRINGS["items"] and isinstance(instance, list)
    if strings and all(isinstance(item, str) for item in instance):
        return
    yield from _ITEMS(validator, items, instance, schema)


# Checking millions of labels one by one through jsonschema takes minutes; this takes seconds.
StateValidator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"items": _items})


@dataclass
class FeatureState:
    """A fitted pipeline plus where it came from; ``source`` names it in messages."""

    pipeline: FeaturePipeline
    provenance: dict[str, Any] = field(default_factory=dict)
    source: str = field(default="the state", compare=False)

    @property
    def feature_names(self) -> list[str]:
        return list(self.pipeline.feature_names_)

    @property
    def fingerprint(self) -> str:
        """``sha256:...`` of the stages and fitted numbers, provenance left out.

        Refitting the same pipeline on the same data gives the same fingerprint;
        any other feature order, parameter or fitted number gives another.
        """
        content = {"format_version": FORMAT_VERSION, **self.computation()}
        covered = {key: content[key] for key in FINGERPRINT_KEYS}
        return "sha256:" + hashlib.sha256(canonical_json(covered).encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, checksum included."""
        content = self.content()
        return {**content, "checksum": "sha256:" + content_checksum(content)}

    def content(self) -> dict[str, Any]:
        """The JSON document without its checksum (cheaper than ``to_dict``)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "churnctl_version": package_version(),
            **self.computation(),
            "provenance": dict(self.provenance),
        }

    def computation(self) -> dict[str, Any]:
        """What the state computes: input schema, stages, output (no version: scoring skips it)."""
        return {
            "input_schema": {"columns": _schema_columns(self.pipeline)},
            "stages": [_stage_dict(stage) for stage in self.pipeline.stages],
            "output": {"column": self.pipeline.output_col, "feature_names": self.feature_names},
        }

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    def save(self, path: Path) -> None:
        """Write the state atomically (temporary name, then rename)."""
        atomic_write_text(Path(path), self.dumps())


def _stage_dict(stage: Stage) -> dict[str, Any]:
    return {"type": stage.TYPE, "params": stage.params(), "fitted": stage.fitted_data()}


def _schema_columns(pipeline: FeaturePipeline) -> list[dict[str, Any]]:
    vocabularies = pipeline.vocabularies()
    columns: list[dict[str, Any]] = [
        {"name": name, "type": "category", "vocabulary": vocabularies[name]}
        for name in pipeline.input_schema.categorical
    ]
    columns += [{"name": name, "type": "number"} for name in pipeline.input_schema.numeric]
    return columns


def _probe_frame(pipeline: FeaturePipeline) -> Frame:
    """One synthetic row, to check that the stages' fitted sizes agree with each other."""
    columns: dict[str, Any] = {name: pa.array([None], pa.string()) for name in
                               pipeline.input_schema.categorical}  # fmt: skip
    columns.update({name: np.zeros(1) for name in pipeline.input_schema.numeric})
    return Frame.from_columns(columns)


def canonical_json(content: Any) -> str:
    """The canonical text the checksum covers: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def content_checksum(content: dict[str, Any]) -> str:
    body = {key: value for key, value in content.items() if key != "checksum"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def load_state(path: Path) -> FeatureState:
    """Read, validate and rebuild a state file; every problem is a ``StateError``."""
    check_path("load_state", "path", path, f"{PATH} to a state file")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateError(f"{path}: state file not found; create one with `churnctl fit`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"{path}: cannot read state file: {exc}") from None
    return state_from_text(text, source=str(path))


def state_from_text(text: str, *, source: str = "state") -> FeatureState:
    """Validate a state document and build its fitted pipeline."""
    document = _parse_json(text, source)
    _check_version(document, source)
    _verify_checksum(document, source)  # cheap: before the item-by-item schema validation
    try:
        jsonschema.validate(document, STATE_SCHEMA, cls=StateValidator)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "top level"
        raise StateError(f"{source}: invalid state at {where}: {exc.message}") from None
    return _build_state(document, source)


def _verify_checksum(document: dict[str, Any], source: str) -> None:
    try:
        expected = "sha256:" + content_checksum(document)
    except ValueError:  # 1e400 parses as inf, which canonical JSON refuses
        raise StateError(
            f"{source}: a number is out of range for float64 (numbers must be finite); "
            "refit it with `churnctl fit`"
        ) from None
    if document.get("checksum") != expected:
        raise StateError(
            f"{source}: checksum mismatch: the file was edited or corrupted; "
            "refit it with `churnctl fit`"
        )


def _parse_json(text: str, source: str) -> dict[str, Any]:
    if not text.strip():
        raise StateError(
            f"{source}: not valid JSON (the file is empty); refit it with `churnctl fit`"
        )
    try:
        document = json.loads(
            text.removeprefix("\ufeff"), parse_constant=_refuse_constant, parse_int=_bounded_int
        )
    except json.JSONDecodeError as exc:
        raise StateError(f"{source}: {_json_problem(exc)}") from None
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
    return (
        f"not valid JSON: {located}; the file is truncated or damaged: restore it, or refit it "
        "with `churnctl fit`"
    )


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
    if version == FORMAT_VERSION and type(version) is int:
        return
    reads = f"this churnctl ({package_version()}) reads (version {FORMAT_VERSION})"
    if type(version) is int and version > FORMAT_VERSION:
        raise StateError(
            f"{source}: state format version {version} is newer than {reads}; upgrade churnctl "
            "to read it"
        )
    if type(version) is int:
        raise StateError(
            f"{source}: state format version {version} is older than {reads}; refit it with "
            "`churnctl fit`"
        )
    raise StateError(
        f"{source}: unsupported state format version {version!r}; this churnctl "
        f"({package_version()}) reads version {FORMAT_VERSION}: refit with `churnctl fit`"
    )


def _check_sizes(pipeline: FeaturePipeline, n_names: int) -> None:
    """Every fitted size against the others and the width cap, before anything is allocated.

    Category sizes against their indexer's labels, input sizes and means against the
    widths of the columns they read, the output width against the feature names' count.
    """
    shapes: dict[str, Shape] = {}
    for position, stage in enumerate(pipeline.stages, start=1):
        try:
            shapes.update(stage.shapes(shapes))
        except ChurnctlError as exc:
            raise PipelineSpecError(f"stage {position}: {exc}") from None
    width = shapes.get(pipeline.output_col, Shape(1)).width
    if width != n_names:
        raise PipelineSpecError(f"the stages produce {width:,} features, but {n_names:,} are named")


def _build_state(document: dict[str, Any], source: str) -> FeatureState:
    try:
        stages = [
            STAGE_TYPES[item["type"]].from_state(item["params"], item["fitted"])
            for item in document["stages"]
        ]
        pipeline = FeaturePipeline(stages=stages)
        _check_sizes(pipeline, len(document["output"]["feature_names"]))
        pipeline.feature_names_ = pipeline.compute_feature_names()
        pipeline.transform(_probe_frame(pipeline))
    except (ChurnctlError, TypeError, ValueError) as exc:
        raise StateError(f"{source}: invalid stage: {exc}") from None
    state = FeatureState(pipeline, dict(document["provenance"]), source=source)
    rebuilt = state.computation()
    for key in ("input_schema", "output"):
        if rebuilt[key] != document[key]:
            raise StateError(f"{source}: '{key}' does not match the stages it describes")
    return state
