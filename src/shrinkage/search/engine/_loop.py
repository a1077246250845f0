"""The training loop of a stack: padded minibatches per candidate, one step for all."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

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

    def keep(self, index: np.ndarray) -> None:
        """Keep the candidates at positions ``index``; forget the groups none of them uses."""
        members = self.member_np[np.asarray(index, dtype=np.int64)]
        used = sorted(set(members.tolist()))
        renumber = {g: i for i, g in enumerate(used)}
        self.rows = [self.rows[g] for g in used]
        self.gens = [self.gens[g] for g in used]
        self.member_np = np.array([renumber[g] for g in members.tolist()], dtype=np.int64)
        self.member = torch.as_tensor(self.member_np, dtype=torch.int64)
        self._lengths = None  # lay the epochs out again for the groups left

    def generator_state(self, k: int) -> Tensor:
        """The state of candidate ``k``'s group's minibatch generator (a copy)."""
        return self.gens[int(self.member_np[k])].get_state().clone()

    def set_generator_state(self, k: int, state: Tensor) -> None:
        """Set candidate ``k``'s group's generator (shared by its whole group)."""
        self.gens[int(self.member_np[k])].set_state(state.to(torch.uint8).cpu())

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


class StackTrainer:
    """Training of a stack that can stop, continue, and let candidates leave mid-run.

    ``StackTrainer(...).run(settings.epochs)`` is :func:`train_stack`. In between runs
    everything that carries a candidate's trajectory is kept: its weights, its optimizer
    state (Adam's moments and step count, SGD's momentum buffer), the epoch count and its
    group's minibatch generator. So ``run(a)`` then ``run(b)`` trains exactly as
    ``run(a + b)``, and :meth:`keep` between two runs removes candidates for real (new flat
    buffers with only the kept rows of every parameter, gradient, optimizer buffer and
    strength; the dropped groups' generators are gone), without changing any survivor's
    trajectory: each candidate's arithmetic never involves another's (up to the float
    rounding of batched kernels of another width).

    :meth:`state` and :meth:`load_state` export and restore one candidate's whole training
    state (weights, optimizer, epoch, generator), so a run can also continue in another
    stack, another process or after a restart (successive halving across chunks, resume).

    The math of one step is :func:`train_stack`'s; see there for the arguments.

    Raises:
        ShrinkageError: strengths of the wrong shape or negative, or an empty rows tensor.
    """

    def __init__(
        self,
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
    ) -> None:
        k = stack.k
        if len(rows) != k or len(seeds) != k:
            raise ShrinkageError(
                f"train_stack needs one rows tensor and one seed per candidate ({k}); got "
                f"{len(rows)} and {len(seeds)}."
            )
        if any(len(r) == 0 for r in rows):
            raise ShrinkageError(
                "Every candidate needs at least one training row; got an empty fold."
            )
        self.stack, self.X, self.y, self.settings = stack, X, y, settings
        self.progress = progress
        self.penalty = StackPenalty(stack, l1, l2)
        self.optimizer = StackedOptimizer(stack, settings)
        #: epochs trained so far
        self.epoch = 0
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
        self.batcher = _Batcher(
            group_rows, gens, settings.batch_size, np.asarray(members), stack.device
        )
        mode = MODE_TABLE[settings.mode]
        self._after = mode.after_step
        self._autograd_loss = stack.uses_autograd and mode.in_loss
        # Loss mode without autograd: the hand-written backward adds the penalty's gradient
        # directly, the same math autograd would do on the penalty term.
        self._before = "add_grad" if mode.in_loss and not self._autograd_loss else mode.before_step
        self._neg_one: Tensor | None = None
        self._loaded: set[int] = set()

    @property
    def k(self) -> int:
        """Candidates in the stack now."""
        return self.stack.k

    def run(self, epochs: int) -> StackedOptimizer:
        """Train every candidate ``epochs`` more epochs (0 does nothing).

        ``progress`` (if given) is called with the epoch count since the start after each.

        Returns:
            The optimizer, with its state (step counts, moments).
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 0:
            raise ShrinkageError(
                f"The 'epochs' to run must be an integer >= 0. Got {epochs!r} instead."
            )
        for _ in range(int(epochs)):
            self._epoch()
            self.epoch += 1
            if self.progress is not None:
                self.progress(self.epoch)
        return self.optimizer

    def keep(self, index: Sequence[int] | Tensor | np.ndarray) -> None:
        """Keep only the candidates at positions ``index`` (in that order), for real.

        Their rows of the parameters, gradients, optimizer state and strengths move to new
        buffers of ``len(index)`` rows; groups (rows and seed) no candidate uses any more
        are forgotten. The kept candidates continue exactly as if nothing had left.

        Raises:
            ShrinkageError: an empty, repeated or out-of-range position.
        """
        positions = self.stack.check_index(index)
        self.optimizer.keep(positions)  # with the old layout
        self.stack.keep(positions)
        self.penalty.keep(positions)
        self.batcher.keep(positions.cpu().numpy())
        self._neg_one = None

    def state(self, k: int) -> dict[str, Tensor]:
        """Candidate ``k``'s whole training state, CPU tensors by name.

        The parameters by their names, the optimizer's ``optimizer.step`` and buffers
        (``optimizer.m.{name}``, ``optimizer.v.{name}`` or ``optimizer.buf.{name}``), the
        ``epoch`` count and its minibatch ``generator`` state.
        """
        out = {name: t.cpu() for name, t in self.stack.state(k).items()}
        for name, t in self.optimizer.state(k).items():
            out[f"optimizer.{name}"] = t.cpu()
        out["epoch"] = torch.tensor([self.epoch], dtype=torch.int64)
        out["generator"] = self.batcher.generator_state(k)
        return out

    def load_state(self, k: int, state: dict[str, Any]) -> None:
        """Restore candidate ``k`` from :meth:`state`'s mapping (tensors or arrays).

        Every candidate restored into one trainer must be at the same epoch, and candidates
        sharing a group (rows and seed) must bring the same generator state.

        Raises:
            ShrinkageError: a state at another epoch than the trainer's other candidates.
        """
        epoch = int(np.asarray(state["epoch"]).reshape(-1)[0])
        if not self._loaded:
            self.epoch = epoch
        elif epoch != self.epoch:
            raise ShrinkageError(
                f"Every candidate of a stack must continue from the same epoch; got {epoch} "
                f"and {self.epoch}."
            )
        self._loaded.add(k)
        weights = {n: torch.as_tensor(np.asarray(state[n])) for n in self.stack.names}
        self.stack.load_state(k, weights)
        prefix = "optimizer."
        self.optimizer.load_state(
            k,
            {
                key[len(prefix) :]: torch.as_tensor(np.asarray(value))
                for key, value in state.items()
                if key.startswith(prefix)
            },
        )
        self.batcher.set_generator_state(k, torch.as_tensor(np.asarray(state["generator"])))

    def _epoch(self) -> None:
        stack, settings, X, y = self.stack, self.settings, self.X, self.y
        k, device = stack.k, stack.device
        batches = self.batcher.epoch()
        width = batches.index.shape[-1]
        multiclass = settings.task == CLASSIFICATION and settings.n_outputs > 1
        if multiclass and (self._neg_one is None or self._neg_one.shape[:2] != (k, width)):
            self._neg_one = torch.full((k, width, 1), -1.0, device=device, dtype=stack.flat.dtype)
        feature_shape = tuple(X.shape[1:])
        penalty, optimizer = self.penalty, self.optimizer
        epoch = min(self.epoch + 1, settings.epochs)  # the schedule's epoch, 1-based
        schedule, rate = settings.learning_rate_schedule, settings.learning_rate
        lr = optimizer.lr = learning_rate_at(schedule, rate, epoch, settings.epochs)
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
                    if self._autograd_loss:
                        loss = loss + penalty.loss()
                    loss.backward()
            else:
                out, saved = stack.forward(x, keep=True)
                stack.backward(_output_grad(out, yt, wt, settings, self._neg_one), saved)
            if self._before is not None:
                penalty.apply(self._before, lr, active)
            optimizer.step(active_np)
            if self._after is not None:
                penalty.apply(self._after, lr, active, optimizer.prox_steps())


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

    This is ``StackTrainer(...).run(settings.epochs)`` (:class:`StackTrainer` can also stop,
    continue and drop candidates).

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
    trainer = StackTrainer(stack, X, y, rows, seeds, l1, l2, settings, progress=progress)
    return trainer.run(settings.epochs)


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
