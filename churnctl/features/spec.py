"""Pipeline specs: the presets, and TOML/JSON spec files, built into unfitted pipelines.

A spec is ``{"stages": [{"type": ..., params...}]}``: each stage type from the
``STAGE_TYPES`` registry, its parameters checked against the stage's declaration.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from churnctl.errors import ChurnctlError, Fix, PipelineSpecError
from churnctl.features.pipeline import FeaturePipeline
from churnctl.features.stages import STAGE_TYPES, Stage

NUMERIC_FEATURES = ("CreditScore", "Age", "Tenure", "Balance", "NumOfProducts", "EstimatedSalary")


def _preset(assembled: list[str], ddof: int) -> dict[str, Any]:
    return {
        "stages": [
            {
                "type": "StringIndexer",
                "input_cols": ["Geography", "Gender"],
                "output_cols": ["GeographyIndex", "GenderIndex"],
                "string_order_type": "alphabetAsc",
                "handle_invalid": "error",
            },
            {
                "type": "OneHotEncoder",
                "input_cols": ["GeographyIndex"],
                "output_cols": ["GeographyVec"],
                "drop_last": False,
            },
            {"type": "VectorAssembler", "input_cols": assembled, "output_col": "raw_features"},
            {
                "type": "StandardScaler",
                "input_col": "raw_features",
                "output_col": "features",
                "with_mean": True,
                "with_std": True,
                "ddof": ddof,
            },
        ]
    }


PRESETS: dict[str, dict[str, Any]] = {
    # The published Flink ML job: [Geography x3, Gender, HasCrCard, IsActiveMember, numerics].
    "reference": _preset(
        ["GeographyVec", "GenderIndex", "HasCrCard", "IsActiveMember", *NUMERIC_FEATURES], ddof=1
    ),
    # A scikit-learn training script's layout (ColumnTransformer order), population std.
    "sklearn": _preset(
        [
            "GeographyVec",
            "CreditScore",
            "GenderIndex",
            "Age",
            "Tenure",
            "Balance",
            "NumOfProducts",
            "HasCrCard",
            "IsActiveMember",
            "EstimatedSalary",
        ],
        ddof=0,
    ),
}
DEFAULT_PRESET = "reference"


def build_pipeline(spec: Any, *, source: str = "pipeline spec") -> FeaturePipeline:
    """Build an unfitted pipeline from a spec: ``{"stages": [{"type": ..., params...}]}``."""
    if not isinstance(spec, dict) or set(spec) - {"stages", "description"}:
        raise PipelineSpecError(
            f"{source}: expected a table with a 'stages' list (and optional 'description')"
        )
    stages_spec = spec.get("stages")
    if not isinstance(stages_spec, list) or not stages_spec:
        raise PipelineSpecError(f"{source}: 'stages' must be a non-empty list")
    stages = [_build_stage(s, source, i) for i, s in enumerate(stages_spec)]
    try:
        return FeaturePipeline(stages=stages)
    except PipelineSpecError as exc:
        raise PipelineSpecError(f"{source}: {exc}") from None


def _build_stage(spec: Any, source: str, position: int) -> Stage:
    where = f"{source}: stage {position + 1}"
    if not isinstance(spec, dict) or "type" not in spec:
        raise PipelineSpecError(f"{where}: each stage needs a 'type'")
    params = dict(spec)
    stage_type = params.pop("type")
    cls = STAGE_TYPES.get(stage_type) if isinstance(stage_type, str) else None
    if cls is None:
        raise PipelineSpecError(
            f"{where}: unknown stage type {stage_type!r}; known: {', '.join(STAGE_TYPES)}"
        )
    try:
        return cls.from_params(params)
    except PipelineSpecError as exc:
        raise PipelineSpecError(f"{where}: {exc}") from None


def load_pipeline_spec(name_or_path: str | None) -> tuple[str, FeaturePipeline]:
    """A preset name or a TOML/JSON spec file → (description, unfitted pipeline)."""
    name = name_or_path or DEFAULT_PRESET
    if name in PRESETS:
        return f"preset:{name}", build_pipeline(PRESETS[name], source=f"preset {name}")
    path = Path(name)
    if not path.is_file():
        raise PipelineSpecError(
            f"pipeline {name!r}: neither a preset ({', '.join(PRESETS)}) nor an existing file",
            fix=Fix("pipeline", "reference"),
        )
    return str(path), build_pipeline(_read_spec_file(path), source=str(path))


MAX_DEPTH = 32  # lists and tables nested in a spec or a state document (a preset needs 4)


def _read_spec_file(path: Path) -> Any:
    """A TOML/JSON spec document (a UTF-8 byte order mark allowed), nested at most MAX_DEPTH."""
    try:
        text = path.read_text(encoding="utf-8-sig")
        document = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except RecursionError:
        raise PipelineSpecError(
            f"{path}: cannot read pipeline spec: nested more than {MAX_DEPTH} levels deep"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problem = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise PipelineSpecError(f"{path}: cannot read pipeline spec: {problem}") from None
    check_depth(document, f"{path}: cannot read pipeline spec", error=PipelineSpecError)
    return document


def check_depth(document: Any, where: str, *, error: type[ChurnctlError]) -> None:
    """Refuse a parsed document nested deeper than MAX_DEPTH (walked without recursion)."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise error(f"{where}: nested more than {MAX_DEPTH} levels deep")
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict | list):
            pending.extend((child, depth + 1) for child in children)
