"""shrinkage: first-class weight regularization for PyTorch.

Penalties with Keras's meaning (``L2(0.01)`` adds ``0.01 * sum(w**2)`` to the mean
loss), a plan that says which parameter gets which penalty, and four ways to apply it
to any torch optimizer.
"""

from shrinkage.apply import MODES, Regularizer, regularize
from shrinkage.compact import compact, dead_units
from shrinkage.constraints import Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm
from shrinkage.constraints import get as get_constraint
from shrinkage.errors import ShrinkageError
from shrinkage.estimators import MLPClassifier, MLPRegressor
from shrinkage.penalties import (
    L1,
    L2,
    L2SP,
    ElasticNet,
    ExpAbs,
    GroupLasso,
    Orthogonal,
    Penalty,
    from_course,
    from_sklearn_alpha,
    from_torch_weight_decay,
)
from shrinkage.penalties import get as get_penalty
from shrinkage.persistence import load, save
from shrinkage.plan import Plan, Rule
from shrinkage.search import SearchCV

__all__ = [
    "MLPClassifier",
    "MLPRegressor",
    "SearchCV",
    "load",
    "save",
    "MODES",
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "compact",
    "dead_units",
    "get_constraint",
    "L1",
    "L2",
    "L2SP",
    "ElasticNet",
    "ExpAbs",
    "GroupLasso",
    "Orthogonal",
    "Penalty",
    "Plan",
    "Regularizer",
    "Rule",
    "ShrinkageError",
    "from_course",
    "from_sklearn_alpha",
    "from_torch_weight_decay",
    "get_penalty",
    "regularize",
]
__version__ = "0.1.0"
