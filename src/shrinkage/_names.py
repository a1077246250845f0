"""Every name list a user can choose from, in one torch-free module.

The command line builds its ``--help`` (choices, defaults) from these tuples without
importing torch, scikit-learn or pandas; the library validates against the same tuples,
so a choice offered by the CLI is always one the library accepts.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ACTIVATIONS",
    "CLASSIFICATION",
    "INITS",
    "KINDS",
    "LEARNING_RATE_SCHEDULES",
    "MODES",
    "OPTIMIZERS",
    "PENALTY_NAMES",
    "PLACEMENTS",
    "REGRESSION",
    "SCORINGS",
    "TASKS",
    "CLASSIFICATION_SCORINGS",
    "placement_text",
]

CLASSIFICATION = "classification"
REGRESSION = "regression"
#: The learning tasks.
TASKS = (CLASSIFICATION, REGRESSION)

#: How a penalty is applied (:mod:`shrinkage.regularizer`).
MODES = ("loss", "gradient", "decoupled", "proximal")

#: What the estimators' ``penalty`` parameter accepts.
PENALTY_NAMES = ("l1", "l2", "elastic_net", "group_lasso", "exp_abs", "l2sp", "none")

#: The penalties a batched search stacks (``elastic_net`` splits a strength by ``l1_ratio``).
KINDS = ("l2", "l1", "elastic_net")

#: Named placements: every layer, every layer but the output layer, the output layer.
PLACEMENTS = ("all", "hidden", "output")

#: Activation functions of the MLP (``logistic`` and ``sigmoid`` are the same function).
ACTIVATIONS = ("relu", "tanh", "logistic", "sigmoid", "gelu", "identity")

#: Optimizers of the estimators and the search (elementwise: stacked candidates stay apart).
OPTIMIZERS = ("adam", "sgd")

#: Learning-rate schedules over the epochs of a fit (:func:`shrinkage.training.learning_rate_at`).
LEARNING_RATE_SCHEDULES = ("constant", "cosine")

#: Weight initializations of the MLP (:func:`shrinkage.models.init_mlp_`): torch's
#: ``nn.Linear`` default, Keras's ``Dense`` default (zero biases), He's for ReLU networks.
INITS = ("torch", "glorot_uniform", "he_uniform")

#: Scores of a search; greater is better, as scikit-learn's scorers.
SCORINGS = (
    "accuracy",
    "balanced_accuracy",
    "neg_log_loss",
    "r2",
    "neg_mean_squared_error",
    "neg_root_mean_squared_error",
    "neg_mean_absolute_error",
)
#: The scores that need a classification.
CLASSIFICATION_SCORINGS = ("accuracy", "balanced_accuracy", "neg_log_loss")


def placement_text(placement: str | Sequence[int]) -> str:
    """A placement as one string: a name as it is, layer indices comma-joined (``(0, 2)``
    and ``"0,2"``, how ``cv_results_`` writes a layer list, read the same).

    Example:
        >>> placement_text("hidden"), placement_text((0, 2))
        ('hidden', '0,2')
    """
    if isinstance(placement, list | tuple):
        return ",".join(str(int(i)) for i in placement)
    return str(placement)
