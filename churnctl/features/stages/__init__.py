"""Feature-extraction stages (Flink ML semantics), one module per stage with its accumulator.

``base`` holds the stage protocol, ``params`` the declaration of stage parameters;
``STAGE_TYPES`` is the registry: a stage type's name (as a spec or a state names it)
to its class.
"""

from churnctl.features.stages.base import (
    RAW,
    WIDTH_FIX,
    Accumulator,
    ColumnNames,
    NameMap,
    Shape,
    ShapeMap,
    Stage,
    as_matrix,
    too_wide,
)
from churnctl.features.stages.one_hot_encoder import LargestIndex, OneHotEncoder
from churnctl.features.stages.params import Param
from churnctl.features.stages.standard_scaler import (
    ScalerMoments,
    StandardScaler,
    moments_mean_and_std,
    scale,
)
from churnctl.features.stages.string_indexer import (
    GIVEN,
    INVALID_POLICIES,
    NORMALIZE_MODES,
    ORDER_TYPES,
    LabelCounts,
    StringIndexer,
    count_labels,
    normalized,
    order_labels,
)
from churnctl.features.stages.vector_assembler import InputSizes, VectorAssembler

STAGE_TYPES: dict[str, type[Stage]] = {
    cls.TYPE: cls for cls in (StringIndexer, OneHotEncoder, VectorAssembler, StandardScaler)
}

__all__ = [
    "GIVEN",
    "INVALID_POLICIES",
    "NORMALIZE_MODES",
    "ORDER_TYPES",
    "RAW",
    "STAGE_TYPES",
    "WIDTH_FIX",
    "Accumulator",
    "ColumnNames",
    "InputSizes",
    "LabelCounts",
    "LargestIndex",
    "NameMap",
    "OneHotEncoder",
    "Param",
    "ScalerMoments",
    "Shape",
    "ShapeMap",
    "Stage",
    "StandardScaler",
    "StringIndexer",
    "VectorAssembler",
    "as_matrix",
    "count_labels",
    "moments_mean_and_std",
    "normalized",
    "order_labels",
    "scale",
    "too_wide",
]
