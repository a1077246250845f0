"""PyTorch Lightning: a callback that regularizes a LightningModule with a shrinkage plan.

::

    import lightning.pytorch as L
    from shrinkage import L1, L2
    from shrinkage.integrations.lightning import ShrinkageCallback

    callback = ShrinkageCallback({"*": L2(1e-4), "encoder.0.weight": L1(1e-3)}, mode="gradient")
    L.Trainer(callbacks=[callback], max_epochs=10).fit(module)
    print(callback.regularizer.describe())

How each mode reaches the step Lightning takes (automatic optimization: Lightning calls
``optimizer.step(closure)``, and ``training_step``, ``zero_grad`` and ``backward`` run
inside that closure):

* ``loss``: ``training_step`` is wrapped so the loss it returns is ``loss + reg.loss()``
  (``Ω(w)`` through autograd). Lightning then divides by ``accumulate_grad_batches``,
  scales for mixed precision and backpropagates it, exactly as a loss the module computed
  itself; the logged ``train_loss`` includes the penalty, as in Keras.
* ``gradient`` / ``decoupled``: ``grad += ∇Ω(w)`` / ``w -= lr·∇Ω(w)`` when the closure
  returns (after backward and gradient clipping), before the optimizer's update.
* ``proximal``: ``w ← prox_{D·Ω}(w)`` after the update, ``D`` the step the optimizer took
  (:mod:`shrinkage.steps`).

Activity penalties (``Plan(activity=...)``) depend on the batch, so in every mode they
enter the loss through the same ``training_step`` wrapper. With manual optimization
(``automatic_optimization = False``) the module calls ``manual_backward`` itself: pass
``add_to_loss=False`` and add ``callback.regularizer.loss()`` to the loss you backpropagate.

Every ``log_every_n_steps`` optimizer steps (the Trainer's by default) and at the end of
training, the callback writes :func:`~shrinkage.integrations.weight_stats` to each of the
Trainer's loggers: ``shrinkage/penalty`` and, for every weight,
``shrinkage/l2_norm/<name>`` and ``shrinkage/zero_fraction/<name>``, at ``step`` =
optimizer steps taken (the loss Lightning logs at step ``s`` is computed on those weights).

Supported strategies: single device and DDP (each process regularizes its replica
identically); sharded strategies (FSDP, DeepSpeed) flatten parameters and are not.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor

from shrinkage import MODES, Regularizer
from shrinkage.errors import ShrinkageError, did_you_mean
from shrinkage.integrations._common import require, weight_stats

__all__ = ["ShrinkageCallback"]

_pl = require("lightning.pytorch", "lightning")
_NOTHING = object()


class ShrinkageCallback(_pl.Callback):
    """Apply a plan to the LightningModule's optimizers and log what it does.

    Args:
        plan: a :class:`~shrinkage.Plan` or anything it accepts (a penalty, a dict
            ``{selector: penalty}``); names are those of ``module.named_parameters()``.
        mode: ``"loss"``, ``"gradient"``, ``"decoupled"`` or ``"proximal"``.
        scale: a multiplier on every strength, or a schedule ``step -> multiplier``.
        log_every_n_steps: how often to write the statistics to the loggers; ``None``
            uses the Trainer's ``log_every_n_steps``, ``0`` writes only at the end.
        add_to_loss: wrap ``training_step`` so its loss includes ``reg.loss()`` (needed
            for ``mode="loss"`` and activity rules). ``False`` leaves that to the module.
        prefix: the first part of every logged key.

    Attributes:
        regularizer: the :class:`~shrinkage.Regularizer` of the current (or last) fit;
            ``None`` before the first fit.

    Raises:
        ShrinkageError: an unknown mode (here), a plan that does not fit the module, no
            optimizer holding the regularized parameters, or ``mode="loss"`` / activity
            rules with manual optimization and ``add_to_loss=True`` (at fit start).

    Example:
        >>> callback = ShrinkageCallback("l2", mode="decoupled")
        >>> callback.mode
        'decoupled'
    """

    def __init__(
        self,
        plan: Any,
        mode: str = "gradient",
        *,
        scale: float | Callable[[int], float] = 1.0,
        log_every_n_steps: int | None = None,
        add_to_loss: bool = True,
        prefix: str = "shrinkage",
    ) -> None:
        if mode not in MODES:
            raise ShrinkageError(
                f"The 'mode' parameter must be one of {', '.join(map(repr, MODES))}. "
                f"Got {mode!r} instead.{did_you_mean(mode, MODES)}"
            )
        if log_every_n_steps is not None and (
            isinstance(log_every_n_steps, bool)
            or not isinstance(log_every_n_steps, int)
            or log_every_n_steps < 0
        ):
            raise ShrinkageError(
                "The 'log_every_n_steps' parameter must be None or an int >= 0. "
                f"Got {log_every_n_steps!r} instead."
            )
        self.plan = plan
        self.mode = mode
        self.scale = scale
        self.log_every_n_steps = log_every_n_steps
        self.add_to_loss = add_to_loss
        self.prefix = prefix
        self.regularizer: Regularizer | None = None
        self._wrapped: Callable | None = None
        self._shadowed: Any = _NOTHING
        self._last_logged: int | None = None

    # -- set-up and clean-up ---------------------------------------------------------------

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        """Build the regularizer on the module (now on its device) and attach it."""
        self._release(pl_module)
        reg = Regularizer(pl_module, self.plan, self.mode, scale=self.scale)
        try:
            self._attach(reg, trainer.optimizers)
            if self.add_to_loss and (self.mode == "loss" or reg.plan.activity):
                if not pl_module.automatic_optimization:
                    raise ShrinkageError(
                        f"ShrinkageCallback(mode={self.mode!r}) adds the penalty to the loss "
                        "training_step returns, but this module uses manual optimization; "
                        "pass add_to_loss=False and add callback.regularizer.loss() to the "
                        "loss given to manual_backward."
                    )
                self._wrap_training_step(pl_module, reg)
        except ShrinkageError:
            reg.remove()
            raise
        self.regularizer = reg
        self._last_logged = None

    @staticmethod
    def _attach(reg: Regularizer, optimizers: list) -> None:
        if not optimizers:
            raise ShrinkageError(
                "ShrinkageCallback found no optimizer: configure_optimizers returned none."
            )
        attached, refusal = 0, None
        for optimizer in optimizers:
            # With several optimizers (a GAN), each regularizes the weights it holds.
            try:
                reg.attach(optimizer)
                attached += 1
            except ShrinkageError as exc:
                refusal = exc
        if not attached and refusal is not None:
            raise refusal

    def _wrap_training_step(self, pl_module: Any, reg: Regularizer) -> None:
        original = pl_module.training_step

        @functools.wraps(original)
        def training_step(*args: Any, **kwargs: Any) -> Any:
            return _with_penalty(original(*args, **kwargs), reg.loss())

        # An instance attribute shadows the class's method; _release puts back what was
        # there before (nothing, usually).
        self._shadowed = pl_module.__dict__.get("training_step", _NOTHING)
        pl_module.training_step = training_step
        self._wrapped = training_step

    def _release(self, pl_module: Any) -> None:
        if self.regularizer is not None:
            self.regularizer.remove()
        if self._wrapped is not None and pl_module.__dict__.get("training_step") is self._wrapped:
            if self._shadowed is _NOTHING:
                del pl_module.__dict__["training_step"]
            else:
                pl_module.__dict__["training_step"] = self._shadowed
        self._wrapped = None
        self._shadowed = _NOTHING

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Remove every hook; ``regularizer`` stays readable."""
        self._release(pl_module)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        """Remove every hook when training fails."""
        self._release(pl_module)

    # -- logging ---------------------------------------------------------------------------

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        """Log the weights as they are before this batch's step, every n steps."""
        every = (
            trainer.log_every_n_steps if self.log_every_n_steps is None else self.log_every_n_steps
        )
        if every and trainer.global_step % every == 0:
            self._log(trainer)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        """Log the final weights."""
        self._log(trainer)

    def _log(self, trainer: Any) -> None:
        step = trainer.global_step
        # Several batches share a step under gradient accumulation: log each step once.
        if self.regularizer is None or not trainer.loggers or self._last_logged == step:
            return
        if not trainer.is_global_zero:  # loggers write on rank 0 only; skip the reductions
            return
        stats = weight_stats(self.regularizer, self.prefix)
        for logger in trainer.loggers:
            logger.log_metrics(stats, step=step)
        self._last_logged = step


def _with_penalty(output: Any, penalty: Tensor) -> Any:
    """``training_step``'s output with ``penalty`` added to its loss."""
    if output is None:  # Lightning skips the batch; the recorded activity terms are dropped
        return None
    if isinstance(output, Tensor):
        return output + penalty
    if isinstance(output, Mapping) and isinstance(output.get("loss"), Tensor):
        return {**output, "loss": output["loss"] + penalty}
    raise ShrinkageError(
        "ShrinkageCallback adds the penalty to the loss training_step returns, which must be "
        f"a tensor, a dict with a 'loss' tensor, or None. Got {type(output).__name__} instead."
    )
