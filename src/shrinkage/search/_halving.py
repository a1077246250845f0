"""Per-layer strengths, sampled, and successive halving inside the stack.

A per-layer configuration gives every penalizable weight its own strength (0: leave that
layer alone) and, when several kinds are searched, its own kind. :func:`sample_layers`
draws them from a scrambled Sobol or Latin-hypercube sequence; the single-λ grid's
configurations are always added (:func:`grid_layers`).

Successive halving (:func:`rung_epochs`, :func:`rank_configs`, :func:`run_halving`): all
``N x folds`` candidates start together; at each rung the configurations are ranked by
their fold-mean validation score and only the best ``ceil(n / eta)`` go on; their
candidates continue from exactly where they were (weights, optimizer state, minibatch
generators), the others leave the stack. A rung is global: it ranks once every chunk of
the rung has finished, so a chunked or distributed search drops the same configurations as
one stack would.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from shrinkage._names import KINDS
from shrinkage.errors import ShrinkageError
from shrinkage.search._candidates import (
    CandidateSpec,
    ChunkResult,
    ChunkRun,
    SearchData,
    run_chunk,
)
from shrinkage.search._checkpoint import run_chunks, states_path

__all__ = [
    "SAMPLERS",
    "config_summary",
    "grid_layers",
    "rank_configs",
    "rung_epochs",
    "run_halving",
    "sample_layers",
    "strength_from_unit",
]

#: The low-discrepancy sequences per-layer strengths are drawn from.
SAMPLERS = ("sobol", "lhs")

Layers = tuple[tuple[str, float], ...]


def sample_layers(
    n: int,
    n_layers: int,
    kinds: Sequence[str],
    low: float,
    high: float,
    zero_probability: float,
    sampler: str = "sobol",
    seed: int = 0,
) -> list[Layers]:
    """``n`` per-layer configurations from a scrambled low-discrepancy sequence.

    Each configuration is a point ``u`` of ``[0, 1)^d`` (``d = n_layers``, doubled when
    several kinds are searched). Layer ``i``'s strength is 0 when ``u_i < p`` (``p =
    zero_probability``), else log-uniform on ``[low, high]``:
    ``s = low * (high / low) ** ((u_i - p) / (1 - p))`` rounded to three significant
    digits; its kind is
    ``kinds[floor(u_{L+i} * len(kinds))]``.

    Args:
        n: configurations to draw.
        n_layers: penalizable weights of the network.
        kinds: the kinds to choose from (among ``"l2"``, ``"l1"``, ``"elastic_net"``).
        low: the smallest nonzero strength, ``> 0``.
        high: the largest strength, ``>= low``.
        zero_probability: the probability ``p`` in ``[0, 1)`` that a layer is left alone.
        sampler: ``"sobol"`` (scrambled Sobol, the first ``n`` points of ``2^m >= n``) or
            ``"lhs"`` (Latin hypercube), both from ``scipy.stats.qmc``.
        seed: the scrambling seed.

    Returns:
        ``n`` tuples of ``n_layers`` ``(kind, strength)`` pairs.

    Raises:
        ShrinkageError: an unknown sampler or kind, or bounds out of range.

    Example:
        >>> configs = sample_layers(4, 3, ["l2"], 1e-5, 1e-1, 0.25, seed=0)
        >>> len(configs), len(configs[0]), configs[0][0][0]
        (4, 3, 'l2')
    """
    from scipy.stats import qmc

    if sampler not in SAMPLERS:
        raise ShrinkageError(
            f"The 'sampler' parameter must be one of {', '.join(map(repr, SAMPLERS))}. "
            f"Got {sampler!r} instead."
        )
    kinds = list(kinds)
    if not kinds or any(k not in KINDS for k in kinds):
        raise ShrinkageError(
            f"The 'kinds' entries must be among {', '.join(map(repr, KINDS))}. Got {kinds!r}."
        )
    if not 0 < low <= high < math.inf:
        raise ShrinkageError(
            f"Per-layer strengths need 0 < grid_min <= grid_max; got {low!r} and {high!r}."
        )
    p = check_zero_probability(zero_probability)
    if n <= 0:
        return []
    dims = n_layers * (2 if len(kinds) > 1 else 1)
    if sampler == "sobol":
        engine = qmc.Sobol(dims, scramble=True, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # balance needs 2^m points; the first n are used
            points = engine.random_base2(max(0, math.ceil(math.log2(n))))[:n]
    else:
        points = qmc.LatinHypercube(dims, seed=seed).random(n)
    out = []
    for u in points:
        layers = []
        for i in range(n_layers):
            strength = strength_from_unit(float(u[i]), low, high, p)
            kind = (
                kinds[min(int(u[n_layers + i] * len(kinds)), len(kinds) - 1)]
                if dims > n_layers
                else kinds[0]
            )
            layers.append((kind, strength))
        out.append(tuple(layers))
    return out


def strength_from_unit(u: float, low: float, high: float, zero_probability: float) -> float:
    """One layer's strength from a point ``u`` of ``[0, 1)`` (:func:`sample_layers`).

    ``0`` when ``u < p``, else ``low * (high / low) ** ((u - p) / (1 - p))`` rounded to
    three significant digits (readable, and exact as text in results and on the command
    line).

    Example:
        >>> strength_from_unit(0.1, 1e-6, 1.0, 0.25), strength_from_unit(0.625, 1e-6, 1.0, 0.25)
        (0.0, 0.001)
    """
    p = zero_probability
    if u < p:
        return 0.0
    lo, hi = math.log10(low), math.log10(high)
    return float(f"{10.0 ** (lo + (hi - lo) * (u - p) / (1 - p)):.3g}")


def check_zero_probability(value: Any) -> float:
    """``zero_probability``, checked: a float in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= float(value) < 1:
        raise ShrinkageError(
            "The 'zero_probability' parameter must be a float in the range [0, 1). "
            f"Got {value!r} instead."
        )
    return float(value)


