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

import numpy as np
import pyarrow as pa

from churnctl.arguments import PATH, check_path
from churnctl.atomic import atomic_write_text
from churnctl.errors import REFIT, ChurnctlError, PipelineSpecError, StateError, Step
from churnctl.features.frame import Frame
from churnctl.features.pipeline import FeaturePipeline
from churnctl.features.profile import Profile
from churnctl.features.stages import STAGE_TYPES, Shape, Stage
from churnctl.features.state_format import (
    FORMAT,
    FORMAT_VERSION,
    canonical_json,
    content_checksum,
    read_document,
)
from churnctl.version import package_version

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "FeatureState",
    "canonical_json",
    "content_checksum",
    "load_state",
    "state_from_text",
]

# What the fingerprint covers: what the state computes, not where or when it was fitted,
# nor the training profile (where it came from: adding one keeps a bound model bound).
FINGERPRINT_KEYS = ("format_version", "input_schema", "stages", "output")
# The format version the fingerprint covers: 1 for ever, whatever version the file is, so
# that no state's fingerprint (and no model bound to it) changes with the format.
FINGERPRINT_FORMAT_VERSION = 1


@dataclass
class FeatureState:
    """A fitted pipeline plus where it came from; ``source`` names it in messages."""

    pipeline: FeaturePipeline
    provenance: dict[str, Any] = field(default_factory=dict)
    source: str = field(default="the state", compare=False)
    profile: Profile | None = None  # the training distribution (features.profile), if recorded

    @property
    def feature_names(self) -> list[str]:
        return list(self.pipeline.feature_names_)

    @property
    def fingerprint(self) -> str:
        """``sha256:...`` of the stages and fitted numbers, provenance left out.

        Refitting the same pipeline on the same data gives the same fingerprint;
        any other feature order, parameter or fitted number gives another.
        """
        content = {"format_version": FINGERPRINT_FORMAT_VERSION, **self.computation()}
        covered = {key: content[key] for key in FINGERPRINT_KEYS}
        return "sha256:" + hashlib.sha256(canonical_json(covered).encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        stages = ", ".join(stage.TYPE for stage in self.pipeline.stages)
        fitted = self.provenance.get("training_file")
        where = f", fitted on {fitted}" if fitted else ""
        return (
            f"<FeatureState {len(self.feature_names)} features, {len(self.pipeline.stages)} "
            f"stages ({stages}), fingerprint {self.fingerprint.removeprefix('sha256:')[:12]}"
            f"{where}>"
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, checksum included."""
        content = self.content()
        return {**content, "checksum": "sha256:" + content_checksum(content)}

    def content(self) -> dict[str, Any]:
        """The JSON document without its checksum (cheaper than ``to_dict``)."""
        content = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "churnctl_version": package_version(),
            **self.computation(),
            "provenance": dict(self.provenance),
        }
        if self.profile is not None:
            content["profile"] = self.profile.to_dict()
        return content

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
    columns: dict[str, Any] = {
        name: pa.array([None], pa.string()) for name in pipeline.input_schema.categorical
    }
    columns.update({name: np.zeros(1) for name in pipeline.input_schema.numeric})
    return Frame.from_columns(columns)


def load_state(path: Path) -> FeatureState:
    """Read, validate and rebuild a state file; every problem is a ``StateError``."""
    check_path("load_state", "path", path, f"{PATH} to a state file")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateError(
            f"{path}: state file not found", step=Step(REFIT.action, "create one")
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"{path}: cannot read state file: {exc}") from None
    return state_from_text(text, source=str(path))


def state_from_text(text: str, *, source: str = "state") -> FeatureState:
    """Validate a state document and build its fitted pipeline."""
    return _build_state(read_document(text, source), source)


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
    if "profile" in document:
        state.profile = Profile.from_dict(document["profile"], source)
        state.profile.check_matches(pipeline.input_schema, pipeline.vocabularies(), source)
    rebuilt = state.computation()
    for key in ("input_schema", "output"):
        if rebuilt[key] != document[key]:
            raise StateError(f"{source}: '{key}' does not match the stages it describes")
    return state
