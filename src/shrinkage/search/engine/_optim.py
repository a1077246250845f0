"""Optimizers over a stack: exactly K independent elementwise optimizers."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from shrinkage.functional.penalties import StepSize
from shrinkage.search.engine._settings import TrainSettings, check_elementwise_optimizer
from shrinkage.search.engine._stack import _bc, _Stack
from shrinkage.steps import adam_step

# --------------------------------------------------------------------------- optimizers


class StackedOptimizer:
    """Adam or SGD(momentum) over a stack: exactly K independent optimizers.

    Both rules are elementwise, so on the flat buffers they update every candidate from its
    own gradient and state. What is per candidate is the step count (Adam's bias
    correction) and whether the candidate takes a step at all. While every candidate steps
    in lockstep, one fused kernel updates the whole flat buffer; otherwise only the active
    candidates' slices are updated, each with its own step count, and an idle candidate's
    weights and moments do not move.

    Adam (torch's, ``torch._fused_adam_``): ``m = lerp(m, g, 1 - b1)``,
    ``v = b2 v + (1 - b2) g^2``,
    ``w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.
    SGD: ``buf = momentum * buf + g``; ``w -= lr * buf`` (torch's first step ``buf = g`` is
    the same from ``buf = 0``).

    :meth:`prox_steps` gives the step each candidate took, per coordinate, for the
    proximal mode: the rule :mod:`shrinkage.steps` reads from ``torch.optim.Adam`` and
    ``SGD``, so a candidate in the stack and the same model trained alone threshold alike.
    ``lr`` may be changed between steps (a learning-rate schedule).

    Args:
        stack: the stacked parameters.
        settings: optimizer name, learning rate, momentum.
        betas: Adam's ``(b1, b2)``.
        eps: Adam's ``eps``.
    """

    def __init__(
        self,
        stack: _Stack,
        settings: TrainSettings,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.stack = stack
        self.name = check_elementwise_optimizer(settings.optimizer)
        self.lr = float(settings.learning_rate)
        self.momentum = float(settings.momentum)
        self.betas = betas
        self.eps = eps
        self.steps = np.zeros(stack.k, dtype=np.int64)
        self._step_tensors = [torch.zeros((), device=stack.device) for _ in range(stack.k)]
        self._flat_step_tensor = torch.zeros((), device=stack.device)
        self._rows: list[list[list[Tensor]]] | None = None
        #: the optimizer's per-coordinate state, laid out like ``stack.flat``, by name
        self.buffers: dict[str, Tensor] = {}
        if self.name == "adam":
            self.buffers = {"m": torch.zeros_like(stack.flat), "v": torch.zeros_like(stack.flat)}
            self._rows = self._candidate_rows()
        elif self.momentum:
            self.buffers = {"buf": torch.zeros_like(stack.flat)}

    @property
    def m(self) -> Tensor:
        """Adam's first moments (flat, laid out like the stack)."""
        return self.buffers["m"]

    @property
    def v(self) -> Tensor:
        """Adam's second moments."""
        return self.buffers["v"]

    @property
    def buf(self) -> Tensor:
        """SGD's momentum buffer."""
        return self.buffers["buf"]

    @torch.no_grad()
    def keep(self, index: Tensor) -> None:
        """Keep the state of the candidates at positions ``index`` only.

        Call it *before* ``stack.keep(index)``: the buffers are taken with the stack's
        current layout (:meth:`~shrinkage.search.engine.StackedMLP.take`).
        """
        positions = self.stack.check_index(index)
        for name, buffer in self.buffers.items():
            self.buffers[name] = self.stack.take(buffer, positions)
        chosen = positions.cpu().numpy()
        self.steps = self.steps[chosen]
        self._step_tensors = [self._step_tensors[k] for k in chosen]
        self._rows = None  # the slices of the old buffers

    def state(self, k: int) -> dict[str, Tensor]:
        """Candidate ``k``'s optimizer state: ``{"step": (1,), "{buffer}.{name}": tensor}``."""
        out = {"step": torch.tensor([int(self.steps[k])], dtype=torch.int64)}
        for buffer, flat in self.buffers.items():
            for name, view in zip(self.stack.names, _views(self.stack, flat)):
                out[f"{buffer}.{name}"] = view[k].detach().clone()
        return out

    @torch.no_grad()
    def load_state(self, k: int, state: dict[str, Tensor]) -> None:
        """Set candidate ``k``'s optimizer state from :meth:`state`'s mapping."""
        self.steps[k] = int(torch.as_tensor(state["step"]).reshape(-1)[0])
        for buffer, flat in self.buffers.items():
            for name, view in zip(self.stack.names, _views(self.stack, flat)):
                view[k].copy_(torch.as_tensor(state[f"{buffer}.{name}"]))

    @torch.no_grad()
    def step(self, active: np.ndarray | None = None) -> None:
        """One update of every candidate whose ``active`` entry is true (all when None)."""
        self.steps += 1 if active is None else active
        if active is None and self.steps.min() == self.steps.max():
            self._flat_step(int(self.steps[0]))
        else:
            mask = np.ones(self.stack.k, dtype=bool) if active is None else active.astype(bool)
            self._masked_step(mask)

    def _adam(self, lists: list[list[Tensor]], steps: list[Tensor]) -> None:
        b1, b2 = self.betas
        torch._fused_adam_(
            *lists,
            [],
            steps,
            lr=self.lr,
            beta1=b1,
            beta2=b2,
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )

    def _candidate_rows(self) -> list[list[list[Tensor]]]:
        stack = self.stack
        return [_rows(stack, b) for b in (stack.flat, stack.flat_grad, self.m, self.v)]

    def _flat_step(self, t: int) -> None:
        stack = self.stack
        p, g = stack.flat, stack.flat_grad
        if self.name == "adam":
            self._flat_step_tensor.fill_(t)
            self._adam([[p], [g], [self.m], [self.v]], [self._flat_step_tensor])
        elif self.momentum:
            self.buf.mul_(self.momentum).add_(g)
            p.add_(self.buf, alpha=-self.lr)
        else:
            p.add_(g, alpha=-self.lr)

    def _masked_step(self, mask: np.ndarray) -> None:
        stack = self.stack
        if self.name == "adam":
            if self._rows is None:  # the stack lost candidates since
                self._rows = self._candidate_rows()
            chosen = np.flatnonzero(mask)
            lists = [[t for k in chosen for t in rows[k]] for rows in self._rows]
            per = len(stack.tensors)
            for k in chosen:
                self._step_tensors[k].fill_(int(self.steps[k]))
            steps = [self._step_tensors[k] for k in chosen for _ in range(per)]
            self._adam(lists, steps)
            return
        a = torch.as_tensor(mask, dtype=stack.flat.dtype, device=stack.device)
        lr = -self.lr * a
        if self.momentum:
            keep = torch.where(a > 0, self.momentum, 1.0).to(stack.flat.dtype)
            sizes = [t.numel() for t in stack.tensors]
            for buf, p, g in zip(self.buf.split(sizes), stack.tensors, stack.grads, strict=True):
                buf = buf.view_as(p)
                buf.mul_(_bc(keep, p)).addcmul_(g, _bc(a, p))
                p.addcmul_(buf, _bc(lr, p))
        else:
            for p, g in zip(stack.tensors, stack.grads):
                p.addcmul_(g, _bc(lr, p))

    def prox_steps(self) -> list[StepSize]:
        """The step of the last update, per penalizable weight of the stack.

        SGD: ``lr / (1 - momentum)`` for every candidate. Adam: ``lr / (sqrt(v_hat) + eps)``
        per coordinate, as :func:`shrinkage.steps.adam_step` with each candidate's own
        step count (floats while the candidates step in lockstep, ``(K,)`` tensors
        otherwise; a candidate that never stepped gets a harmless positive step, and its
        strength is zeroed by the caller anyway).

        Returns:
            One :class:`~shrinkage.functional.penalties.StepSize` per weight of
            ``stack.weights()``; ``v`` is a ``(K, *shape)`` view of Adam's second moments.
        """
        stack = self.stack
        if self.name != "adam":
            return [StepSize(self.lr / (1 - self.momentum))] * stack.n_layers
        b2 = self.betas[1]
        if self.steps.min() == self.steps.max():
            scale, eps = adam_step(self.lr, self.eps, b2, max(int(self.steps[0]), 1))
        else:
            t = torch.as_tensor(np.maximum(self.steps, 1), dtype=stack.flat.dtype)
            scale, eps = adam_step(self.lr, self.eps, b2, t.to(stack.device))
        sizes = [t.numel() for t in stack.tensors]
        v = [part.view_as(t) for part, t in zip(self.v.split(sizes), stack.tensors)]
        return [StepSize(scale, v[i], eps) for i in stack.penalized]


def _views(stack: _Stack, flat: Tensor) -> list[Tensor]:
    """A flat buffer laid out like the stack, as one ``(K, *shape)`` view per tensor."""
    sizes = [t.numel() for t in stack.tensors]
    return [part.view_as(t) for part, t in zip(flat.split(sizes), stack.tensors)]


def _rows(stack: _Stack, flat: Tensor) -> list[list[Tensor]]:
    """Candidate ``k``'s slices of a flat buffer laid out like the stack: ``rows[k]``."""
    views = _views(stack, flat)
    return [[v[k] for v in views] for k in range(stack.k)]
