"""The :class:`Regularizer`: a plan applied to a model during training, in one of four modes.

========== ===================================================================== =========
mode       what happens                                                          when
========== ===================================================================== =========
loss       ``reg.loss()`` returns ``sum Omega(w)``; add it to your loss           you call
gradient   ``grad += dOmega/dw`` with fused ``torch._foreach_*`` kernels          before step
decoupled  ``w -= lr * dOmega/dw`` on the weights the step sees (AdamW's decay)   before step
proximal   ``w = prox_{D * Omega}(w)``, ``D`` the step the optimizer took         after step
========== ===================================================================== =========

``loss`` and ``gradient`` give the same parameters with any optimizer. ``proximal`` uses
the step the optimizer really took, per coordinate (:mod:`shrinkage.steps`):
``lr * (1 - dampening) / (1 - momentum)`` for SGD, ``lr / (sqrt(v_hat) + eps)`` for Adam,
AdamW, RMSprop and Adagrad; then the fixed point of training is the minimizer of
``loss + Omega``, the same as ``loss`` and ``gradient`` mode reach, and L1 and group lasso
give exact zeros on the way (other optimizers are refused in one line at ``attach``, or
thresholded at ``lr`` with ``proximal_step="lr"``).

``decoupled`` keeps the definition of ``torch.optim.AdamW`` (it *is* AdamW for
``L2(wd / 2)``): ``w -= lr * dOmega/dw``, not accumulated by momentum and not
preconditioned. So it solves ``loss + Omega`` only under momentum-free SGD. Under
``SGD(momentum=mu, dampening=d)`` its fixed point minimizes
``loss + (1 - mu) / (1 - d) * Omega`` (nesterov: ``(1 - mu) / (1 - mu * d)``): with
``mu = 0.9``, ``L2(l2)`` acts as ``L2(0.1 * l2)``. Under Adam the fixed point satisfies
``grad loss = -(sqrt(v_hat) + eps) * dOmega``: the penalty weighted, coordinate by
coordinate, by Adam's denominator (the RMS of the gradient); in full batch, for
``L2(l2)``, that is ``loss + eps * sum(-|w| - log(1 - 2 l2 |w|) / (2 l2))``, the
unregularized problem inside the box ``|w| < 1 / (2 l2)`` (AdamW's implicit bias). Use
``gradient``, ``loss`` or ``proximal`` mode for ``loss + Omega`` under Adam.

The learning rate is read from each parameter group at every step, so schedulers are
honoured, and ``maximize=True`` groups ascend ``objective - Omega``.

With ``optimizer.step(closure)`` (LBFGS, Lightning, skorch: the gradients are computed
inside ``step``) the ``gradient`` term is added after every closure evaluation, and the
loss the closure returns becomes ``loss + Omega`` (so LBFGS's line search sees the value of
the gradient it gets: gradient mode then equals loss mode); ``decoupled`` decays once per
step, right after the closure (AdamW's order). ``decoupled`` and ``proximal`` refuse
LBFGS: it moves the weights by its own line search, between evaluations.

Two lines in any training loop::

    reg = Regularizer(model, L2(1e-4), mode="gradient").attach(optimizer)
    ...                       # loss.backward(); optimizer.step() as usual
    reg.detach()              # or use it as a context manager

Activity penalties (on module outputs) always need autograd: ``reg.loss()`` returns them
in every mode, so a loop with activity rules adds ``reg.loss()`` to its loss.

Constraints (``Plan(..., constraints={"*": MaxNorm(3)})``) are projections: in every mode,
after each optimizer step (and after the proximal step), every constrained parameter that
the step updated is replaced by its projection, as Keras does.

Longer than the package's ~600-line habit: one class whose hooks cover optimizer steps
with and without closures, parameter groups, schedules, constraints and activity terms.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from shrinkage._names import MODES
from shrinkage._validation import check_choice
from shrinkage.constraints import Constraint
from shrinkage.display import Table
from shrinkage.errors import ShrinkageError, check_strength, did_you_mean
from shrinkage.functional.penalties import StepSize, scratch_buffers
from shrinkage.penalties import L2, ElasticNet, Penalty
from shrinkage.plan import Assignment, Plan, unwrap_model
from shrinkage.steps import check_optimizer

__all__ = ["MODE_TABLE", "MODES", "PROXIMAL_STEPS", "Mode", "Regularizer", "regularize"]

#: How ``mode="proximal"`` sizes its step: ``"exact"``, the step the optimizer took per
#: coordinate (:mod:`shrinkage.steps`); ``"lr"``, the learning rate (exact for plain SGD).
PROXIMAL_STEPS = ("exact", "lr")


@dataclass(frozen=True)
class Mode:
    """When a mode applies the penalty: the one table both training engines follow.

    Attributes:
        name: the mode's name.
        before_step: the list operation run before ``optimizer.step()`` (``"add_grad"``:
            ``grad += dOmega/dw``; ``"decay"``: ``w -= lr * dOmega/dw``), or None.
        after_step: the list operation run after the step (``"prox"``:
            ``w = prox_{D * Omega}(w)``, ``D`` the step the optimizer took), or None.
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
    names: list[str] = field(default_factory=list)
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
        """Run ``add_grad`` or ``decay`` on the parameters in ``keep`` that have a gradient.

        ``step`` is the learning rate times the scale (decay); ``scale`` multiplies the
        penalty's gradient (add_grad).

        Raises:
            ShrinkageError: ``add_grad`` on a sparse gradient.
        """
        params, grads, refs = self.with_grads(keep)
        if not params:
            return
        scratch = self.scratch_for(params)
        if operation == "add_grad":
            for p, g in zip(params, grads):
                if g.is_sparse:
                    name = self.names[[id(q) for q in self.params].index(id(p))]
                    raise ShrinkageError(
                        f"mode='gradient' cannot add the penalty's gradient to the sparse "
                        f"gradient of '{name}' (e.g. Embedding(sparse=True)); use "
                        "mode='decoupled', 'proximal' or 'loss' for it."
                    )
            self.penalty.add_grad_(grads, params, refs, scale, scratch)
        else:
            self.penalty.decay_(params, refs, step, scratch)

    def prox(self, keep: set[int], steps: float | dict[int, StepSize | None]) -> None:
        """The proximal step on the parameters in ``keep`` that have a gradient.

        ``steps`` is one float for all of them, or each parameter's
        :class:`~shrinkage.functional.penalties.StepSize` by ``id``.
        """
        params, _, refs = self.with_grads(keep)
        if not params:
            return
        scratch = self.scratch_for(params)
        if isinstance(steps, dict):
            self.penalty.prox_(params, refs, [steps.get(id(p)) for p in params], scratch)
        elif steps > 0:
            self.penalty.prox_(params, refs, steps, scratch)


