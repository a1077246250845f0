"""One chunk of candidates: the data it shares, its specifications, and :func:`run_chunk`."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from shrinkage._names import CLASSIFICATION
from shrinkage.errors import ShrinkageError
from shrinkage.search.engine import (
    StackedMLP,
    StackPath,
    StackTrainer,
    TrainSettings,
    choose_path,
    layer_strengths,
    per_layer_strengths,
    predict_rows,
    predict_stack,
)
from shrinkage.search.engine._loop import binary_logit
from shrinkage.search.engine._stack import _Stack
from shrinkage.training import DIVERGENCE_FACTOR

# --------------------------------------------------------------------------- chunk data


@dataclass(frozen=True)
class CandidateSpec:
    """One network to train: a configuration on one fold.

    Attributes:
        index: the candidate's position in the search.
        config: the configuration (row of ``cv_results_``).
        fold: the fold (split) index.
        seed: the integer seed (initialization and minibatch order).
        kind: ``"l2"``, ``"l1"`` or ``"elastic_net"``.
        strength: the penalty strength (Keras meaning).
        l1_ratio: elastic net's share of L1 (ignored by the other kinds).
        placement: ``"all"``, ``"hidden"``, ``"output"`` or layer indices.
        epochs: the epoch to train to (counted from the candidate's first epoch).
        stage: ``"grid"``, ``"refine"``, or ``"sampled"`` (a drawn per-layer configuration).
        init: starting weights ``{name: array}`` (warm start) or None (from the seed); with
            ``start_epoch > 0``, the whole training state to continue from
            (:meth:`~shrinkage.search.engine.StackTrainer.state`).
        layers: a per-layer configuration, one ``(kind, strength)`` per penalizable weight
            (strength 0: that layer is not penalized); it replaces ``kind``, ``strength``
            and ``placement``, which then only describe it.
        start_epoch: epochs already trained (``init`` holds the state there).
        rung: the successive-halving rung this training ends at, or None.
    """

    index: int
    config: int
    fold: int
    seed: int
    kind: str
    strength: float
    l1_ratio: float
    placement: str | tuple[int, ...]
    epochs: int
    stage: str = "grid"
    init: dict[str, np.ndarray] | None = field(default=None, compare=False, repr=False)
    layers: tuple[tuple[str, float], ...] | None = None
    start_epoch: int = 0
    rung: int | None = None

    def strengths(self, n_layers: int) -> tuple[list[float], list[float]]:
        """The candidate's per-layer (L1, L2) strengths."""
        if self.layers is not None:
            if len(self.layers) != n_layers:
                raise ShrinkageError(
                    f"A per-layer configuration needs one strength per penalizable weight "
                    f"({n_layers}); got {len(self.layers)}."
                )
            return per_layer_strengths(self.layers, self.l1_ratio)
        return layer_strengths(self.kind, self.strength, n_layers, self.placement, self.l1_ratio)

    def config_tuple(self) -> tuple:
        """The configuration: ``(kind, l1_ratio, placement, strength[, layers])``."""
        ratio = self.l1_ratio if self.kind == "elastic_net" or self._any_elastic() else math.nan
        config = (self.kind, ratio, self.placement, self.strength)
        return config if self.layers is None else (*config, self.layers)

    def _any_elastic(self) -> bool:
        return self.layers is not None and any(k == "elastic_net" for k, _ in self.layers)


@dataclass
class SearchData:
    """Everything a chunk needs besides its candidates; a plain container a backend ships.

    Attributes:
        X: source rows ``(n_blocks * n_rows, *features)``, float32: one preprocessed copy
            of the data per fold (block ``f`` preprocessed from fold ``f``'s training rows),
            or one shared block (``per_fold=False``).
        y: targets ``(n_rows,)`` as :func:`shrinkage.training.target_tensor` lays them out.
        folds: ``(train, test)`` row indices (into ``0 … n_rows - 1``) per fold.
        settings: how every candidate is trained (epochs overridden per candidate).
        hidden: hidden layer widths (MLP path).
        activation: activation name (MLP path).
        scoring: one of :data:`SCORINGS`.
        factory: ``() -> nn.Module`` (a fused, ``torch.func`` or loop stack), or None (the
            MLP fast path).
        per_fold: whether ``X`` holds one block per fold.
        device: where chunks train.
        init: the MLP's initialization (:func:`shrinkage.models.init_mlp_`).
        standardize: whether the numeric columns were standardized per fold.
        path: how the factory's candidates train (:func:`~shrinkage.search.engine.choose_path`,
            decided once per search); None: decided by each chunk.
        row_bytes: what one candidate's forward keeps per row (measured once per search,
            :func:`~shrinkage.search._setup.footprint`): sizes the prediction blocks.
    """

    X: Tensor
    y: Tensor
    folds: list[tuple[np.ndarray, np.ndarray]]
    settings: TrainSettings
    hidden: tuple[int, ...]
    activation: str
    scoring: str
    factory: Callable[[], nn.Module] | None = None
    per_fold: bool = True
    device: str = "cpu"
    init: str = "torch"
    standardize: bool = True
    path: StackPath | None = None
    row_bytes: int | None = None

    @property
    def n_rows(self) -> int:
        """Rows of the data set."""
        return len(self.y)

    def offset(self, fold: int) -> int:
        """Where fold ``fold``'s block starts in ``X``."""
        return fold * self.n_rows if self.per_fold else 0

    @property
    def sizes(self) -> list[int]:
        """Layer widths of the MLP path, input and output included."""
        return [int(self.X.shape[1]), *self.hidden, self.settings.n_outputs]


@dataclass
class ChunkResult:
    """What :func:`run_chunk` returns.

    Attributes:
        rows: one dict of plain Python values per candidate: ``candidate``, ``config``,
            ``fold``, ``stage``, ``test_score``, ``train_score``, ``test_loss_score`` (the
            negative validation log loss or MSE: it breaks ties between scores at a rung),
            ``fit_time``, ``score_time``, ``diverged``, ``reason`` (why it diverged, or
            ""), ``epochs`` (trained), ``rung``
            (successive halving only), ``weight_l2_layer{i}``, ``sparsity_layer{i}``.
        states: each candidate's final weights ``{name: array}`` (when asked for).
    """

    rows: list[dict[str, Any]]
    states: list[dict[str, np.ndarray]] | None = None


@dataclass(frozen=True)
class Progress:
    """A progress report: ``epoch`` of ``epochs`` in chunk ``chunk`` (1-based) of ``n_chunks``.

    ``stage`` is ``"grid"``, ``"refine"``, ``"rung j/K"`` (successive halving) or
    ``"refit"`` (one chunk: the chosen configuration on all rows). ``start`` is the epoch the
    stage's training starts from (a halving rung goes on from the previous rung's epochs).
    ``reused`` marks a chunk a resumed search read back from its checkpoint instead of
    training (sent once per such chunk, with ``epoch == epochs``).
    """

    stage: str
    chunk: int
    n_chunks: int
    epoch: int
    epochs: int
    reused: bool = False
    start: int = 0


class ChunkRun:
    """One chunk of candidates as a live stack: train to an epoch, score, keep some, go on.

    :func:`run_chunk` is one ``ChunkRun`` trained to the end. Successive halving keeps a
    ``ChunkRun`` between rungs and calls :meth:`keep` with the survivors; a chunk that
    continues elsewhere (another process, after a restart) starts from the candidates'
    exported :meth:`states` (``spec.init`` with ``spec.start_epoch > 0``).

    Args:
        data: the preprocessed data, folds and training settings.
        specs: the candidates (all with the same ``start_epoch``).
        progress: called with the epoch number after each epoch.

    Raises:
        ShrinkageError: candidates starting at different epochs, or one that continues
            without its training state.
    """

    def __init__(
        self,
        data: SearchData,
        specs: Sequence[CandidateSpec],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        starts = {s.start_epoch for s in specs}
        if len(starts) != 1:
            raise ShrinkageError(f"A chunk starts from one epoch; got {sorted(starts)}.")
        start = starts.pop()
        self.data, self.specs = data, list(specs)
        device = torch.device(data.device)
        seeds = [s.seed for s in specs]
        stack: _Stack
        if data.factory is None:
            stack = StackedMLP.from_seeds(seeds, data.sizes, data.activation, device, data.init)
        else:
            stack = stack_path(data).build(data.factory, seeds, device)
        if start == 0:
            for k, spec in enumerate(specs):
                if spec.init is not None:
                    _check_init(stack, spec)
                    stack.load_state(k, {n: torch.as_tensor(v) for n, v in spec.init.items()})
        n_layers = stack.n_layers
        strengths = [s.strengths(n_layers) for s in specs]
        l1 = torch.tensor([a for a, _ in strengths], dtype=torch.float32)
        l2 = torch.tensor([b for _, b in strengths], dtype=torch.float32)
        fold_rows: dict[int, Tensor] = {}
        for spec in specs:
            if spec.fold not in fold_rows:
                train = data.folds[spec.fold][0]
                fold_rows[spec.fold] = torch.as_tensor(
                    train + data.offset(spec.fold), device=device
                )
        self.trainer = StackTrainer(
            stack,
            data.X,
            _tile(data.y, data.per_fold, len(data.folds)),
            [fold_rows[s.fold] for s in specs],
            seeds,
            l1,
            l2,
            data.settings,
            progress=progress,
        )
        if start > 0:
            for k, spec in enumerate(specs):
                if spec.init is None or "epoch" not in spec.init:
                    raise ShrinkageError(
                        f"Candidate {spec.index} continues from epoch {start} but its training "
                        "state is missing (a checkpoint directory cleaned by hand?); remove the "
                        "checkpoint directory to start the search again."
                    )
                self.trainer.load_state(k, spec.init)
        #: seconds spent training, per candidate, since the last :meth:`score`
        self.fit_time = 0.0
        self._l1, self._l2 = l1, l2
        # Where each candidate starts: what a diverged one is measured against. Its
        # objective takes a pass over the data, needed only for a candidate whose loss ends
        # above DIVERGENCE_FACTOR times the all-zero output's, so it waits for one.
        self._first = [stack.state(k) for k in range(len(specs))]
        self._start: np.ndarray | None = None

    @property
    def epoch(self) -> int:
        """Epochs trained so far."""
        return self.trainer.epoch

    @property
    def stack(self) -> _Stack:
        """The stacked candidates."""
        return self.trainer.stack

    def train_to(self, epoch: int) -> None:
        """Train every candidate up to ``epoch`` (from where they are).

        Raises:
            ShrinkageError: the factory's module fails during training (one line, the
                torch error chained).
        """
        started = time.perf_counter()
        with _module_errors(self.data):
            self.trainer.run(max(0, int(epoch) - self.trainer.epoch))
        self.fit_time += (time.perf_counter() - started) / len(self.specs)

    def keep(self, indices: Sequence[int]) -> None:
        """Keep only the candidates whose ``spec.index`` is in ``indices``, in that order."""
        where = {spec.index: k for k, spec in enumerate(self.specs)}
        positions = [where[i] for i in indices]
        self.trainer.keep(positions)
        self.specs = [self.specs[k] for k in positions]
        self._first = [self._first[k] for k in positions]
        if self._start is not None:
            self._start = self._start[positions]
        self._l1, self._l2 = self._l1[positions], self._l2[positions]

    def states(self, full: bool = False) -> list[dict[str, np.ndarray]]:
        """Each candidate's weights ``{name: array}``, or (``full``) its whole training state."""
        if full:
            return [
                {name: t.numpy() for name, t in self.trainer.state(k).items()}
                for k in range(len(self.specs))
            ]
        return [
            {name: t.cpu().numpy() for name, t in self.stack.state(k).items()}
            for k in range(len(self.specs))
        ]

    def _rows(self) -> tuple[Tensor, Tensor, Tensor]:
        """Each candidate's source rows of ``data.X`` ``(K, n)``, and its train and test masks."""
        data, specs = self.data, self.specs
        device = torch.device(data.device)
        n = data.n_rows
        base = torch.arange(n, device=device)
        index = torch.stack([base + data.offset(s.fold) for s in specs])
        test_mask = torch.zeros((len(specs), n), dtype=torch.bool, device=device)
        train_mask = torch.zeros_like(test_mask)
        for k, spec in enumerate(specs):
            train, test = data.folds[spec.fold]
            train_mask[k, torch.as_tensor(train, device=device)] = True
            test_mask[k, torch.as_tensor(test, device=device)] = True
        return index, train_mask, test_mask

    def _predict(self) -> tuple[Tensor, Tensor, Tensor]:
        """Every candidate's outputs on all its rows ``(K, n, n_out)``, and its train and
        test masks."""
        index, train_mask, test_mask = self._rows()
        with _module_errors(self.data):
            rows = predict_rows(len(index), self.data.row_bytes)
            outputs = predict_stack(self.stack, self.data.X, index, rows)
        return outputs, train_mask, test_mask

    def _start_objective(self) -> np.ndarray:
        """Each candidate's objective at its starting weights (computed once, on demand):
        the current weights step aside while the starting ones are scored."""
        if self._start is None:
            data, stack = self.data, self.stack
            now = [stack.state(k) for k in range(stack.k)]
            try:
                for k, state in enumerate(self._first):
                    stack.load_state(k, state)
                outputs, train_mask, _ = self._predict()
                self._start = _objective(stack, outputs, data, train_mask, self._l1, self._l2)
            finally:
                for k, state in enumerate(now):
                    stack.load_state(k, state)
        return self._start

    def score(self) -> list[dict[str, Any]]:
        """One row per candidate (see :class:`ChunkResult`), for the epoch reached."""
        data, specs, stack = self.data, self.specs, self.stack
        started = time.perf_counter()
        outputs, train_mask, test_mask = self._predict()
        end = _objective(stack, outputs, data, train_mask, self._l1, self._l2)
        reasons = _divergence(stack, end, _zero_loss(data, train_mask), self._start_objective)
        diverged = np.array([bool(r) for r in reasons])
        test_scores = scores(outputs, data.y, test_mask, data.scoring, data.settings)
        train_scores = scores(outputs, data.y, train_mask, data.scoring, data.settings)
        loss_scoring = (
            "neg_log_loss" if data.settings.task == CLASSIFICATION else "neg_mean_squared_error"
        )
        test_losses = scores(outputs, data.y, test_mask, loss_scoring, data.settings)
        for values in (test_scores, train_scores, test_losses):
            values[diverged] = np.nan
        norms, sparsity = [], []
        for w in stack.weights():
            flat = w.detach().reshape(len(specs), -1)
            norms.append(torch.linalg.vector_norm(flat.double(), dim=1).cpu().numpy())
            sparsity.append((flat == 0).double().mean(dim=1).cpu().numpy())
        score_time = (time.perf_counter() - started) / len(specs)
        fit_time, self.fit_time = self.fit_time, 0.0

        rows = []
        for k, spec in enumerate(specs):
            row: dict[str, Any] = {
                "candidate": spec.index,
                "config": spec.config,
                "fold": spec.fold,
                "stage": spec.stage,
                "test_score": float(test_scores[k]),
                "train_score": float(train_scores[k]),
                "test_loss_score": float(test_losses[k]),
                "fit_time": fit_time,
                "score_time": score_time,
                "diverged": bool(diverged[k]),
                "reason": reasons[k],
                "epochs": self.epoch,
            }
            if spec.rung is not None:
                row["rung"] = spec.rung
            for i in range(stack.n_layers):
                row[f"weight_l2_layer{i}"] = float(norms[i][k])
                row[f"sparsity_layer{i}"] = float(sparsity[i][k])
            rows.append(row)
        return rows


def run_chunk(
    data: SearchData,
    specs: Sequence[CandidateSpec],
    *,
    keep_states: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ChunkResult:
    """Train one chunk of candidates as a stack and score them: the unit of work of a search.

    Args:
        data: the preprocessed data, folds and training settings.
        specs: the candidates (all with the same ``epochs`` and ``start_epoch``).
        keep_states: also return every candidate's final weights (with ``spec.rung`` set:
            its whole training state, to continue from at the next rung).
        progress: called with the epoch number after each epoch.

    Returns:
        One row per candidate, in the order of ``specs``.

    Raises:
        ShrinkageError: candidates with different epoch counts.
    """
    epochs = {s.epochs for s in specs}
    if len(epochs) != 1:
        raise ShrinkageError(f"A chunk trains for one epoch count; got {sorted(epochs)}.")
    run = ChunkRun(data, specs, progress)
    run.train_to(epochs.pop())
    rows = run.score()
    states = None
    if keep_states:
        states = run.states(full=any(s.rung is not None for s in specs))
    return ChunkResult(rows, states)


@contextlib.contextmanager
def _module_errors(data: SearchData) -> Iterator[None]:
    """A torch error raised by the factory's module becomes one line (chained to it)."""
    try:
        yield
    except (RuntimeError, IndexError, TypeError) as err:
        if data.factory is None or isinstance(err, ShrinkageError):
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ShrinkageError(
            f"The 'model_factory' module failed in the search (the "
            f"{stack_path(data).name} path): {type(err).__name__}: {message[:160]}"
        ) from err


def stack_path(data: SearchData) -> StackPath:
    """How the factory's candidates train: ``data.path``, or chosen now (and kept there)."""
    if data.path is None:
        assert data.factory is not None
        data.path = choose_path(
            data.factory,
            data.X,
            task=data.settings.task,
            n_outputs=data.settings.n_outputs,
            batch_size=data.settings.batch_size,
            device=data.device,
        )
    return data.path


def _tile(y: Tensor, per_fold: bool, n_folds: int) -> Tensor:
    """Targets aligned with the source rows of ``data.X`` (one copy per fold block)."""
    return y.repeat(n_folds) if per_fold else y


def _check_init(stack: _Stack, spec: CandidateSpec) -> None:
    """Warm-start weights must have the network's names and shapes: ``copy_`` would
    broadcast a smaller tensor silently."""
    wanted = {n: tuple(t.shape[1:]) for n, t in zip(stack.names, stack.tensors)}
    for name, buffer in zip(getattr(stack, "buffer_names", ()), getattr(stack, "buffers", ())):
        wanted[name] = tuple(buffer.shape[1:])  # running statistics travel with the weights
    given = {n: tuple(np.shape(v)) for n, v in spec.init.items()}
    if given != wanted:
        raise ShrinkageError(
            f"The warm-start weights of candidate {spec.index} (from a checkpoint) do not fit "
            f"the network: it needs {wanted}, they have {given}; remove the checkpoint files "
            "to train again."
        )


@torch.no_grad()
def _objective(
    stack: _Stack,
    outputs: Tensor,
    data: SearchData,
    train_mask: Tensor,
    l1: Tensor,
    l2: Tensor,
) -> np.ndarray:
    """Each candidate's training objective: mean data loss on its training rows + penalty."""
    loss = "neg_log_loss" if data.settings.task == CLASSIFICATION else "neg_mean_squared_error"
    value = -scores(outputs, data.y, train_mask, loss, data.settings)
    l1, l2 = l1.to(stack.device, torch.float64), l2.to(stack.device, torch.float64)
    for i, w in enumerate(stack.weights()):
        flat = w.detach().reshape(stack.k, -1).double()
        penalty = l1[:, i] * flat.abs().sum(dim=1) + l2[:, i] * flat.square().sum(dim=1)
        value = value + penalty.cpu().numpy()
    return value


def _zero_loss(data: SearchData, train_mask: Tensor) -> np.ndarray:
    """The loss of an all-zero output on each candidate's training rows."""
    settings = data.settings
    if settings.task == CLASSIFICATION:
        return np.full(len(train_mask), math.log(max(settings.n_classes or 2, 2)))
    m = train_mask.double()
    squares = (data.y.double().square().unsqueeze(0) * m).sum(dim=1)
    return (squares / m.sum(dim=1).clamp_min(1)).cpu().numpy()


def _divergence(
    stack: _Stack, end: np.ndarray, zero: np.ndarray, start: Callable[[], np.ndarray]
) -> list[str]:
    """Why each candidate diverged ("" when it did not): weights that are no longer finite,
    or an objective above :data:`~shrinkage.training.DIVERGENCE_FACTOR` times its
    reference (its objective where this run started, or the loss of an all-zero output if
    larger), as :func:`~shrinkage.training.fit_model` judges a single fit.

    The reference is at least ``zero``, so ``start()`` is called only when some finite
    objective ends above ``DIVERGENCE_FACTOR * zero``."""
    bad = torch.zeros(stack.k, dtype=torch.bool, device=stack.device)
    for t in stack.tensors:
        bad |= ~torch.isfinite(t.detach().reshape(stack.k, -1)).all(dim=1)
    nonfinite = bad.cpu().numpy()
    finite = np.isfinite(end)
    reference = zero
    if np.any(end[finite] > DIVERGENCE_FACTOR * zero[finite]):
        first = start()
        reference = np.where(np.isfinite(first), np.maximum(first, zero), zero)
    reasons = []
    for k in range(stack.k):
        if nonfinite[k] or not np.isfinite(end[k]):
            reasons.append("loss became NaN/inf")
        elif reference[k] > 0 and end[k] > DIVERGENCE_FACTOR * reference[k]:
            reasons.append(
                f"loss rose from {reference[k]:.4g} to {end[k]:.4g}, over "
                f"{DIVERGENCE_FACTOR:g} times its start"
            )
        else:
            reasons.append("")
    return reasons


@torch.no_grad()
def scores(
    outputs: Tensor, y: Tensor, mask: Tensor, scoring: str, settings: TrainSettings
) -> np.ndarray:
    """Each candidate's score on its masked rows: ``(K,)`` float64 (greater is better).

    ``outputs`` is ``(K, n, n_out)``, ``y`` ``(n,)`` and ``mask`` ``(K, n)``.
    """
    out = outputs.double()
    m = mask.double()
    count = m.sum(dim=1).clamp_min(1)
    yy = y.double().unsqueeze(0).expand_as(m)
    binary = settings.task == CLASSIFICATION and settings.n_outputs == 1
    if settings.task == CLASSIFICATION:
        if binary:
            out = binary_logit(out).unsqueeze(-1)
            pred = (out[..., 0] > 0).double()
        else:
            pred = out.argmax(dim=-1).double()
        correct = (pred == yy).double() * m
        if scoring == "accuracy":
            return (correct.sum(dim=1) / count).cpu().numpy()
        if scoring == "balanced_accuracy":
            n_classes = settings.n_classes or 2
            recalls, present = [], []
            for c in range(n_classes):
                in_class = (yy == c).double() * m
                size = in_class.sum(dim=1)
                recalls.append((correct * in_class).sum(dim=1) / size.clamp_min(1))
                present.append((size > 0).double())
            rec, pre = torch.stack(recalls), torch.stack(present)
            return ((rec * pre).sum(dim=0) / pre.sum(dim=0).clamp_min(1)).cpu().numpy()
        if binary:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                out[..., 0], yy, reduction="none"
            )
        else:
            logp = torch.log_softmax(out, dim=-1)
            loss = -logp.gather(-1, yy.long().unsqueeze(-1)).squeeze(-1)
        return (-(loss * m).sum(dim=1) / count).cpu().numpy()
    pred = out[..., 0]
    residual = (yy - pred) * m
    sse = residual.square().sum(dim=1)
    if scoring == "r2":
        mean = (yy * m).sum(dim=1, keepdim=True) / count.unsqueeze(1)
        sst = ((yy - mean) * m).square().sum(dim=1)
        r2 = 1 - sse / torch.where(sst > 0, sst, torch.ones_like(sst))
        constant = torch.where(sse == 0, torch.ones_like(sse), torch.zeros_like(sse))
        return torch.where(sst > 0, r2, constant).cpu().numpy()
    if scoring == "neg_mean_squared_error":
        return (-sse / count).cpu().numpy()
    if scoring == "neg_root_mean_squared_error":
        return (-(sse / count).sqrt()).cpu().numpy()
    return (-residual.abs().sum(dim=1) / count).cpu().numpy()
