"""scikit-learn compatible MLP estimators with per-layer weight regularization, and their
saved form (a directory: ``model.json`` + the safetensors weights file it names; loading never
unpickles).
"""

from shrinkage._names import PENALTY_NAMES
from shrinkage.estimators._mlp import MLPClassifier, MLPRegressor
from shrinkage.estimators._params import (
    format_layer_penalties,
    make_penalty,
    parse_layer_penalties,
)
from shrinkage.estimators._persistence import (
    FORMAT,
    FORMAT_VERSION,
    MODEL_FILE,
    WEIGHTS_FILE,
    check_output_dir,
    is_model_dir,
    load,
    read_metadata,
    save,
    weights_path,
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
    "format_layer_penalties",
    "is_model_dir",
    "load",
    "make_penalty",
    "parse_layer_penalties",
    "read_metadata",
    "save",
    "weights_path",
]
