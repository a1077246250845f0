"""Penalty objects: small, JSON-serializable values that call the functions in
:mod:`shrinkage.functional.penalties`.

Each penalty has the Keras meaning: it is added to the *mean* data loss as written, with
no 1/2 and no 1/n. ``L2(0.01)`` adds ``0.01 * sum(w**2)``; its gradient is ``0.02 * w``.
Other conventions convert explicitly: :func:`from_course`, :func:`from_sklearn_alpha`,
:func:`from_torch_weight_decay`.

Besides the per-tensor ``value`` / ``grad`` / ``prox``, each penalty has list-level
methods (``add_grad_``, ``decay_``, ``prox_``, ``total``) that the apply modes call once
per step on all the parameters sharing that penalty; L1, L2 and elastic net call the
in-place kernels of :mod:`shrinkage.functional.penalties` (fused ``torch._foreach_*``
ops, optional scratch buffers: see that module). ``prox_`` takes the step the optimizer
really took, a float or one :class:`~shrinkage.functional.penalties.StepSize` per tensor
(:mod:`shrinkage.steps`).

Longer than the package's ~600-line habit: the seven penalty classes are each short, and
they share this module with the registry that lists them and the conventions' converters.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from shrinkage._registry import ConfigMixin, Registry
from shrinkage.errors import ShrinkageError, check_strength
from shrinkage.functional import penalties as FP
from shrinkage.functional.penalties import StepSize

__all__ = [
    "Penalty",
    "L1",
    "L2",
    "ElasticNet",
    "L1L2",
    "ExpAbs",
    "GroupLasso",
    "L2SP",
    "Orthogonal",
    "get",
    "serialize",
    "deserialize",
    "from_course",
    "from_sklearn_alpha",
    "from_torch_weight_decay",
]

Refs = Sequence[Tensor | None] | None
#: The step of a proximal update: one float for every tensor, or one
#: :class:`~shrinkage.functional.penalties.StepSize` per tensor (``None``: leave it alone).
Steps = float | Sequence[StepSize | None]


class Penalty(ConfigMixin):
    """Base class: a penalty ``Omega(w)`` added to the mean data loss.

    Subclasses define ``value``, ``grad`` and (when a closed form exists) ``prox`` for one
    tensor; the list-level methods below have generic implementations that subclasses
    may fuse.
    """

    #: registry name (lower case) and the names it is also known by.
    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    #: whether :meth:`prox` has a closed form (required by ``mode="proximal"``).
    has_prox: ClassVar[bool] = False
    #: whether the penalty is measured from a reference tensor (L2-SP).
    needs_reference: ClassVar[bool] = False
    #: whether the list methods can use scratch buffers
    #: (:func:`shrinkage.functional.penalties.scratch_buffers`).
    uses_scratch: ClassVar[bool] = False

    # -- one tensor ----------------------------------------------------------------------

    def __call__(self, w: Tensor) -> Tensor:
        """The penalty of ``w``, as Keras's ``regularizer(w)``."""
        return self.value(w)

    def value(self, w: Tensor, ref: Tensor | None = None, batch_dims: int = 0) -> Tensor:
        """``Omega(w)``, differentiable."""
        raise NotImplementedError  # abstract

    def grad(self, w: Tensor, ref: Tensor | None = None) -> Tensor:
        """The (sub)gradient of ``Omega`` at ``w``; by default from autograd."""
        with torch.enable_grad():
            leaf = w.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.value(leaf, ref), leaf)
        return grad

    def prox(self, w: Tensor, step: float | Tensor, ref: Tensor | None = None) -> Tensor:
        """``argmin_x step * Omega(x) + 0.5 * ||x - w||^2``.

        ``step`` may be a tensor shaped like ``w`` (one step per coordinate): then the
        operator is taken in the metric ``diag(1 / step)``.
        """
        raise ShrinkageError(
            f"{type(self).__name__} has no closed-form proximal operator; "
            "use mode='gradient' or mode='decoupled' for it."
        )

    # -- lists of tensors (one call per optimizer step) ----------------------------------

    def add_grad_(
        self,
        grads: list[Tensor],
        params: list[Tensor],
        refs: Refs,
        scale: float,
        scratch: list[Tensor] | None = None,
    ) -> None:
        """In place: ``grads[i] += scale * grad(params[i])``.

        ``scratch`` (:func:`~shrinkage.functional.penalties.scratch_buffers`, aligned with
        ``params``, or ``None``) holds buffers the method may overwrite; it never changes
        the result.
        """
        refs = refs or [None] * len(params)
        torch._foreach_add_(grads, [self.grad(p, r) for p, r in zip(params, refs)], alpha=scale)

    def decay_(
        self, params: list[Tensor], refs: Refs, lr: float, scratch: list[Tensor] | None = None
    ) -> None:
        """In place, the decoupled update: ``params[i] -= lr * grad(params[i])``."""
        self.add_grad_(params, [p.detach() for p in params], refs, -lr)

    def prox_(
        self, params: list[Tensor], refs: Refs, step: Steps, scratch: list[Tensor] | None = None
    ) -> None:
        """In place: ``params[i] = prox(params[i], step_i)``.

        ``step`` is a float, or one :class:`~shrinkage.functional.penalties.StepSize` per
        tensor (the step the optimizer took, per coordinate; ``None`` leaves the tensor
        alone).
        """
        refs = refs or [None] * len(params)
        steps = _per_tensor_steps(step, len(params))
        for p, r, s in zip(params, refs, steps):
            if s is not None:
                p.copy_(self.prox(p, FP.step_tensor(s), r))

    def total(self, params: list[Tensor], refs: Refs) -> Tensor:
        """``sum_i Omega(params[i])`` without building an autograd graph."""
        refs = refs or [None] * len(params)
        with torch.no_grad():
            return torch.stack([self.value(p, r) for p, r in zip(params, refs)]).sum()

    # -- configuration (get_config, from_config, ==, hash, repr: ConfigMixin) -----------

    def scaled(self, factor: float) -> Penalty:
        """The same penalty with every strength multiplied by ``factor``."""
        config = self.get_config()
        for key in self._strength_keys:
            config[key] = config[key] * factor
        return type(self).from_config(config)

    #: the config keys that scale with the penalty (all penalties are linear in them).
    _strength_keys: ClassVar[tuple[str, ...]] = ("strength",)