def grid_layers(kind: str, strength: float, n_layers: int, placed: Sequence[int]) -> Layers:
    """A single-λ configuration as a per-layer one: ``strength`` on the placed layers."""
    chosen = set(placed)
    return tuple((kind, float(strength) if i in chosen else 0.0) for i in range(n_layers))


def config_summary(layers: Layers, l1_ratio: float) -> tuple:
    """The configuration tuple ``(kind, l1_ratio, placement, strength, layers)`` of a
    per-layer configuration, its first four entries a summary of it.

    ``kind``: the kind of the penalized layers (``"mixed"`` when they differ, ``"none"``
    when no layer is penalized); ``placement``: ``"all"``, the penalized layers' indices,
    or ``"none"``; ``strength``: the common strength when every layer has the same, else
    NaN; ``l1_ratio``: the ratio when some layer is elastic net, else NaN.
    """
    placed = tuple(i for i, (_, s) in enumerate(layers) if s > 0)
    kinds = {layers[i][0] for i in placed}
    kind = "none" if not kinds else kinds.pop() if len(kinds) == 1 else "mixed"
    if len(placed) == len(layers):
        placement: str | tuple[int, ...] = "all"
    else:
        placement = placed if placed else "none"
    values = {s for _, s in layers}
    strength = values.pop() if len(values) == 1 else math.nan
    elastic = any(layers[i][0] == "elastic_net" for i in placed)
    return (kind, float(l1_ratio) if elastic else math.nan, placement, strength, layers)


