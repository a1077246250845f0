"""Weight constraints: projections applied to a parameter after every optimizer step.

Keras's ``kernel_constraint`` semantics (``keras/src/constraints/constraints.py``): the
optimizer takes its step, then each constrained weight is replaced by its projection.
Constraints are chosen through the plan exactly like penalties, in their own table
(``Plan(rules, constraints={"*": MaxNorm(3)})``), so a weight can have both a penalty
and a constraint, as a Keras layer has both ``kernel_regularizer`` and
``kernel_constraint``. The :class:`~shrinkage.Regularizer` projects after every step in
every apply mode.

Axes. ``axis`` names the dimensions the norm is taken over, as in Keras, but the default
is torch's layout, not Keras's: ``axis=None`` means *every dimension but the first*, so
each norm is the norm of one unit's incoming weights:

========================== =================== =====================================
parameter                  torch shape         ``axis=None`` gives one norm per
========================== =================== =====================================
``nn.Linear.weight``       ``(out, in)``       output unit (Keras Dense ``axis=0``)
``nn.ConvNd.weight``       ``(out, in, *k)``   filter (Keras Conv2D ``axis=[0,1,2]``)
``nn.LSTM.weight_ih_l0``   ``(4 * hidden, in)`` gate unit
``nn.Embedding.weight``    ``(num, dim)``      embedding vector (torch ``max_norm``)
a 1-D tensor (a bias)      ``(n,)``            the whole vector
========================== =================== =====================================

A Keras Dense kernel is ``(in, out)``, the transpose of a torch Linear weight: Keras
``axis=0`` is torch ``axis=1`` (the default here) and Keras ``axis=1`` (one norm per
input feature) is torch ``axis=0``.

Each constraint is a pure tensor function underneath
(:mod:`shrinkage.functional.constraints`: tensor in, tensor out, with ``batch_dims``
leading candidate dimensions for the batched engine) and a small JSON-serializable value
object on top, found by name (``"max_norm"``, ``"MaxNorm"``) like the penalties.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from shrinkage._registry import ConfigMixin, Registry
from shrinkage.errors import ShrinkageError
from shrinkage.functional.constraints import (
    EPSILON,
    max_norm,
    min_max_norm,
    non_neg,
    unit_norm,
)

__all__ = [
    "EPSILON",
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "get",
    "serialize",
    "deserialize",
    "max_norm",
    "min_max_norm",
    "non_neg",
    "unit_norm",
]

Axis = int | Sequence[int] | None


# --- value objects ------------------------------------------------------------------------


def _check_value(value: object, name: str, owner: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or not 0 <= number < float("inf"):
        raise ShrinkageError(
            f"The '{name}' parameter of {owner} must be a finite float in the range [0, inf). "
            f"Got {value!r} instead."
        )
    return number


def _check_axis(axis: object, owner: str) -> int | tuple[int, ...] | None:
    if axis is None:
        return None
    if isinstance(axis, int) and not isinstance(axis, bool):
        return axis
    if (
        isinstance(axis, Sequence)
        and not isinstance(axis, str)
        and axis
        and all(isinstance(a, int) and not isinstance(a, bool) for a in axis)
    ):
        return tuple(axis)
    raise ShrinkageError(
        f"The 'axis' parameter of {owner} must be None, an int or a non-empty list of ints. "
        f"Got {axis!r} instead."
    )


class Constraint(ConfigMixin):
    """Base class: a projection ``w <- project(w)`` applied after each optimizer step."""

    #: registry name (lower case) and the names it is also known by.
    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()

    def __call__(self, w: Tensor) -> Tensor:
        """The projection of ``w``, as Keras's ``constraint(w)``."""
        return self.project(w)

    def project(self, w: Tensor, batch_dims: int = 0) -> Tensor:
        """The projected tensor (a new tensor)."""
        raise NotImplementedError  # abstract

    @torch.no_grad()
    def apply_(self, params: list[Tensor], batch_dims: int = 0) -> None:
        """In place, for every tensor: ``p <- project(p)``.

        Args:
            params: the tensors to project (parameters are modified in place).
            batch_dims: leading candidate dimensions shared by every tensor.
        """
        for p in params:
            p.copy_(self.project(p, batch_dims))

    def violation(self, w: Tensor) -> float:
        """``max |project(w) - w|``: 0 when ``w`` already satisfies the constraint."""
        with torch.no_grad():
            return float((self.project(w) - w).abs().max()) if w.numel() else 0.0


class MaxNorm(Constraint):
    """Each incoming-weight vector with L2 norm above ``max_value`` is rescaled to it.

    ``w * clip(n, 0, max_value) / (eps + n)``, ``n`` the norm over ``axis`` (Keras
    ``MaxNorm``; Srivastava et al. 2014 pair it with dropout).

    Args:
        max_value: the largest norm, ``>= 0`` (Keras's default 2).
        axis: the dimensions of each norm; ``None`` (default) is every dimension but the
            first: per output unit of a Linear ``(out, in)``, per conv filter.

    Example:
        >>> MaxNorm(1.0)(torch.tensor([[3.0, 4.0]]))
        tensor([[0.6000, 0.8000]])
    """

    name = "max_norm"
    aliases = ("maxnorm", "max_norm_constraint")

    def __init__(self, max_value: float = 2.0, axis: Axis = None) -> None:
        self.max_value = _check_value(max_value, "max_value", "MaxNorm")
        self.axis = _check_axis(axis, "MaxNorm")

    def project(self, w: Tensor, batch_dims: int = 0) -> Tensor:
        """``w * clip(n, 0, max_value) / (eps + n)``."""
        return max_norm(w, self.max_value, self.axis, batch_dims)

    def get_config(self) -> dict[str, Any]:
        """``{"max_value": m, "axis": axis}``."""
        return {"max_value": self.max_value, "axis": _axis_config(self.axis)}


