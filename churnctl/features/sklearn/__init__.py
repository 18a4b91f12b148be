"""A training script's fitted scikit-learn preprocessing, imported as a state (``from_sklearn``).

``fitted`` reads what the fitted objects say (never importing scikit-learn);
``importer`` turns them, step by step, into the state's stages.
"""

from churnctl.features.sklearn.fitted import ModelNotImportedWarning, UnsupportedStepError
from churnctl.features.sklearn.importer import from_sklearn

__all__ = ["ModelNotImportedWarning", "UnsupportedStepError", "from_sklearn"]