def rung_epochs(
    n_configs: int, epochs: int, factor: int = 3, min_epochs: int | None = None
) -> list[int]:
    """The epochs at which successive halving ranks: ``E / eta^k, …, E / eta, E``.

    ``K = min(floor(log_eta(n_configs)), floor(log_eta(E / min_epochs)))`` rankings come
    before the end: as many as it takes to go down to a few configurations, and none
    before ``min_epochs``. Rung ``j`` is at ``round(E / eta^(K - j))`` epochs (increasing,
    at least 1); the last is ``E``.

    Args:
        n_configs: configurations at the first rung.
        epochs: ``E``, the full budget of a configuration.
        factor: ``eta >= 2``; each rung keeps ``ceil(n / eta)`` configurations.
        min_epochs: the earliest rung (default 1).

    Returns:
        The rungs' epochs, ending with ``E``.

    Example:
        >>> rung_epochs(243, 100)
        [1, 4, 11, 33, 100]
        >>> rung_epochs(243, 100, min_epochs=10)
        [11, 33, 100]
    """
    low = 1 if min_epochs is None else max(1, int(min_epochs))
    if n_configs <= 1 or epochs <= low:
        return [int(epochs)]
    by_configs = int(math.floor(math.log(n_configs) / math.log(factor) + 1e-9))
    by_epochs = int(math.floor(math.log(epochs / low) / math.log(factor) + 1e-9))
    k = max(0, min(by_configs, by_epochs))
    rungs: list[int] = []
    for j in range(k, 0, -1):
        r = max(1, round(epochs / factor**j))
        if (not rungs or r > rungs[-1]) and r < epochs:
            rungs.append(int(r))
    return [*rungs, int(epochs)]


def rank_configs(rows: Sequence[dict[str, Any]], configs: Sequence[int]) -> list[int]:
    """The configurations ``configs`` best first, by their candidates' ``rows`` at a rung.

    The key is the fold-mean ``test_score`` (a diverged or missing fold makes it the
    worst), then the fold-mean ``test_loss_score`` (the negative validation loss: accuracy
    ties on a few rows are common at early rungs), then the configuration's index.
    """
    scores: dict[int, list[float]] = {c: [] for c in configs}
    losses: dict[int, list[float]] = {c: [] for c in configs}
    for row in rows:
        if row["config"] in scores:
            scores[row["config"]].append(float(row["test_score"]))
            losses[row["config"]].append(float(row.get("test_loss_score", math.nan)))

    def mean(values: list[float]) -> float:
        value = float(np.mean(values)) if values else math.nan
        return -math.inf if math.isnan(value) else value

    return sorted(configs, key=lambda c: (-mean(scores[c]), -mean(losses[c]), c))


def survivors_count(n: int, factor: int) -> int:
    """How many of ``n`` configurations go on from a rung: ``ceil(n / eta)``, at least 1."""
    return max(1, math.ceil(n / factor))


