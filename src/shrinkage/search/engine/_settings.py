"""How every candidate of a stack is trained: :class:`TrainSettings`, checked once."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from shrinkage._names import LEARNING_RATE_SCHEDULES, MODES, OPTIMIZERS
from shrinkage.errors import ShrinkageError, did_you_mean
from shrinkage.training import n_outputs

__all__ = ["TrainSettings", "check_elementwise_optimizer"]


@dataclass(frozen=True)
class TrainSettings:
    """How every candidate of a stack is trained (what a single model's estimator sets).

    Attributes:
        task: ``"classification"`` or ``"regression"``.
        n_classes: classes (classification only); ``n_outputs`` follows
            :func:`shrinkage.training.n_outputs` (one logit for two classes).
        optimizer: ``"adam"`` (torch defaults ``betas=(0.9, 0.999)``, ``eps=1e-8``) or
            ``"sgd"`` (with ``momentum``, no dampening, no Nesterov).
        learning_rate: the step size ``> 0``.
        momentum: SGD momentum in ``[0, 1)``.
        epochs: passes over each candidate's training rows.
        batch_size: rows per minibatch.
        mode: how the penalty is applied: ``"gradient"``, ``"loss"``, ``"decoupled"`` or
            ``"proximal"`` (:mod:`shrinkage.regularizer`; the proximal step is the step
            the optimizer took, :meth:`StackedOptimizer.prox_steps`).
        learning_rate_schedule: ``"constant"`` or ``"cosine"``
            (:func:`shrinkage.training.learning_rate_at`, once per epoch).
    """

    task: str
    n_classes: int | None = None
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    epochs: int = 200
    batch_size: int = 32
    mode: str = "gradient"
    # Out of the repr: search checkpoints fingerprint ``repr(settings)``, and those written
    # before the schedule existed must still resume (the fingerprint adds it when not
    # constant).
    learning_rate_schedule: str = field(default="constant", repr=False)

    def __post_init__(self) -> None:
        n_outputs(self.task, self.n_classes)  # validates task and classes
        check_elementwise_optimizer(self.optimizer)
        if self.mode not in MODES:
            raise ShrinkageError(
                f"The 'mode' parameter must be one of {', '.join(map(repr, MODES))}. "
                f"Got {self.mode!r} instead.{did_you_mean(self.mode, MODES)}"
            )
        if self.learning_rate_schedule not in LEARNING_RATE_SCHEDULES:
            raise ShrinkageError(
                "The 'learning_rate_schedule' parameter must be one of "
                f"{', '.join(map(repr, LEARNING_RATE_SCHEDULES))}. "
                f"Got {self.learning_rate_schedule!r} instead."
                f"{did_you_mean(self.learning_rate_schedule, LEARNING_RATE_SCHEDULES)}"
            )
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf:
            raise ShrinkageError(
                f"The 'learning_rate' parameter must be a float in the range (0, inf). "
                f"Got {lr!r} instead."
            )
        m = self.momentum
        if isinstance(m, bool) or not isinstance(m, int | float) or not 0 <= m < 1:
            raise ShrinkageError(
                f"The 'momentum' parameter must be a float in the range [0, 1). Got {m!r} instead."
            )
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ShrinkageError(
                    f"The '{name}' parameter must be an integer >= 1. Got {value!r} instead."
                )

    @property
    def n_outputs(self) -> int:
        """Width of the output layer."""
        return n_outputs(self.task, self.n_classes)


def check_elementwise_optimizer(optimizer: Any) -> str:
    """Accept an optimizer that acts on each entry alone; refuse anything coupling candidates.

    Only elementwise rules keep K stacked candidates independent: Adam and SGD (momentum)
    update every entry from its own gradient and state. Global-norm clipping, L-BFGS (its
    line search sees the summed loss), LAMB/LARS-style trust ratios and Shampoo-style
    preconditioners mix candidates, so a stacked run would not equal K single runs.

    Args:
        optimizer: a name (``"adam"``, ``"sgd"``), or a ``torch.optim`` class / instance.

    Returns:
        The optimizer's name.

    Raises:
        ShrinkageError: anything else, naming what was received.
    """
    if isinstance(optimizer, torch.optim.Optimizer):
        optimizer = type(optimizer)
    if isinstance(optimizer, type):
        known = {torch.optim.Adam: "adam", torch.optim.SGD: "sgd"}
        if optimizer in known:
            return known[optimizer]
        raise ShrinkageError(
            f"The batched search needs an elementwise optimizer ('adam' or 'sgd'); "
            f"{optimizer.__name__} couples the stacked candidates. Got {optimizer!r} instead."
        )
    if optimizer not in OPTIMIZERS:
        raise ShrinkageError(
            f"The 'optimizer' parameter must be one of {', '.join(map(repr, OPTIMIZERS))} "
            "(elementwise rules keep stacked candidates independent). "
            f"Got {optimizer!r} instead.{did_you_mean(optimizer, OPTIMIZERS)}"
        )
    return optimizer
