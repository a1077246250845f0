"""The step a ``torch.optim`` optimizer really took, per coordinate, read after its step.

Proximal mode replaces the weights ``w`` by ``prox_{D Omega}(w)`` after each optimizer step.
At a fixed point ``w*`` of training, with a steady gradient ``g``, the optimizer moves each
coordinate by ``-D_true * g`` and the fixed-point equation is
``0 in D_true * g + D * dOmega(w*)``, i.e. ``0 in g + (D / D_true) * dOmega(w*)``. So the
fixed point minimizes ``loss + Omega`` if and only if ``D = D_true``: the proximal step
must be the step the optimizer took, coordinate by coordinate. (Thresholding at the
learning rate under ``SGD(momentum=0.9)`` solves the problem with the penalty divided by
10; under Adam it solves a problem whose penalty is weighted by the gradient's RMS.)

================================== ===================================================
optimizer                          per-coordinate step ``D`` (after ``step()``)
================================== ===================================================
SGD                                ``lr``
SGD(momentum=mu, dampening=d)      ``lr * (1 - d) / (1 - mu)``
SGD(momentum=mu, nesterov=True)    ``lr * (1 - mu * d) / (1 - mu)`` (torch has ``d = 0``)
Adam, AdamW (amsgrad: ``max v``)   ``lr / (sqrt(v) / sqrt(1 - b2**t) + eps)``
RMSprop                            ``lr / (sqrt(v) + eps)``
RMSprop(centered)                  ``lr / (sqrt(v - mean(g)**2) + eps)``
RMSprop(momentum=mu)               the above divided by ``1 - mu``
Adagrad                            ``lr / (1 + (t - 1) lr_decay) / (sqrt(sum g**2) + eps)``
================================== ===================================================

``maximize``, ``weight_decay`` and the ``foreach`` / ``fused`` implementations do not
change ``D``. Adam's step is taken on its bias-corrected first moment: with a steady
gradient ``m_t = (1 - b1**t) g``, so the displacement is ``D * g`` from the very first
step, not only in the limit. SGD's momentum buffer builds up over the first ``1 / (1 - mu)``
steps, during which the threshold is larger than the step; weights zeroed too early come
back, as the buffer still holds their gradient.

Other optimizer classes are refused (an exact type match: a subclass may change the
rule), unless the caller opts into thresholding at the learning rate
(``Regularizer(..., proximal_step="lr")``, exact for plain SGD only) or teaches this
module the class with :func:`register_step_reader`. ``LBFGS`` is always refused: it moves
the weights by its own line search between closure evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from shrinkage.errors import ShrinkageError
from shrinkage.functional.penalties import StepSize

__all__ = [
    "SUPPORTED_OPTIMIZERS",
    "StepReader",
    "StepSize",
    "adam_step",
    "check_optimizer",
    "register_step_reader",
    "step_sizes",
]

#: ``reader(optimizer, group, params) -> [StepSize | None per parameter]``.
StepReader = Callable[[torch.optim.Optimizer, dict, Sequence[Tensor]], list]


def _float(x: float | Tensor) -> float:
    return float(x)  # lr, betas and step counts may be tensors


def adam_step(
    lr: float, eps: float, beta2: float, step: float | Tensor
) -> tuple[float | Tensor, float | Tensor]:
    """The ``(scale, eps)`` of Adam's step ``D = scale / (sqrt(v) + eps)`` after step ``t``.

    torch's Adam moves ``w`` by ``lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``:
    the step on the bias-corrected mean ``m / (1 - b1**t)`` is
    ``D = lr / (sqrt(v) / sqrt(1 - b2**t) + eps) = lr sqrt(bc2) / (sqrt(v) + eps sqrt(bc2))``
    with ``bc2 = 1 - b2**t``: one ``sqrt`` and one ``add`` per coordinate.

    Args:
        lr: the learning rate.
        eps: Adam's ``eps``.
        beta2: Adam's ``b2``.
        step: the step count ``t >= 1`` (a float, or a tensor of counts, one per candidate).

    Returns:
        ``(lr * sqrt(bc2), eps * sqrt(bc2))``, floats or tensors like ``step``.

    Example:
        >>> adam_step(0.1, 1e-8, 0.75, 1)
        (0.05, 5e-09)
    """
    if isinstance(step, Tensor):
        root = torch.sqrt(1 - torch.pow(beta2, step))
        return root * lr, root * eps
    root = math.sqrt(1 - beta2**step)
    return lr * root, eps * root


def _sgd(opt: torch.optim.Optimizer, group: dict, params: Sequence[Tensor]) -> list[StepSize]:
    lr, mu = _float(group["lr"]), _float(group.get("momentum", 0))
    d = _float(group.get("dampening", 0))
    if mu == 0:
        scale = lr
    elif group.get("nesterov", False):
        # update = g + mu * buf, buf -> (1 - d) g / (1 - mu): (1 - mu d) / (1 - mu) g
        scale = lr * (1 - mu * d) / (1 - mu)
    else:
        scale = lr * (1 - d) / (1 - mu)  # update = buf -> (1 - d) g / (1 - mu)
    return [StepSize(scale) for _ in params]


def _adam(
    opt: torch.optim.Optimizer, group: dict, params: Sequence[Tensor]
) -> list[StepSize | None]:
    lr, eps, beta2 = _float(group["lr"]), _float(group["eps"]), _float(group["betas"][1])
    key = "max_exp_avg_sq" if group.get("amsgrad", False) else "exp_avg_sq"
    out: list[StepSize | None] = []
    for p in params:
        state = opt.state.get(p)
        if not state or key not in state:
            out.append(None)  # not stepped yet
            continue
        scale, e = adam_step(lr, eps, beta2, _float(state["step"]))
        out.append(StepSize(scale, state[key], e))
    return out


def _rmsprop(
    opt: torch.optim.Optimizer, group: dict, params: Sequence[Tensor]
) -> list[StepSize | None]:
    lr, eps, mu = _float(group["lr"]), _float(group["eps"]), _float(group.get("momentum", 0))
    scale = lr / (1 - mu)  # momentum: buf = mu buf + g / avg -> (g / avg) / (1 - mu)
    out: list[StepSize | None] = []
    for p in params:
        state = opt.state.get(p)
        if not state or "square_avg" not in state:
            out.append(None)
            continue
        v = state["square_avg"]
        if group.get("centered", False):
            v = v.addcmul(state["grad_avg"], state["grad_avg"], value=-1)  # as torch does
        out.append(StepSize(scale, v, eps))
    return out


def _adagrad(
    opt: torch.optim.Optimizer, group: dict, params: Sequence[Tensor]
) -> list[StepSize | None]:
    lr, eps, decay = _float(group["lr"]), _float(group["eps"]), _float(group.get("lr_decay", 0))
    out: list[StepSize | None] = []
    for p in params:
        state = opt.state.get(p)
        if not state or "sum" not in state:
            out.append(None)
            continue
        t = _float(state["step"])  # already counts this step, as torch's clr uses it
        out.append(StepSize(lr / (1 + (t - 1) * decay), state["sum"], eps))
    return out


def _learning_rate(
    opt: torch.optim.Optimizer, group: dict, params: Sequence[Tensor]
) -> list[StepSize]:
    return [StepSize(_float(group["lr"])) for _ in params]


_READERS: dict[type, StepReader] = {
    torch.optim.SGD: _sgd,
    torch.optim.Adam: _adam,
    torch.optim.AdamW: _adam,
    torch.optim.RMSprop: _rmsprop,
    torch.optim.Adagrad: _adagrad,
}

#: The optimizer classes whose step is known (exact types).
SUPPORTED_OPTIMIZERS = tuple(cls.__name__ for cls in _READERS)


def register_step_reader(cls: type, reader: StepReader) -> None:
    """Teach proximal mode the per-coordinate step of another optimizer class.

    Args:
        cls: the optimizer class (matched exactly, not its subclasses).
        reader: ``reader(optimizer, group, params)`` returning, after a step, one
            :class:`~shrinkage.functional.penalties.StepSize` (or ``None``: not stepped)
            per parameter of ``params`` (parameters of the group ``group``).

    Raises:
        ShrinkageError: ``cls`` is not a ``torch.optim.Optimizer`` class, or is ``LBFGS``.
    """
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ShrinkageError(
            f"register_step_reader needs a torch.optim.Optimizer class. Got {cls!r} instead."
        )
    if issubclass(cls, torch.optim.LBFGS):
        raise ShrinkageError(_LBFGS_PROXIMAL)
    _READERS[cls] = reader


_LBFGS_PROXIMAL = (
    "mode='proximal' cannot be used with LBFGS: it moves the weights by its own line search "
    "between closure evaluations; use mode='gradient' or 'loss'."
)


def check_optimizer(optimizer: torch.optim.Optimizer, fallback: str = "exact") -> StepReader:
    """The step reader of ``optimizer``, or a one-line error naming the supported ones.

    Args:
        optimizer: the optimizer proximal mode attaches to.
        fallback: ``"exact"`` (refuse an unknown optimizer) or ``"lr"`` (threshold at its
            learning rate, which is exact for plain SGD only).

    Returns:
        The reader.

    Raises:
        ShrinkageError: LBFGS, or an optimizer whose step is not known (with ``"exact"``).
    """
    if isinstance(optimizer, torch.optim.LBFGS):
        raise ShrinkageError(_LBFGS_PROXIMAL)
    if fallback == "lr":
        return _learning_rate
    reader = _READERS.get(type(optimizer))
    if reader is None:
        raise ShrinkageError(
            f"mode='proximal' needs the per-coordinate step of the optimizer; "
            f"{type(optimizer).__name__} is not one of "
            f"{', '.join(cls.__name__ for cls in _READERS)} (pass proximal_step='lr' to "
            "threshold at the learning rate, exact for plain SGD only, or teach it with "
            "shrinkage.steps.register_step_reader)."
        )
    return reader


def step_sizes(
    optimizer: torch.optim.Optimizer,
    group: dict,
    params: Sequence[Tensor],
    fallback: str = "exact",
) -> list[StepSize | None]:
    """The step each parameter took in the last ``optimizer.step()``, per coordinate.

    Args:
        optimizer: the optimizer that has just stepped.
        group: the parameter group holding ``params``.
        params: parameters of that group (a subset is fine).
        fallback: ``"exact"`` or ``"lr"`` (see :func:`check_optimizer`).

    Returns:
        One :class:`~shrinkage.functional.penalties.StepSize` per parameter (``None`` for
        a parameter the optimizer holds no state for: it has not stepped).

    Raises:
        ShrinkageError: an optimizer whose step is not known (see :func:`check_optimizer`).

    Example:
        >>> w = torch.nn.Parameter(torch.ones(2))
        >>> opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> step_sizes(opt, opt.param_groups[0], [w])[0].scale  # lr / (1 - momentum)
        1.0000000000000002
    """
    return check_optimizer(optimizer, fallback)(optimizer, group, params)
