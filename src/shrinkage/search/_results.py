"""Candidate rows into the ``cv_results_`` table, and the choice of the best configuration.

``cv_results_`` is a dict of numpy arrays with one entry per configuration (a row of
:meth:`~shrinkage.search.SearchCV.results_frame`), refinement rows after the grid rows:


* ``param_kind`` (str), ``param_strength`` (float), ``param_l1_ratio`` (float,
  NaN unless elastic net), ``param_placement`` (str: ``"all"``, ``"hidden"``,
  ``"output"`` or comma-joined layer indices such as ``"0,2"``), ``params``
  (dicts of estimator parameters: :func:`config_params`);
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
* ``n_diverged``: splits that diverged (loss or weights NaN/inf, or a final training
  objective over :data:`~shrinkage.training.DIVERGENCE_FACTOR` times its start);
* ``status``: ``"failed"`` when a split diverged, else ``"ok"``, and
  ``failure``: why, with the strength and learning rate
  (:func:`mark_failures`); a table written while the search still runs
  (:func:`partial_results`) has ``"pending"`` rows too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from shrinkage._names import placement_text
from shrinkage.errors import ShrinkageError

Rows = list[dict[str, Any]]


def config_params(config: tuple) -> dict[str, Any]:
    """A configuration ``(kind, l1_ratio, placement, strength[, layers])`` as estimator
    parameters.

    The keys are the estimator's parameter names, so ``estimator.set_params(**params)``
    applies the configuration: ``penalty``, ``strength``, ``placement``, and ``l1_ratio``
    for elastic net only. A per-layer configuration (``layers``: one ``(kind, strength)``
    per penalizable weight) is ``penalty="none"``, ``strength=0.0``, ``placement="all"``
    and ``layer_penalties={i: L2(s_i) or L1(s_i) or ElasticNet(r s_i, (1 - r) s_i) or
    None}``: every layer's penalty, nothing left to the default.
    """
    kind, ratio, placement, strength = config[:4]
    if len(config) > 4 and config[4] is not None:
        from shrinkage.estimators import make_penalty

        r = 0.5 if math.isnan(ratio) else ratio
        layers = {i: make_penalty(k, s, r) if s > 0 else None for i, (k, s) in enumerate(config[4])}
        return {
            "penalty": "none",
            "strength": 0.0,
            "placement": "all",
            "layer_penalties": layers,
        }
    params: dict[str, Any] = {"penalty": kind, "strength": strength, "placement": placement}
    if kind == "elastic_net" and not math.isnan(ratio):
        params["l1_ratio"] = ratio
    return params


def _layer_columns(configs: list[tuple], n_layers: int) -> dict[str, np.ndarray]:
    """``param_strength_layer{i}``, ``param_kind_layer{i}`` (when kinds differ) and
    ``param_layer_penalties`` (the ``--layer-penalties`` text) of per-layer configurations."""
    from shrinkage.estimators import format_layer_penalties

    layers = [c[4] for c in configs]
    out: dict[str, np.ndarray] = {}
    for i in range(n_layers):
        out[f"param_strength_layer{i}"] = np.array([float(x[i][1]) for x in layers])
    if len({k for x in layers for k, _ in x}) > 1:
        for i in range(n_layers):
            out[f"param_kind_layer{i}"] = np.array([x[i][0] for x in layers], dtype=object)
    out["param_layer_penalties"] = np.array(
        [format_layer_penalties(x) for x in layers], dtype=object
    )
    return out


def total_strength(results: dict[str, np.ndarray] | Any) -> np.ndarray:
    """Each configuration's strength for the tie rules: ``param_strength``, or for
    per-layer configurations the sum of ``param_strength_layer{i}``."""
    keys = [k for k in results.keys() if str(k).startswith("param_strength_layer")]
    if keys:
        return np.sum([np.asarray(results[k], dtype=float) for k in keys], axis=0)
    return np.asarray(results["param_strength"], dtype=float)


def aggregate(
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
    reasons = [""] * n
    norms = np.full((n_layers, n, n_splits), np.nan)
    sparsity = np.full((n_layers, n, n_splits), np.nan)
    for r in rows:
        c, f = r["config"] - first, r["fold"]
        test[c, f], train[c, f] = r["test_score"], r["train_score"]
        fit_time[c, f], score_time[c, f] = r["fit_time"], r["score_time"]
        diverged[c] += int(r["diverged"])
        if r["diverged"] and not reasons[c]:
            reasons[c] = str(r.get("reason") or "")
        for i in range(n_layers):
            norms[i, c, f] = r[f"weight_l2_layer{i}"]
            sparsity[i, c, f] = r[f"sparsity_layer{i}"]
    out: dict[str, np.ndarray] = {
        "param_kind": np.array([c[0] for c in configs], dtype=object),
        "param_strength": np.array([c[3] for c in configs], dtype=np.float64),
        "param_l1_ratio": np.array([c[1] for c in configs], dtype=np.float64),
        "param_placement": np.array([placement_text(c[2]) for c in configs], dtype=object),
        "params": np.array([config_params(c) for c in configs], dtype=object),
        "stage": np.array(stages, dtype=object),
    }
    if configs and len(configs[0]) > 4:
        out.update(_layer_columns(configs, n_layers))
    for i in range(n_splits):
        out[f"split{i}_test_score"] = test[:, i]
    mean_test = test.mean(axis=1)
    out["mean_test_score"] = mean_test
    out["std_test_score"] = test.std(axis=1)
    out["rank_test_score"] = rank(mean_test)
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
    out["failure"] = np.array(reasons, dtype=object)  # the first reason; see mark_failures
    return out


def rank(scores: np.ndarray) -> np.ndarray:
    """1 for the best; ties share the lowest rank; NaN ranks after every number."""
    order = -np.where(np.isnan(scores), -np.inf, scores)
    return 1 + np.searchsorted(np.sort(order), order, side="left").astype(np.int64)


def choose(results: dict[str, np.ndarray], rows: np.ndarray, one_se: bool) -> int:
    """The chosen configuration among ``rows``.

    Best mean validation score; ties go to the larger strength (the simpler model), then
    to the earlier row. With ``one_se``: the largest strength whose mean score is at least
    ``best - std_best / sqrt(n_splits)``, ties to the better score.
    """
    mean = results["mean_test_score"][rows]
    strength = total_strength(results)[rows]
    if np.all(np.isnan(mean)):
        raise ShrinkageError(
            "Every candidate of the search diverged (its loss became NaN/inf or exploded); "
            "lower the learning "
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


def mark_failures(
    results: dict[str, np.ndarray],
    learning_rate: float,
    done_splits: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Add ``status`` and ``failure`` columns to a ``cv_results_`` table, in place.

    A configuration with ``n_diverged > 0`` is ``"failed"``: its loss became NaN/inf or rose
    far above its start (see :func:`~shrinkage.search.run_chunk`) in that many splits, and
    ``failure`` says so, with the first split's reason, its strength and the learning
    rate; the search goes on with the others. A configuration with fewer finished splits
    than the table has (``done_splits``) is ``"pending"``; every other one is ``"ok"``,
    with an empty ``failure``. ``results`` may hold a ``failure`` column of reasons (as
    :func:`aggregate` makes it); it is replaced.

    Args:
        results: the table (``param_strength``, ``n_diverged``, ``split{i}_test_score``).
        learning_rate: the learning rate every candidate trained with.
        done_splits: finished splits per configuration, or None (all finished).

    Returns:
        ``results``.
    """
    n_splits = sum(1 for key in results if key.startswith("split") and key.endswith("test_score"))
    diverged = np.asarray(results["n_diverged"])
    reasons = results.pop("failure", [""] * len(diverged))
    status, failure = [], []
    per_layer = results.get("param_layer_penalties")
    for i, strength in enumerate(results["param_strength"]):
        if diverged[i] > 0:
            status.append("failed")
            what = f"strength={strength:g}" if per_layer is None else f"layers {per_layer[i]}"
            failure.append(
                f"diverged in {diverged[i]} of {n_splits} splits "
                f"({reasons[i] or 'loss became NaN/inf'}) with {what}, "
                f"learning_rate={learning_rate:g}"
            )
        elif done_splits is not None and done_splits[i] < n_splits:
            status.append("pending")
            failure.append("")
        else:
            status.append("ok")
            failure.append("")
    results["status"] = np.array(status, dtype=object)
    results["failure"] = np.array(failure, dtype=object)
    return results