class _L1L2(Penalty):
    """L1, L2 and elastic net: ``l1 * sum|w| + l2 * sum w**2`` with one of the two possibly 0.

    Their list methods are the in-place kernels of :mod:`shrinkage.functional.penalties`
    (``elastic_net_add_grad_``, ``elastic_net_decay_``, ``elastic_net_prox_``) with the two
    strengths scaled by the step; a zero term is skipped, so L1 and L2 cost what they would
    alone.
    """

    has_prox = True

    def _l1_l2(self) -> tuple[float, float]:
        """The (L1, L2) strengths of this penalty."""
        raise NotImplementedError  # abstract: each of L1, L2, ElasticNet names its own

    def add_grad_(
        self,
        grads: list[Tensor],
        params: list[Tensor],
        refs: Refs,
        scale: float,
        scratch: list[Tensor] | None = None,
    ) -> None:
        """``grads += scale * (l1 * sign(params) + 2 * l2 * params)``."""
        l1, l2 = self._l1_l2()
        FP.elastic_net_add_grad_(grads, params, scale * l1, scale * l2, scratch)

    def decay_(
        self, params: list[Tensor], refs: Refs, lr: float, scratch: list[Tensor] | None = None
    ) -> None:
        """``params -= lr * (l1 * sign(params) + 2 * l2 * params)`` (AdamW's decay for L2)."""
        l1, l2 = self._l1_l2()
        FP.elastic_net_decay_(params, lr * l1, lr * l2, scratch)

    def prox_(
        self, params: list[Tensor], refs: Refs, step: Steps, scratch: list[Tensor] | None = None
    ) -> None:
        """Soft-threshold at ``D * l1`` (exact zeros), then divide by ``1 + 2 D l2``.

        ``D`` is the float ``step``, or each tensor's
        :class:`~shrinkage.functional.penalties.StepSize` (per coordinate):
        :func:`~shrinkage.functional.penalties.elastic_net_prox_`.
        """
        l1, l2 = self._l1_l2()
        if not isinstance(step, Sequence):
            FP.elastic_net_prox_(params, step * l1, step * l2, scratch)
            return
        index = [i for i, s in enumerate(step) if s is not None]
        if len(index) < len(params):
            params = [params[i] for i in index]
            scratch = None if scratch is None else [scratch[i] for i in index]
            step = [step[i] for i in index]
        sizes: list[StepSize] = list(step)  # type: ignore[arg-type]
        metric = [None if s.v is None else (s.v, s.eps) for s in sizes]
        FP.elastic_net_prox_(
            params,
            [s.scale * l1 for s in sizes],
            [s.scale * l2 for s in sizes],
            scratch,
            None if all(m is None for m in metric) else metric,
        )

    def total(self, params: list[Tensor], refs: Refs) -> Tensor:
        """``l1 * sum_i ||p_i||_1 + l2 * sum_i ||p_i||^2`` from fused norm kernels."""
        l1, l2 = self._l1_l2()
        with torch.no_grad():
            total = torch.zeros((), dtype=params[0].dtype, device=params[0].device)
            if l1:
                total = total + l1 * torch.stack(torch._foreach_norm(params, 1)).sum()
            if l2:
                total = total + l2 * torch.stack(torch._foreach_norm(params, 2)).square().sum()
            return total


