"""Penalty math as pure tensor functions: value, (sub)gradient and proximal operator.

Every function takes the weight tensor ``w`` and a ``strength`` that is either a Python
float or a tensor of shape ``w.shape[:batch_dims]``: the batched engine stacks K candidate
networks along a leading dimension and gives each its own strength, so with
``batch_dims=1`` a value is returned per candidate (shape ``(K,)``) and gradients and
proximal steps use each candidate's own strength.

Conventions (Keras's): the penalty is added to the *mean* data loss, with no 1/2 and no
1/n, e.g. ``l2(w, s) = s * sum(w**2)`` whose gradient is ``2 * s * w``.

The proximal operator of ``step * Omega`` is
``prox(v) = argmin_w  Omega(w) * step + 0.5 * ||w - v||^2``. After an optimizer step,
``step`` must be the step the optimizer really took (:class:`StepSize`): then the fixed
point of training minimizes ``loss + Omega``. It is a float (plain SGD: the learning rate)
or one value per coordinate ``D`` (Adam: ``lr / (sqrt(v_hat) + eps)``), in which case the
proximal operator is taken in the metric ``diag(1 / D)``:
``argmin_w  Omega(w) + 0.5 * sum_i (w_i - v_i)**2 / D_i`` (the preconditioned proximal
step of ProxGen, Yun et al., NeurIPS 2021). For a separable penalty that is the scalar
operator applied coordinate by coordinate with ``step = D_i``; for group lasso see
:func:`group_lasso_prox`.

In-place list kernels. Training applies L1, L2 and elastic net once per optimizer step to
every regularized tensor. :func:`elastic_net_add_grad_`, :func:`elastic_net_decay_` and
:func:`elastic_net_prox_` do it in place on a list of tensors, with the step size folded
into the strengths; they are the only implementation of these updates, called both by the
:class:`~shrinkage.Regularizer` (one float strength for a bucket of tensors: fused
``torch._foreach_*`` kernels) and by the batched search engine (one ``(K, 1, ...)`` strength
per stacked tensor, a different value for every candidate).

Scratch buffers. ``sign(w)`` and ``clamp(w)`` need a temporary the size of the weight. On
a CPU, allocating a fresh temporary the size of a large weight at every step costs more
than the arithmetic itself (page faults), while one buffer reused tensor by tensor stays
warm in the cache. :func:`scratch_buffers` makes such buffers once; the kernels write into
them (``out=``) when given, and allocate otherwise. On an accelerator the caching
allocator makes temporaries cheap and the fused ``_foreach`` kernels are faster, so no
buffers are made there.

Longer than the package's ~600-line habit: a value, gradient and proximal map for each of
seven penalties, plus the in-place list kernels, all short pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

Strength = float | Tensor
#: Strengths of a list kernel: one float for every tensor, or one entry per tensor (a float,
#: a tensor broadcastable against it, or None for no term).
Factors = float | Sequence[float | Tensor | None]

__all__ = [
    "StepSize",
    "elastic_net",
    "elastic_net_add_grad_",
    "elastic_net_decay_",
    "elastic_net_grad",
    "elastic_net_prox",
    "elastic_net_prox_",
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
    "scratch_buffers",
    "soft_threshold",
    "step_tensor",
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


class StepSize(NamedTuple):
    """The step an optimizer took, per coordinate: ``D = scale / (sqrt(v) + eps)``.

    ``v is None`` means one step for every coordinate, ``D = scale`` (SGD). ``scale`` and
    ``eps`` are floats, or tensors broadcastable against the weight (one value per
    candidate of a stack). ``v`` is the optimizer's own state tensor, shaped like the
    weight: the kernels read it and never write it. :mod:`shrinkage.steps` reads these
    from ``torch.optim`` optimizers.

    Example:
        >>> StepSize(0.1, torch.tensor([0.0, 4.0]), 1.0).tensor()
        tensor([0.1000, 0.0333])
    """

    scale: float | Tensor
    v: Tensor | None = None
    eps: float | Tensor = 0.0

    def tensor(self) -> float | Tensor:
        """``D`` itself: the float ``scale``, or ``scale / (sqrt(v) + eps)`` (a new tensor)."""
        return step_tensor(self)


def step_tensor(step: float | StepSize) -> float | Tensor:
    """The per-coordinate step ``D`` of a :class:`StepSize` (a float is returned as is).

    Args:
        step: a float, or ``StepSize(scale, v, eps)``.

    Returns:
        ``scale`` when ``v`` is None, else ``scale / (sqrt(v) + eps)``.
    """
    if not isinstance(step, StepSize):
        return step
    if step.v is None:
        return step.scale
    return torch.sqrt(step.v).add_(step.eps).reciprocal_().mul_(step.scale)


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
    w: Tensor,
    strength: Strength,
    step: float | Tensor,
    groups: str = "rows",
    batch_dims: int = 0,
) -> Tensor:
    """Proximal operator of ``step * group_lasso``: whole groups become exact zeros.

    With a scalar ``step`` it is the block soft-threshold
    ``w_g * max(0, 1 - step * tau / ||w_g||)`` with ``tau = strength * sqrt(size_g)``.

    With a per-coordinate ``step`` ``D`` (a tensor shaped like ``w``: Adam's
    ``lr / (sqrt(v_hat) + eps)``) it is the exact proximal operator in the metric
    ``diag(1 / D)``, ``argmin_x tau ||x_g|| + 0.5 sum_i (x_i - w_i)**2 / D_i`` per group
    (ProxGen's step for a diagonal preconditioner; the group norm is not separable, so no
    single scalar step per group gives it, and the fixed point of training is the
    group-lasso minimizer only with this one). A group is zero iff
    ``||w_g / (tau D_g)|| <= 1``; otherwise ``x_i = w_i r / (r + tau D_i)`` where
    ``r = ||x_g||`` is the root of ``sum_i w_i**2 / (r + tau D_i)**2 = 1``, found by
    Newton's method on ``1 / ||w_g / (r + tau D_g)|| - 1`` (increasing and concave in
    ``r``, so Newton from the lower bracket ``||w_g|| - tau max D_g`` converges
    monotonically; one step is exact when ``D`` is constant on the group, and at most 4
    reach float64 round-off on random instances with ``D`` spread over ``e**12``).

    Args:
        w: the weights (after the optimizer's step).
        strength: ``>= 0``: a float, or ``(K,)`` with ``batch_dims=1``.
        step: a float, or the per-coordinate step ``D > 0`` shaped like ``w``.
        groups: ``"rows"`` or ``"columns"``.
        batch_dims: leading candidate dimensions.

    Returns:
        A new tensor.
    """
    dims, size = _group_dims(w, groups, batch_dims)
    tau = _per_candidate(strength, w) * math.sqrt(size)
    if isinstance(step, Tensor) and step.ndim:
        return _group_lasso_metric_prox(w, step.expand_as(w), tau, dims)
    norms = group_norms(w, groups, batch_dims)
    threshold = step * tau
    # Not 1 for zero norms only: a subnormal norm has no finite reciprocal, and torch divides
    # a scalar by a tensor through the reciprocal, so 0 / 1e-45 would be 0 * inf = NaN.
    safe = norms.clamp_min(torch.finfo(norms.dtype).tiny)
    return w * torch.clamp(1 - threshold / safe, min=0)


#: Newton steps of the group-lasso metric prox on devices where an early stop would cost a
#: device-to-host synchronization (on a CPU it stops when the iterates no longer move).
_NEWTON_STEPS = 8


def _group_lasso_metric_prox(y: Tensor, d: Tensor, tau: Strength, dims: tuple[int, ...]) -> Tensor:
    """``argmin_x tau ||x_g|| + 0.5 sum_i (x_i - y_i)**2 / d_i`` for every group at once."""
    c = d.clamp_min(torch.finfo(d.dtype).tiny) * tau
    if not dims:  # groups of one entry: the soft-threshold at tau * d
        return y - torch.maximum(torch.minimum(y, c), -c)
    zero = (y / c).square().sum(dims, keepdim=True) <= 1
    norm = y.square().sum(dims, keepdim=True).sqrt()
    low = (norm - c.amax(dims, keepdim=True)).clamp_min(0)
    high = (norm - c.amin(dims, keepdim=True)).clamp_min(0)
    r = low
    tiny = torch.finfo(y.dtype).tiny
    early = y.device.type == "cpu"
    for _ in range(30 if early else _NEWTON_STEPS):
        rc = r + c
        z2 = (y / rc).square()
        zz = z2.sum(dims, keepdim=True).clamp_min(tiny)
        zn = zz.sqrt()
        g = 1 / zn - 1
        slope = (z2 / rc).sum(dims, keepdim=True) / (zz * zn)
        new = torch.where(zero, low, torch.minimum(torch.maximum(r - g / slope, low), high))
        moved = (new - r).abs() > 4 * torch.finfo(y.dtype).eps * new
        r = new
        if early and not bool(moved.any()):
            break
    x = y * (r / (r + c))
    return torch.where(zero, torch.zeros_like(x), x)


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


# --- in-place list kernels (L1, L2, elastic net) ----------------------------------------

#: Below this many entries in the largest tensor, fresh temporaries are cheap (the
#: allocator recycles them without page faults) and the fused ``_foreach`` kernels win.
SCRATCH_MIN_ELEMENTS = 2**15


def scratch_buffers(params: Sequence[Tensor]) -> list[Tensor] | None:
    """Buffers the list kernels may overwrite, step after step, or ``None``.

    One flat buffer as large as the largest tensor, seen through one view shaped like each
    tensor (the views alias each other: the kernels use them one tensor at a time). Made
    only for large CPU tensors of one dtype (see the module docstring).

    Args:
        params: the tensors the kernels will be called on, in that order.

    Returns:
        One view per tensor, or ``None`` (use fresh temporaries).
    """
    if not params:
        return None
    first = params[0]
    if first.device.type != "cpu" or any(
        p.dtype != first.dtype or p.device != first.device for p in params
    ):
        return None
    largest = max(p.numel() for p in params)
    if largest < SCRATCH_MIN_ELEMENTS:
        return None
    flat = torch.empty(largest, dtype=first.dtype)
    return [flat[: p.numel()].view(p.shape) for p in params]


def _out(scratch: Sequence[Tensor] | None, i: int, like: Tensor) -> Tensor | None:
    """Scratch buffer ``i`` as an ``out=`` for a result shaped like ``like``; ``None``
    (allocate) without buffers or when the tensor changed shape, dtype or device."""
    if scratch is None:
        return None
    s = scratch[i]
    if s.shape != like.shape or s.dtype != like.dtype or s.device != like.device:
        return None
    return s


def _per_tensor(factors: Factors, n: int) -> Sequence[float | Tensor | None]:
    return [factors] * n if isinstance(factors, int | float) else factors


def _is_zero(factor: float | Tensor | None) -> bool:
    return factor is None or (isinstance(factor, int | float) and factor == 0)


def _shared(factors: Factors) -> bool:
    """One float for every tensor: the fused ``_foreach`` kernels apply."""
    return isinstance(factors, int | float)


def elastic_net_add_grad_(
    grads: list[Tensor],
    params: list[Tensor],
    l1: Factors,
    l2: Factors,
    scratch: Sequence[Tensor] | None = None,
) -> None:
    """In place: ``grads[i] += l1_i * sign(params[i]) + 2 * l2_i * params[i]``.

    The gradient of ``l1 * sum|w| + l2 * sum w**2`` (:func:`elastic_net_grad`) added to each
    gradient; L1 (``l2 = 0``) and L2 (``l1 = 0``) skip the other term.

    Args:
        grads: gradients, updated in place.
        params: the tensors, aligned with ``grads``.
        l1: L1 strengths (see :data:`Factors`).
        l2: L2 strengths.
        scratch: buffers from :func:`scratch_buffers` (never changes the result).
    """
    if _shared(l2) and _shared(l1) and scratch is None:
        if l1:
            torch._foreach_add_(grads, torch._foreach_sign(params), alpha=l1)
        if l2:
            torch._foreach_add_(grads, params, alpha=2 * l2)
        return
    a, b = _per_tensor(l1, len(params)), _per_tensor(l2, len(params))
    for i, (g, p) in enumerate(zip(grads, params)):
        if not _is_zero(a[i]):
            _add_scaled_(g, torch.sign(p, out=_out(scratch, i, p)), a[i])
        if not _is_zero(b[i]):
            _add_scaled_(g, p, 2 * b[i])


def elastic_net_decay_(
    params: list[Tensor], l1: Factors, l2: Factors, scratch: Sequence[Tensor] | None = None
) -> None:
    """In place, the decoupled update ``p -= l1_i * sign(p) + 2 * l2_i * p`` for each ``p``.

    The step size is folded into the strengths (``l1 = lr * strength``): the update of
    ``torch.optim.AdamW`` for L2 (``w *= 1 - 2 * lr * l2``), with the L1 term taken from the
    signs of the weights before the update.

    Args:
        params: the tensors, updated in place.
        l1: ``lr``-scaled L1 strengths (see :data:`Factors`).
        l2: ``lr``-scaled L2 strengths.
        scratch: buffers from :func:`scratch_buffers`.
    """
    if _shared(l2) and _shared(l1) and scratch is None:
        signs = torch._foreach_sign(params) if l1 else None
        if l2:
            torch._foreach_mul_(params, 1 - 2 * l2)
        if signs is not None:
            torch._foreach_add_(params, signs, alpha=-l1)
        return
    a, b = _per_tensor(l1, len(params)), _per_tensor(l2, len(params))
    for i, p in enumerate(params):
        sign = None if _is_zero(a[i]) else torch.sign(p, out=_out(scratch, i, p))
        if not _is_zero(b[i]):
            p.mul_(1 - 2 * b[i])
        if sign is not None:
            _add_scaled_(p, sign, -a[i])


def elastic_net_prox_(
    params: list[Tensor],
    l1: Factors,
    l2: Factors,
    scratch: Sequence[Tensor] | None = None,
    metric: Sequence[tuple[Tensor, float | Tensor] | None] | None = None,
) -> None:
    """In place, the proximal step: ``params[i] = S(params[i], D l1_i) / (1 + 2 D l2_i)``.

    The proximal operator of ``l1 * sum|w| + l2 * sum w**2`` (:func:`elastic_net_prox`):
    soft-threshold, then shrink.

    Without ``metric`` the step is folded into the strengths (``l1 = step * strength``)
    and ``D = 1``. The soft-threshold is ``softshrink`` in place (one pass) one tensor at a
    time, or ``w - clamp(w, -t, t)`` with fused ``_foreach`` kernels; both equal
    ``sign(w) * max(|w| - t, 0)`` to the last bit, with exact zeros where ``|w| <= t``.
    A strength may be a full tensor (one threshold per coordinate).

    With ``metric[i] = (v, eps)`` the step of tensor ``i`` is per coordinate,
    ``D = 1 / (sqrt(v) + eps)`` times the scale folded into the strengths
    (:class:`StepSize`: ``l1 = scale * strength``): the soft-threshold of coordinate ``j``
    is at ``l1 / e_j`` with ``e = sqrt(v) + eps``. With float strengths it is computed in
    the scaled coordinates ``u = w * e``, where the threshold is the scalar ``l1``:
    ``w = softshrink(u, l1) / (e + 2 * l2)`` (5 passes for L1: ``sqrt``, ``add``, ``mul``,
    ``softshrink``, ``div``; exact zeros, no threshold tensor; L2 alone is
    ``w - 2 l2 w / (e + 2 l2)``, 3 passes: ``sqrt``, ``add``, ``addcdiv``). With tensor
    strengths (one per candidate of a stack) the thresholds ``l1 / e`` are formed, so that
    a zero strength leaves the weight exactly as it was.

    Args:
        params: the tensors, updated in place.
        l1: ``step``-scaled L1 strengths, the thresholds (see :data:`Factors`).
        l2: ``step``-scaled L2 strengths.
        scratch: buffers from :func:`scratch_buffers` (never changes the result).
        metric: per tensor, ``None`` (a scalar step) or ``(v, eps)``: the per-coordinate
            denominator ``sqrt(v) + eps`` of the step (``v`` is read, never written).
    """
    if metric is None and _shared(l2) and _shared(l1) and scratch is None:
        if l1:
            inside = torch._foreach_clamp_max(params, l1)
            torch._foreach_clamp_min_(inside, -l1)
            torch._foreach_sub_(params, inside)
        if l2:
            torch._foreach_mul_(params, 1 / (1 + 2 * l2))
        return
    a, b = _per_tensor(l1, len(params)), _per_tensor(l2, len(params))
    for i, p in enumerate(params):
        t, c = a[i], b[i]
        if _is_zero(t) and _is_zero(c):
            continue
        m = None if metric is None else metric[i]
        if m is None:
            if not _is_zero(t):
                _soft_threshold_(p, t, _out(scratch, i, p))
            if not _is_zero(c):
                p.mul_(1 / (1 + 2 * c))
            continue
        v, eps = m
        if _is_zero(t) and not isinstance(c, Tensor) and not isinstance(eps, Tensor):
            # L2 alone: w / (1 + 2c / e) = w - 2c w / (e + 2c), e = sqrt(v) + eps: 3 passes.
            e = torch.sqrt(v, out=_out(scratch, i, p)).add_(eps + 2 * c)
            p.addcdiv_(p, e, value=-2 * c)
            continue
        e = torch.sqrt(v, out=_out(scratch, i, p)).add_(eps)
        if isinstance(t, Tensor) or isinstance(c, Tensor):
            if not _is_zero(t):
                bound = t / e
                p.sub_(torch.clamp(p, -bound, bound))
            if not _is_zero(c):
                p.mul_(e / e.add(2 * c))
            continue
        p.mul_(e)
        if not _is_zero(t):
            _soft_threshold_(p, t, None)
        if not _is_zero(c):
            e.add_(2 * c)
        p.div_(e)


def _soft_threshold_(p: Tensor, t: float | Tensor, out: Tensor | None) -> None:
    """``p = sign(p) * max(|p| - t, 0)`` in place: one ``softshrink`` pass for a float ``t``."""
    if isinstance(t, int | float) and _SOFTSHRINK is not None:
        _SOFTSHRINK(p, t, out=p)
    else:
        p.sub_(torch.clamp(p, -t, t, out=out))


# ``torch._C._nn.softshrink(w, t, out=w)``: the soft-threshold in one in-place pass
# (bit-identical to ``w - clamp(w, -t, t)`` except that a zeroed negative entry is -0.0).
_SOFTSHRINK = getattr(getattr(torch._C, "_nn", None), "softshrink", None)


def _add_scaled_(x: Tensor, y: Tensor, factor: float | Tensor) -> None:
    """``x += factor * y`` for a float or a broadcastable tensor factor."""
    if isinstance(factor, int | float):
        x.add_(y, alpha=factor)
    else:
        x.addcmul_(y, factor)
