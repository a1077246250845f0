"""The :class:`Regularizer`: a plan applied to a model during training, in one of four modes.

========== ===================================================================== =========
mode       what happens                                                          when
========== ===================================================================== =========
loss       ``reg.loss()`` returns ``sum Omega(w)``; add it to your loss           you call
gradient   ``grad += dOmega/dw`` with fused ``torch._foreach_*`` kernels          before step
decoupled  ``w -= lr * dOmega/dw`` on the weights the step sees (AdamW's decay)   before step
proximal   ``w = prox_{lr * Omega}(w)``: exact zeros for L1 and group lasso       after step
========== ===================================================================== =========

``loss`` and ``gradient`` give the same parameters with any optimizer; ``decoupled``
equals them for plain SGD and differs for Adam (it *is* ``torch.optim.AdamW`` for
``L2(wd / 2)``); ``proximal`` is proximal gradient descent for SGD. The learning rate is
read from each parameter group at every step, so schedulers are honoured. With
``optimizer.step(closure)`` (LBFGS, Lightning, skorch: the gradients are computed inside
``step``) the ``gradient`` and ``decoupled`` terms are applied when the closure returns.

Two lines in any training loop::

    reg = Regularizer(model, L2(1e-4), mode="gradient").attach(optimizer)
    ...                       # loss.backward(); optimizer.step() as usual
    reg.detach()              # or use it as a context manager

Activity penalties (on module outputs) always need autograd: ``reg.loss()`` returns them
in every mode, so a loop with activity rules adds ``reg.loss()`` to its loss.

Constraints (``Plan(..., constraints={"*": MaxNorm(3)})``) are projections: in every mode,
after each optimizer step (and after the proximal step), every constrained parameter that
the step updated is replaced by its projection, as Keras does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from shrinkage._names import MODES
from shrinkage.constraints import Constraint
from shrinkage.display import Table
from shrinkage.errors import ShrinkageError, did_you_mean
from shrinkage.functional.penalties import scratch_buffers
from shrinkage.penalties import Penalty
from shrinkage.plan import Assignment, Plan

__all__ = ["MODE_TABLE", "MODES", "Mode", "Regularizer", "regularize"]


@dataclass(frozen=True)
class Mode:
    """When a mode applies the penalty: the one table both training engines follow.

    Attributes:
        name: the mode's name.
        before_step: the list operation run before ``optimizer.step()`` (``"add_grad"``:
            ``grad += dOmega/dw``; ``"decay"``: ``w -= lr * dOmega/dw``), or None.
        after_step: the list operation run after the step (``"prox"``:
            ``w = prox_{lr * Omega}(w)``), or None.
        in_loss: whether the penalty is a term of the loss that autograd differentiates.
    """

    name: str
    before_step: str | None
    after_step: str | None
    in_loss: bool


#: The four modes. The :class:`Regularizer` and the batched search engine
#: (:mod:`shrinkage.search.engine`) both dispatch on this table, so a mode means the same
#: in both; each implements the operations ``add_grad``, ``decay`` and ``prox``.
MODE_TABLE: dict[str, Mode] = {
    "loss": Mode("loss", None, None, True),
    "gradient": Mode("gradient", "add_grad", None, False),
    "decoupled": Mode("decoupled", "decay", None, False),
    "proximal": Mode("proximal", None, "prox", False),
}
assert tuple(MODE_TABLE) == MODES


@dataclass
class _Bucket:
    """The parameters that share one penalty (one fused call per step)."""

    penalty: Penalty
    params: list[Tensor]
    refs: list[Tensor | None] | None
    scratch: dict[int, Tensor] | None = None
    scratch_key: tuple | None = None

    def scratch_for(self, params: list[Tensor]) -> list[Tensor] | None:
        """Scratch buffers for the penalty's list methods, aligned with ``params``.

        Made once by :func:`~shrinkage.functional.penalties.scratch_buffers` and kept across
        steps (remade if the model moved to another device or dtype); ``None`` where fresh
        temporaries are the faster choice.
        """
        if not self.penalty.uses_scratch or not self.params:
            return None
        key = (self.params[0].device, self.params[0].dtype)
        if key != self.scratch_key:
            views = scratch_buffers(self.params)
            self.scratch = None if views is None else dict(zip(map(id, self.params), views))
            self.scratch_key = key
        return None if self.scratch is None else [self.scratch[id(p)] for p in params]

    def with_grads(self, keep: set[int] | None = None) -> tuple[list, list, list | None]:
        """Params (optionally only those in ``keep``) that received a gradient."""
        index = [
            i
            for i, p in enumerate(self.params)
            if p.grad is not None and (keep is None or id(p) in keep)
        ]
        params = [self.params[i] for i in index]
        refs = None if self.refs is None else [self.refs[i] for i in index]
        return params, [p.grad for p in params], refs

    def apply(self, operation: str, keep: set[int], step: float, scale: float) -> None:
        """Run one :class:`Mode` operation on the parameters in ``keep`` that have a gradient.

        ``step`` is the learning rate times the scale (decay, prox); ``scale`` multiplies
        the penalty's gradient (add_grad).
        """
        params, grads, refs = self.with_grads(keep)
        if not params:
            return
        scratch = self.scratch_for(params)
        if operation == "add_grad":
            self.penalty.add_grad_(grads, params, refs, scale, scratch)
        elif operation == "decay":
            self.penalty.decay_(params, refs, step, scratch)
        elif step > 0:
            self.penalty.prox_(params, refs, step, scratch)


class Regularizer:
    """A plan applied to one model, attachable to any ``torch.optim`` optimizer.

    Args:
        model: any ``nn.Module`` (a DDP-wrapped one too).
        plan: a :class:`~shrinkage.Plan`, or anything :meth:`Plan.coerce` accepts (a
            penalty applies to every eligible weight).
        mode: ``"loss"``, ``"gradient"``, ``"decoupled"`` or ``"proximal"``.
        scale: a multiplier on every strength, or a schedule ``step -> multiplier``;
            may be changed during training (``reg.scale = 0.5``).

    Raises:
        ShrinkageError: an unknown mode, a plan that does not fit the model, or
            ``mode="proximal"`` with a penalty that has no closed-form proximal operator.

    Example:
        >>> model = nn.Linear(3, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> reg = Regularizer(model, "l2", mode="gradient").attach(opt)
        >>> model(torch.ones(2, 3)).sum().backward(); opt.step()
        >>> float(reg.value()) >= 0
        True
    """

    def __init__(
        self,
        model: nn.Module,
        plan: Any,
        mode: str = "gradient",
        *,
        scale: float | Callable[[int], float] = 1.0,
    ) -> None:
        if mode not in MODES:
            raise ShrinkageError(
                f"The 'mode' parameter must be one of {', '.join(map(repr, MODES))}. "
                f"Got {mode!r} instead.{did_you_mean(mode, MODES)}"
            )
        # Under DistributedDataParallel (and DataParallel) the plan names the user's module's
        # parameters (``layers.0.weight``, not ``module.layers.0.weight``); the parameters
        # are the same tensors either way.
        self.model = getattr(model, "module", model) if _is_data_parallel(model) else model
        self.mode = mode
        self.scale = scale
        self.steps = 0
        self._optimizers: list[tuple[torch.optim.Optimizer, list]] = []
        self._hooks: dict[int, list] = {}
        self._activity_handles: list = []
        self._activity_terms: list[Tensor] = []
        self._last_activity = 0.0
        self.set_plan(plan)

    # -- the plan ------------------------------------------------------------------------

    def set_plan(self, plan: Any) -> None:
        """Replace the plan (new strengths, new rules) while training goes on.

        Reference weights for L2-SP are snapshotted now, from the current weights.
        """
        self.plan = Plan.coerce(plan)
        self.assignments: list[Assignment] = self.plan.resolve(self.model)
        by_penalty: dict[Penalty, _Bucket] = {}
        for a in self.assignments:
            if a.penalty is None:
                continue
            bucket = by_penalty.get(a.penalty)
            if bucket is None:
                refs = [] if a.penalty.needs_reference else None
                bucket = by_penalty[a.penalty] = _Bucket(a.penalty, [], refs)
            bucket.params.append(a.param)
            if bucket.refs is not None:
                own = getattr(a.penalty, "reference", None)
                bucket.refs.append(a.param.detach().clone() if own is None else None)
        self.buckets = list(by_penalty.values())
        by_constraint: dict[Constraint, list[Tensor]] = {}
        for a in self.plan.resolve_constraints(self.model):
            by_constraint.setdefault(a.constraint, []).append(a.param)  # type: ignore[arg-type]
        self.constraint_buckets: list[tuple[Constraint, list[Tensor]]] = list(by_constraint.items())
        if MODE_TABLE[self.mode].after_step == "prox":
            for bucket in self.buckets:
                if not bucket.penalty.has_prox:
                    raise ShrinkageError(
                        f"mode='proximal' needs a closed-form proximal operator; "
                        f"{bucket.penalty!r} has none. Use mode='gradient' or 'decoupled'."
                    )
        for handle in self._activity_handles:
            handle.remove()
        self._activity_handles = [
            module.register_forward_hook(self._activity_hook(module, penalty))
            for _, module, penalty in self.plan.resolve_activity(self.model)
        ]
        self._optimizers = [(opt, self._layout(opt)) for opt, _ in self._optimizers]

    def _layout(self, optimizer: torch.optim.Optimizer) -> list[tuple[dict, set[int]]]:
        """Each parameter group with the ids of the regularized parameters it holds."""
        ours = {id(p) for b in self.buckets for p in b.params}
        ours |= {id(p) for _, params in self.constraint_buckets for p in params}
        layout = []
        for group in optimizer.param_groups:
            ids = {id(p) for p in group["params"]} & ours
            if ids:
                layout.append((group, ids))
        return layout

    def current_scale(self) -> float:
        """The multiplier in force at this step."""
        return float(self.scale(self.steps) if callable(self.scale) else self.scale)

    # -- attaching -----------------------------------------------------------------------

    def attach(self, optimizer: torch.optim.Optimizer) -> Regularizer:
        """Hook the penalty into ``optimizer.step()``; returns ``self``.

        Raises:
            ShrinkageError: when no regularized parameter is in the optimizer.
        """
        if any(opt is optimizer for opt, _ in self._optimizers):
            return self
        layout = self._layout(optimizer)
        if not layout and (self.buckets and self.mode != "loss" or self.constraint_buckets):
            raise ShrinkageError(
                "None of the regularized parameters is in this optimizer's param_groups."
            )
        handles = [
            optimizer.register_step_pre_hook(self._pre_step),
            optimizer.register_step_post_hook(self._post_step),
        ]
        self._optimizers.append((optimizer, layout))
        self._hooks[id(optimizer)] = handles
        return self

    def detach(self) -> None:
        """Remove the optimizer hooks (the activity hooks stay until :meth:`remove`)."""
        for handles in self._hooks.values():
            for handle in handles:
                handle.remove()
        self._hooks = {}
        self._optimizers = []

    def remove(self) -> None:
        """Remove every hook this regularizer installed."""
        self.detach()
        for handle in self._activity_handles:
            handle.remove()
        self._activity_handles = []

    def __enter__(self) -> Regularizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _layout_of(self, optimizer: torch.optim.Optimizer) -> list:
        for opt, layout in self._optimizers:
            if opt is optimizer:
                return layout
        return []

    def _pre_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> Any:
        operation = MODE_TABLE[self.mode].before_step
        if operation is None:
            return None
        # ``args`` is ``(optimizer, *positional)``: ``step(closure)`` or ``step(closure=...)``.
        closure = kwargs.get("closure", args[1] if len(args) > 1 else None)
        if closure is None:
            self._run(operation, optimizer)
            return None
        # With a closure (LBFGS, Lightning, skorch) the gradients are computed inside
        # step(), after this hook: apply the penalty when the closure returns. Gradient mode
        # adds its term to every evaluation's gradient; decoupled mode decays once per step.
        once = operation == "decay"
        done = False

        def closure_then_penalty() -> Any:
            nonlocal done
            loss = closure()
            if not (once and done):
                self._run(operation, optimizer)
                done = True
            return loss

        if "closure" in kwargs:
            return args, {**kwargs, "closure": closure_then_penalty}
        return (args[0], closure_then_penalty, *args[2:]), kwargs

    @torch.no_grad()
    def _post_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self._run(MODE_TABLE[self.mode].after_step, optimizer)
        if self.constraint_buckets:
            for _, ids in self._layout_of(optimizer):
                for constraint, params in self.constraint_buckets:
                    stepped = [p for p in params if id(p) in ids and p.grad is not None]
                    if stepped:
                        constraint.apply_(stepped)
        self.steps += 1
        self._activity_terms.clear()

    @torch.no_grad()
    def _run(self, operation: str | None, optimizer: torch.optim.Optimizer) -> None:
        """One mode operation on every bucket, group by group (each with its own ``lr``)."""
        if operation is None:
            return
        scale = self.current_scale()
        if scale == 0:
            return
        for group, ids in self._layout_of(optimizer):
            step = float(group["lr"]) * scale
            for bucket in self.buckets:
                bucket.apply(operation, ids, step, scale)

    @torch.no_grad()
    def constrain(self) -> None:
        """Project every constrained parameter now (the hooks do it after each step).

        For a loop that updates the weights without an attached optimizer, or to make the
        initial weights feasible.
        """
        for constraint, params in self.constraint_buckets:
            constraint.apply_(params)

    # -- values --------------------------------------------------------------------------

    def _activity_hook(self, module: nn.Module, penalty: Penalty) -> Callable:
        recurrent_time_major = isinstance(module, nn.RNNBase) and not module.batch_first

        def hook(mod: nn.Module, inputs: Any, output: Any) -> None:
            if not torch.is_grad_enabled():
                return
            out = output[0] if isinstance(output, tuple | list) else output
            if not isinstance(out, Tensor) or out.ndim == 0:
                return
            # Keras divides by the batch size; a time-major RNN output is (time, batch, ...).
            batch = out.shape[1] if recurrent_time_major and out.ndim == 3 else out.shape[0]
            self._activity_terms.append(penalty.value(out) / max(batch, 1))

        return hook

    def loss(self) -> Tensor:
        """The part of the penalty that must go through autograd, to add to the loss.

        In ``mode="loss"``: every weight penalty plus the activity penalties recorded since
        the last call. In the other modes the optimizer hooks handle the weights, so this
        is the activity penalties only (zero without activity rules).
        """
        scale = self.current_scale()
        terms: list[Tensor] = []
        if MODE_TABLE[self.mode].in_loss:
            for bucket in self.buckets:
                refs = bucket.refs or [None] * len(bucket.params)
                terms.extend(bucket.penalty.value(p, r) for p, r in zip(bucket.params, refs))
        terms.extend(self._activity_terms)
        self._activity_terms = []
        if not terms:
            return torch.zeros((), device=self._device())
        total = torch.stack([t.reshape(()) for t in terms]).sum() * scale
        return total

    def value(self) -> Tensor:
        """The current weight penalty ``scale * sum Omega(w)``, without an autograd graph.

        For logging; activity penalties are not included (they depend on the batch).
        """
        with torch.no_grad():
            if not self.buckets:
                return torch.zeros((), device=self._device())
            totals = [b.penalty.total(b.params, b.refs) for b in self.buckets]
            return torch.stack(totals).sum() * self.current_scale()

    def _device(self) -> torch.device:
        for p in self.model.parameters():
            return p.device
        return torch.device("cpu")

    def describe(self) -> Table:
        """The plan's table for this model (see :meth:`Plan.describe`).

        Prints as aligned text; displays as an HTML table in a notebook.
        """
        return self.plan.describe(self.model)

    def __repr__(self) -> str:
        n = sum(len(b.params) for b in self.buckets)
        return f"Regularizer(mode={self.mode!r}, {n} parameters, {self.plan!r})"


def _is_data_parallel(model: nn.Module) -> bool:
    return isinstance(model, nn.DataParallel | nn.parallel.DistributedDataParallel)


def regularize(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    plan: Any,
    mode: str = "gradient",
    **kwargs: Any,
) -> Regularizer:
    """Build a :class:`Regularizer` and attach it to ``optimizer`` in one call.

    Args:
        model: the network.
        optimizer: the optimizer that trains it (``None`` for ``mode="loss"`` only).
        plan: what to penalize (see :class:`~shrinkage.Plan`).
        mode: ``"loss"``, ``"gradient"``, ``"decoupled"`` or ``"proximal"``.
        **kwargs: passed to :class:`Regularizer` (``scale``).

    Returns:
        The attached regularizer.
    """
    reg = Regularizer(model, plan, mode, **kwargs)
    if optimizer is not None:
        reg.attach(optimizer)
    elif reg.constraint_buckets:
        raise ShrinkageError(
            "A plan with constraints needs an optimizer to attach to (the projections run "
            "after each step); got None. Or call reg.constrain() after each update."
        )
    elif mode != "loss":
        raise ShrinkageError(f"mode={mode!r} needs an optimizer to attach to; got None.")
    return reg