class L1(_L1L2):
    """``l1 * sum(|w|)`` (Keras ``L1``). Subgradient ``l1 * sign(w)``, 0 at ``w == 0``.

    Args:
        l1: strength, ``>= 0``.

    Example:
        >>> L1(0.5)(torch.tensor([1.0, -2.0]))
        tensor(1.5000)
    """

    name = "l1"
    uses_scratch = True
    _strength_keys = ("l1",)

    def __init__(self, l1: float = 0.01) -> None:
        self.l1 = check_strength(l1, "l1")

    def value(self, w: Tensor, ref: Tensor | None = None, batch_dims: int = 0) -> Tensor:
        """``l1 * sum(|w|)``."""
        return FP.l1(w, self.l1, batch_dims)

    def grad(self, w: Tensor, ref: Tensor | None = None) -> Tensor:
        """``l1 * sign(w)``."""
        return FP.l1_grad(w, self.l1)

    def prox(self, w: Tensor, step: float, ref: Tensor | None = None) -> Tensor:
        """Soft-threshold at ``step * l1``."""
        return FP.l1_prox(w, self.l1, step)

    def _l1_l2(self) -> tuple[float, float]:
        return self.l1, 0.0

    def get_config(self) -> dict[str, Any]:
        """``{"l1": l1}``."""
        return {"l1": self.l1}


class L2(_L1L2):
    """``l2 * sum(w**2)`` (Keras ``L2``; no 1/2). Gradient ``2 * l2 * w``.

    ``torch.optim.SGD(weight_decay=wd)`` is ``L2(wd / 2)``; see :func:`from_course`,
    :func:`from_sklearn_alpha` and :func:`from_torch_weight_decay` for the others.

    Args:
        l2: strength, ``>= 0``.

    Example:
        >>> L2(0.5)(torch.tensor([1.0, -2.0]))
        tensor(2.5000)
    """

    name = "l2"
    _strength_keys = ("l2",)

    def __init__(self, l2: float = 0.01) -> None:
        self.l2 = check_strength(l2, "l2")

    def value(self, w: Tensor, ref: Tensor | None = None, batch_dims: int = 0) -> Tensor:
        """``l2 * sum(w**2)``."""
        return FP.l2(w, self.l2, batch_dims)

    def grad(self, w: Tensor, ref: Tensor | None = None) -> Tensor:
        """``2 * l2 * w``."""
        return FP.l2_grad(w, self.l2)

    def prox(self, w: Tensor, step: float, ref: Tensor | None = None) -> Tensor:
        """``w / (1 + 2 * step * l2)``."""
        return FP.l2_prox(w, self.l2, step)

    def _l1_l2(self) -> tuple[float, float]:
        return 0.0, self.l2

    def get_config(self) -> dict[str, Any]:
        """``{"l2": l2}``."""
        return {"l2": self.l2}