class UnitNorm(Constraint):
    """Every incoming-weight vector is divided by its L2 norm (Keras ``UnitNorm``).

    ``w / (eps + n)``, ``n`` the norm over ``axis``.

    Args:
        axis: the dimensions of each norm; ``None`` (default): all but the first.
    """

    name = "unit_norm"
    aliases = ("unitnorm",)

    def __init__(self, axis: Axis = None) -> None:
        self.axis = _check_axis(axis, "UnitNorm")

    def project(self, w: Tensor, batch_dims: int = 0) -> Tensor:
        """``w / (eps + n)``."""
        return unit_norm(w, self.axis, batch_dims)

    def get_config(self) -> dict[str, Any]:
        """``{"axis": axis}``."""
        return {"axis": _axis_config(self.axis)}


class NonNeg(Constraint):
    """Negative entries become zero: ``w * (w >= 0)`` (Keras ``NonNeg``)."""

    name = "non_neg"
    aliases = ("nonneg", "non_negative", "nonnegative")

    def project(self, w: Tensor, batch_dims: int = 0) -> Tensor:
        """``w * (w >= 0)``."""
        return non_neg(w)

    def get_config(self) -> dict[str, Any]:
        """``{}``."""
        return {}


class MinMaxNorm(Constraint):
    """Every incoming-weight vector's L2 norm is moved into ``[min_value, max_value]``.

    ``w * d / (eps + n)``, ``d = rate * clip(n, min_value, max_value) + (1 - rate) * n``
    (Keras ``MinMaxNorm``).

    Args:
        min_value: the smallest norm, ``>= 0``.
        max_value: the largest norm, ``>= min_value``.
        rate: the fraction of the way to move, in ``(0, 1]``.
        axis: the dimensions of each norm; ``None`` (default): all but the first.
    """

    name = "min_max_norm"
    aliases = ("minmaxnorm",)

    def __init__(
        self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Axis = None
    ) -> None:
        self.min_value = _check_value(min_value, "min_value", "MinMaxNorm")
        self.max_value = _check_value(max_value, "max_value", "MinMaxNorm")
        if self.max_value < self.min_value:
            raise ShrinkageError(
                f"The 'max_value' parameter of MinMaxNorm must be >= min_value "
                f"({self.min_value:g}). Got {max_value!r} instead."
            )
        rate_value = _check_value(rate, "rate", "MinMaxNorm")
        if not 0 < rate_value <= 1:
            raise ShrinkageError(
                f"The 'rate' parameter of MinMaxNorm must be a float in the range (0, 1]. "
                f"Got {rate!r} instead."
            )
        self.rate = rate_value
        self.axis = _check_axis(axis, "MinMaxNorm")

    def project(self, w: Tensor, batch_dims: int = 0) -> Tensor:
        """``w * d / (eps + n)``."""
        return min_max_norm(w, self.min_value, self.max_value, self.rate, self.axis, batch_dims)

    def get_config(self) -> dict[str, Any]:
        """``{"min_value": a, "max_value": b, "rate": r, "axis": axis}``."""
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": _axis_config(self.axis),
        }


def _axis_config(axis: int | tuple[int, ...] | None) -> int | list[int] | None:
    return list(axis) if isinstance(axis, tuple) else axis


# --- registry -----------------------------------------------------------------------------

_REGISTRY: Registry[Constraint] = Registry(
    "constraint", Constraint, (MaxNorm, UnitNorm, NonNeg, MinMaxNorm), (MaxNorm, 3.0)
)


def get(identifier: Constraint | str | dict | None) -> Constraint | None:
    """Resolve a constraint the way Keras's ``constraints.get`` does.

    Args:
        identifier: a :class:`Constraint` (returned as is), a name (``"max_norm"``,
            ``"MaxNorm"``: the default arguments), a :func:`serialize` dict, or ``None``.

    Returns:
        The constraint, or ``None``.

    Raises:
        ShrinkageError: an unknown name or a malformed dict, naming what was received.

    Example:
        >>> get("NonNeg")
        NonNeg()
    """
    return _REGISTRY.get(identifier)


def serialize(constraint: Constraint | None) -> dict[str, Any] | None:
    """``{"class_name": "MaxNorm", "config": {"max_value": 2.0, "axis": None}}``."""
    return _REGISTRY.serialize(constraint)


def deserialize(config: dict[str, Any] | None) -> Constraint | None:
    """Inverse of :func:`serialize`."""
    return _REGISTRY.deserialize(config)
