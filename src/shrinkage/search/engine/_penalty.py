"""The per-candidate, per-layer penalty of a stack, applied in any of the four modes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from shrinkage._names import KINDS
from shrinkage.errors import ShrinkageError, check_strength, did_you_mean
from shrinkage.functional import penalties as FP
from shrinkage.functional.penalties import StepSize
from shrinkage.models import placement_layers
from shrinkage.search.engine._stack import _bc, _Stack

# --------------------------------------------------------------------------- strengths


def layer_strengths(
    kind: str,
    strength: float,
    n_layers: int,
    placement: str | Sequence[int] = "all",
    l1_ratio: float = 0.5,
) -> tuple[list[float], list[float]]:
    """The per-layer (L1, L2) strengths of one candidate.

    ``l2``: ``L2(s)`` on each placed layer; ``l1``: ``L1(s)``; ``elastic_net``:
    ``ElasticNet(l1=r * s, l2=(1 - r) * s)`` with ``r = l1_ratio``. Unplaced layers get 0.

    Args:
        kind: ``"l2"``, ``"l1"`` or ``"elastic_net"``.
        strength: ``s >= 0`` (Keras meaning: added to the mean data loss).
        n_layers: penalizable weights of the network (Linear layers of an MLP).
        placement: ``"all"``, ``"hidden"``, ``"output"`` or layer indices
            (:func:`shrinkage.models.placement_layers`).
        l1_ratio: ``r`` in ``[0, 1]`` (elastic net only).

    Returns:
        ``(l1, l2)``: two lists of ``n_layers`` floats.

    Raises:
        ShrinkageError: an unknown kind, a negative strength or a ratio outside [0, 1].

    Example:
        >>> layer_strengths("elastic_net", 0.5, 3, "hidden", l1_ratio=0.25)
        ([0.125, 0.125, 0.0], [0.375, 0.375, 0.0])
    """
    s = check_strength(strength, "strength")
    if kind not in KINDS:
        raise ShrinkageError(
            f"The 'kind' parameter must be one of {', '.join(map(repr, KINDS))}. "
            f"Got {kind!r} instead.{did_you_mean(kind, KINDS)}"
        )
    r = float(l1_ratio)
    if not 0.0 <= r <= 1.0:
        raise ShrinkageError(
            f"The 'l1_ratio' parameter must be a float in the range [0, 1]. Got {l1_ratio!r} "
            "instead."
        )
    a, b = {"l2": (0.0, s), "l1": (s, 0.0), "elastic_net": (r * s, (1.0 - r) * s)}[kind]
    placed = set(placement_layers(n_layers, placement))
    l1 = [a if i in placed else 0.0 for i in range(n_layers)]
    l2 = [b if i in placed else 0.0 for i in range(n_layers)]
    return l1, l2


def per_layer_strengths(
    layers: Sequence[tuple[str, float]], l1_ratio: float = 0.5
) -> tuple[list[float], list[float]]:
    """The per-layer (L1, L2) strengths of a per-layer configuration.

    Layer ``i`` with ``(kind, s)`` gets what :func:`layer_strengths` gives one placed layer:
    ``L2(s)``, ``L1(s)`` or ``ElasticNet(l1=r * s, l2=(1 - r) * s)``; ``s = 0`` leaves the
    layer alone.

    Args:
        layers: one ``(kind, strength)`` pair per penalizable weight.
        l1_ratio: ``r`` of the elastic-net layers.

    Returns:
        ``(l1, l2)``: two lists of ``len(layers)`` floats.

    Raises:
        ShrinkageError: an unknown kind, a negative strength or a ratio outside [0, 1].

    Example:
        >>> per_layer_strengths([("l2", 0.1), ("l1", 0.0), ("elastic_net", 0.2)], 0.5)
        ([0.0, 0.0, 0.1], [0.1, 0.0, 0.1])
    """
    l1, l2 = [], []
    for kind, strength in layers:
        (a,), (b,) = layer_strengths(kind, strength, 1, "all", l1_ratio)
        l1.append(a)
        l2.append(b)
    return l1, l2


# --------------------------------------------------------------------------- the penalty


class StackPenalty:
    """The per-candidate, per-layer L1/L2 strengths of a stack, applied in one of the modes.

    Candidate ``k`` is penalized by ``sum_i l1[k, i] * |W_ki|_1 + l2[k, i] * ||W_ki||^2``.
    The operations of :data:`shrinkage.regularizer.MODE_TABLE` (``add_grad``, ``decay``,
    ``prox``) are the in-place kernels of :mod:`shrinkage.functional.penalties`, the very
    ones the :class:`~shrinkage.Regularizer` calls, given one ``(K, 1, ...)`` strength per
    stacked weight. Layers whose strength is zero for every candidate are skipped.

    Args:
        stack: the stacked parameters.
        l1: ``(K, L)`` L1 strengths.
        l2: ``(K, L)`` L2 strengths.

    Raises:
        ShrinkageError: strengths of the wrong shape, negative or not finite.
    """

    def __init__(self, stack: _Stack, l1: Tensor, l2: Tensor) -> None:
        shape = (stack.k, stack.n_layers)
        for name, value in (("l1", l1), ("l2", l2)):
            if tuple(value.shape) != shape:
                raise ShrinkageError(
                    f"The '{name}' strengths must have shape {shape} (candidates, layers). "
                    f"Got {tuple(value.shape)} instead."
                )
            if not bool(torch.isfinite(value).all()) or bool((value < 0).any()):
                raise ShrinkageError(
                    f"The '{name}' strengths must be finite floats >= 0. Got {value.tolist()!r}."
                )
        self.stack = stack
        self._set(l1, l2)

    def _set(self, l1: Tensor, l2: Tensor) -> None:
        stack = self.stack
        dev, dt = stack.device, stack.flat.dtype
        weights = stack.weights()
        #: the ``(K, L)`` strengths
        self.l1_matrix, self.l2_matrix = l1.to(dev, dt), l2.to(dev, dt)
        self.l1 = [c.contiguous() for c in self.l1_matrix.unbind(1)]
        self.l2 = [c.contiguous() for c in self.l2_matrix.unbind(1)]
        #: the layers with a nonzero strength for some candidate
        self.layers = [
            i
            for i in range(stack.n_layers)
            if bool((self.l1[i] > 0).any() or (self.l2[i] > 0).any())
        ]
        self._l1 = [_bc(c, w) if bool((c > 0).any()) else None for c, w in zip(self.l1, weights)]
        self._l2 = [_bc(c, w) if bool((c > 0).any()) else None for c, w in zip(self.l2, weights)]

    def keep(self, index: Tensor) -> None:
        """Keep the strengths of the candidates at positions ``index`` of the old stack.

        Call it *after* ``stack.keep(index)``: the factors are shaped for the new stack.
        """
        positions = torch.as_tensor(index, device=self.l1_matrix.device)
        self._set(self.l1_matrix[positions], self.l2_matrix[positions])

    def _factors(
        self, strengths: list[Tensor | None], scale: float, active: Tensor | None
    ) -> list[Tensor | None]:
        """``scale * strength`` per penalized layer; an idle candidate gets 0 (its decay and
        proximal map are then the identity: it is left exactly as it was)."""
        out = []
        for i in self.layers:
            c = strengths[i]
            if c is not None and active is not None:
                c = c * _bc(active, c)
            out.append(None if c is None else c * scale)
        return out

    def apply(
        self,
        operation: str,
        lr: float,
        active: Tensor | None = None,
        steps: list[StepSize] | None = None,
    ) -> None:
        """One mode operation: ``"add_grad"``, ``"decay"`` (``lr``-scaled) or ``"prox"``.

        ``steps`` (``"prox"``): the step each candidate took, per weight
        (:meth:`StackedOptimizer.prox_steps`); without it the step is ``lr``.
        """
        weights = [self.stack.weights()[i] for i in self.layers]
        if not weights:
            return
        if operation == "add_grad":
            grads = [self.stack.weight_grads()[i] for i in self.layers]
            l1, l2 = self._factors(self._l1, 1.0, None), self._factors(self._l2, 1.0, None)
            FP.elastic_net_add_grad_(grads, weights, l1, l2)
        elif operation == "decay":
            l1, l2 = self._factors(self._l1, lr, active), self._factors(self._l2, lr, active)
            FP.elastic_net_decay_(weights, l1, l2)
        elif steps is None:
            l1, l2 = self._factors(self._l1, lr, active), self._factors(self._l2, lr, active)
            FP.elastic_net_prox_(weights, l1, l2)
        else:
            chosen = [steps[i] for i in self.layers]
            l1 = [self._scaled(self._l1[i], s, active) for i, s in zip(self.layers, chosen)]
            l2 = [self._scaled(self._l2[i], s, active) for i, s in zip(self.layers, chosen)]
            metric = [
                None if s.v is None else (s.v, _per_weight(s.eps, w))
                for s, w in zip(chosen, weights)
            ]
            FP.elastic_net_prox_(weights, l1, l2, None, metric)

    @staticmethod
    def _scaled(strength: Tensor | None, step: StepSize, active: Tensor | None) -> Tensor | None:
        """``strength * scale`` (0 for an idle candidate: its proximal map is the identity)."""
        if strength is None:
            return None
        c = strength * _per_weight(step.scale, strength)
        return c if active is None else c * _bc(active, c)

    def loss(self) -> Tensor:
        """``sum_k sum_i Omega_ki(W_ki)``, differentiable (loss mode of the autograd path)."""
        leaves = self.stack._leaves  # type: ignore[attr-defined]
        terms = [
            FP.elastic_net(
                leaves[self.stack.penalized[i]], self.l1[i], self.l2[i], batch_dims=1
            ).sum()
            for i in self.layers
        ]
        return torch.stack(terms).sum() if terms else torch.zeros((), device=self.stack.device)

    @torch.no_grad()
    def values(self) -> Tensor:
        """``Omega_k`` per candidate, ``(K,)``."""
        total = torch.zeros(self.stack.k, device=self.stack.device, dtype=self.stack.flat.dtype)
        for i, w in enumerate(self.stack.weights()):
            total += FP.elastic_net(w, self.l1[i], self.l2[i], batch_dims=1)
        return total


def _per_weight(factor: float | Tensor, like: Tensor) -> float | Tensor:
    """A float as is; a ``(K,)`` tensor shaped to broadcast against a ``(K, ...)`` tensor."""
    return _bc(factor, like) if isinstance(factor, Tensor) and factor.ndim else factor