class ElasticNet(_L1L2):
    """``l1 * sum(|w|) + l2 * sum(w**2)`` (Keras ``L1L2``; :data:`L1L2` is the same class).

    Args:
        l1: L1 strength, ``>= 0``.
        l2: L2 strength, ``>= 0``.
    """

    name = "elastic_net"
    aliases = ("l1l2", "elasticnet", "l1_l2")
    uses_scratch = True
    _strength_keys = ("l1", "l2")

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = check_strength(l1, "l1")
        self.l2 = check_strength(l2, "l2")

    def value(self, w: Tensor, ref: Tensor | None = None, batch_dims: int = 0) -> Tensor:
        """``l1 * sum(|w|) + l2 * sum(w**2)``."""
        return FP.elastic_net(w, self.l1, self.l2, batch_dims)

    def grad(self, w: Tensor, ref: Tensor | None = None) -> Tensor:
        """``l1 * sign(w) + 2 * l2 * w``."""
        return FP.elastic_net_grad(w, self.l1, self.l2)

    def prox(self, w: Tensor, step: float, ref: Tensor | None = None) -> Tensor:
        """Soft-threshold at ``step * l1`` then divide by ``1 + 2 * step * l2``."""
        return FP.elastic_net_prox(w, self.l1, self.l2, step)

    def _l1_l2(self) -> tuple[float, float]:
        return self.l1, self.l2

    def get_config(self) -> dict[str, Any]:
        """``{"l1": l1, "l2": l2}``."""
        return {"l1": self.l1, "l2": self.l2}


#: Keras's name for :class:`ElasticNet`: ``L1L2(l1=0.01, l2=0.01)``.
L1L2 = ElasticNet


class ExpAbs(Penalty):
    """``strength * sum(exp(|w|) - 1)``: like L1 near 0, harsher than L2 on large weights.

    No closed-form proximal operator.

    Args:
        strength: ``>= 0``.
    """

    name = "exp_abs"
    aliases = ("expabs",)

    def __init__(self, strength: float = 0.01) -> None:
        self.strength = check_strength(strength, "strength")

    def value(self, w: Tensor, ref: Tensor | None = None, batch_dims: int = 0) -> Tensor:
        """``strength * sum(exp(|w|) - 1)``."""
        return FP.exp_abs(w, self.strength, batch_dims)

    def grad(self, w: Tensor, ref: Tensor | None = None) -> Tensor:
        """``strength * sign(w) * exp(|w|)``."""
        return FP.exp_abs_grad(w, self.strength)

    def get_config(self) -> dict[str, Any]:
        """``{"strength": strength}``."""
        return {"strength": self.strength}


