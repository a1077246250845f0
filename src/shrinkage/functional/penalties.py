"""Penalty math as pure tensor functions: value, (sub)gradient and proximal operator.

Every function takes the weight tensor ``w`` and a ``strength`` that is either a Python
float or a tensor of shape ``w.shape[:batch_dims]``: the batched engine stacks K candidate
networks along a leading dimension and gives each its own strength, so with
``batch_dims=1`` a value is returned per candidate (shape ``(K,)``) and gradients and
proximal steps use each candidate's own strength.

Conventions (Keras's): the penalty is added to the *mean* data loss, with no 1/2 and no
1/n, e.g. ``l2(w, s) = s * sum(w**2)`` whose gradient is ``2 * s * w``.

The proximal operator of ``step * Omega`` is
``prox(v) = argmin_w  Omega(w) * step + 0.5 * ||w - v||^2``; ``step`` is the optimizer's
learning rate when applied after a gradient step (proximal gradient descent).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

Strength = float | Tensor

__all__ = [
    "elastic_net",
    "elastic_net_grad",
    "elastic_net_prox",
    "exp_abs",
    "exp_abs_grad",
    "group_lasso",
    "group_lasso_grad",
    "group_lasso_prox",
    "group_norms",
    "l1",
    "l1_grad",
    "l1_prox",
    "l2",
    "l2_grad",
    "l2_prox",
    "l2sp",
    "l2sp_grad",
    "l2sp_prox",
    "orthogonal",
    "soft_threshold",
]


def _per_candidate(strength: Strength, w: Tensor) -> Strength:
    """Reshape a ``(K,)`` strength so it broadcasts against a ``(K, ...)`` weight."""
    if isinstance(strength, Tensor) and strength.ndim:
        return strength.reshape(strength.shape + (1,) * (w.ndim - strength.ndim))
    return strength


def _sum(x: Tensor, batch_dims: int) -> Tensor:
    """Sum over every dimension but the leading ``batch_dims`` ones."""
    if batch_dims == 0:
        return x.sum()
    return x.sum(dim=tuple(range(batch_dims, x.ndim)))


def soft_threshold(w: Tensor, threshold: Strength) -> Tensor:
    """Soft-thresholding, the proximal operator of ``threshold * |w|``.

    ``S(w, t) = sign(w) * max(|w| - t, 0)``: entries with ``|w| <= t`` become exact zeros.

    Args:
        w: tensor to threshold.
        threshold: ``t >= 0``, a float or a tensor broadcastable to ``w``.

    Returns:
        The thresholded tensor (a new tensor).
    """
    return torch.sign(w) * torch.clamp(w.abs() - threshold, min=0)


# --- L1 ---------------------------------------------------------------------------------


def l1(w: Tensor, strength: Strength, batch_dims: int = 0) -> Tensor:
    """L1 penalty ``strength * sum(|w|)``.

    Args:
        w: weight tensor.
        strength: ``l1 >= 0`` (float, or ``(K,)`` tensor with ``batch_dims=1``).
        batch_dims: leading dimensions that index candidates rather than weights.

    Returns:
        A scalar, or one value per candidate.

    Example:
        >>> l1(torch.tensor([1.0, -2.0]), 0.5)
        tensor(1.5000)
    """
    return strength * _sum(w.abs(), batch_dims)


def l1_grad(w: Tensor, strength: Strength, batch_dims: int = 0) -> Tensor:
    """Subgradient of the L1 penalty, ``strength * sign(w)`` (0 at ``w == 0``)."""
    return _per_candidate(strength, w) * torch.sign(w)


def l1_prox(w: Tensor, strength: Strength, step: float, batch_dims: int = 0) -> Tensor:
    """Proximal operator of ``step * l1``: ``sign(w) * max(|w| - step * strength, 0)``."""
    return soft_threshold(w, step * _per_candidate(strength, w))


# --- L2 ---------------------------------------------------------------------------------


def l2(w: Tensor, strength: Strength, batch_dims: int = 0) -> Tensor:
    """L2 penalty ``strength * sum(w**2)`` (Keras's ``L2``: no 1/2).

    Example:
        >>> l2(torch.tensor([1.0, -2.0]), 0.5)
        tensor(2.5000)
    """
    return strength * _sum(w.square(), batch_dims)


def l2_grad(w: Tensor, strength: Strength, batch_dims: int = 0) -> Tensor:
    """Gradient of the L2 penalty, ``2 * strength * w``."""
    return 2 * _per_candidate(strength, w) * w


def l2_prox(w: Tensor, strength: Strength, step: float, batch_dims: int = 0) -> Tensor:
    """Proximal operator of ``step * l2``: ``w / (1 + 2 * step * strength)``."""
    return w / (1 + 2 * step * _per_candidate(strength, w))


# --- Elastic net ------------------------------------------------------------------------


def elastic_net(w: Tensor, l1_: Strength, l2_: Strength, batch_dims: int = 0) -> Tensor:
    """Elastic net ``l1 * sum(|w|) + l2 * sum(w**2)`` (Keras's ``L1L2``)."""
    return l1(w, l1_, batch_dims) + l2(w, l2_, batch_dims)


def elastic_net_grad(w: Tensor, l1_: Strength, l2_: Strength, batch_dims: int = 0) -> Tensor:
    """Subgradient of the elastic net, ``l1 * sign(w) + 2 * l2 * w``."""
    return l1_grad(w, l1_) + l2_grad(w, l2_)


def elastic_net_prox(
    w: Tensor, l1_: Strength, l2_: Strength, step: float, batch_dims: int = 0
) -> Tensor:
    """Proximal operator of ``step * elastic_net``.

    ``S(w, step * l1) / (1 + 2 * step * l2)``: soft-threshold, then shrink.
    """
    return l2_prox(l1_prox(w, l1_, step), l2_, step)


# --- exp(|w|) - 1 -----------------------------------------------------------------------


def exp_abs(w: Tensor, strength: Strength, batch_dims: int = 0) -> Tensor:
    """The "exp(|w|) - 1" penalty, ``strength * sum(exp(|w|) - 1)``.

    Near zero it behaves like ``strength * |w|`` (zero-seeking, like L1); for large
    weights it grows faster than any polynomial, so it is harsher than L2 there.
    """
    return strength * _sum(torch.expm1(w.abs()), batch_dims)


def exp_abs_grad(w: Tensor, strength: Strength, batch_dims: int = 0) -> Tensor:
    """Subgradient ``strength * sign(w) * exp(|w|)`` (0 at ``w == 0``)."""
    return _per_candidate(strength, w) * torch.sign(w) * torch.exp(w.abs())


# --- Group lasso ------------------------------------------------------------------------


def _group_dims(w: Tensor, groups: str, batch_dims: int) -> tuple[tuple[int, ...], int]:
    """The dimensions reduced inside a group, and the number of entries per group."""
    first = batch_dims
    rest = tuple(range(first + 1, w.ndim))
    if w.ndim - batch_dims <= 1:
        # A vector: each entry is a row; as columns the whole vector is one group.
        dims = () if groups == "rows" else tuple(range(first, w.ndim))
    elif groups == "rows":
        dims = rest
    else:
        dims = (first,) + tuple(range(first + 2, w.ndim))
    size = math.prod(w.shape[d] for d in dims)
    return dims, size


def group_norms(w: Tensor, groups: str = "rows", batch_dims: int = 0) -> Tensor:
    """Euclidean norm of each group, kept broadcastable against ``w``.

    ``rows``: one group per output neuron / conv filter (index along the first weight
    dimension); ``columns``: one group per input feature / input channel.
    """
    dims, _ = _group_dims(w, groups, batch_dims)
    if not dims:
        return w.abs()
    return torch.linalg.vector_norm(w, dim=dims, keepdim=True)


def group_lasso(w: Tensor, strength: Strength, groups: str = "rows", batch_dims: int = 0) -> Tensor:
    """Group lasso ``strength * sum_g sqrt(size_g) * ||w_g||_2``.

    Args:
        w: weight tensor (a linear weight ``(out, in)`` or a conv kernel
            ``(out, in, *kernel)``; conv filters count as rows).
        strength: ``>= 0``.
        groups: ``"rows"`` (output neurons / filters) or ``"columns"`` (input features).
        batch_dims: leading candidate dimensions.

    Returns:
        A scalar, or one value per candidate.
    """
    _, size = _group_dims(w, groups, batch_dims)
    norms = group_norms(w, groups, batch_dims)
    return strength * math.sqrt(size) * _sum(norms, batch_dims)


def group_lasso_grad(
    w: Tensor, strength: Strength, groups: str = "rows", batch_dims: int = 0
) -> Tensor:
    """Subgradient ``strength * sqrt(size_g) * w_g / ||w_g||`` (0 for a zero group)."""
    _, size = _group_dims(w, groups, batch_dims)
    norms = group_norms(w, groups, batch_dims)
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    return _per_candidate(strength, w) * math.sqrt(size) * w / safe


def group_lasso_prox(
    w: Tensor, strength: Strength, step: float, groups: str = "rows", batch_dims: int = 0
) -> Tensor:
    """Block soft-threshold ``w_g * max(0, 1 - step * strength * sqrt(size_g) / ||w_g||)``.

    A group whose norm is below the threshold becomes exactly zero.
    """
    _, size = _group_dims(w, groups, batch_dims)
    norms = group_norms(w, groups, batch_dims)
    threshold = step * _per_candidate(strength, w) * math.sqrt(size)
    # Not 1 for zero norms only: a subnormal norm has no finite reciprocal, and torch divides
    # a scalar by a tensor through the reciprocal, so 0 / 1e-45 would be 0 * inf = NaN.
    safe = norms.clamp_min(torch.finfo(norms.dtype).tiny)
    return w * torch.clamp(1 - threshold / safe, min=0)


# --- L2-SP: toward a reference ----------------------------------------------------------


def l2sp(w: Tensor, reference: Tensor, strength: Strength, batch_dims: int = 0) -> Tensor:
    """L2-SP ``strength * sum((w - w0)**2)``: L2 toward stored weights ``w0``."""
    return l2(w - reference, strength, batch_dims)


def l2sp_grad(w: Tensor, reference: Tensor, strength: Strength, batch_dims: int = 0) -> Tensor:
    """Gradient ``2 * strength * (w - w0)``."""
    return l2_grad(w - reference, strength)


def l2sp_prox(
    w: Tensor, reference: Tensor, strength: Strength, step: float, batch_dims: int = 0
) -> Tensor:
    """Proximal operator: ``w0 + (w - w0) / (1 + 2 * step * strength)``."""
    return reference + l2_prox(w - reference, strength, step)


# --- Orthogonality (Keras OrthogonalRegularizer) ----------------------------------------


def orthogonal(w: Tensor, factor: Strength, mode: str = "rows", batch_dims: int = 0) -> Tensor:
    """Keras's ``OrthogonalRegularizer``: mean |cosine| between distinct rows (or columns).

    ``factor * 0.5 * sum_{i != j} |<u_i, u_j>| / (n * (n - 1) / 2)`` where ``u_i`` are the
    L2-normalized rows (``mode="rows"``) or columns of ``w`` as stored (a torch Linear
    weight is ``(out, in)``: its rows are output neurons). Tensors with more than two
    weight dimensions (conv kernels) are viewed as ``(shape[0], -1)``. Zero for ``n < 2``.
    """
    matrix = w.reshape(w.shape[: batch_dims + 1] + (-1,)) if w.ndim > batch_dims + 1 else w
    if matrix.ndim - batch_dims < 2:
        matrix = matrix.unsqueeze(-1)
    if mode == "columns":
        matrix = matrix.transpose(-1, -2)
    unit = torch.nn.functional.normalize(matrix, dim=-1, eps=1e-12)
    n = unit.shape[-2]
    if n < 2:
        return _sum(w, batch_dims) * 0  # keeps the graph: a zero gradient, not none
    product = unit @ unit.transpose(-1, -2)
    off_diagonal = product * (1 - torch.eye(n, dtype=w.dtype, device=w.device))
    pairs = n * (n - 1) / 2
    return factor * 0.5 * _sum(off_diagonal.abs(), batch_dims) / pairs
