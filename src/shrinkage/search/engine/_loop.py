"""The training loop of a stack: padded minibatches per candidate, one step for all."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from shrinkage._names import CLASSIFICATION, REGRESSION
from shrinkage.errors import ShrinkageError
from shrinkage.models import epoch_batches, generators
from shrinkage.regularizer import MODE_TABLE
from shrinkage.search.engine._memory import PREDICT_ROWS
from shrinkage.search.engine._optim import StackedOptimizer
from shrinkage.search.engine._penalty import StackPenalty
from shrinkage.search.engine._settings import TrainSettings
from shrinkage.search.engine._stack import StackedMLP, StackedModule
from shrinkage.training import learning_rate_at

# --------------------------------------------------------------------------- minibatches


@dataclass
class _Epoch:
    """One epoch's minibatches for every candidate, padded to ``(T, K, width)``."""

    index: Tensor  # rows of X, (T, K, width)
    weight: Tensor  # 1 / len(batch) for a real row, 0 for padding, (T, K, width)
    active: np.ndarray  # (T, K) bool: whether the candidate has a batch at step t
    full_steps: int  # the first steps, at which every candidate has a batch

    @property
    def n_steps(self) -> int:
        """Steps of the epoch (the most batches any candidate has)."""
        return self.index.shape[0]


class _Batcher:
    """Draws each group's minibatches with :func:`~shrinkage.models.epoch_batches` and pads
    them into one index tensor per epoch.

    A group is the candidates sharing training rows and a seed; they share one permutation
    per epoch. A padded slot points at the group's own first row of the epoch (never at a
    row the group must not see) and weighs 0. The weights depend only on the batch lengths,
    which repeat every epoch, so they are built once.
    """

    def __init__(
        self,
        rows: Sequence[Tensor],
        gens: Sequence[torch.Generator],
        batch_size: int,
        member: np.ndarray,
        device: torch.device,
    ) -> None:
        self.rows, self.gens, self.batch_size = list(rows), list(gens), batch_size
        self.member = torch.as_tensor(member, dtype=torch.int64)
        self.member_np = member
        self.device = device
        self._lengths: tuple | None = None

    def epoch(self) -> _Epoch:
        """The next epoch's padded minibatches."""
        per_group = [
            epoch_batches(len(r), self.batch_size, g) for r, g in zip(self.rows, self.gens)
        ]
        lengths = tuple(tuple(len(b) for b in batches) for batches in per_group)
        if lengths != self._lengths:
            self._layout(lengths)
        steps, width = self._steps, self._width
        slots = steps * width
        regular = self._regular
        local = []
        for batches, r in zip(per_group, self.rows):
            order = batches[0] if len(batches) == 1 else torch.cat(batches)
            if regular:
                # Consecutive full batches: the real rows are the first slots, in order.
                picked = r[order]
                local.append(torch.cat([picked, picked[:1].expand(slots - len(order))]))
            else:
                flat = torch.full((slots,), int(r[order[0]]), dtype=torch.int64)
                for t, b in enumerate(batches):
                    flat[t * width : t * width + len(b)] = r[b]
                local.append(flat)
        groups = torch.stack(local).view(len(local), steps, width)
        index = groups.index_select(0, self.member).transpose(0, 1).contiguous()
        return _Epoch(index.to(self.device), self._weight, self._active, self._full)

    def _layout(self, lengths: tuple) -> None:
        steps = max(len(x) for x in lengths)
        width = max(n for x in lengths for n in x)
        weight = np.zeros((len(lengths), steps, width), dtype=np.float32)
        active = np.zeros((len(lengths), steps), dtype=bool)
        for g, x in enumerate(lengths):
            for t, n in enumerate(x):
                weight[g, t, :n] = 1.0 / n
                active[g, t] = True
        self._steps, self._width, self._lengths = steps, width, lengths
        self._regular = all(all(n == width for n in x[:-1]) for x in lengths)
        w = torch.as_tensor(weight).index_select(0, self.member).transpose(0, 1).contiguous()
        self._weight = w.to(self.device)
        self._active = active[self.member_np].T.copy()
        every = self._active.all(axis=1)
        self._full = steps if every.all() else int(np.argmin(every))


# --------------------------------------------------------------------------- training


def _output_grad(
    out: Tensor, y: Tensor, w: Tensor, settings: TrainSettings, neg_one: Tensor | None
) -> Tensor:
    """``d(sum_k mean loss_k)/d(out)`` for outputs ``(K, B, n_out)``, weights ``(K, B)``.

    MSE ``mean((z - y)^2)``: ``2 (z - y) / n``; BCE with logits: ``(sigmoid(z) - y) / n``;
    cross-entropy: ``(softmax(z) - onehot(y)) / n``.
    """
    if settings.task == REGRESSION:
        return ((out.squeeze(-1) - y) * (2 * w)).unsqueeze(-1)
    if settings.n_outputs == 1:
        return ((torch.sigmoid(out.squeeze(-1)) - y) * w).unsqueeze(-1)
    probs = torch.softmax(out, dim=-1)
    probs.scatter_add_(-1, y.unsqueeze(-1), neg_one)
    return probs.mul_(w.unsqueeze(-1))


def _sample_losses(out: Tensor, y: Tensor, settings: TrainSettings) -> Tensor:
    """Per-row losses ``(K, B)`` of the task (autograd path)."""
    if settings.task == REGRESSION:
        return (out.squeeze(-1) - y).square()
    if settings.n_outputs == 1:
        return F.binary_cross_entropy_with_logits(out.squeeze(-1), y, reduction="none")
    k, b = y.shape
    return F.cross_entropy(out.reshape(k * b, -1), y.reshape(-1), reduction="none").view(k, b)