class GroupLasso(Penalty):
    """``strength * sum_g sqrt(size_g) * ||w_g||_2`` over rows or columns.

    Rows are output neurons (a Linear weight is ``(out, in)``) or conv filters; columns are
    input features / input channels. In ``mode="proximal"`` whole groups become exact
    zeros, which :func:`shrinkage.compact` can then remove.

    The proximal step uses the step the optimizer took: a scalar under SGD (the block
    soft-threshold), and under Adam, RMSprop or Adagrad, whose step ``D`` differs from
    coordinate to coordinate, the exact proximal operator in the metric ``diag(1 / D)``
    (:func:`~shrinkage.functional.penalties.group_lasso_prox`). One scalar step per group
    (its largest or smallest ``D``) would keep a closed form but has another fixed point:
    the largest zeroes groups the group lasso keeps, the smallest keeps groups it zeroes,
    and neither gives the group-lasso coefficients.

    Args:
        strength: ``>= 0``.
        groups: ``"rows"`` or ``"columns"``.
    """

    name = "group_lasso"
    aliases = ("grouplasso",)
    has_prox = True

    def __init__(self, strength: float = 0.01, groups: str = "rows") -> None:
        self.strength = check_strength(strength, "strength")
        if groups not in ("rows", "columns"):
            raise ShrinkageError(
                f"The 'groups' parameter of GroupLasso must be 'rows' or 'columns'. "
                f"Got {groups!r} instead."
            )
        self.groups = groups

    def value(self, w: Tensor, ref: Tensor | None = None, batch_dims: int = 0) -> Tensor:
        """``strength * sum_g sqrt(size_g) * ||w_g||``."""
        return FP.group_lasso(w, self.strength, self.groups, batch_dims)

    def grad(self, w: Tensor, ref: Tensor | None = None) -> Tensor:
        """``strength * sqrt(size_g) * w_g / ||w_g||``, 0 for a zero group."""
        return FP.group_lasso_grad(w, self.strength, self.groups)

    def prox(self, w: Tensor, step: float | Tensor, ref: Tensor | None = None) -> Tensor:
        """Block soft-threshold at ``step * strength * sqrt(size_g)`` (a per-coordinate
        ``step``: the exact operator in the metric ``diag(1 / step)``)."""
        return FP.group_lasso_prox(w, self.strength, step, self.groups)

    def get_config(self) -> dict[str, Any]:
        """``{"strength": strength, "groups": groups}``."""
        return {"strength": self.strength, "groups": self.groups}


def _as_reference(reference: Any) -> Tensor:
    """A snapshot of ``reference``: a tensor is copied (a model's live weight passed here must
    not move with training), JSON numbers become float64 (every digit survives a round-trip).
    """
    if isinstance(reference, Tensor):
        return reference.detach().clone()
    if isinstance(reference, list | tuple | int | float):
        return torch.tensor(reference, dtype=torch.float64)
    return torch.as_tensor(reference).clone()


class L2SP(Penalty):
    """``strength * sum((w - w0)**2)``: L2 toward a starting point ``w0`` (Li et al. 2018).

    Used to fine-tune an already trained network without forgetting it. In a plan, leave
    ``reference`` as ``None``: the :class:`~shrinkage.Regularizer` snapshots each
    parameter when it is created. A reference given here (one tensor) is used as is.

    Args:
        strength: ``>= 0``.
        reference: the weights to pull toward, or ``None``.
    """

    name = "l2sp"
    aliases = ("l2_sp",)
    has_prox = True
    needs_reference = True

    def __init__(self, strength: float = 0.01, reference: Any = None) -> None:
        self.strength = check_strength(strength, "strength")
        try:
            self.reference = None if reference is None else _as_reference(reference)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ShrinkageError(
                f"The 'reference' of L2SP must be a tensor or nested list of numbers. "
                f"Got {reference!r} ({' '.join(str(err).split())})."
            ) from None

    def scaled(self, factor: float) -> Penalty:
        """The same penalty with ``strength * factor``."""
        return L2SP(self.strength * factor, self.reference)

    def _ref(self, w: Tensor, ref: Tensor | None) -> Tensor:
        ref = self.reference if ref is None else ref
        if ref is None:
            raise ShrinkageError(
                "L2SP needs a reference: pass reference=... or use it through a Regularizer, "
                "which snapshots the weights."
            )
        if ref.ndim and tuple(ref.shape) != tuple(w.shape[w.ndim - ref.ndim :]):
            raise ShrinkageError(
                f"The 'reference' of L2SP has shape {tuple(ref.shape)}, "
                f"the weight has shape {tuple(w.shape)}."
            )
        return ref.to(device=w.device, dtype=w.dtype)

    def value(self, w: Tensor, ref: Tensor | None = None, batch_dims: int = 0) -> Tensor:
        """``strength * sum((w - w0)**2)``."""
        return FP.l2sp(w, self._ref(w, ref), self.strength, batch_dims)

    def grad(self, w: Tensor, ref: Tensor | None = None) -> Tensor:
        """``2 * strength * (w - w0)``."""
        return FP.l2sp_grad(w, self._ref(w, ref), self.strength)

    def prox(self, w: Tensor, step: float, ref: Tensor | None = None) -> Tensor:
        """``w0 + (w - w0) / (1 + 2 * step * strength)``."""
        return FP.l2sp_prox(w, self._ref(w, ref), self.strength, step)

    def __str__(self) -> str:
        """``L2SP(0.01) toward the initial weights`` (what a person reads; ``repr`` is exact)."""
        if self.reference is None:
            return f"L2SP({self.strength:g}) toward the initial weights"
        return f"L2SP({self.strength:g}) toward a reference of shape {tuple(self.reference.shape)}"

    def get_config(self) -> dict[str, Any]:
        """``{"strength": s, "reference": nested list or None}``."""
        reference = None if self.reference is None else self.reference.tolist()
        return {"strength": self.strength, "reference": reference}

    def _key(self) -> tuple:
        # Every value, not a summary: two penalties sharing a Regularizer bucket share
        # their reference, so "equal" must mean the same reference.
        ref = (
            None
            if self.reference is None
            else (tuple(self.reference.shape), tuple(self.reference.double().flatten().tolist()))
        )
        return ("L2SP", self.strength, ref)