def partial_results(plan: Any, specs: Sequence[Any], rows: Rows) -> dict[str, np.ndarray]:
    """The ``cv_results_`` table of the candidates finished so far.

    Every configuration of ``specs`` has a row; the splits not finished yet are NaN and the
    configuration's ``status`` is ``"pending"`` (see :func:`mark_failures`).

    Args:
        plan: the search's :class:`~shrinkage.search.SearchPlan`.
        specs: every candidate of the stages run so far.
        rows: the finished candidates' rows.

    Returns:
        A dict of arrays with the keys of ``cv_results_``.
    """
    configs: dict[int, tuple] = {}
    stages: dict[int, str] = {}
    for spec in specs:
        configs.setdefault(spec.config, spec.config_tuple())
        stages.setdefault(spec.config, spec.stage)
    order = sorted(configs)
    n_splits = len(plan.data.folds)
    results = aggregate(
        [configs[c] for c in order],
        [stages[c] for c in order],
        rows,
        n_splits,
        plan.n_layers,
        first=order[0],
    )
    done = np.zeros(len(order), dtype=np.int64)
    for row in rows:
        done[row["config"] - order[0]] += 1
    return mark_failures(results, plan.data.settings.learning_rate, done)


def halving_results(
    configs: list[tuple],
    stages: list[str],
    rung_rows: Sequence[Rows],
    rungs: Sequence[int],
    n_splits: int,
    n_layers: int,
    learning_rate: float,
    *,
    running: bool = False,
) -> dict[str, np.ndarray]:
    """The ``cv_results_`` table of a successive-halving search.

    Each configuration's scores (``split{i}_test_score``, ``mean_test_score``, norms…) are
    those of the last rung it reached; ``mean_fit_time`` adds up its rungs. Added columns:
    ``rung`` (the last rung reached, 0-based; ``len(rungs) - 1`` is the full budget),
    ``rung_epochs`` (the epochs it trained) and ``rung{j}_test_score`` (its fold-mean
    validation score at rung ``j``, NaN once dropped). ``rank_test_score`` ranks the
    configurations of the last rung first (the final ranking uses only them), then the
    others by the rung they reached and their score there.

    Args:
        configs: the configurations.
        stages: ``"grid"`` or ``"sampled"`` per configuration.
        rung_rows: the candidate rows of each rung run so far.
        rungs: the rungs' epochs.
        n_splits: folds.
        n_layers: penalizable weights.
        learning_rate: for the failure messages.
        running: the search is not over: configurations still training are ``"pending"``.

    Returns:
        The table (with ``status`` and ``failure``, :func:`mark_failures`).
    """
    latest: dict[int, dict[str, Any]] = {}
    fit: dict[int, float] = {}
    n = len(configs)
    reached = np.full(n, -1, dtype=np.int64)
    per_rung = np.full((len(rungs), n, n_splits), np.nan)
    for j, rows in enumerate(rung_rows):
        for row in rows:
            c = row["config"]
            fit[row["candidate"]] = fit.get(row["candidate"], 0.0) + row["fit_time"]
            latest[row["candidate"]] = {**row, "fit_time": fit[row["candidate"]]}
            reached[c] = max(reached[c], j)
            per_rung[j, c, row["fold"]] = row["test_score"]
    out = aggregate(configs, stages, list(latest.values()), n_splits, n_layers, first=0)
    out["rung"] = reached
    out["rung_epochs"] = np.array([rungs[j] if j >= 0 else 0 for j in reached], dtype=np.int64)
    for j in range(len(rungs)):
        out[f"rung{j}_test_score"] = per_rung[j].mean(axis=1)
    mean = np.where(np.isnan(out["mean_test_score"]), -np.inf, out["mean_test_score"])
    order = sorted(range(n), key=lambda c: (-reached[c], -mean[c], c))
    final = reached == len(rungs) - 1
    ranks = np.empty(n, dtype=np.int64)
    ranks[final] = rank(out["mean_test_score"][final])
    position = int(final.sum())
    for c in order:
        if not final[c]:
            position += 1
            ranks[c] = position
    out["rank_test_score"] = ranks
    done = None
    if running:
        last = len(rung_rows) - 1
        finished = np.zeros(n, dtype=np.int64)
        for c in range(n):
            splits = int(np.isfinite(per_rung[max(reached[c], 0), c]).sum())
            still = reached[c] == last and last < len(rungs) - 1
            finished[c] = 0 if still or reached[c] < 0 else splits
        done = finished
    return mark_failures(out, learning_rate, done)
