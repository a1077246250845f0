"""Cross-validated search over penalty strength, kind and placement, every candidate at once.

:class:`SearchCV` builds the grid ``kind x l1_ratio x placement x strength`` (one
*configuration* per combination, one row of ``cv_results_``), crosses it with the folds
(one *candidate* per configuration and fold), and trains the candidates as stacked networks
on the batched engine (:mod:`shrinkage.batched`), as many at a time as ``max_memory``
allows. Each chunk of candidates goes through :func:`run_chunk`, a function of the data
and the candidates' specifications only, so a distributed backend can ship chunks
elsewhere; each finished chunk's rows can be written to disk (``checkpoint_dir``) so an
interrupted search keeps its work.

Seeds and common random numbers: ``random_state`` fixes the folds, one integer seed per
fold and the refit's seed. Every candidate of a fold uses its fold's seed, so all the
strengths, kinds and placements of a fold start from the same initial weights and see the
same minibatches in the same order; comparing two strengths then measures the strengths,
not the luck of the draw. Different folds have different seeds. A candidate equals the
estimator fitted alone on its training rows with ``random_state`` = its seed.

Inputs are preprocessed per fold, from that fold's training rows only
(:class:`~shrinkage.data.Preprocessor`: numeric columns standardized, categorical columns
one-hot encoded): validation rows never inform the scaling.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from torch import Tensor, nn

from shrinkage.batched import (
    KINDS,
    StackedMLP,
    StackedModule,
    TrainSettings,
    estimate_bytes,
    layer_strengths,
    predict_stack,
    train_stack,
)
from shrinkage.checkpoint import mark_failures, partial_results, run_chunks
from shrinkage.errors import ShrinkageError, check_device, check_strength
from shrinkage.models import PLACEMENTS, placement_layers
from shrinkage.training import CLASSIFICATION, REGRESSION

__all__ = [
    "SCORINGS",
    "CandidateSpec",
    "ChunkResult",
    "Progress",
    "SearchCV",
    "SearchData",
    "SearchPlan",
    "default_strengths",
    "parse_memory",
    "plan_chunks",
    "run_chunk",
    "tune_demo",
]

#: Scores :class:`SearchCV` computes (greater is better, as scikit-learn's scorers).
SCORINGS = (
    "accuracy",
    "balanced_accuracy",
    "neg_log_loss",
    "r2",
    "neg_mean_squared_error",
    "neg_root_mean_squared_error",
    "neg_mean_absolute_error",
)
_CLASSIFICATION_ONLY = ("accuracy", "balanced_accuracy", "neg_log_loss")
_SEED_HIGH = 2**31 - 1


def default_strengths(low: float = 1e-6, high: float = 1.0, per_decade: int = 2) -> np.ndarray:
    """A log grid from ``low`` to ``high``, ``per_decade`` values per decade, both ends in.

    The default, ``1e-6 … 1`` at two per decade, is 13 values: 1e-6, 3.16e-6, …, 0.316, 1.

    Args:
        low: the smallest strength, ``> 0``.
        high: the largest strength, ``>= low``.
        per_decade: values per factor of 10, ``>= 1``.

    Returns:
        The strengths, ascending.

    Raises:
        ShrinkageError: bounds that are not positive and ordered, or ``per_decade < 1``.
    """
    for name, value in (("grid_min", low), ("grid_max", high)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value:
            raise ShrinkageError(
                f"The '{name}' parameter must be a float in the range (0, inf). Got {value!r} "
                "instead."
            )
    if high < low:
        raise ShrinkageError(
            f"The 'grid_max' parameter must be >= grid_min={low!r}. Got {high!r} instead."
        )
    if isinstance(per_decade, bool) or not isinstance(per_decade, numbers.Integral):
        per_decade = -1
    if per_decade < 1:
        raise ShrinkageError(
            f"The 'per_decade' parameter must be an integer >= 1. Got {per_decade!r} instead."
        )
    lo, hi = math.log10(low), math.log10(high)
    n = int(math.floor((hi - lo) * per_decade + 1e-9)) + 1
    grid = 10.0 ** (lo + np.arange(n) / per_decade)
    return np.unique(np.append(grid, high) if not np.isclose(grid[-1], high) else grid)


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
    "k": 10**3,
    "m": 10**6,
    "g": 10**9,
}


def parse_memory(value: int | float | str) -> int:
    """Bytes from ``2GB``, ``"512 MiB"``, ``1.5e9`` or an integer.

    Decimal units (kB, MB, GB, TB: powers of 1000) and binary ones (KiB, MiB, GiB, TiB).

    Args:
        value: a positive number of bytes, or a number with a unit.

    Returns:
        The number of bytes.

    Raises:
        ShrinkageError: anything that is not a positive size.

    Example:
        >>> parse_memory("2GB")
        2000000000
    """
    number: float | None = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        if match and match.group(2).lower() in _UNITS:
            number = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if number is None or not 1 <= number < math.inf:
        raise ShrinkageError(
            "The 'max_memory' parameter must be a positive size such as '2GB', '512MiB' or a "
            f"number of bytes. Got {value!r} instead."
        )
    return int(number)


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
        epochs: epochs to train.
        stage: ``"grid"`` or ``"refine"``.
        init: starting weights ``{name: array}`` (warm start) or None (from the seed).
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
        factory: ``() -> nn.Module`` for the ``torch.func`` path, or None (MLP fast path).
        per_fold: whether ``X`` holds one block per fold.
        device: where chunks train.
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
            ``fold``, ``stage``, ``test_score``, ``train_score``, ``fit_time``,
            ``score_time``, ``diverged``, ``weight_l2_layer{i}``, ``sparsity_layer{i}``.
        states: each candidate's final weights ``{name: array}`` (when asked for).
    """

    rows: list[dict[str, Any]]
    states: list[dict[str, np.ndarray]] | None = None


