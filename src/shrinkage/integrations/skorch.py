"""skorch: a callback that regularizes a skorch net with a shrinkage plan.

::

    from skorch import NeuralNetClassifier
    from shrinkage import L2
    from shrinkage.integrations.skorch import RegularizedNetClassifier, Shrinkage

    # gradient, decoupled, proximal: any skorch net.
    net = NeuralNetClassifier(Module, callbacks=[Shrinkage(L2(1e-4), mode="gradient")])
    # loss mode and activity rules: the net's class adds the penalty to its loss.
    net = RegularizedNetClassifier(Module, callbacks=[Shrinkage(L2(1e-4), mode="loss")])

skorch steps with ``optimizer.step(closure)``: ``zero_grad``, the forward pass,
``get_loss`` and ``backward`` run inside the closure. The ``gradient`` and ``decoupled``
terms are applied when the closure returns and the ``proximal`` step after the update,
so a callback is enough for them.

Why ``loss`` mode needs a net class: skorch computes the loss in ``NeuralNet.get_loss``
and backpropagates it at once in ``train_step_single``; no callback runs between the two,
and after ``backward`` the forward pass's graph is freed, so an activity penalty could not
be backpropagated afterwards either. :class:`ShrinkageLossMixin` overrides ``get_loss`` to
return ``loss + reg.loss()`` while training (``reg.loss()`` = ``Ω(w)`` in loss mode, plus
the activity penalties in every mode); ``RegularizedNet``, ``RegularizedNetClassifier``,
``RegularizedNetBinaryClassifier`` and ``RegularizedNetRegressor`` are skorch's classes
with it. The recorded ``train_loss`` then includes the penalty (as in Keras);
``valid_loss`` never does. A ``Shrinkage(mode="loss")`` on a net without the mixin is
refused when training starts, rather than silently not penalizing.

At the end of every epoch the callback records ``penalty`` (``scale * sum Ω(w)``, see
:meth:`~shrinkage.Regularizer.value`) in ``net.history``, which ``PrintLog`` shows as a
column; with ``log_weights=True`` also ``l2_norm/<name>`` and ``zero_fraction/<name>``
for every weight (:func:`~shrinkage.integrations.weight_stats`).

The regularizer is built on ``net.module_`` and attached to ``net.optimizer_`` at the
start of each ``fit`` / ``partial_fit`` (an ``L2SP`` without an explicit ``reference``
takes the weights of that moment) and removed at its end; the net pickles as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from shrinkage import MODES, Regularizer
from shrinkage.errors import ShrinkageError, did_you_mean
from shrinkage.integrations._common import require, weight_stats

__all__ = [
    "Shrinkage",
    "ShrinkageLossMixin",
    "RegularizedNet",
    "RegularizedNetClassifier",
    "RegularizedNetBinaryClassifier",
    "RegularizedNetRegressor",
]

_skorch = require("skorch", "skorch")
from skorch.callbacks import Callback  # noqa: E402


class Shrinkage(Callback):
    """Apply a plan to a skorch net's module through its optimizer, and record the penalty.

    Args:
        plan: a :class:`~shrinkage.Plan` or anything it accepts (a penalty, a dict
            ``{selector: penalty}``); names are those of ``net.module_.named_parameters()``.
        mode: ``"loss"``, ``"gradient"``, ``"decoupled"`` or ``"proximal"``; ``"loss"``
            (and activity rules in any mode) need a net with :class:`ShrinkageLossMixin`.
        scale: a multiplier on every strength, or a schedule ``step -> multiplier``.
        log_weights: also record per-weight ``l2_norm/<name>`` and ``zero_fraction/<name>``.

    Attributes:
        regularizer_: the :class:`~shrinkage.Regularizer` of the current (or last) fit.

    Raises:
        ShrinkageError: when training starts: an unknown mode, a plan that does not fit
            the module, or loss mode / activity rules on a net without the mixin.

    Example:
        >>> Shrinkage("l2", mode="proximal").get_params()["mode"]
        'proximal'
    """

    def __init__(
        self,
        plan: Any,
        mode: str = "gradient",
        *,
        scale: float | Callable[[int], float] = 1.0,
        log_weights: bool = False,
    ) -> None:
        self.plan = plan
        self.mode = mode
        self.scale = scale
        self.log_weights = log_weights

    def initialize(self) -> Shrinkage:
        """Forget the last fit's regularizer (skorch calls this when the net initializes)."""
        self._release()
        self.regularizer_: Regularizer | None = None
        return self

    def _release(self) -> None:
        reg = getattr(self, "regularizer_", None)
        if reg is not None:
            reg.remove()

    @property
    def adds_to_loss(self) -> bool:
        """Whether part of the penalty must go through the loss (loss mode, activity)."""
        reg = getattr(self, "regularizer_", None)
        return self.mode == "loss" or bool(reg is not None and reg.plan.activity)

    def on_train_begin(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        """Build the regularizer on ``net.module_`` and attach it to ``net.optimizer_``."""
        if self.mode not in MODES:
            raise ShrinkageError(
                f"The 'mode' parameter of Shrinkage must be one of "
                f"{', '.join(map(repr, MODES))}. Got {self.mode!r} instead."
                f"{did_you_mean(self.mode, MODES)}"
            )
        self._release()
        reg = Regularizer(net.module_, self.plan, self.mode, scale=self.scale)
        self.regularizer_ = reg
        try:
            if self.adds_to_loss and not isinstance(net, ShrinkageLossMixin):
                what = "mode='loss'" if self.mode == "loss" else "activity rules"
                raise ShrinkageError(
                    f"Shrinkage with {what} adds the penalty to the loss, which skorch computes "
                    f"in get_loss; {type(net).__name__} does not. Use RegularizedNetClassifier, "
                    "RegularizedNetRegressor or RegularizedNet from "
                    "shrinkage.integrations.skorch, or add ShrinkageLossMixin to your net class."
                )
            reg.attach(net.optimizer_)
        except ShrinkageError:
            reg.remove()
            self.regularizer_ = None
            raise

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        """Record ``penalty`` (and the per-weight statistics) in ``net.history``."""
        reg = getattr(self, "regularizer_", None)
        if reg is None:
            return
        if self.log_weights:
            for key, value in weight_stats(reg, prefix="").items():
                net.history.record(key, value)
        else:
            net.history.record("penalty", float(reg.value()))

    def on_train_end(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        """Remove the hooks; ``regularizer_`` stays readable."""
        self._release()

    def loss(self) -> Tensor | None:
        """The term :class:`ShrinkageLossMixin` adds to the training loss, if any."""
        reg = getattr(self, "regularizer_", None)
        return reg.loss() if reg is not None and self.adds_to_loss else None

    def __getstate__(self) -> dict[str, Any]:
        # The regularizer holds the module, hook closures and a possibly unpicklable
        # schedule; the net pickles its module itself and a new fit builds a new one.
        state = self.__dict__.copy()
        state.pop("regularizer_", None)
        return state


class ShrinkageLossMixin:
    """Adds every :class:`Shrinkage` callback's loss term to the training loss.

    Put it first among the bases: ``class MyNet(ShrinkageLossMixin, NeuralNet)``.
    ``get_loss(..., training=True)`` returns ``loss + sum reg.loss()``; validation and
    scoring losses (``training=False``) are unchanged.
    """

    def get_loss(self, y_pred: Any, y_true: Any, X: Any = None, training: bool = False) -> Tensor:
        """skorch's loss, plus the penalty while training (``loss + reg.loss()``)."""
        loss = super().get_loss(y_pred, y_true, X=X, training=training)  # type: ignore[misc]
        if training:
            for _, callback in getattr(self, "callbacks_", []):
                if isinstance(callback, Shrinkage):
                    term = callback.loss()
                    if term is not None:
                        loss = loss + term
        return loss


class RegularizedNet(ShrinkageLossMixin, _skorch.NeuralNet):
    """``skorch.NeuralNet`` whose training loss includes the :class:`Shrinkage` penalty."""


class RegularizedNetClassifier(ShrinkageLossMixin, _skorch.NeuralNetClassifier):
    """``skorch.NeuralNetClassifier`` whose training loss includes the penalty."""


class RegularizedNetBinaryClassifier(ShrinkageLossMixin, _skorch.NeuralNetBinaryClassifier):
    """``skorch.NeuralNetBinaryClassifier`` whose training loss includes the penalty."""


class RegularizedNetRegressor(ShrinkageLossMixin, _skorch.NeuralNetRegressor):
    """``skorch.NeuralNetRegressor`` whose training loss includes the penalty."""