class Regularizer:
    """A plan applied to one model, attachable to any ``torch.optim`` optimizer.

    Args:
        model: any ``nn.Module`` (a DDP-wrapped or ``torch.compile``-d one too: the plan
            names the parameters of the module inside).
        plan: a :class:`~shrinkage.Plan`, or anything :meth:`Plan.coerce` accepts (a
            penalty applies to every eligible weight).
        mode: ``"loss"``, ``"gradient"``, ``"decoupled"`` or ``"proximal"``.
        scale: a multiplier on every strength (a finite float ``>= 0``), or a schedule
            ``step -> multiplier``; may be changed during training (``reg.scale = 0.5``).
        proximal_step: ``mode="proximal"`` only: ``"exact"`` (the step the optimizer
            took, per coordinate; optimizers whose step is unknown are refused at
            :meth:`attach`) or ``"lr"`` (threshold at the learning rate with any
            optimizer: exact for plain SGD only).

    Raises:
        ShrinkageError: an unknown mode, a bad scale, a plan that does not fit the model,
            or ``mode="proximal"`` with a penalty that has no closed-form proximal operator.

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
        proximal_step: str = "exact",
    ) -> None:
        if mode not in MODES:
            raise ShrinkageError(
                f"The 'mode' parameter must be one of {', '.join(map(repr, MODES))}. "
                f"Got {mode!r} instead.{did_you_mean(mode, MODES)}"
            )
        self.proximal_step = check_choice(proximal_step, "proximal_step", PROXIMAL_STEPS)
        # Under DistributedDataParallel (and DataParallel) and torch.compile the plan names
        # the user's module's parameters (``layers.0.weight``, not ``module.layers.0.weight``
        # or ``_orig_mod.layers.0.weight``); the parameters are the same tensors either way.
        self.model = unwrap_model(model)
        self.mode = mode
        self.scale = scale
        self.steps = 0
        self._optimizers: list[tuple[torch.optim.Optimizer, list]] = []
        self._hooks: dict[int, list] = {}
        self._activity_handles: list = []
        self._activity_terms: list[Tensor] = []
        self._last_activity = 0.0
        self._warned_unattached = False
        self.set_plan(plan)

    @property
    def scale(self) -> float | Callable[[int], float]:
        """The multiplier on every strength, or a schedule ``step -> multiplier``."""
        return self._scale

    @scale.setter
    def scale(self, value: float | Callable[[int], float]) -> None:
        self._scale = value if callable(value) else check_strength(value, "scale")

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
            bucket.names.append(a.name)
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
        """The multiplier in force at this step.

        Raises:
            ShrinkageError: a schedule that returns a negative, infinite or NaN multiplier.
        """
        if callable(self._scale):
            return check_strength(self._scale(self.steps), f"scale({self.steps})")
        return self._scale

    # -- attaching -----------------------------------------------------------------------

    def attach(self, optimizer: torch.optim.Optimizer) -> Regularizer:
        """Hook the penalty into ``optimizer.step()``; returns ``self``.

        Warns (once) when the optimizer's own ``weight_decay`` already penalizes a weight
        the plan penalizes with L2: the penalty would be applied twice.

        Raises:
            ShrinkageError: when no regularized parameter is in the optimizer;
                ``mode="decoupled"`` or ``"proximal"`` with LBFGS; ``mode="proximal"``
                with an optimizer whose step is unknown (see ``proximal_step``).
        """
        if any(opt is optimizer for opt, _ in self._optimizers):
            return self
        if self.buckets and self.mode in ("decoupled", "proximal"):
            if isinstance(optimizer, torch.optim.LBFGS):
                raise ShrinkageError(
                    f"mode={self.mode!r} cannot be used with LBFGS: it moves the weights by "
                    "its own line search between closure evaluations; use mode='gradient' "
                    "or 'loss'."
                )
            if self.mode == "proximal":
                check_optimizer(optimizer, self.proximal_step)
        layout = self._layout(optimizer)
        if not layout and (self.buckets and self.mode != "loss" or self.constraint_buckets):
            raise ShrinkageError(
                "None of the regularized parameters is in this optimizer's param_groups."
            )
        self._warn_double_penalty(optimizer)
        handles = [
            optimizer.register_step_pre_hook(self._pre_step),
            optimizer.register_step_post_hook(self._post_step),
        ]
        self._optimizers.append((optimizer, layout))
        self._hooks[id(optimizer)] = handles
        return self

    def _warn_double_penalty(self, optimizer: torch.optim.Optimizer) -> None:
        squared = {
            id(a.param): a.name
            for a in self.assignments
            if isinstance(a.penalty, L2 | ElasticNet) and a.penalty.l2 > 0
        }
        for group in optimizer.param_groups:
            decay = float(group.get("weight_decay", 0) or 0)
            names = [squared[id(p)] for p in group["params"] if id(p) in squared]
            if decay > 0 and names:
                shown = ", ".join(names[:3]) + (
                    f" and {len(names) - 3} more" if len(names) > 3 else ""
                )
                warnings.warn(
                    f"{type(optimizer).__name__}(weight_decay={decay:g}) already applies L2 to "
                    f"{shown}, which the plan also penalizes with L2: the penalty is applied "
                    "twice. Set weight_decay=0 or leave those weights out of the plan.",
                    UserWarning,
                    stacklevel=3,
                )
                return

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
        # adds its term to every evaluation's gradient and its value to the loss returned
        # (a line search then sees a value that matches the gradient); decoupled mode decays
        # once per step.
        once = operation == "decay"
        done = False

        def closure_then_penalty() -> Any:
            nonlocal done
            loss = closure()
            if not (once and done):
                self._run(operation, optimizer)
                done = True
            if operation == "add_grad" and loss is not None and self.buckets:
                loss = loss + self.value()  # fused norms: one read of the weights
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
        if operation is None or not self.buckets:
            return
        scale = self.current_scale()
        if scale == 0:
            return
        for group, ids in self._layout_of(optimizer):
            if operation == "prox":
                steps = self._step_sizes(optimizer, group, ids, scale)
                for bucket in self.buckets:
                    bucket.prox(ids, steps)
                continue
            # A maximizing group ascends: its objective minus the penalty.
            sign = -1.0 if group.get("maximize", False) else 1.0
            step = float(group["lr"]) * scale
            for bucket in self.buckets:
                bucket.apply(operation, ids, step, sign * scale)

    def _step_sizes(
        self, optimizer: torch.optim.Optimizer, group: dict, ids: set[int], scale: float
    ) -> float | dict[int, StepSize | None]:
        """The step each regularized parameter of ``group`` took, times ``scale``: one float
        when it is one number for all of them (SGD), else a :class:`StepSize` by ``id``."""
        params = [p for b in self.buckets for p in b.params if id(p) in ids and p.grad is not None]
        if not params:
            return 0.0
        reader = check_optimizer(optimizer, self.proximal_step)
        sizes = reader(optimizer, group, params)
        first = sizes[0]
        if first is not None and all(
            s is not None and s.v is None and s.scale == first.scale for s in sizes
        ):
            return float(first.scale) * scale
        return {
            id(p): None if s is None else StepSize(s.scale * scale, s.v, s.eps)
            for p, s in zip(params, sizes)
        }

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

    def _weight_terms(self) -> list[Tensor]:
        terms: list[Tensor] = []
        for bucket in self.buckets:
            refs = bucket.refs or [None] * len(bucket.params)
            terms.extend(bucket.penalty.value(p, r) for p, r in zip(bucket.params, refs))
        return terms

    def loss(self) -> Tensor:
        """The part of the penalty that must go through autograd, to add to the loss.

        In ``mode="loss"``: every weight penalty plus the activity penalties recorded since
        the last call. In the other modes the optimizer hooks handle the weights, so this
        is the activity penalties only (zero without activity rules); called while the
        regularizer is attached to no optimizer, it warns once that the weight penalty is
        not being applied.
        """
        in_loss = MODE_TABLE[self.mode].in_loss
        if not in_loss and self.buckets and not self._optimizers and not self._warned_unattached:
            self._warned_unattached = True
            warnings.warn(
                f"Regularizer(mode={self.mode!r}) is attached to no optimizer, so its weight "
                "penalty is not applied: in this mode reg.loss() holds activity penalties "
                "only. Call reg.attach(optimizer), or use mode='loss'.",
                UserWarning,
                stacklevel=2,
            )
        scale = self.current_scale()
        terms = self._weight_terms() if in_loss else []
        terms.extend(self._activity_terms)
        self._activity_terms = []
        if not terms:
            return torch.zeros((), device=self._device())
        return torch.stack([t.reshape(()) for t in terms]).sum() * scale

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
        **kwargs: passed to :class:`Regularizer` (``scale``, ``proximal_step``).

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
