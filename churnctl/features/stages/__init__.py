"""Feature-extraction stages (being split: everything lives in ``base`` for now)."""

from churnctl.features.stages.base import *  # noqa: F403
from churnctl.features.stages.base import (  # noqa: F401
    INVALID_POLICIES,
    NORMALIZE_MODES,
    ORDER_TYPES,
    STAGE_TYPES,
    Accumulator,
    ColumnNames,
    OneHotEncoder,
    Shape,
    Stage,
    StandardScaler,
    StringIndexer,
    VectorAssembler,
    mean_and_std,
    normalized,
)
