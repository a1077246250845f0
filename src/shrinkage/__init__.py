"""shrinkage: first-class weight regularization for PyTorch.

Penalties with Keras's meaning (``L2(0.01)`` adds ``0.01 * sum(w**2)`` to the mean
loss), a plan that says which parameter gets which penalty, four ways to apply it to any
torch optimizer, scikit-learn estimators, and a cross-validated search that trains every
candidate at once.

The names below are imported on first use (PEP 562), so ``import shrinkage`` and the
command line's ``--help`` do not pay for torch, scikit-learn and pandas until they are
needed.

The public API is these names and the public submodules, each with an ``__all__``:
:mod:`~shrinkage.functional`, :mod:`~shrinkage.penalties`, :mod:`~shrinkage.constraints`,
:mod:`~shrinkage.steps`, :mod:`~shrinkage.plan`, :mod:`~shrinkage.regularizer`,
:mod:`~shrinkage.models`, :mod:`~shrinkage.training`, :mod:`~shrinkage.compact`,
:mod:`~shrinkage.estimators`, :mod:`~shrinkage.data`, :mod:`~shrinkage.search` (and
:mod:`~shrinkage.search.engine`),
:mod:`~shrinkage.analysis`, :mod:`~shrinkage.report`, :mod:`~shrinkage.errors` and the
``shrinkage`` command (:mod:`~shrinkage.cli`). Modules whose name starts with an
underscore are private.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shrinkage._version import __version__

# name -> the module that defines it ("module:attribute" when the names differ).
_EXPORTS = {
    # estimators and search
    "MLPClassifier": "shrinkage.estimators",
    "MLPRegressor": "shrinkage.estimators",
    "SearchCV": "shrinkage.search",
    "load": "shrinkage.estimators",
    "save": "shrinkage.estimators",
    # penalties
    "Penalty": "shrinkage.penalties",
    "L1": "shrinkage.penalties",
    "L2": "shrinkage.penalties",
    "L2SP": "shrinkage.penalties",
    "ElasticNet": "shrinkage.penalties",
    "L1L2": "shrinkage.penalties",
    "ExpAbs": "shrinkage.penalties",
    "GroupLasso": "shrinkage.penalties",
    "Orthogonal": "shrinkage.penalties",
    "from_course": "shrinkage.penalties",
    "from_sklearn_alpha": "shrinkage.penalties",
    "from_torch_weight_decay": "shrinkage.penalties",
    "get_penalty": "shrinkage.penalties:get",
    # constraints
    "Constraint": "shrinkage.constraints",
    "MaxNorm": "shrinkage.constraints",
    "MinMaxNorm": "shrinkage.constraints",
    "NonNeg": "shrinkage.constraints",
    "UnitNorm": "shrinkage.constraints",
    "get_constraint": "shrinkage.constraints:get",
    # applying them
    "Plan": "shrinkage.plan",
    "Rule": "shrinkage.plan",
    "MODES": "shrinkage._names",
    "Regularizer": "shrinkage.regularizer",
    "regularize": "shrinkage.regularizer",
    "compact": "shrinkage.compact",
    "dead_units": "shrinkage.compact",
    # reading any model: weights and hidden activations
    "weight_table": "shrinkage.analysis",
    "activations": "shrinkage.analysis",
    "activation_table": "shrinkage.analysis",
    "ActivationRecorder": "shrinkage.analysis",
    # errors
    "ShrinkageError": "shrinkage.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'shrinkage' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what static tools and IDEs see
    from shrinkage._names import MODES
    from shrinkage.analysis import (
        ActivationRecorder,
        activation_table,
        activations,
        weight_table,
    )
    from shrinkage.compact import compact, dead_units
    from shrinkage.constraints import Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm
    from shrinkage.constraints import get as get_constraint
    from shrinkage.errors import ShrinkageError
    from shrinkage.estimators import MLPClassifier, MLPRegressor, load, save
    from shrinkage.penalties import (
        L1,
        L1L2,
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
    from shrinkage.plan import Plan, Rule
    from shrinkage.regularizer import Regularizer, regularize
    from shrinkage.search import SearchCV