def run_halving(
    data: SearchData,
    specs: Sequence[CandidateSpec],
    rungs: Sequence[int],
    *,
    factor: int,
    per_chunk: int,
    checkpoint: Path | None,
    fingerprint: str,
    resume: bool,
    backend: str,
    client: Any,
    n_threads: int | None,
    progress: Callable[[int, int, int, int | None], None] | None = None,
    on_rung: Callable[[list[list[dict[str, Any]]]], None] | None = None,
    protected: set[int] | frozenset[int] = frozenset(),
) -> list[list[dict[str, Any]]]:
    """Successive halving over the candidates ``specs`` (every configuration on every fold).

    At rung ``j`` the candidates still in train from ``rungs[j - 1]`` to ``rungs[j]``
    epochs (chunked by ``per_chunk``, locally or on dask, each finished chunk written to
    ``checkpoint`` as ``rung{j}-chunk-*.json`` with its candidates' training states), then
    the configurations are ranked (:func:`rank_configs`) and the best
    :func:`survivors_count` go on. On the local backend, when a rung is one chunk, the
    stack itself stays alive from rung to rung and the dropped candidates leave it
    (:meth:`~shrinkage.search.ChunkRun.keep`); otherwise each chunk continues from the
    exported states. Once rung ``j`` is complete, the training states of rung ``j - 1``
    are deleted (rows stay): only the last complete rung's are needed to resume.

    Args:
        data: the search's data.
        specs: the candidates at epoch 0, configuration-major.
        rungs: the rungs' epochs (:func:`rung_epochs`).
        factor: ``eta``.
        per_chunk: candidates per chunk.
        checkpoint: the checkpoint directory, or None.
        fingerprint: the search's digest (checked on resume).
        resume: read the finished chunks in ``checkpoint``.
        backend: ``"local"`` or ``"dask"``.
        client: the dask client.
        n_threads: torch threads on dask workers.
        progress: ``progress(rung, chunk, n_chunks, epoch)`` after each epoch (local) or
            with ``epoch=None`` when a chunk finishes (dask).
        on_rung: called with the rows of every rung so far, after every finished chunk.
        protected: configurations never dropped (the single-λ grid's, ``keep_grid``): they
            train to the end and take no place among the survivors.

    Returns:
        The candidate rows of each rung (the candidates that trained to it).
    """
    alive = list(specs)
    done: list[list[dict[str, Any]]] = []
    states: dict[int, dict[str, np.ndarray]] = {}
    live: dict[str, ChunkRun] = {}
    previous_chunks: list[list[CandidateSpec]] = []
    for j, epoch in enumerate(rungs):
        last = j == len(rungs) - 1
        start = rungs[j - 1] if j else 0
        todo = [
            replace(s, epochs=int(epoch), start_epoch=int(start), rung=j, init=states.get(s.index))
            for s in alive
        ]
        chunks = [todo[i : i + per_chunk] for i in range(0, len(todo), per_chunk)]
        in_memory = backend == "local" and len(chunks) == 1
        function: Callable[..., ChunkResult] = run_chunk
        if in_memory:

            def function(
                data: SearchData,
                specs: Sequence[CandidateSpec],
                *,
                keep_states: bool = False,
                progress: Callable[[int], None] | None = None,
            ) -> ChunkResult:
                return _live_chunk(live, data, specs, keep_states, progress)

        def report(c: int, e: int | None, j: int = j, n: int = len(chunks)) -> None:
            if progress is not None:
                progress(j, c, n, e)

        def finished(rows: list[dict[str, Any]]) -> None:
            if on_rung is not None:
                on_rung([*done, rows])

        # States go on only when a later rung needs them: from a stack that stays in
        # memory, only to be written for a resume.
        keep = not last and (not in_memory or checkpoint is not None)
        rows, states = run_chunks(
            data,
            chunks,
            stage=f"rung{j}",
            keep_states=keep,
            require_states=False,
            checkpoint=checkpoint,
            fingerprint=fingerprint,
            resume=resume,
            backend=backend,
            client=client,
            n_threads=n_threads,
            progress=report,
            on_chunk=finished,
            function=function,
        )
        if not in_memory:
            live.clear()  # a stack from another rung must not be continued
        done.append(rows)
        if checkpoint is not None and j:
            for c in range(len(previous_chunks)):
                path = states_path(checkpoint, f"rung{j - 1}", c)
                if path.is_file():
                    path.unlink()  # rung j's states now carry the survivors
        previous_chunks = chunks
        if last:
            break
        configs = sorted({s.config for s in alive} - protected)
        ranked = rank_configs(rows, configs)
        kept = set(ranked[: survivors_count(len(configs), factor)]) | protected
        alive = [s for s in alive if s.config in kept]
        states = {s.index: states[s.index] for s in alive if s.index in states}
    return done


def _live_chunk(
    live: dict[str, ChunkRun],
    data: SearchData,
    specs: Sequence[CandidateSpec],
    keep_states: bool,
    progress: Callable[[int], None] | None,
) -> ChunkResult:
    """One chunk of a rung that continues the stack kept in ``live`` when it can."""
    run = live.get("run")
    wanted = [s.index for s in specs]
    if (
        run is not None
        and run.epoch == specs[0].start_epoch
        and set(wanted) <= {s.index for s in run.specs}
    ):
        run.keep(wanted)
        run.specs = list(specs)
    else:
        run = ChunkRun(data, specs)
    run.trainer.progress = progress
    live["run"] = run
    run.train_to(specs[0].epochs)
    rows = run.score()
    return ChunkResult(rows, run.states(full=True) if keep_states else None)