class Orthogonal(Penalty):
    """Keras's ``OrthogonalRegularizer(factor, mode)``.

    ``factor * 0.5 * sum_{i != j} |<u_i, u_j>| / (n (n - 1) / 2)`` over the L2-normalized
    rows (or columns) ``u_i`` of the weight as stored. Note a torch ``Linear.weight`` is
    the transpose of a Keras ``Dense`` kernel, so Keras's ``mode="rows"`` on a Dense
    kernel is ``mode="columns"`` here. Gradient by autograd; no proximal operator.

    Args:
        factor: ``>= 0``.
        mode: ``"rows"`` or ``"columns"``.
    """

    name = "orthogonal"
    aliases = ("orthogonal_regularizer", "orthogonalregularizer")
    _strength_keys = ("factor",)

    def __init__(self, factor: float = 0.01, mode: str = "rows") -> None:
        self.factor = check_strength(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ShrinkageError(
                f"The 'mode' parameter of Orthogonal must be 'rows' or 'columns'. "
                f"Got {mode!r} instead."
            )
        self.mode = mode

    def value(self, w: Tensor, ref: Tensor | None = None, batch_dims: int = 0) -> Tensor:
        """Mean absolute cosine similarity of distinct rows, times ``factor / 2``."""
        return FP.orthogonal(w, self.factor, self.mode, batch_dims)

    def get_config(self) -> dict[str, Any]:
        """``{"factor": factor, "mode": mode}``."""
        return {"factor": self.factor, "mode": self.mode}


# --- registry -----------------------------------------------------------------------------

_REGISTRY: Registry[Penalty] = Registry(
    "penalty", Penalty, (L1, L2, ElasticNet, ExpAbs, GroupLasso, L2SP, Orthogonal), (L2, 0.001)
)


def get(identifier: Penalty | str | dict | None) -> Penalty | None:
    """Resolve a penalty the way Keras's ``regularizers.get`` does.

    Args:
        identifier: a :class:`Penalty` (returned as is), a name (``"l2"``, ``"L2"``,
            ``"l1l2"``: the default strength), a ``serialize`` dict, or ``None``.

    Returns:
        The penalty, or ``None``.

    Raises:
        ShrinkageError: an unknown name or a malformed dict, naming what was received.

    Example:
        >>> get("L2")
        L2(l2=0.01)
    """
    return _REGISTRY.get(identifier)


def serialize(penalty: Penalty | None) -> dict[str, Any] | None:
    """``{"class_name": "L2", "config": {"l2": 0.01}}``: plain JSON values."""
    return _REGISTRY.serialize(penalty)


def deserialize(config: dict[str, Any] | None) -> Penalty | None:
    """Inverse of :func:`serialize`."""
    return _REGISTRY.deserialize(config)


# --- conversions from other conventions ---------------------------------------------------


def _count(value: object, name: str) -> float:
    """A count ``>= 1``: an int or a float, or a NumPy or torch scalar holding one
    (``X.shape[0]`` works whatever array it comes from)."""
    number = value
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        number = value.item()  # type: ignore[union-attr]  # a NumPy scalar, a 0-d tensor
    if (
        isinstance(number, bool)
        or not isinstance(number, int | float)
        or not 1 <= number <= sys.float_info.max  # an int beyond float range compares exactly
    ):
        raise ShrinkageError(f"The '{name}' parameter must be a count >= 1. Got {value!r} instead.")
    return number


def from_course(lam: float, m: int) -> L2:
    """The course's ``(lambda / 2m) * sum(w**2)`` added to the mean loss over m examples.

    Gradient ``(lambda / m) * w``; equal to ``L2(lambda / (2m))``.

    Args:
        lam: the course's lambda, ``>= 0``.
        m: number of training examples the mean loss is taken over (``>= 1``; a NumPy or
            torch integer too, e.g. ``X.shape[0]``).

    Example:
        >>> from_course(0.7, 35)
        L2(l2=0.01)
    """
    lam = check_strength(lam, "lam")
    m = _count(m, "m")
    return L2(lam / 2 / m)  # not / (2 * m): 2 * m may overflow float


def from_sklearn_alpha(alpha: float, n_samples: int, task: str = "classification") -> L2:
    """scikit-learn ``MLPClassifier/MLPRegressor(alpha=...)`` as a penalty on our mean loss.

    scikit-learn adds ``(alpha / 2n) * sum(W**2)`` to its loss, ``n`` the samples in the
    batch the loss is averaged over (the batch size for ``solver="sgd"``/``"adam"``, all
    training rows for ``"lbfgs"``). Its classifier's loss is the mean log-loss, ours too,
    so the penalty is ``L2(alpha / (2n))`` (gradient ``(alpha / n) * w``). Its regressor's
    loss is *half* the mean squared error, while :class:`~shrinkage.MLPRegressor` (and
    ``nn.MSELoss``) minimize the mean squared error itself: the same objective, doubled, is
    ``MSE + L2(alpha / n)``, which ``task="regression"`` returns. So a linear
    ``sklearn.neural_network.MLPRegressor(alpha)`` and ``Ridge(alpha)`` solve the same
    problem as ``MSE + from_sklearn_alpha(alpha, n, "regression")`` (not ``Ridge(alpha/2)``).

    Args:
        alpha: scikit-learn's ``alpha``, ``>= 0``.
        n_samples: rows in the batch (``>= 1``; a NumPy or torch integer too).
        task: ``"classification"`` (log-loss) or ``"regression"`` (squared error).

    Returns:
        ``L2(alpha / (2n))`` for classification, ``L2(alpha / n)`` for regression.

    Example:
        >>> from_sklearn_alpha(0.5, 25), from_sklearn_alpha(0.5, 25, "regression")
        (L2(l2=0.01), L2(l2=0.02))
    """
    alpha = check_strength(alpha, "alpha")
    n_samples = _count(n_samples, "n_samples")
    if task not in ("classification", "regression"):
        raise ShrinkageError(
            f"The 'task' parameter must be 'classification' or 'regression'. Got {task!r} instead."
        )
    return L2(alpha / 2 / n_samples if task == "classification" else alpha / n_samples)


def from_torch_weight_decay(weight_decay: float) -> L2:
    """``torch.optim.SGD/Adam(weight_decay=wd)`` adds ``wd * w`` to the gradient.

    That is the gradient of ``(wd / 2) * sum(w**2)``, i.e. ``L2(wd / 2)``.
    """
    return L2(check_strength(weight_decay, "weight_decay") / 2)


def _per_tensor_steps(step: Steps, n: int) -> Sequence[float | StepSize | None]:
    return step if isinstance(step, Sequence) else [step] * n