def train_stack(
    stack: StackedMLP | StackedModule,
    X: Tensor,
    y: Tensor,
    rows: Sequence[Tensor],
    seeds: Sequence[int],
    l1: Tensor,
    l2: Tensor,
    settings: TrainSettings,
    *,
    progress: Callable[[int], None] | None = None,
) -> StackedOptimizer:
    """Train every candidate of ``stack`` in place, as K independent single models.

    Candidate ``k`` minimizes ``mean_{rows in batch} loss(f_k(x), y) + Omega_k(W_k)`` with
    ``Omega_k = sum_i l1[k, i] * |W_ki|_1 + l2[k, i] * ||W_ki||^2`` over its penalizable
    weights, on the rows ``rows[k]`` of ``X``, with the minibatches
    ``epoch_batches(len(rows[k]), batch_size, generators(seeds[k])[1])`` of each epoch
    (indices into ``rows[k]``, in that order). The stack minimizes the sum over k.

    Candidates given the *same* rows tensor and the same seed share their minibatches (one
    permutation per epoch is drawn for them), which is how a search gives every strength of
    a fold the same data order.

    Args:
        stack: the candidates, already initialized.
        X: the source rows ``(R, *features)`` on the stack's device (a search passes one
            standardized copy of the data per fold, stacked).
        y: targets ``(R,)`` laid out by :func:`shrinkage.training.target_tensor`.
        rows: K int64 tensors of row indices into ``X``.
        seeds: K integer seeds (their shuffle generators order the minibatches).
        l1: ``(K, L)`` L1 strengths.
        l2: ``(K, L)`` L2 strengths.
        settings: optimizer, learning rate, epochs, batch size, mode, task.
        progress: called with the epoch number (1-based) after each epoch.

    Returns:
        The optimizer, with its final state (step counts, moments).

    Raises:
        ShrinkageError: strengths of the wrong shape or negative, or an empty rows tensor.
    """
    k = stack.k
    if len(rows) != k or len(seeds) != k:
        raise ShrinkageError(
            f"train_stack needs one rows tensor and one seed per candidate ({k}); got "
            f"{len(rows)} and {len(seeds)}."
        )
    if any(len(r) == 0 for r in rows):
        raise ShrinkageError("Every candidate needs at least one training row; got an empty fold.")
    device = stack.device
    penalty = StackPenalty(stack, l1, l2)
    optimizer = StackedOptimizer(stack, settings)
    group_of: dict[tuple[int, int], int] = {}
    group_rows: list[Tensor] = []
    gens: list[torch.Generator] = []
    members = []
    for r, s in zip(rows, seeds):
        key = (id(r), int(s))
        if key not in group_of:
            group_of[key] = len(group_rows)
            group_rows.append(r.to(torch.int64).cpu())
            gens.append(generators(int(s))[1])
        members.append(group_of[key])
    batcher = _Batcher(group_rows, gens, settings.batch_size, np.asarray(members), device)
    multiclass = settings.task == CLASSIFICATION and settings.n_outputs > 1
    neg_one = None
    feature_shape = tuple(X.shape[1:])
    mode = MODE_TABLE[settings.mode]
    autograd_loss = stack.uses_autograd and mode.in_loss
    # Loss mode without autograd: the hand-written backward adds the penalty's gradient
    # directly, the same math autograd would do on the penalty term.
    before = "add_grad" if mode.in_loss and not autograd_loss else mode.before_step

    for epoch in range(1, settings.epochs + 1):
        lr = optimizer.lr = learning_rate_at(
            settings.learning_rate_schedule, settings.learning_rate, epoch, settings.epochs
        )
        batches = batcher.epoch()
        width = batches.index.shape[-1]
        if multiclass and (neg_one is None or neg_one.shape[1] != width):
            neg_one = torch.full((k, width, 1), -1.0, device=device, dtype=stack.flat.dtype)
        for t in range(batches.n_steps):
            idx = batches.index[t].view(-1)
            x = X.index_select(0, idx).view(k, width, *feature_shape)
            yt = y.index_select(0, idx).view(k, width)
            wt = batches.weight[t]
            if t < batches.full_steps:
                active_np, active = None, None
            else:
                active_np = batches.active[t]
                active = torch.as_tensor(active_np, dtype=stack.flat.dtype, device=device)
            if stack.uses_autograd:
                stack.flat_grad.zero_()
                with torch.enable_grad():
                    out = stack.forward(x)
                    loss = (_sample_losses(out, yt, settings) * wt).sum()
                    if autograd_loss:
                        loss = loss + penalty.loss()
                    loss.backward()
            else:
                out, saved = stack.forward(x, keep=True)
                stack.backward(_output_grad(out, yt, wt, settings, neg_one), saved)
            if before is not None:
                penalty.apply(before, lr, active)
            optimizer.step(active_np)
            if mode.after_step is not None:
                penalty.apply(mode.after_step, lr, active, optimizer.prox_steps())
        if progress is not None:
            progress(epoch)
    return optimizer


@torch.no_grad()
def predict_stack(
    stack: StackedMLP | StackedModule,
    X: Tensor,
    index: Tensor,
    block: int = PREDICT_ROWS,
) -> Tensor:
    """Outputs of each candidate on its own rows: ``out[k, j] = f_k(X[index[k, j]])``.

    Args:
        stack: the candidates.
        X: source rows ``(R, *features)``.
        index: ``(K, n)`` row indices.
        block: rows per forward pass (bounds memory).

    Returns:
        ``(K, n, n_out)`` outputs.
    """
    k, n = index.shape
    parts = []
    for start in range(0, n, block):
        idx = index[:, start : start + block]
        x = X.index_select(0, idx.reshape(-1)).view(k, idx.shape[1], *X.shape[1:])
        parts.append(stack.predict(x))
    return torch.cat(parts, dim=1)