@dataclass(frozen=True)
class Progress:
    """A progress report: ``epoch`` of ``epochs`` in chunk ``chunk`` (1-based) of ``n_chunks``."""

    stage: str
    chunk: int
    n_chunks: int
    epoch: int
    epochs: int


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
        specs: the candidates (all with the same ``epochs``).
        keep_states: also return every candidate's final weights.
        progress: called with the epoch number after each epoch.

    Returns:
        One row per candidate, in the order of ``specs``.

    Raises:
        ShrinkageError: candidates with different epoch counts.
    """
    epochs = {s.epochs for s in specs}
    if len(epochs) != 1:
        raise ShrinkageError(f"A chunk trains for one epoch count; got {sorted(epochs)}.")
    settings = replace(data.settings, epochs=epochs.pop())
    device = torch.device(data.device)
    seeds = [s.seed for s in specs]
    if data.factory is None:
        stack: StackedMLP | StackedModule = StackedMLP.from_seeds(
            seeds, data.sizes, data.activation, device
        )
    else:
        stack = StackedModule(data.factory, seeds, device)
    for k, spec in enumerate(specs):
        if spec.init is not None:
            stack.load_state(k, {n: torch.as_tensor(v) for n, v in spec.init.items()})
    n_layers = stack.n_layers
    strengths = [
        layer_strengths(s.kind, s.strength, n_layers, s.placement, s.l1_ratio) for s in specs
    ]
    l1 = torch.tensor([a for a, _ in strengths], dtype=torch.float32)
    l2 = torch.tensor([b for _, b in strengths], dtype=torch.float32)
    fold_rows: dict[int, Tensor] = {}
    for spec in specs:
        if spec.fold not in fold_rows:
            train = data.folds[spec.fold][0]
            fold_rows[spec.fold] = torch.as_tensor(train + data.offset(spec.fold), device=device)
    started = time.perf_counter()
    train_stack(
        stack,
        data.X,
        _tile(data.y, data.per_fold, len(data.folds)),
        [fold_rows[s.fold] for s in specs],
        seeds,
        l1,
        l2,
        settings,
        progress=progress,
    )
    fit_time = (time.perf_counter() - started) / len(specs)

    started = time.perf_counter()
    n = data.n_rows
    base = torch.arange(n, device=device)
    index = torch.stack([base + data.offset(s.fold) for s in specs])
    outputs = predict_stack(stack, data.X, index)
    test_mask = torch.zeros((len(specs), n), dtype=torch.bool, device=device)
    train_mask = torch.zeros_like(test_mask)
    for k, spec in enumerate(specs):
        train, test = data.folds[spec.fold]
        train_mask[k, torch.as_tensor(train, device=device)] = True
        test_mask[k, torch.as_tensor(test, device=device)] = True
    diverged = _diverged(stack)
    test_scores = _scores(outputs, data.y, test_mask, data.scoring, data.settings)
    train_scores = _scores(outputs, data.y, train_mask, data.scoring, data.settings)
    test_scores[diverged] = np.nan
    train_scores[diverged] = np.nan
    norms, sparsity = [], []
    for w in stack.weights():
        flat = w.detach().reshape(len(specs), -1)
        norms.append(torch.linalg.vector_norm(flat.double(), dim=1).cpu().numpy())
        sparsity.append((flat == 0).double().mean(dim=1).cpu().numpy())
    score_time = (time.perf_counter() - started) / len(specs)

    rows = []
    for k, spec in enumerate(specs):
        row: dict[str, Any] = {
            "candidate": spec.index,
            "config": spec.config,
            "fold": spec.fold,
            "stage": spec.stage,
            "test_score": float(test_scores[k]),
            "train_score": float(train_scores[k]),
            "fit_time": fit_time,
            "score_time": score_time,
            "diverged": bool(diverged[k]),
        }
        for i in range(n_layers):
            row[f"weight_l2_layer{i}"] = float(norms[i][k])
            row[f"sparsity_layer{i}"] = float(sparsity[i][k])
        rows.append(row)
    states = None
    if keep_states:
        states = [
            {name: t.cpu().numpy() for name, t in stack.state(k).items()} for k in range(len(specs))
        ]
    return ChunkResult(rows, states)


def _tile(y: Tensor, per_fold: bool, n_folds: int) -> Tensor:
    """Targets aligned with the source rows of ``data.X`` (one copy per fold block)."""
    return y.repeat(n_folds) if per_fold else y


def _diverged(stack: StackedMLP | StackedModule) -> np.ndarray:
    """Candidates whose weights are no longer finite."""
    bad = torch.zeros(stack.k, dtype=torch.bool, device=stack.device)
    for t in stack.tensors:
        bad |= ~torch.isfinite(t.detach().reshape(stack.k, -1)).all(dim=1)
    return bad.cpu().numpy()


@torch.no_grad()
def _scores(
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


def plan_chunks(
    n_candidates: int, per_candidate: int, shared: int, max_memory: int
) -> tuple[int, int]:
    """How many chunks, and how many candidates each, fit ``max_memory``.

    Args:
        n_candidates: candidates to train.
        per_candidate: bytes one candidate needs (:func:`shrinkage.batched.estimate_bytes`).
        shared: bytes every chunk needs whatever its size (the data).
        max_memory: the budget in bytes.

    Returns:
        ``(n_chunks, candidates_per_chunk)``, balanced (the last chunk may be smaller).

    Raises:
        ShrinkageError: when not even one candidate fits.
    """
    room = max_memory - shared
    if room < per_candidate:
        raise ShrinkageError(
            f"The 'max_memory' parameter is too small: the data needs {shared} bytes and one "
            f"candidate {per_candidate} more. Got max_memory={max_memory} instead."
        )
    most = max(1, room // per_candidate)
    n_chunks = math.ceil(n_candidates / most)
    return n_chunks, math.ceil(n_candidates / n_chunks)


# --------------------------------------------------------------------------- SearchCV


class SearchCV(BaseEstimator):
    """Cross-validated choice of penalty strength, kind and placement, on the batched engine.

    Every configuration ``(kind, l1_ratio, placement, strength)`` is trained on every fold;
    all these candidates train together as stacked networks (chunked to ``max_memory``), each
    exactly as the estimator would train alone on its fold's training rows with
    ``random_state`` = its fold's seed (see the module docstring for the seeds). Then the
    configuration with the best mean validation score is chosen (optionally by the
    one-standard-error rule, optionally refined on a finer grid) and refit on all rows.

    Args:
        estimator: an :class:`~shrinkage.estimators.MLPClassifier` or
            :class:`~shrinkage.estimators.MLPRegressor` whose architecture and training
            parameters every candidate uses (its ``penalty``/``strength``/``l1_ratio``/
            ``placement`` are replaced by the grid's); None: the default estimator of the
            task (detected from ``y``).
        strengths: the strength grid (Keras meaning); None: :func:`default_strengths`,
            ``1e-6 … 1`` with two values per decade (13 values).
        kinds: penalty kinds among ``"l2"``, ``"l1"``, ``"elastic_net"``.
        l1_ratios: elastic net's L1 shares (used by ``"elastic_net"`` only).
        placements: where the penalty goes: ``"all"``, ``"hidden"``, ``"output"`` or a tuple
            of layer indices, each a separate configuration.
        cv: folds: an int (``StratifiedKFold`` for classification, ``KFold`` for
            regression, shuffled with ``random_state``), a scikit-learn splitter, or an
            iterable of ``(train, test)`` index arrays.
        validation_fraction: instead of folds, one split holding out this share of the rows
            (stratified for classification).
        scoring: one of :data:`SCORINGS`; None: ``"accuracy"`` (classification) or ``"r2"``.
        one_standard_error: choose the largest strength whose mean score is within one
            standard error (``std_test_score / sqrt(n_splits)``) of the best.
        refine: after the grid, train a finer log grid around the best strength
            (``refine_points`` values spanning two thirds of a grid step each side,
            same kind/ratio/placement), each candidate warm-started from the best
            configuration's weights on its fold and trained ``refine_epochs`` more epochs
            (fresh optimizer state); the choice is then made among these. The grid
            candidates' final weights are kept in memory until the grid is done.
        refine_points: values of the refinement grid (odd numbers include the best itself).
        refine_epochs: epochs of the refinement; None: half the estimator's epochs.
        refit: fit the chosen configuration on all rows (``best_estimator_``).
        max_memory: memory budget of one chunk, bytes or a size string (``"2GB"``).
        random_state: an int (reproducible), a numpy RandomState or None.
        device: the torch device the stacks train on.
        n_threads: torch intra-op threads during ``fit`` (None: leave torch's setting).
        model_factory: ``() -> nn.Module`` to search over any architecture with the
            ``torch.func`` path instead of the MLP (the estimator then only gives the
            training parameters; ``best_model_`` is the refit module, there is no
            ``best_estimator_``). 2-D inputs are preprocessed per fold; others are used
            as given.
        checkpoint_dir: a directory where each finished chunk's rows are written
            (``chunk-00000.json``, atomically), or None.
        backend: ``"local"`` (the chunks one after the other, here) or ``"dask"`` (each
            chunk a task on a dask.distributed cluster: :mod:`shrinkage.distributed`;
            ``pip install shrinkage[distributed]``).
        client: the ``dask.distributed.Client`` of ``backend="dask"``.
        resume: read the chunks already finished in ``checkpoint_dir`` instead of training
            them again (:mod:`shrinkage.checkpoint`); the results equal an uninterrupted run.
        verbose: 0 silent, 1 print the chunking and the best configuration.

    Attributes:
        cv_results_: a dict of numpy arrays, one entry per configuration (refinement rows
            after the grid rows):

            * ``param_kind`` (str), ``param_strength`` (float), ``param_l1_ratio`` (float,
              NaN unless elastic net), ``param_placement`` (str: ``"all"``, ``"hidden"``,
              ``"output"`` or comma-joined layer indices such as ``"0,2"``), ``params``
              (dicts with keys ``kind``, ``strength``, ``l1_ratio``, ``placement``);
            * ``stage``: ``"grid"`` or ``"refine"``;
            * ``split{i}_test_score``, ``split{i}_train_score`` for each split ``i``;
            * ``mean_test_score``, ``std_test_score``, ``mean_train_score``,
              ``std_train_score`` (mean and population standard deviation over splits; NaN
              when a split diverged);
            * ``rank_test_score``: 1 is best, ties share the lowest rank, NaN scores last;
              ranked within the row's stage;
            * ``mean_fit_time``, ``std_fit_time``, ``mean_score_time``,
              ``std_score_time``: seconds per candidate (a chunk's time divided by its
              candidates: the stack trains them together);
            * ``weight_l2_layer{i}``: the Frobenius norm ``||W_i||`` of penalizable weight
              ``i`` after training, and ``sparsity_layer{i}``: its fraction of exact zeros,
              each the mean over splits;
            * ``n_diverged``: splits whose weights became non-finite;
            * ``status``: ``"failed"`` when a split diverged, else ``"ok"``, and
              ``failure``: why, with the strength and learning rate
              (:func:`shrinkage.checkpoint.mark_failures`).
        best_index_: the chosen row of ``cv_results_``: the best mean validation score of
            the last stage (ties go to the larger strength, the simpler model).
        best_params_: ``cv_results_["params"][best_index_]``.
        best_score_: its mean validation score.
        best_estimator_: the estimator refit on all rows with the chosen configuration
            (``penalty=kind``), or None (``refit=False`` or a ``model_factory``).
        best_model_: the refit network (``best_estimator_.model_`` or the factory's module).
        n_splits_: number of splits.
        seeds_: the seed of each fold; ``refit_seed_``: the refit's seed.
        chunking_: ``n_candidates``, ``n_chunks``, ``candidates_per_chunk``,
            ``bytes_per_chunk`` (estimated peak), ``max_memory``.
        classes_: class labels (classification).
        refit_time_: seconds of the refit.

    Example:
        >>> from sklearn.datasets import make_moons
        >>> from shrinkage.estimators import MLPClassifier
        >>> X, y = make_moons(60, noise=0.3, random_state=0)
        >>> search = SearchCV(MLPClassifier((16,), epochs=20), strengths=[1e-4, 1e-2],
        ...                   placements=("all", "output"), cv=3, random_state=0).fit(X, y)
        >>> sorted(search.best_params_)
        ['kind', 'l1_ratio', 'placement', 'strength']
    """

    def __init__(
        self,
        estimator: Any = None,
        *,
        strengths: Sequence[float] | None = None,
        kinds: Sequence[str] = ("l2",),
        l1_ratios: Sequence[float] = (0.5,),
        placements: Sequence[str | Sequence[int]] = ("all",),
        cv: int | Any = 5,
        validation_fraction: float | None = None,
        scoring: str | None = None,
        one_standard_error: bool = False,
        refine: bool = False,
        refine_points: int = 5,
        refine_epochs: int | None = None,
        refit: bool = True,
        max_memory: int | str = "1GB",
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        n_threads: int | None = None,
        model_factory: Callable[[], nn.Module] | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        backend: str = "local",
        client: Any = None,
        resume: bool = False,
        verbose: int = 0,
    ) -> None:
        self.estimator = estimator
        self.strengths = strengths
        self.kinds = kinds
        self.l1_ratios = l1_ratios
        self.placements = placements
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.scoring = scoring
        self.one_standard_error = one_standard_error
        self.refine = refine
        self.refine_points = refine_points
        self.refine_epochs = refine_epochs
        self.refit = refit
        self.max_memory = max_memory
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.model_factory = model_factory
        self.checkpoint_dir = checkpoint_dir
        self.backend = backend
        self.client = client
        self.resume = resume
        self.verbose = verbose

    # ----------------------------------------------------------------- fit

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        progress: Callable[[Progress], None] | None = None,
        on_chunk: Callable[[dict[str, np.ndarray]], None] | None = None,
    ) -> SearchCV:
        """Run the search on ``X``, ``y``; returns ``self``.

        Args:
            X: a 2-D array or DataFrame (or, with ``model_factory``, any ``(n, ...)`` array).
            y: the target, one value per row.
            progress: called after every epoch of every chunk with a :class:`Progress`
                (with the dask backend, once per chunk, when it finishes).
            on_chunk: called after every finished chunk with the results so far, a dict
                like ``cv_results_`` whose unfinished configurations have status
                ``"pending"`` (e.g. to rewrite a results file as the search goes).

        Returns:
            ``self``.

        Raises:
            ShrinkageError: a bad parameter or bad data, one line naming it.
        """
        previous_threads = torch.get_num_threads()
        if self.n_threads is not None:
            torch.set_num_threads(_check_int(self.n_threads, "n_threads", 1))
        self._on_chunk = on_chunk
        try:
            return self._fit(X, y, progress)
        finally:
            torch.set_num_threads(previous_threads)

    def prepare(self, X: Any, y: Any) -> SearchPlan:
        """Validate everything, make the folds and seeds, preprocess, list the candidates.

        Nothing is trained: ``fit`` is ``prepare`` followed by :func:`run_chunk` on each
        chunk of ``plan.specs``; a distributed backend can ship those chunks instead.

        Args:
            X: as for :meth:`fit`.
            y: as for :meth:`fit`.

        Returns:
            The :class:`SearchPlan`.

        Raises:
            ShrinkageError: a bad parameter or bad data, one line naming it.
        """
        estimator, task = self._estimator(y)
        params = estimator.get_params()
        self._check_estimator_params(params)
        self._validate_estimator(estimator)
        grid = self._grid()
        scoring = self._scoring(task)
        memory = parse_memory(self.max_memory)
        _check_bool(self.one_standard_error, "one_standard_error")
        _check_bool(self.refine, "refine")
        _check_bool(self.refit, "refit")
        _check_int(self.refine_points, "refine_points", 2)
        if self.refine_epochs is not None:
            _check_int(self.refine_epochs, "refine_epochs", 1)
        _check_int(self.verbose, "verbose", 0)
        device = check_device(self.device)

        X_checked, y_values = _check_data(X, y, self.model_factory is not None)
        codes, classes = _encode(y_values, task)
        n_classes = None if classes is None else len(classes)
        rng = _random_state(self.random_state)
        split_seed = int(rng.randint(_SEED_HIGH))
        folds = self._folds(len(codes), codes, task, split_seed)
        seeds = [int(s) for s in rng.randint(0, _SEED_HIGH, size=len(folds))]
        refit_seed = int(rng.randint(_SEED_HIGH))

        settings = TrainSettings(
            task=task,
            n_classes=n_classes,
            optimizer=params["optimizer"],
            learning_rate=params["learning_rate"],
            momentum=params["momentum"],
            epochs=int(params["epochs"]),
            batch_size=int(params["batch_size"]),
            mode=params["mode"],
        )
        data = _prepare(
            X_checked,
            codes,
            folds,
            settings,
            tuple(params["hidden_layer_sizes"]),
            params["activation"],
            scoring,
            self.model_factory,
            bool(params.get("impute", False)),
            str(device),
        )
        n_layers = self._n_layers(data)
        for placement in grid.placements:
            placement_layers(n_layers, placement)  # refuses bad indices before training

        configs = [
            (kind, ratio, placement, float(strength))
            for kind in grid.kinds
            for ratio in (grid.l1_ratios if kind == "elastic_net" else (math.nan,))
            for placement in grid.placements
            for strength in grid.strengths
        ]
        specs = [
            CandidateSpec(
                index=c * len(folds) + f,
                config=c,
                fold=f,
                seed=seeds[f],
                kind=kind,
                strength=strength,
                l1_ratio=0.5 if math.isnan(ratio) else ratio,
                placement=placement,
                epochs=settings.epochs,
            )
            for c, (kind, ratio, placement, strength) in enumerate(configs)
            for f in range(len(folds))
        ]
        per_candidate, shared = self._bytes(data)
        n_chunks, per_chunk = plan_chunks(len(specs), per_candidate, shared, memory)
        chunking = {
            "n_candidates": len(specs),
            "n_chunks": n_chunks,
            "candidates_per_chunk": per_chunk,
            "bytes_per_chunk": int(shared + per_chunk * per_candidate),
            "max_memory": memory,
        }
        return SearchPlan(
            data=data,
            specs=specs,
            configs=configs,
            grid_strengths=grid.strengths,
            chunking=chunking,
            seeds=seeds,
            refit_seed=refit_seed,
            n_layers=n_layers,
            estimator=estimator,
            X=X_checked,
            y=y_values,
            classes=classes,
            fingerprint=_fingerprint(data, configs, seeds),
        )

    def _fit(self, X: Any, y: Any, progress: Callable[[Progress], None] | None) -> SearchCV:
        plan = self.prepare(X, y)
        data, configs, specs = plan.data, plan.configs, plan.specs
        n_folds, per_chunk = len(data.folds), plan.chunking["candidates_per_chunk"]
        if self.verbose:
            c = plan.chunking
            print(
                f"SearchCV: {len(configs)} configurations x {n_folds} folds = "
                f"{c['n_candidates']} candidates in {c['n_chunks']} chunk(s) of "
                f"<= {c['candidates_per_chunk']} (~{c['bytes_per_chunk'] / 1e6:.1f} MB each)"
            )
        checkpoint = None if self.checkpoint_dir is None else Path(self.checkpoint_dir)
        rows, states = self._run(
            plan, specs, per_chunk, "grid", progress, checkpoint, keep=self.refine
        )
        self._grid_rows = rows
        results = _aggregate(configs, ["grid"] * len(configs), rows, n_folds, plan.n_layers)
        stage_rows = np.arange(len(configs))
        best = _choose(results, stage_rows, self.one_standard_error)
        if self.refine:
            refined = self._refine(plan, results, best, states, per_chunk, progress, checkpoint)
            if refined is not None:
                results, stage_rows = refined
                best = _choose(results, stage_rows, self.one_standard_error)

        self.cv_results_ = mark_failures(results, data.settings.learning_rate)
        self.chunking_ = plan.chunking
        self.n_splits_ = n_folds
        self.folds_ = data.folds
        self.seeds_ = plan.seeds
        self.refit_seed_ = plan.refit_seed
        self.scoring_ = data.scoring
        self.best_index_ = int(best)
        self.best_params_ = dict(results["params"][best])
        self.best_score_ = float(results["mean_test_score"][best])
        if plan.classes is not None:
            self.classes_ = plan.classes
        self.best_estimator_ = None
        self.best_model_ = None
        self.refit_time_ = 0.0
        if self.refit:
            started = time.perf_counter()
            self._refit(plan)
            self.refit_time_ = time.perf_counter() - started
        if self.verbose:
            print(f"SearchCV: best {self.best_params_} with mean score {self.best_score_:.4f}")
        return self

    # ----------------------------------------------------------------- pieces

    def _estimator(self, y: Any) -> tuple[Any, str]:
        from shrinkage.estimators import MLPClassifier, MLPRegressor

        estimator = self.estimator
        if estimator is None:
            from shrinkage.data import detect_task

            values = np.asarray(y)
            if values.ndim != 1:
                values = values.reshape(len(values), -1)[:, 0] if values.ndim else values
            task = detect_task(pd.Series(values))
            estimator = MLPClassifier() if task == CLASSIFICATION else MLPRegressor()
            return estimator, task
        if isinstance(estimator, MLPClassifier):
            return estimator, CLASSIFICATION
        if isinstance(estimator, MLPRegressor):
            return estimator, REGRESSION
        raise ShrinkageError(
            "The 'estimator' parameter must be an MLPClassifier, an MLPRegressor or None. "
            f"Got {estimator!r} instead."
        )

    @staticmethod
    def _check_estimator_params(params: dict[str, Any]) -> None:
        if params.get("early_stopping"):
            raise ShrinkageError(
                "The estimator's 'early_stopping' parameter must be False in a search: the "
                "folds already hold out validation rows. Got True instead."
            )
        if params.get("layer_penalties"):
            raise ShrinkageError(
                "The estimator's 'layer_penalties' parameter must be None in a search (the "
                f"grid sets the penalty of every layer). Got {params['layer_penalties']!r}."
            )
        for name in ("clip_grad_norm", "max_grad_norm", "gradient_clipping"):
            if params.get(name) is not None:
                # A norm over the stacked gradient would mix every candidate's gradients.
                raise ShrinkageError(
                    f"The estimator's '{name}' parameter must be None in a search: "
                    "global-norm clipping couples the stacked candidates. "
                    f"Got {params[name]!r} instead."
                )

    @staticmethod
    def _validate_estimator(estimator: Any) -> None:
        # The estimator validates its own parameters: the same one-line messages apply.
        estimator._resolve_params()

    def _grid(self) -> _Grid:
        strengths = self.strengths
        if strengths is None:
            values = default_strengths()
        else:
            if isinstance(strengths, str | bytes) or not isinstance(
                strengths, Iterable | np.ndarray
            ):
                raise ShrinkageError(
                    "The 'strengths' parameter must be a list of floats >= 0 or None. "
                    f"Got {strengths!r} instead."
                )
            values = np.unique([check_strength(s, "strengths") for s in strengths])
            if not len(values):
                raise ShrinkageError("The 'strengths' parameter must hold at least one value.")
        kinds = _as_list(self.kinds, "kinds")
        for kind in kinds:
            if kind not in KINDS:
                raise ShrinkageError(
                    f"The 'kinds' entries must be among {', '.join(map(repr, KINDS))} (the "
                    f"penalties the batched engine stacks). Got {kind!r} instead."
                )
        ratios = [float(r) for r in _as_list(self.l1_ratios, "l1_ratios", numbers.Real)]
        for r in ratios:
            if not 0 <= r <= 1:
                raise ShrinkageError(
                    f"The 'l1_ratios' entries must be floats in the range [0, 1]. Got {r!r} "
                    "instead."
                )
        placements = []
        for p in _as_list(self.placements, "placements", (str, Sequence, np.ndarray)):
            if isinstance(p, str):
                if p not in PLACEMENTS:
                    raise ShrinkageError(
                        f"The 'placements' entries must be {', '.join(map(repr, PLACEMENTS))} or "
                        f"tuples of layer indices. Got {p!r} instead."
                    )
                placements.append(p)
            else:
                if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in p):
                    raise ShrinkageError(
                        "The 'placements' entries must be 'all', 'hidden', 'output' or tuples "
                        f"of layer indices. Got {p!r} instead."
                    )
                placements.append(tuple(sorted({int(i) for i in p})))
        return _Grid(values, list(dict.fromkeys(kinds)), sorted(set(ratios)), _unique(placements))

    def _scoring(self, task: str) -> str:
        scoring = self.scoring
        if scoring is None:
            return "accuracy" if task == CLASSIFICATION else "r2"
        if scoring not in SCORINGS:
            raise ShrinkageError(
                f"The 'scoring' parameter must be one of {', '.join(map(repr, SCORINGS))} or "
                f"None. Got {scoring!r} instead."
            )
        if task == REGRESSION and scoring in _CLASSIFICATION_ONLY:
            raise ShrinkageError(
                f"The 'scoring' parameter {scoring!r} needs a classification task; this search "
                "is a regression. Use 'r2' or a 'neg_...error' score."
            )
        if task == CLASSIFICATION and scoring not in _CLASSIFICATION_ONLY:
            raise ShrinkageError(
                f"The 'scoring' parameter {scoring!r} is for regression; this search is a "
                "classification. Use 'accuracy', 'balanced_accuracy' or 'neg_log_loss'."
            )
        return scoring

    def _folds(
        self, n_rows: int, codes: np.ndarray, task: str, seed: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        from sklearn.model_selection import (
            KFold,
            ShuffleSplit,
            StratifiedKFold,
            StratifiedShuffleSplit,
        )

        classification = task == CLASSIFICATION
        fraction = self.validation_fraction
        if fraction is not None:
            if (
                isinstance(fraction, bool)
                or not isinstance(fraction, numbers.Real)
                or not 0 < fraction < 1
            ):
                raise ShrinkageError(
                    "The 'validation_fraction' parameter must be a float in the range (0, 1) "
                    f"or None. Got {fraction!r} instead."
                )
            cls = StratifiedShuffleSplit if classification else ShuffleSplit
            splitter: Any = cls(n_splits=1, test_size=float(fraction), random_state=seed)
        elif isinstance(self.cv, numbers.Integral) and not isinstance(self.cv, bool):
            from shrinkage.data import check_rows_for_folds

            check_rows_for_folds(n_rows, int(self.cv))
            cls = StratifiedKFold if classification else KFold
            splitter = cls(n_splits=int(self.cv), shuffle=True, random_state=seed)
        elif hasattr(self.cv, "split"):
            splitter = self.cv
        elif isinstance(self.cv, Iterable) and not isinstance(self.cv, str | bytes):
            splitter = None
        else:
            raise ShrinkageError(
                "The 'cv' parameter must be an integer >= 2, a scikit-learn splitter or a list "
                f"of (train, test) index arrays. Got {self.cv!r} instead."
            )
        try:
            if splitter is None:
                pairs = list(self.cv)
            else:
                dummy = np.zeros((n_rows, 1))
                pairs = list(splitter.split(dummy, codes if classification else None))
        except ValueError as err:
            raise ShrinkageError(f"The folds cannot be made: {err}".splitlines()[0]) from None
        folds = []
        for i, pair in enumerate(pairs):
            try:
                train, test = (np.asarray(part, dtype=np.int64).reshape(-1) for part in pair)
            except (TypeError, ValueError):
                raise ShrinkageError(
                    f"The 'cv' split {i} must be a (train, test) pair of index arrays."
                ) from None
            bad = np.concatenate([train, test])
            if len(train) == 0 or len(test) == 0 or bad.min() < 0 or bad.max() >= n_rows:
                raise ShrinkageError(
                    f"The 'cv' split {i} must have non-empty train and test rows in "
                    f"[0, {n_rows}). Got {len(train)} train and {len(test)} test rows."
                )
            if np.intersect1d(train, test).size:
                raise ShrinkageError(
                    f"The 'cv' split {i} puts rows in both train and test; they must be disjoint."
                )
            folds.append((train, test))
        if not folds:
            raise ShrinkageError("The 'cv' parameter gave no splits.")
        return folds

    def _n_layers(self, data: SearchData) -> int:
        if data.factory is None:
            return len(data.hidden) + 1
        probe = StackedModule(data.factory, [0], "cpu")
        return probe.n_layers

    def _bytes(self, data: SearchData) -> tuple[int, int]:
        train_rows = max(len(tr) for tr, _ in data.folds)
        if data.factory is None:
            widths = data.sizes
            n_params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))
        else:
            probe = StackedModule(data.factory, [0], "cpu")
            n_params = probe.n_params
            features = math.prod(data.X.shape[1:])
            widths = [features, data.settings.n_outputs, *[s[0] for s in probe.shapes]]
        per = estimate_bytes(
            n_params,
            widths,
            1,
            data.settings.batch_size,
            train_rows,
            autograd=data.factory is not None,
        )
        # Scoring keeps every candidate's outputs on all rows, and its masks.
        per += data.n_rows * (8 * data.settings.n_outputs + 2 + 32)
        shared = data.X.element_size() * data.X.numel() + 8 * data.y.numel() * len(data.folds)
        return per, shared

    def _run(
        self,
        plan: SearchPlan,
        specs: list[CandidateSpec],
        per_chunk: int,
        stage: str,
        progress: Callable[[Progress], None] | None,
        checkpoint: Path | None,
        keep: bool,
    ) -> tuple[list[dict[str, Any]], dict[int, dict[str, np.ndarray]]]:
        chunks = [specs[i : i + per_chunk] for i in range(0, len(specs), per_chunk)]

        def report(c: int, epoch: int | None) -> None:
            if progress is not None:
                epochs = chunks[c][0].epochs
                progress(Progress(stage, c + 1, len(chunks), epoch or epochs, epochs))

        on_chunk = None
        if getattr(self, "_on_chunk", None) is not None:
            earlier = plan.specs if stage == "refine" else []
            before = self._grid_rows if stage == "refine" else []

            def on_chunk(done: list[dict[str, Any]]) -> None:
                self._on_chunk(partial_results(plan, [*earlier, *specs], [*before, *done]))

        _check_bool(self.resume, "resume")
        return run_chunks(
            plan.data,
            chunks,
            stage=stage,
            keep_states=keep,
            checkpoint=checkpoint,
            fingerprint=plan.fingerprint,
            resume=bool(self.resume),
            backend=self.backend,
            client=self.client,
            n_threads=self.n_threads,
            progress=report,
            on_chunk=on_chunk,
        )

    def _refine(
        self,
        plan: SearchPlan,
        results: dict[str, np.ndarray],
        best: int,
        states: dict[int, dict[str, np.ndarray]],
        per_chunk: int,
        progress: Callable[[Progress], None] | None,
        checkpoint: Path | None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
        kind, ratio, placement, strength = plan.configs[best]
        if strength <= 0:
            return None  # no log grid around zero: the grid's choice stands
        grid = plan.grid_strengths
        positive = np.log10(grid[grid > 0])
        step = float(np.min(np.diff(positive))) if len(positive) > 1 else 1.0
        offsets = np.linspace(-2 * step / 3, 2 * step / 3, self.refine_points)
        values = strength * 10.0**offsets
        n_folds = len(plan.data.folds)
        start = len(plan.configs)
        epochs = self.refine_epochs
        if epochs is None:
            epochs = max(1, plan.data.settings.epochs // 2)
        new_configs = [(kind, ratio, placement, float(v)) for v in values]
        warm = {s.fold: states[s.index] for s in plan.specs if s.config == best}
        new_specs = [
            CandidateSpec(
                index=len(plan.specs) + i * n_folds + f,
                config=start + i,
                fold=f,
                seed=plan.seeds[f],
                kind=kind,
                strength=float(v),
                l1_ratio=0.5 if math.isnan(ratio) else ratio,
                placement=placement,
                epochs=epochs,
                stage="refine",
                init=warm[f],
            )
            for i, v in enumerate(values)
            for f in range(n_folds)
        ]
        rows, _ = self._run(plan, new_specs, per_chunk, "refine", progress, checkpoint, False)
        refined = _aggregate(
            new_configs, ["refine"] * len(new_configs), rows, n_folds, plan.n_layers
        )
        merged = {key: np.concatenate([results[key], refined[key]]) for key in results}
        plan.configs = plan.configs + new_configs
        return merged, np.arange(start, start + len(new_configs))

    def _refit(self, plan: SearchPlan) -> None:
        params, data, seed = self.best_params_, plan.data, plan.refit_seed
        if data.factory is None:
            from sklearn.base import clone

            chosen = {
                "penalty": params["kind"],
                "strength": params["strength"],
                "placement": params["placement"],
                "random_state": seed,
                "device": str(data.device),
            }
            if params["l1_ratio"] is not None:
                chosen["l1_ratio"] = params["l1_ratio"]
            model = clone(plan.estimator).set_params(**chosen)
            self.best_estimator_ = model.fit(plan.X, plan.y)
            self.best_model_ = model.model_
            return
        all_rows = np.arange(data.n_rows)
        refit_data = _prepare(
            plan.X,
            data.y.cpu().numpy(),
            [(all_rows, all_rows)],
            data.settings,
            data.hidden,
            data.activation,
            data.scoring,
            data.factory,
            False,
            data.device,
        )
        spec = CandidateSpec(
            index=0,
            config=0,
            fold=0,
            seed=seed,
            kind=params["kind"],
            strength=params["strength"],
            l1_ratio=0.5 if params["l1_ratio"] is None else params["l1_ratio"],
            placement=params["placement"],
            epochs=data.settings.epochs,
        )
        result = run_chunk(refit_data, [spec], keep_states=True)
        assert result.states is not None
        stack = StackedModule(data.factory, [seed], data.device)
        stack.load_state(0, {n: torch.as_tensor(v) for n, v in result.states[0].items()})
        self.best_model_ = stack.module(0)

    # ----------------------------------------------------------------- results

    def results_frame(self) -> pd.DataFrame:
        """``cv_results_`` as a DataFrame, one row per configuration (without ``params``)."""
        if not hasattr(self, "cv_results_"):
            raise ShrinkageError("This SearchCV is not fitted yet; call fit(X, y) first.")
        return pd.DataFrame({k: v for k, v in self.cv_results_.items() if k != "params"})

    def predict(self, X: Any) -> np.ndarray:
        """``best_estimator_.predict(X)``."""
        return self._fitted_estimator().predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """``best_estimator_.predict_proba(X)`` (classification)."""
        return self._fitted_estimator().predict_proba(X)

    def score(self, X: Any, y: Any) -> float:
        """``best_estimator_.score(X, y)``: accuracy or R²."""
        return float(self._fitted_estimator().score(X, y))

    def _fitted_estimator(self) -> Any:
        estimator = getattr(self, "best_estimator_", None)
        if estimator is None:
            raise ShrinkageError(
                "This SearchCV has no best_estimator_: fit it with refit=True (and without a "
                "model_factory) first."
            )
        return estimator


@dataclass
class SearchPlan:
    """What :meth:`SearchCV.prepare` decides before any training.

    Attributes:
        data: the preprocessed data and settings every chunk shares.
        specs: the candidates of the grid, configuration-major (``index = config *
            n_folds + fold``).
        configs: ``(kind, l1_ratio, placement, strength)`` per configuration (``l1_ratio``
            NaN unless elastic net).
        grid_strengths: the strength grid.
        chunking: ``n_candidates``, ``n_chunks``, ``candidates_per_chunk``,
            ``bytes_per_chunk``, ``max_memory``.
        seeds: the seed of each fold.
        refit_seed: the refit's seed.
        n_layers: penalizable weights per network.
        estimator: the estimator whose parameters the candidates use.
        X: the validated input rows (for the refit).
        y: the target values (for the refit).
        classes: class labels, or None (regression).
        fingerprint: a digest of data, folds, seeds and grid (checks checkpoint files).
    """

    data: SearchData
    specs: list[CandidateSpec]
    configs: list[tuple]
    grid_strengths: np.ndarray
    chunking: dict[str, int]
    seeds: list[int]
    refit_seed: int
    n_layers: int
    estimator: Any
    X: Any
    y: np.ndarray
    classes: np.ndarray | None
    fingerprint: str


@dataclass
class _Grid:
    strengths: np.ndarray
    kinds: list[str]
    l1_ratios: list[float]
    placements: list[str | tuple[int, ...]]


# --------------------------------------------------------------------------- helpers


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ShrinkageError(
            f"The '{name}' parameter must be True or False. Got {value!r} instead."
        )
    return bool(value)


def _check_int(value: object, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ShrinkageError(
            f"The '{name}' parameter must be an integer >= {low}. Got {value!r} instead."
        )
    return int(value)


def _as_list(value: Any, name: str, kind: Any = str) -> list:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable) or isinstance(value, bytes):
        raise ShrinkageError(f"The '{name}' parameter must be a list. Got {value!r} instead.")
    items = list(value)
    if not items:
        raise ShrinkageError(f"The '{name}' parameter must hold at least one value. Got [].")
    for item in items:
        if not isinstance(item, kind) or isinstance(item, bool):
            raise ShrinkageError(f"The '{name}' entries have the wrong type. Got {item!r} instead.")
    return items


def _unique(items: list) -> list:
    out: list = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _random_state(value: Any) -> np.random.RandomState:
    if value is None or isinstance(value, np.random.RandomState):
        return np.random.RandomState() if value is None else value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value < 2**32:
        return np.random.RandomState(int(value))
    raise ShrinkageError(
        "The 'random_state' parameter must be an integer in [0, 2**32 - 1], a numpy "
        f"RandomState or None. Got {value!r} instead."
    )


def _check_data(X: Any, y: Any, any_shape: bool) -> tuple[Any, np.ndarray]:
    if isinstance(X, pd.DataFrame):
        n = len(X)
    else:
        if isinstance(X, Tensor):
            X = X.detach().cpu().numpy()
        X = np.asarray(X)
        if X.dtype == object:
            X = pd.DataFrame(X).infer_objects()
            n = len(X)
        else:
            if X.ndim != 2 and not (any_shape and X.ndim >= 2):
                raise ShrinkageError(
                    f"The 'X' parameter must be a 2-D array or a DataFrame. Got an array of "
                    f"shape {X.shape} instead."
                )
            n = X.shape[0]
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise ShrinkageError(
                f"The 'y' parameter must be one column. Got a table of shape {y.shape} instead."
            )
        y = y.iloc[:, 0]
    values = np.asarray(y.detach().cpu().numpy() if isinstance(y, Tensor) else y)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ShrinkageError(
            f"The 'y' parameter must be 1-D (one value per row). Got shape {values.shape} instead."
        )
    if len(values) != n:
        raise ShrinkageError(
            f"The 'X' and 'y' parameters must have the same number of rows. Got {n} and "
            f"{len(values)} instead."
        )
    if n < 2:
        raise ShrinkageError(f"The data must have at least 2 rows to search. Got {n} instead.")
    return X, values


def _encode(y: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    if task == REGRESSION:
        try:
            values = y.astype(np.float64)
        except (TypeError, ValueError):
            raise ShrinkageError(
                "The 'y' parameter must be numeric for a regression. Got non-numeric values."
            ) from None
        if not np.isfinite(values).all():
            raise ShrinkageError(
                f"The 'y' parameter must be finite; row {int(np.argmin(np.isfinite(values)))} is "
                f"{values[np.argmin(np.isfinite(values))]!r}."
            )
        return values, None
    if pd.isna(pd.Series(y)).any():
        raise ShrinkageError(
            f"The 'y' parameter has a missing value at row {int(np.argmax(pd.isna(y)))}."
        )
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ShrinkageError(
            f"A classification search needs at least 2 classes in y; got one, "
            f"{classes[0].item() if hasattr(classes[0], 'item') else classes[0]!r}."
        )
    return codes.astype(np.int64).reshape(-1), classes


def _prepare(
    X: Any,
    codes: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    settings: TrainSettings,
    hidden: tuple[int, ...],
    activation: str,
    scoring: str,
    factory: Callable[[], nn.Module] | None,
    impute: bool,
    device: str,
) -> SearchData:
    """Preprocess per fold (training rows only) and put everything on the device."""
    from shrinkage.training import target_tensor

    raw_nd = not isinstance(X, pd.DataFrame) and np.asarray(X).ndim > 2
    if raw_nd:
        blocks = torch.as_tensor(np.asarray(X, dtype=np.float32))
        per_fold = False
    else:
        blocks = torch.as_tensor(np.concatenate(_fold_features(X, folds, impute)))
        per_fold = True
    y = target_tensor(codes, settings.task, settings.n_classes, device)
    return SearchData(
        X=blocks.to(device),
        y=y,
        folds=folds,
        settings=settings,
        hidden=hidden,
        activation=activation,
        scoring=scoring,
        factory=factory,
        per_fold=per_fold,
        device=device,
    )


def _plain_numeric(X: Any) -> bool:
    """A 2-D int/float array, every value finite and within float32's range."""
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype.kind not in "iuf":
        return False
    values = X.astype(np.float64, copy=False)
    return bool(np.isfinite(values).all() and (np.abs(values) <= np.finfo(np.float32).max).all())


def _fold_features(
    X: Any, folds: list[tuple[np.ndarray, np.ndarray]], impute: bool
) -> list[np.ndarray]:
    """Each fold's preprocessed copy of all rows, fitted on that fold's training rows.

    When a categorical value is missing from some fold's training rows, the folds' columns
    differ; they are aligned on the union of columns, a column a fold never saw being 0
    (exactly what that fold's preprocessor gives an unknown category).
    """
    from shrinkage.data import Preprocessor

    if _plain_numeric(X):
        # All-numeric, finite: the Preprocessor would only run StandardScaler (on float64)
        # behind a ColumnTransformer, whose overhead is most of a small search's setup.
        from sklearn.preprocessing import StandardScaler

        values = X.astype(np.float64)
        return [
            StandardScaler().fit(values[train]).transform(values).astype(np.float32)
            for train, _ in folds
        ]
    frame = X if isinstance(X, pd.DataFrame) else None
    outs, names = [], []
    for train, _ in folds:
        part = frame.iloc[train] if frame is not None else X[train]
        preprocessor = Preprocessor(impute=impute).fit(part)
        outs.append(preprocessor.transform(X).astype(np.float32))
        names.append(list(preprocessor.feature_names_out_))
    if all(n == names[0] for n in names):
        return outs
    union = list(dict.fromkeys(name for fold in names for name in fold))
    where = {name: i for i, name in enumerate(union)}
    aligned = []
    for out, fold_names in zip(outs, names):
        full = np.zeros((out.shape[0], len(union)), dtype=np.float32)
        full[:, [where[n] for n in fold_names]] = out
        aligned.append(full)
    return aligned


def _aggregate(
    configs: list[tuple],
    stages: list[str],
    rows: list[dict[str, Any]],
    n_splits: int,
    n_layers: int,
    first: int | None = None,
) -> dict[str, np.ndarray]:
    """Candidate rows → one ``cv_results_`` entry per configuration.

    ``configs[0]`` is configuration ``first`` (default: the smallest in ``rows``).
    """
    n = len(configs)
    if first is None:
        first = min((r["config"] for r in rows), default=0)
    test = np.full((n, n_splits), np.nan)
    train = np.full((n, n_splits), np.nan)
    fit_time = np.full((n, n_splits), np.nan)
    score_time = np.full((n, n_splits), np.nan)
    diverged = np.zeros(n, dtype=np.int64)
    norms = np.full((n_layers, n, n_splits), np.nan)
    sparsity = np.full((n_layers, n, n_splits), np.nan)
    for r in rows:
        c, f = r["config"] - first, r["fold"]
        test[c, f], train[c, f] = r["test_score"], r["train_score"]
        fit_time[c, f], score_time[c, f] = r["fit_time"], r["score_time"]
        diverged[c] += int(r["diverged"])
        for i in range(n_layers):
            norms[i, c, f] = r[f"weight_l2_layer{i}"]
            sparsity[i, c, f] = r[f"sparsity_layer{i}"]
    out: dict[str, np.ndarray] = {
        "param_kind": np.array([c[0] for c in configs], dtype=object),
        "param_strength": np.array([c[3] for c in configs], dtype=np.float64),
        "param_l1_ratio": np.array([c[1] for c in configs], dtype=np.float64),
        "param_placement": np.array([_placement_text(c[2]) for c in configs], dtype=object),
        "params": np.array(
            [
                {
                    "kind": c[0],
                    "strength": c[3],
                    "l1_ratio": None if math.isnan(c[1]) else c[1],
                    "placement": c[2],
                }
                for c in configs
            ],
            dtype=object,
        ),
        "stage": np.array(stages, dtype=object),
    }
    for i in range(n_splits):
        out[f"split{i}_test_score"] = test[:, i]
    mean_test = test.mean(axis=1)
    out["mean_test_score"] = mean_test
    out["std_test_score"] = test.std(axis=1)
    out["rank_test_score"] = _rank(mean_test)
    for i in range(n_splits):
        out[f"split{i}_train_score"] = train[:, i]
    out["mean_train_score"] = train.mean(axis=1)
    out["std_train_score"] = train.std(axis=1)
    out["mean_fit_time"] = fit_time.mean(axis=1)
    out["std_fit_time"] = fit_time.std(axis=1)
    out["mean_score_time"] = score_time.mean(axis=1)
    out["std_score_time"] = score_time.std(axis=1)
    for i in range(n_layers):
        out[f"weight_l2_layer{i}"] = norms[i].mean(axis=1)
        out[f"sparsity_layer{i}"] = sparsity[i].mean(axis=1)
    out["n_diverged"] = diverged
    return out


def _rank(scores: np.ndarray) -> np.ndarray:
    """1 for the best; ties share the lowest rank; NaN ranks after every number."""
    order = -np.where(np.isnan(scores), -np.inf, scores)
    return 1 + np.searchsorted(np.sort(order), order, side="left").astype(np.int64)


def _placement_text(placement: str | tuple[int, ...]) -> str:
    return placement if isinstance(placement, str) else ",".join(map(str, placement))


def _choose(results: dict[str, np.ndarray], rows: np.ndarray, one_se: bool) -> int:
    """The chosen configuration among ``rows``.

    Best mean validation score; ties go to the larger strength (the simpler model), then
    to the earlier row. With ``one_se``: the largest strength whose mean score is at least
    ``best - std_best / sqrt(n_splits)``, ties to the better score.
    """
    mean = results["mean_test_score"][rows]
    strength = results["param_strength"][rows]
    if np.all(np.isnan(mean)):
        raise ShrinkageError(
            "Every candidate of the search diverged (non-finite weights); lower the learning "
            "rate or the strengths."
        )
    filled = np.where(np.isnan(mean), -np.inf, mean)
    top = filled.max()
    best = max(np.flatnonzero(filled == top), key=lambda i: (strength[i], -i))
    if one_se:
        n_splits = sum(1 for key in results if key.startswith("split") and "test" in key)
        se = results["std_test_score"][rows][best] / math.sqrt(n_splits)
        eligible = np.flatnonzero(filled >= top - se)
        best = max(eligible, key=lambda i: (strength[i], filled[i], -i))
    return int(rows[best])


def _fingerprint(data: SearchData, configs: list[tuple], seeds: list[int]) -> str:
    """A digest of what determines a chunk's rows, so a resumed search can check it."""
    digest = hashlib.sha256()
    digest.update(json.dumps([repr(c) for c in configs]).encode())
    digest.update(json.dumps(seeds).encode())
    digest.update(repr(data.settings).encode())
    digest.update(repr((data.hidden, data.activation, data.scoring, tuple(data.X.shape))).encode())
    for train, test in data.folds:
        digest.update(train.tobytes())
        digest.update(test.tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- demo


def tune_demo(
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    hidden: Sequence[int] = (500,),
    epochs: int = 4000,
    *,
    strengths: Sequence[float] | None = None,
    placements: Sequence[str] = ("all", "hidden", "output"),
    cv: int = 3,
    random_state: int = 0,
    n_threads: int | None = 1,
    **estimator_params: Any,
) -> tuple[dict[str, Any], float, SearchCV]:
    """Tune the strength and the placement of an L2 penalty on the demo's data.

    The default grid is 7 strengths (``1e-4 … 1``, 1.5 per decade) x 3 placements x 3
    folds = 63 candidates in one stack, then the best configuration is refit on all training
    rows and scored on the test rows.

    Args:
        X_train: training inputs (the demo: 30 ``make_moons`` rows).
        y_train: training labels.
        X_test: test inputs.
        y_test: test labels.
        hidden: hidden layer widths.
        epochs: training epochs of every candidate and of the refit.
        strengths: the strength grid; None: 7 values from 1e-4 to 1.
        placements: the placements to compare.
        cv: folds.
        random_state: the seed of the folds, the candidates and the refit.
        n_threads: torch threads for the search and the refit. One by default: these
            models are small, and on a busy 2-core machine a second OpenMP thread that
            waits for a core makes every kernel several times slower.
        **estimator_params: more :class:`~shrinkage.estimators.MLPClassifier` parameters
            (``learning_rate``, ``batch_size``, ``optimizer``, ``activation`` …).

    Returns:
        ``(best_params, test_accuracy, search)``.
    """
    from shrinkage.estimators import MLPClassifier

    if strengths is None:
        strengths = np.logspace(-4, 0, 7)
    estimator = MLPClassifier(hidden_layer_sizes=tuple(hidden), epochs=epochs, **estimator_params)
    search = SearchCV(
        estimator,
        strengths=strengths,
        placements=placements,
        cv=cv,
        random_state=random_state,
        n_threads=n_threads,
    ).fit(X_train, y_train)
    accuracy = search.score(X_test, y_test)
    return search.best_params_, accuracy, search
