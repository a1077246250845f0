"""Weight constraints as pure tensor functions: projections, tensor in, tensor out.

Keras's formulas (``keras/src/constraints/constraints.py``), with torch's layout for the
default axis: ``axis=None`` is every dimension but the first, so each norm is one unit's
incoming weights (see :mod:`shrinkage.constraints` for the table). Every function takes
``batch_dims`` leading candidate dimensions, as the penalty functions do.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["EPSILON", "max_norm", "min_max_norm", "non_neg", "unit_norm"]

#: Keras's ``backend.epsilon()``, added to every norm before dividing (as Keras does).
EPSILON = 1e-7

Axis = int | Sequence[int] | None


def _dims(w: Tensor, axis: Axis, batch_dims: int) -> tuple[int, ...]:
    """The dimensions of ``w`` a norm reduces, counting after the candidate dimensions."""
    ndim = w.ndim - batch_dims
    if axis is None:
        own = tuple(range(1, ndim)) if ndim >= 2 else tuple(range(ndim))
    else:
        own = tuple(a % ndim for a in ((axis,) if isinstance(axis, int) else axis))
    return tuple(batch_dims + a for a in own)


def _norms(w: Tensor, axis: Axis, batch_dims: int) -> Tensor:
    dims = _dims(w, axis, batch_dims)
    if not dims:
        return w.abs()
    return torch.linalg.vector_norm(w, dim=dims, keepdim=True)


def max_norm(w: Tensor, max_value: float = 2.0, axis: Axis = None, batch_dims: int = 0) -> Tensor:
    """Rescale every slice whose L2 norm exceeds ``max_value`` back to ``max_value``.

    ``w * clip(n, 0, max_value) / (eps + n)`` with ``n = ||w||_2`` over ``axis`` (kept for
    broadcasting) and ``eps = 1e-7``, exactly Keras's ``MaxNorm``.

    Args:
        w: the weight.
        max_value: the largest norm allowed.
        axis: the dimensions of each norm (``None``: all but the first; see the module).
        batch_dims: leading dimensions that index candidates rather than weights.

    Returns:
        The projected tensor (a new tensor).

    Example:
        >>> max_norm(torch.tensor([[3.0, 4.0], [0.3, 0.4]]), 1.0)
        tensor([[0.6000, 0.8000],
                [0.3000, 0.4000]])
    """
    norms = _norms(w, axis, batch_dims)
    return w * (norms.clamp(0, max_value) / (EPSILON + norms))


def unit_norm(w: Tensor, axis: Axis = None, batch_dims: int = 0) -> Tensor:
    """Divide every slice by its L2 norm: ``w / (eps + ||w||_2)`` (Keras's ``UnitNorm``).

    Args:
        w: the weight.
        axis: the dimensions of each norm (``None``: all but the first).
        batch_dims: leading candidate dimensions.

    Returns:
        The projected tensor; an all-zero slice stays zero.
    """
    return w / (EPSILON + _norms(w, axis, batch_dims))


def non_neg(w: Tensor) -> Tensor:
    """Zero the negative entries: ``w * (w >= 0)`` (Keras's ``NonNeg``).

    Args:
        w: the weight.

    Returns:
        ``max(w, 0)`` (a new tensor).
    """
    return w * (w >= 0).to(w.dtype)


def min_max_norm(
    w: Tensor,
    min_value: float = 0.0,
    max_value: float = 1.0,
    rate: float = 1.0,
    axis: Axis = None,
    batch_dims: int = 0,
) -> Tensor:
    """Move every slice's L2 norm into ``[min_value, max_value]`` (Keras's ``MinMaxNorm``).

    ``w * d / (eps + n)`` with ``d = rate * clip(n, min_value, max_value) + (1 - rate) * n``:
    ``rate = 1`` enforces the bounds strictly, a smaller rate moves part of the way.

    Args:
        w: the weight.
        min_value: the smallest norm.
        max_value: the largest norm.
        rate: the fraction of the way to move, in ``(0, 1]``.
        axis: the dimensions of each norm (``None``: all but the first).
        batch_dims: leading candidate dimensions.

    Returns:
        The projected tensor.
    """
    norms = _norms(w, axis, batch_dims)
    desired = rate * norms.clamp(min_value, max_value) + (1 - rate) * norms
    return w * (desired / (EPSILON + norms))
