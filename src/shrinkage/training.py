"""The single-model training loop, and the losses and scores it shares with the search.

The batched search engine trains K candidates at once and must reproduce this loop exactly
for a candidate trained alone, so the pieces it mirrors are public here:

* :func:`make_loss` — the data loss of a task (mean over the batch; the penalty is added to
  this mean, with the Keras meaning).
* :func:`n_outputs` / :func:`target_tensor` — how many outputs the network has and how the
  target is laid out for the loss.
* :func:`make_score` — the score reported per epoch (accuracy or R²).
* :func:`make_optimizer` — ``"adam"`` and ``"sgd"`` (with momentum).
* :func:`learning_rate_at` — the learning rate of each epoch (constant or cosine).
* :func:`fit_model` — epochs of :func:`~shrinkage.models.epoch_batches` minibatches, the
  regularizer attached to the optimizer, one history row per epoch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from shrinkage._names import CLASSIFICATION, LEARNING_RATE_SCHEDULES, OPTIMIZERS, REGRESSION
from shrinkage.errors import ShrinkageError, TrainingDiverged, did_you_mean
from shrinkage.models import epoch_batches
from shrinkage.regularizer import Regularizer

__all__ = [
    "CLASSIFICATION",
    "DIVERGENCE_FACTOR",
    "HISTORY_KEYS",
    "LEARNING_RATE_SCHEDULES",
    "OPTIMIZERS",
    "REGRESSION",
    "fit_model",
    "learning_rate_at",
    "make_loss",
    "make_optimizer",
    "make_score",
    "n_outputs",
    "predict_outputs",
    "target_tensor",
]

#: The keys of every history row, in order.
HISTORY_KEYS = ("epoch", "data_loss", "penalty", "total", "train_score", "val_loss", "val_score")

#: Training has diverged when its objective (data loss + penalty) exceeds this many times
#: its reference: the larger of the objective at the start and the loss of an all-zero
#: output (so a warm start that begins near zero loss is not held to that). Both the single
#: loop (:func:`fit_model`) and the batched search use it.
DIVERGENCE_FACTOR = 1e3

LossFn = Callable[[Tensor, Tensor], Tensor]
ScoreFn = Callable[[Tensor, Tensor], float]

#: Rows per forward pass when scoring or predicting: bounds memory on large tables.
_EVAL_CHUNK = 65536


def _check_task(task: str, n_classes: int | None) -> int:
    if task not in (CLASSIFICATION, REGRESSION):
        raise ShrinkageError(
            f"The 'task' parameter must be 'classification' or 'regression'. Got {task!r} instead."
        )
    if task == REGRESSION:
        return 0
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer) or n_classes < 2:
        raise ShrinkageError(
            f"The 'n_classes' parameter must be an integer >= 2 for classification. "
            f"Got {n_classes!r} instead."
        )
    return int(n_classes)


def n_outputs(task: str, n_classes: int | None = None) -> int:
    """The width of the output layer: 1 for regression and binary, ``n_classes`` otherwise.

    A binary classifier has a single logit ``z`` with ``P(class 1) = sigmoid(z)``, as Keras's
    ``Dense(1, activation="sigmoid")`` and scikit-learn's MLP do.

    Args:
        task: ``"classification"`` or ``"regression"``.
        n_classes: the number of classes (classification only).

    Returns:
        The number of network outputs.

    Raises:
        ShrinkageError: an unknown task or fewer than two classes.
    """
    k = _check_task(task, n_classes)
    return 1 if k <= 2 else k


def make_loss(task: str, n_classes: int | None = None) -> LossFn:
    """The data loss of a task, averaged over the rows of the batch.

    * regression: ``mean((out[:, 0] - y)**2)`` (no 1/2);
    * binary classification: ``mean(BCEWithLogits(out[:, 0], y))`` with ``y`` in {0., 1.};
    * multiclass: ``mean(CrossEntropy(out, y))`` with integer ``y``.

    The penalty (Keras meaning) is added to this mean. ``y`` is laid out as
    :func:`target_tensor` returns it.

    Args:
        task: ``"classification"`` or ``"regression"``.
        n_classes: the number of classes (classification only).

    Returns:
        ``loss(outputs, y) -> scalar tensor`` with ``outputs`` of shape
        ``(n, n_outputs(task, n_classes))``.

    Raises:
        ShrinkageError: an unknown task or fewer than two classes.

    Example:
        >>> loss = make_loss("regression")
        >>> float(loss(torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 0.0])))
        5.0
    """
    k = _check_task(task, n_classes)
    if k == 0:
        return _mse
    if k == 2:
        return _binary_cross_entropy
    return _cross_entropy


def _mse(outputs: Tensor, y: Tensor) -> Tensor:
    return F.mse_loss(outputs.squeeze(-1), y)


def _binary_cross_entropy(outputs: Tensor, y: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(outputs.squeeze(-1), y)


def _cross_entropy(outputs: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(outputs, y)


def target_tensor(
    y: Any, task: str, n_classes: int | None = None, device: str | torch.device = "cpu"
) -> Tensor:
    """The target as :func:`make_loss` expects it: shape ``(n,)``.

    float32 values for regression, float32 0/1 for binary classification, int64 class codes
    for multiclass.

    Args:
        y: regression values or class codes ``0 .. n_classes - 1``.
        task: ``"classification"`` or ``"regression"``.
        n_classes: the number of classes (classification only).
        device: where the tensor lives.

    Returns:
        A 1-D tensor.
    """
    k = _check_task(task, n_classes)
    values = np.asarray(y).reshape(-1)
    dtype = torch.int64 if k > 2 else torch.float32
    return torch.as_tensor(values.astype(np.int64 if k > 2 else np.float32), dtype=dtype).to(device)


def make_score(task: str, n_classes: int | None = None) -> ScoreFn:
    """The score reported in the history: accuracy for classification, R² for regression.

    Accuracy is ``mean(predicted class == y)`` (binary: ``out > 0``, i.e. ``p > 0.5``).
    R² is ``1 - sum((y - out)**2) / sum((y - mean(y))**2)``; with a constant ``y`` it is 1
    for a perfect fit and 0 otherwise (as scikit-learn's ``r2_score``).

    Args:
        task: ``"classification"`` or ``"regression"``.
        n_classes: the number of classes (classification only).

    Returns:
        ``score(outputs, y) -> float``.
    """
    k = _check_task(task, n_classes)
    if k == 0:
        return _r2
    if k == 2:
        return lambda outputs, y: float(((outputs[:, 0] > 0).to(y.dtype) == y).double().mean())
    return lambda outputs, y: float((outputs.argmax(dim=1) == y).double().mean())


def _r2(outputs: Tensor, y: Tensor) -> float:
    pred = outputs[:, 0].double()
    truth = y.double()
    residual = float(((truth - pred) ** 2).sum())
    spread = float(((truth - truth.mean()) ** 2).sum())
    if spread == 0:
        return 1.0 if residual == 0 else 0.0
    return 1.0 - residual / spread


def make_optimizer(
    name: str, params: Iterable[Tensor], learning_rate: float, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """``"adam"``: ``torch.optim.Adam(lr)`` with default betas; ``"sgd"``: ``SGD(lr, momentum)``.

    Neither has ``weight_decay``: regularization comes from the plan.

    Args:
        name: ``"adam"`` or ``"sgd"``.
        params: the parameters to train.
        learning_rate: the step size, ``> 0``.
        momentum: SGD momentum in ``[0, 1)`` (ignored by Adam).

    Returns:
        The optimizer.

    Raises:
        ShrinkageError: an unknown optimizer name.
    """
    if name == "adam":
        return torch.optim.Adam(params, lr=learning_rate)
    if name == "sgd":
        return torch.optim.SGD(params, lr=learning_rate, momentum=momentum)
    raise ShrinkageError(
        f"The 'optimizer' parameter must be one of {', '.join(map(repr, OPTIMIZERS))}. "
        f"Got {name!r} instead.{did_you_mean(name, OPTIMIZERS)}"
    )


def learning_rate_at(schedule: str, learning_rate: float, epoch: int, epochs: int) -> float:
    """The learning rate of epoch ``epoch`` (1-based) of ``epochs``.

    ``"constant"``: ``learning_rate``. ``"cosine"``: annealed to 0 over the run,
    ``learning_rate * (1 + cos(pi * (epoch - 1) / epochs)) / 2`` (torch's
    ``CosineAnnealingLR(T_max=epochs)`` stepped once per epoch). A decaying rate lets Adam
    settle on the minimizer instead of hovering around it at a distance of the order of
    the learning rate: coordinates whose gradient vanishes at the optimum (an unpenalized
    bias) have an Adam step ``lr / (|g| + eps)`` that grows as ``g`` shrinks.

    Args:
        schedule: one of :data:`LEARNING_RATE_SCHEDULES`.
        learning_rate: the rate of the first epoch, ``> 0``.
        epoch: the epoch, from 1.
        epochs: the number of epochs of the run.

    Returns:
        The rate for that epoch.

    Raises:
        ShrinkageError: an unknown schedule.

    Example:
        >>> [round(learning_rate_at("cosine", 1.0, e, 4), 3) for e in range(1, 5)]
        [1.0, 0.854, 0.5, 0.146]
    """
    if schedule == "constant":
        return learning_rate
    if schedule == "cosine":
        return learning_rate * (1 + math.cos(math.pi * (epoch - 1) / epochs)) / 2
    raise ShrinkageError(
        f"The 'learning_rate_schedule' parameter must be one of "
        f"{', '.join(map(repr, LEARNING_RATE_SCHEDULES))}. Got {schedule!r} instead."
        f"{did_you_mean(schedule, LEARNING_RATE_SCHEDULES)}"
    )


@torch.no_grad()
def predict_outputs(model: nn.Module, X: Tensor, chunk: int = _EVAL_CHUNK) -> Tensor:
    """``model(X)`` in evaluation mode, without a graph, ``chunk`` rows at a time.

    Args:
        model: the network.
        X: inputs, already on the model's device.
        chunk: rows per forward pass.

    Returns:
        The outputs, shape ``(len(X), n_outputs)``.
    """
    was_training = model.training
    model.eval()
    try:
        if len(X) <= chunk:
            return model(X)
        return torch.cat([model(part) for part in X.split(chunk)])
    finally:
        model.train(was_training)


def _divergence_context(regularizer: Regularizer, optimizer: torch.optim.Optimizer) -> str:
    lr = optimizer.param_groups[0]["lr"] if optimizer.param_groups else None
    penalties = ", ".join(repr(b.penalty) for b in regularizer.buckets) or "no penalty"
    return f"penalty {penalties}, learning_rate={float(lr)!r}" if lr is not None else penalties


def _reference(
    data_loss: Tensor, regularizer: Regularizer, loss_fn: LossFn, outputs: Tensor, y: Tensor
) -> float:
    """What the divergence check compares with: the objective before the first step, or the
    loss of an all-zero output on every training row when that is larger."""
    start = float(data_loss.detach()) + float(regularizer.value())
    zero = float(loss_fn(outputs.new_zeros((len(y), *outputs.shape[1:])), y))
    return max(start, zero) if math.isfinite(start) else zero


def _seeded_dropout(fit: Callable[..., list[dict[str, Any]]]) -> Callable[..., Any]:
    """``fit(model, X, y, ..., dropout_seed=s)`` runs with the global RNG (what dropout draws
    from) seeded with ``s``, and restored afterwards."""

    @functools.wraps(fit)
    def run(
        model: nn.Module, X: Tensor, y: Tensor, *, dropout_seed: int | None = None, **kwargs: Any
    ) -> list[dict[str, Any]]:
        if dropout_seed is None:
            return fit(model, X, y, **kwargs)
        cuda = X.is_cuda and torch.cuda.is_available()
        with torch.random.fork_rng(devices=list(range(torch.cuda.device_count())) if cuda else []):
            torch.manual_seed(int(dropout_seed))
            return fit(model, X, y, **kwargs)

    return run


@_seeded_dropout
def fit_model(
    model: nn.Module,
    X: Tensor,
    y: Tensor,
    *,
    loss_fn: LossFn,
    regularizer: Regularizer,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batch_size: int,
    shuffle_generator: torch.Generator,
    X_val: Tensor | None = None,
    y_val: Tensor | None = None,
    score_fn: ScoreFn | None = None,
    early_stopping: bool = False,
    patience: int = 10,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
    context: Mapping[str, float] | None = None,
    learning_rate_schedule: str = "constant",
    dropout_seed: int | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` for ``epochs`` epochs of minibatches; one history row per epoch.

    Each step minimizes ``loss_fn(model(X_b), y_b) + Omega(W)``: the data loss is the mean
    over the batch and the plan's penalty ``Omega`` (Keras meaning) is applied by
    ``regularizer`` in its mode (added to the loss in ``"loss"`` mode, by optimizer hooks
    otherwise). The minibatches of an epoch are
    ``epoch_batches(len(X), batch_size, shuffle_generator)``.

    History row of epoch ``e`` (1-based):

    * ``data_loss``: the mean of the batch losses of the epoch weighted by batch size, each
      measured before its step (Keras's ``loss``);
    * ``penalty``: ``regularizer.value()`` after the epoch; ``total = data_loss + penalty``;
    * ``train_score``: ``score_fn`` on the training rows' outputs as the batches computed
      them, each before its step (like ``data_loss`` and Keras's running metrics; no extra
      forward pass);
    * ``val_loss`` / ``val_score``: the data loss / ``score_fn`` on the validation rows after
      the epoch (``None`` without validation rows or ``score_fn``).

    With ``early_stopping``, training stops when the validation score (the validation loss
    without ``score_fn``) has not improved for ``patience`` epochs, and the weights of the
    best epoch are restored.

    Args:
        model: the network, in its starting state.
        X: training inputs, on the model's device.
        y: training targets as :func:`target_tensor` lays them out.
        loss_fn: from :func:`make_loss`.
        regularizer: the plan applied to ``model``; attached to ``optimizer`` here.
        optimizer: from :func:`make_optimizer` (or any torch optimizer over the model).
        epochs: passes over the training rows, ``>= 1``.
        batch_size: rows per minibatch (``>= len(X)``: full batch).
        shuffle_generator: the generator that orders the rows of each epoch.
        X_val: validation inputs, or ``None``.
        y_val: validation targets, or ``None``.
        score_fn: from :func:`make_score`, or ``None``.
        early_stopping: stop on the validation rows (they are then required).
        patience: epochs without improvement before stopping.
        progress: called after every epoch with ``(epoch, row)``.
        context: values named in the divergence message (e.g. ``strength`` and
            ``learning_rate``); by default the penalties and the learning rate.
        learning_rate_schedule: ``"constant"`` (the optimizer's rates untouched) or
            ``"cosine"``: each group's rate set by :func:`learning_rate_at` at the start
            of every epoch, from the rate it had when training started (restored after).
        dropout_seed: train with the global RNG (what dropout draws from) seeded with this,
            restored afterwards; None: leave it as it is. A stacked candidate of seed ``s``
            draws the masks of ``dropout_seed=shrinkage.models.dropout_seed(s)``.

    Returns:
        The history: a list of dicts with the keys :data:`HISTORY_KEYS`.

    Raises:
        TrainingDiverged: when the loss or the penalty becomes NaN or infinite ("Training
            diverged at epoch 12 (loss=nan) with strength=10.0, learning_rate=1.0; lower
            the learning rate or the strength."), or the epoch's objective ``total`` rises
            above :data:`DIVERGENCE_FACTOR` times its reference (the objective of the first
            batch before any step, or the loss of an all-zero output if larger).
        ShrinkageError: early stopping has no validation rows.
    """
    if early_stopping and (X_val is None or y_val is None or len(X_val) == 0):
        raise ShrinkageError("Early stopping needs validation rows (X_val, y_val); got none.")
    has_val = X_val is not None and y_val is not None and len(X_val) > 0
    regularizer.attach(optimizer)
    # Loss mode and activity rules need the penalty inside the graph; otherwise the hooks do it.
    add_penalty_loss = regularizer.mode == "loss" or bool(regularizer.plan.activity)
    n_rows = len(X)
    history: list[dict[str, Any]] = []
    best_value, best_state, since_best = -math.inf, None, 0
    reference: float | None = None
    learning_rate_at(learning_rate_schedule, 1.0, 1, 1)  # refuses an unknown schedule
    start_rates = [group["lr"] for group in optimizer.param_groups]
    try:
        model.train()
        for epoch in range(1, int(epochs) + 1):
            if learning_rate_schedule != "constant":
                for group, rate in zip(optimizer.param_groups, start_rates):
                    group["lr"] = learning_rate_at(learning_rate_schedule, rate, epoch, epochs)
            loss_sum = torch.zeros((), dtype=torch.float64, device=X.device)
            seen_outputs, seen_targets = [], []
            for index in epoch_batches(n_rows, batch_size, shuffle_generator):
                index = index.to(X.device)
                optimizer.zero_grad(set_to_none=True)
                outputs, targets = model(X[index]), y[index]
                data_loss = loss_fn(outputs, targets)
                if reference is None:
                    reference = _reference(data_loss, regularizer, loss_fn, outputs, y)
                loss = data_loss + regularizer.loss() if add_penalty_loss else data_loss
                loss.backward()
                optimizer.step()
                loss_sum += data_loss.detach().double() * len(index)
                if score_fn is not None:
                    seen_outputs.append(outputs.detach())
                    seen_targets.append(targets)

            penalty = regularizer.value()
            data_value, penalty_value = torch.stack([loss_sum / n_rows, penalty.double()]).tolist()
            total = data_value + penalty_value
            if not math.isfinite(total) or (reference and total > DIVERGENCE_FACTOR * reference):
                if math.isfinite(total):
                    what = (
                        f"the loss rose from {reference:.4g} to {total:.4g}, over "
                        f"{DIVERGENCE_FACTOR:g} times its start"
                    )
                else:
                    what = f"loss={data_value if not math.isfinite(data_value) else penalty_value}"
                where = (
                    ", ".join(f"{k}={float(v)!r}" for k, v in context.items()) if context else None
                )
                raise TrainingDiverged(
                    f"Training diverged at epoch {epoch} ({what}) with "
                    f"{where or _divergence_context(regularizer, optimizer)}; "
                    "lower the learning rate or the strength."
                )

            row: dict[str, Any] = {
                "epoch": epoch,
                "data_loss": data_value,
                "penalty": penalty_value,
                "total": total,
                "train_score": None,
                "val_loss": None,
                "val_score": None,
            }
            if score_fn is not None:
                # Scored on the outputs the batches already computed (before each step), like the
                # data loss and Keras's running metrics: no extra forward pass per epoch.
                if len(seen_outputs) == 1:
                    row["train_score"] = score_fn(seen_outputs[0], seen_targets[0])
                else:
                    row["train_score"] = score_fn(torch.cat(seen_outputs), torch.cat(seen_targets))
            if has_val:
                outputs = predict_outputs(model, X_val)
                row["val_loss"] = float(loss_fn(outputs, y_val))
                if score_fn is not None:
                    row["val_score"] = score_fn(outputs, y_val)
            history.append(row)
            if progress is not None:
                progress(epoch, row)

            if early_stopping:
                value = row["val_score"] if score_fn is not None else -row["val_loss"]
                if value > best_value:
                    best_value, since_best = value, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    since_best += 1
                    if since_best >= patience:
                        break
    finally:
        if learning_rate_schedule != "constant":
            for group, rate in zip(optimizer.param_groups, start_rates):
                group["lr"] = rate
    if early_stopping and best_state is not None:
        model.load_state_dict(best_state)
    return history
