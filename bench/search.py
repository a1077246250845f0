"""The batched search against training the same candidates one by one, and scikit-learn.

Problem: ``load_breast_cancer`` (569 rows, 30 features), standardized; an MLP 64-64 ReLU
with one logit; 50 epochs of minibatches of 32, Adam with learning rate 1e-3; 10 L2
strengths x 5 stratified folds = 50 fits. Timed, in one run:

(a) ``SearchCV`` — the 50 candidates stacked and trained at once, then scored;
(b) the same 50 fits one after another with this library's ``MLPClassifier`` (same folds,
    same seeds: its scores equal (a)'s), each scored on its fold;
(c) scikit-learn ``GridSearchCV(MLPClassifier(hidden_layer_sizes=(64, 64), alpha=...,
    batch_size=32, max_iter=50, learning_rate_init=1e-3, solver="adam"), cv=folds,
    n_jobs=1)`` with ``alpha = 2 * 32 * strength`` (:func:`shrinkage.from_sklearn_alpha`:
    scikit-learn averages its L2 term over the batch), no refit;
(d) one ``MLPClassifier`` fit (one fold's training rows); (d0) the bare
    :func:`shrinkage.training.fit_model` loop of that fit, without the estimator's
    per-epoch scoring and preprocessing.

Each measurement is taken with 1 and with 2 torch / BLAS threads, repeated ``--repeat``
times, interleaved (every repeat runs d, a, c, b at both thread counts) so that load from
other processes hits them alike; the median is reported. Targets: (a) >= 10x faster than
(b), >= 4x faster than (c), and <= 3x (d).

Run::

    python bench/search.py --repeat 3 --json search.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from shrinkage import from_sklearn_alpha
from shrinkage.estimators import MLPClassifier
from shrinkage.models import MLP, generators, init_mlp_, placement_plan
from shrinkage.search import SearchCV
from shrinkage.training import fit_model, make_loss, make_optimizer, target_tensor

HIDDEN, EPOCHS, BATCH, LR = (64, 64), 50, 32, 1e-3
STRENGTHS = np.logspace(-6, -1.5, 10)
SEED = 0


def data():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def folds():
    return StratifiedKFold(5)  # scikit-learn's GridSearchCV(cv=5) default, shared by all


def estimator(**kw):
    return MLPClassifier(
        hidden_layer_sizes=HIDDEN, epochs=EPOCHS, batch_size=BATCH, learning_rate=LR, **kw
    )


def run_a(X, y):
    search = SearchCV(estimator(), strengths=STRENGTHS, cv=folds(), refit=False, random_state=SEED)
    start = time.perf_counter()
    search.fit(X, y)
    elapsed = time.perf_counter() - start
    r = search.cv_results_
    return elapsed, {
        "best_strength": float(search.best_params_["strength"]),
        "best_cv_accuracy": search.best_score_,
        "mean_test_scores": r["mean_test_score"].tolist(),
        "chunking": search.chunking_,
    }


def run_b(X, y):
    plan = SearchCV(estimator(), strengths=STRENGTHS, cv=folds(), random_state=SEED).prepare(X, y)
    scores = np.zeros((len(plan.configs), len(plan.data.folds)))
    start = time.perf_counter()
    for spec in plan.specs:
        train, test = plan.data.folds[spec.fold]
        model = estimator(strength=spec.strength, random_state=spec.seed).fit(X[train], y[train])
        scores[spec.config, spec.fold] = model.score(X[test], y[test])
    elapsed = time.perf_counter() - start
    means = scores.mean(axis=1)
    return elapsed, {
        "best_strength": float(STRENGTHS[int(np.argmax(means))]),
        "best_cv_accuracy": float(means.max()),
        "mean_test_scores": means.tolist(),
    }


def run_c(X, y):
    alphas = [2 * BATCH * s for s in STRENGTHS]
    assert np.allclose([from_sklearn_alpha(a, BATCH).l2 for a in alphas], STRENGTHS)
    grid = GridSearchCV(
        SkMLPClassifier(
            hidden_layer_sizes=HIDDEN,
            batch_size=BATCH,
            max_iter=EPOCHS,
            learning_rate_init=LR,
            solver="adam",
            random_state=SEED,
        ),
        {"alpha": alphas},
        cv=folds(),
        n_jobs=1,
        refit=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        grid.fit(X, y)
        elapsed = time.perf_counter() - start
    means = grid.cv_results_["mean_test_score"]
    best = int(np.argmax(means))
    return elapsed, {
        "best_strength": float(STRENGTHS[best]),
        "best_alpha": float(alphas[best]),
        "best_cv_accuracy": float(means[best]),
        "mean_test_scores": means.tolist(),
    }


def run_d(X, y):
    train, _ = next(folds().split(X, y))
    start = time.perf_counter()
    estimator(strength=float(STRENGTHS[5]), random_state=SEED).fit(X[train], y[train])
    return time.perf_counter() - start, {}


def run_d0(X, y):
    train, _ = next(folds().split(X, y))
    features = torch.as_tensor(X[train], dtype=torch.float32)
    target = target_tensor(y[train], "classification", 2)
    init, shuffle = generators(SEED)
    model = init_mlp_(MLP(X.shape[1], HIDDEN, 1), init)
    from shrinkage import L2, Regularizer

    regularizer = Regularizer(model, placement_plan(3, L2(float(STRENGTHS[5]))))
    optimizer = make_optimizer("adam", model.parameters(), LR)
    start = time.perf_counter()
    fit_model(
        model,
        features,
        target,
        loss_fn=make_loss("classification", 2),
        regularizer=regularizer,
        optimizer=optimizer,
        epochs=EPOCHS,
        batch_size=BATCH,
        shuffle_generator=shuffle,
    )
    return time.perf_counter() - start, {}


RUNS = {"d": run_d, "d0": run_d0, "a": run_a, "c": run_c, "b": run_b}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--threads", default="1,2", help="thread counts to try")
    parser.add_argument("--skip-b", action="store_true", help="skip the slow (b)")
    parser.add_argument(
        "--json",
        default=None,
        help="write the figures to this file (default: bench/results/search.json; "
        "search-quick.json with --quick)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1 repeat, 1 thread, (a) and (d) only"
    )
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.threads, args.skip_b = 1, "1", True
    if args.json is None:
        args.json = "bench/results/search-quick.json" if args.quick else "bench/results/search.json"
    threads = [int(t) for t in args.threads.split(",")]
    X, y = data()
    names = [n for n in RUNS if not (args.skip_b and n == "b") and not (args.quick and n == "c")]
    times = {(n, t): [] for n in names for t in threads}
    info = {}
    for name in names:  # warm-up: imports, first kernels, allocator
        torch.set_num_threads(1)
        RUNS[name](X[:200], y[:200]) if name in ("d", "d0") else None
    for r in range(args.repeat):
        for t in threads:
            torch.set_num_threads(t)
            with threadpool_limits(t):
                for name in names:
                    elapsed, extra = RUNS[name](X, y)
                    times[(name, t)].append(elapsed)
                    info.setdefault(name, extra)
                    print(f"repeat {r + 1} threads {t} ({name}) {elapsed:7.3f} s", flush=True)

    median = {key: statistics.median(v) for key, v in times.items()}
    print("\nmedian seconds       " + "   ".join(f"{t} thread(s)" for t in threads))
    for name in names:
        print(
            f"  ({name:2s})          " + "   ".join(f"{median[(name, t)]:11.3f}" for t in threads)
        )
    best = {name: min(threads, key=lambda t: median[(name, t)]) for name in names}
    fast = {name: median[(name, best[name])] for name in names}
    print("\nbest thread count: " + ", ".join(f"({n}) {best[n]}" for n in names))
    ratios = {"a/d": fast["a"] / fast["d"], "a/d0": fast["a"] / fast["d0"]}
    if "b" in fast:
        ratios["b/a"] = fast["b"] / fast["a"]
    if "c" in fast:
        ratios["c/a"] = fast["c"] / fast["a"]
    targets = {"b/a": (">=", 10), "c/a": (">=", 4), "a/d": ("<=", 3)}
    print("\nratios (each at its best thread count)")
    for key, value in ratios.items():
        goal = targets.get(key)
        ok = "" if goal is None else (" ok" if eval(f"{value} {goal[0]} {goal[1]}") else " MISSED")
        target = "" if goal is None else f"  (target {goal[0]} {goal[1]}){ok}"
        print(f"  {key:5s} {value:7.2f}{target}")
    same_thread = {t: median[("a", t)] / median[("d", t)] for t in threads}
    print("  a/d at equal threads: " + ", ".join(f"{t}: {v:.2f}" for t, v in same_thread.items()))

    print("\nbest strength and CV accuracy")
    for name in ("a", "b", "c"):
        if name in info:
            extra = info[name]
            print(
                f"  ({name}) strength {extra['best_strength']:.3g}  "
                f"accuracy {extra['best_cv_accuracy']:.4f}"
            )
    if "b" in info:
        gap = np.max(
            np.abs(np.subtract(info["a"]["mean_test_scores"], info["b"]["mean_test_scores"]))
        )
        print(f"  largest |(a) - (b)| mean accuracy over the grid: {gap:.2e}")
    if args.json:
        payload = {
            "machine": {
                "platform": platform.platform(),
                "processor": platform.processor(),
                "torch": torch.__version__,
                "cpu_count": torch.get_num_threads(),
            },
            "problem": {
                "data": "load_breast_cancer",
                "hidden": HIDDEN,
                "epochs": EPOCHS,
                "batch_size": BATCH,
                "learning_rate": LR,
                "strengths": STRENGTHS.tolist(),
                "folds": 5,
            },
            "seconds": {f"{n}@{t}": v for (n, t), v in times.items()},
            "median": {f"{n}@{t}": v for (n, t), v in median.items()},
            "best_threads": best,
            "ratios": ratios,
            "results": info,
        }
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump(payload, handle, indent=2)


if __name__ == "__main__":
    main()
