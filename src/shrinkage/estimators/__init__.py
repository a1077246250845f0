"""scikit-learn compatible MLP estimators with per-layer weight regularization, and their
saved form (a directory: ``weights.safetensors`` + ``model.json``; loading never unpickles).
"""

from shrinkage._names import PENALTY_NAMES
from shrinkage.estimators._mlp import MLPClassifier, MLPRegressor
from shrinkage.estimators._params import make_penalty
from shrinkage.estimators._persistence import (
    FORMAT,
    FORMAT_VERSION,
    MODEL_FILE,
    WEIGHTS_FILE,
    check_output_dir,
    load,
    read_metadata,
    save,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MODEL_FILE",
    "PENALTY_NAMES",
    "WEIGHTS_FILE",
    "MLPClassifier",
    "MLPRegressor",
    "check_output_dir",
    "load",
    "make_penalty",
    "read_metadata",
    "save",
]
