"""Per-layer strengths by successive halving inside the stack, against the grid and Optuna.

Four bundled data sets (scikit-learn's breast_cancer, digits, wine: accuracy; diabetes:
R², target standardized with the training rows' mean and deviation), each split once into
80% for the search and a held-out 20% (stratified for classification). An MLP with three
hidden layers (``--hidden``, default 32-32-32, ReLU), Adam, ``--epochs`` epochs of
minibatches of 32; 5 folds; L2; one run, one torch thread. Every method gets the same
folds, the same fold seeds and the same refit seed (``random_state=0``):

(a) today's grid: ``SearchCV`` over 13 strengths (1e-6 … 1, two per decade) x placements
    all / hidden / output = 39 configurations, each trained the full ``--epochs``;
(b) ``SearchCV(per_layer=True, n_candidates=243, halving=True)`` with its defaults: the
    13 single-λ configurations (placement "all"), kept to the end (``keep_grid``), plus
    230 per-layer ones drawn from a scrambled Sobol sequence (log-uniform on [1e-6, 1], 0
    with probability 0.25), successive halving of those with ``eta = 3`` inside one stack
    (``--b-placements all hidden output`` keeps all 39 of (a)'s configurations instead);
(c) Optuna (TPE sampler, seed 0, ``MedianPruner()``) over the same per-layer space (one
    ``u_i`` in [0, 1) per layer, mapped by the very function the search samples with);
    each trial is one fit of its configuration on the 5 folds through this library's own
    training loop (a ``ChunkRun`` of 5 candidates), reporting the fold-mean validation
    score every ``--epochs / 10`` epochs to the pruner. It runs trials while the total
    epochs spent (candidates x epochs) is under (a)'s budget: that is (c). The same study
    then goes on to 243 trials, (c243), for the time at an equal number of configurations.

The budget is (a)'s: 39 configurations x 5 folds x ``--epochs`` candidate-epochs; each
method's spent epochs are reported. Each method's chosen configuration is refit on the
80% (an ``MLPClassifier`` / ``MLPRegressor`` with ``best_params_``) and scored on the 20%;
the standard error of (a)'s held-out score is the bootstrap one (1000 resamples of the
held-out rows).

Targets: (b)'s CV score >= (a)'s on at least 3 of 4 data sets and its held-out score not
below (a)'s by more than one standard error on any; (b)'s wall time <= 2x (a)'s; (b) >= 5x
faster than Optuna at an equal number of configurations (c243 / b).

Optuna is the benchmark's dependency, not the library's: ``pip install optuna`` (or
``pip install -e ".[bench]"``; ``make bench`` installs it).

Run::

    python bench/per_layer.py                 # the full run (minutes per data set)
    python bench/per_layer.py --quick         # a smoke run: 2 data sets, few epochs
    python bench/per_layer.py --no-optuna --repeat 3 --json bench/results/per_layer-ab.json
                                              # (a) and (b) only, median of 3 alternations
    python bench/per_layer.py --stack-cost    # ms per candidate-epoch at 5 ... 1215 stacked
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.model_selection import train_test_split

from shrinkage.estimators import MLPClassifier, MLPRegressor
from shrinkage.search import CandidateSpec, ChunkRun, SearchCV, strength_from_unit

SEED = 0
FOLDS = 5
N_CANDIDATES = 243
ZERO_PROBABILITY = 0.25
LOW, HIGH = 1e-6, 1.0
PLACEMENTS = ("all", "hidden", "output")
DATASETS = {
    "breast_cancer": (load_breast_cancer, "classification"),
    "digits": (load_digits, "classification"),
    "wine": (load_wine, "classification"),
    "diabetes": (load_diabetes, "regression"),
}


def require_optuna():
    try:
        import optuna
    except ImportError:
        raise SystemExit(
            "bench/per_layer.py needs Optuna for method (c): pip install optuna "
            '(or pip install -e ".[bench]")'
        ) from None
    return optuna


def load(name):
    loader, task = DATASETS[name]
    X, y = loader(return_X_y=True)
    X = X.astype(np.float64)
    stratify = y if task == "classification" else None
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.2, random_state=SEED, stratify=stratify
    )
    if task == "regression":
        mean, std = y_tr.mean(), y_tr.std()
        y_tr, y_te = (y_tr - mean) / std, (y_te - mean) / std
    return X_tr, X_te, y_tr, y_te, task


def estimator(task, args, **params):
    cls = MLPClassifier if task == "classification" else MLPRegressor
    return cls(
        hidden_layer_sizes=tuple(args.hidden),
        epochs=args.epochs,
        batch_size=32,
        learning_rate=args.learning_rate,
        **params,
    )


def held_out(task, model, X_te, y_te):
    """The held-out score and the per-row pieces its bootstrap needs."""
    pred = model.predict(X_te)
    if task == "classification":
        return float(np.mean(pred == y_te)), (pred == y_te).astype(float)
    return float(model.score(X_te, y_te)), np.stack([y_te, pred])


def bootstrap_se(task, pieces, n=1000):
    rng = np.random.default_rng(SEED)
    size = pieces.shape[-1]
    values = []
    for _ in range(n):
        idx = rng.integers(0, size, size)
        if task == "classification":
            values.append(pieces[idx].mean())
        else:
            y, p = pieces[:, idx]
            values.append(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))
    return float(np.std(values))


def refit(task, args, params, seed, X_tr, y_tr, X_te, y_te):
    model = estimator(task, args, random_state=seed, **params).fit(X_tr, y_tr)
    return held_out(task, model, X_te, y_te)


def run_search(task, args, X_tr, y_tr, **options):
    search = SearchCV(
        estimator(task, args),
        cv=FOLDS,
        random_state=SEED,
        refit=False,
        n_threads=1,
        **options,
    )
    start = time.perf_counter()
    search.fit(X_tr, y_tr)
    return search, time.perf_counter() - start


def optuna_study(task, args, X_tr, y_tr, budget, n_trials):
    """Optuna TPE + MedianPruner over the per-layer space; each trial one 5-fold stack."""
    optuna = require_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    setup = SearchCV(estimator(task, args), cv=FOLDS, random_state=SEED, refit=False).prepare(
        X_tr, y_tr
    )
    n_layers = setup.n_layers
    interval = max(1, args.epochs // 10)
    steps = list(range(interval, args.epochs, interval)) + [args.epochs]
    spent = {"epochs": 0}

    def objective(trial):
        layers = tuple(
            (
                "l2",
                strength_from_unit(
                    trial.suggest_float(f"u{i}", 0.0, 1.0), LOW, HIGH, ZERO_PROBABILITY
                ),
            )
            for i in range(n_layers)
        )
        trial.set_user_attr("layers", layers)
        specs = [
            CandidateSpec(
                index=f,
                config=0,
                fold=f,
                seed=setup.seeds[f],
                kind="l2",
                strength=math.nan,
                l1_ratio=0.5,
                placement="all",
                epochs=args.epochs,
                layers=layers,
            )
            for f in range(FOLDS)
        ]
        run = ChunkRun(setup.data, specs)
        value = math.nan
        for step in steps:
            before = run.epoch
            run.train_to(step)
            spent["epochs"] += FOLDS * (run.epoch - before)
            value = float(np.mean([row["test_score"] for row in run.score()]))
            value = -math.inf if math.isnan(value) else value
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned
        return value

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=SEED),
        pruner=optuna.pruners.MedianPruner(),
    )
    start = time.perf_counter()
    at_budget = None
    for _ in range(n_trials):
        if at_budget is None and spent["epochs"] >= budget:
            at_budget = summary(study, time.perf_counter() - start, spent["epochs"])
        study.optimize(objective, n_trials=1)
    total = summary(study, time.perf_counter() - start, spent["epochs"])
    return at_budget or dict(total), total, setup.refit_seed


def summary(study, seconds, epochs):
    best = study.best_trial
    layers = best.user_attrs["layers"]
    params = {
        "penalty": "none",
        "strength": 0.0,
        "placement": "all",
        "layer_penalties": {i: ("l2", s) if s > 0 else None for i, (_, s) in enumerate(layers)},
    }
    return {
        "seconds": seconds,
        "trials": len(study.trials),
        "pruned": sum(t.state.name == "PRUNED" for t in study.trials),
        "epochs_spent": int(epochs),
        "best_cv": float(best.value),
        "best_layers": [s for _, s in layers],
        "params": params,
    }


def bench(name, args):
    X_tr, X_te, y_tr, y_te, task = load(name)
    out = {"rows_search": len(y_tr), "rows_held_out": len(y_te), "task": task}

    halving_options = dict(
        per_layer=True,
        placements=tuple(args.b_placements),
        n_candidates=args.candidates,
        zero_probability=ZERO_PROBABILITY,
        min_epochs=args.min_epochs,
    )
    # (a) and (b) alternate --repeat times (their results are identical every time): the
    # median wall time of each, so that load from other processes hits both alike.
    times_a, times_b = [], []
    for _ in range(args.repeat):
        grid, t = run_search(task, args, X_tr, y_tr, placements=PLACEMENTS)
        times_a.append(t)
        halving, t = run_search(task, args, X_tr, y_tr, **halving_options)
        times_b.append(t)
    t_a, t_b = statistics.median(times_a), statistics.median(times_b)
    n_grid = len(grid.cv_results_["params"])
    budget = n_grid * FOLDS * args.epochs
    score_a, pieces_a = refit(
        task, args, grid.best_params_, grid.refit_seed_, X_tr, y_tr, X_te, y_te
    )
    se = bootstrap_se(task, pieces_a)
    out["a_grid"] = {
        "seconds": t_a,
        "configurations": n_grid,
        "epochs_spent": budget,
        "best_cv": grid.best_score_,
        "best_params": {k: str(v) for k, v in grid.best_params_.items()},
        "held_out": score_a,
        "held_out_se": se,
    }

    r = halving.cv_results_
    score_b, _ = refit(
        task, args, halving.best_params_, halving.refit_seed_, X_tr, y_tr, X_te, y_te
    )
    out["b_halving"] = {
        "seconds": t_b,
        "configurations": len(r["params"]),
        "rungs": halving.rungs_,
        "survivors": [int((r["rung"] >= j).sum()) for j in range(len(halving.rungs_))],
        "epochs_spent": int(np.sum(r["rung_epochs"]) * FOLDS),
        "best_cv": halving.best_score_,
        "best_layers": r["param_layer_penalties"][halving.best_index_],
        "best_stage": r["stage"][halving.best_index_],
        "grid_configurations_kept": int((r["stage"] == "grid").sum()),
        "held_out": score_b,
    }

    out["a_grid"]["seconds_each"] = times_a
    out["b_halving"]["seconds_each"] = times_b
    out["checks"] = {
        "b_cv_ge_a": out["b_halving"]["best_cv"] >= out["a_grid"]["best_cv"],
        "b_held_out_within_se_of_a": score_b >= score_a - se,
        "b_wall_over_a": t_b / t_a,
    }
    if args.no_optuna:
        return out
    at_budget, total, seed = optuna_study(task, args, X_tr, y_tr, budget, args.candidates)
    for key, result in (("c_optuna", at_budget), ("c_optuna_243", total)):
        score, _ = refit(task, args, result.pop("params"), seed, X_tr, y_tr, X_te, y_te)
        out[key] = {**result, "held_out": score}
    out["checks"]["c243_wall_over_b"] = out["c_optuna_243"]["seconds"] / t_b
    out["checks"]["c243_trials"] = out["c_optuna_243"]["trials"]
    return out


def stack_cost(args):
    """Milliseconds per candidate-epoch of a digits-sized problem at several stack sizes."""
    from shrinkage.search.engine import StackedMLP, StackTrainer, TrainSettings

    X, y = load_digits(return_X_y=True)
    X = torch.as_tensor(X[:1150], dtype=torch.float32)
    y = torch.as_tensor(y[:1150])
    rows = torch.arange(len(y))
    settings = TrainSettings(
        task="classification", n_classes=10, batch_size=32, learning_rate=args.learning_rate
    )
    sizes = [64, *args.hidden, 10]
    out = {}
    for k in (5, 195, 600, 1215):
        stack = StackedMLP.from_seeds([0] * k, sizes)
        l2 = torch.full((k, len(sizes) - 1), 1e-4)
        trainer = StackTrainer(stack, X, y, [rows] * k, [0] * k, 0 * l2, l2, settings)
        trainer.run(1)
        start = time.perf_counter()
        trainer.run(2)
        out[k] = 1000 * (time.perf_counter() - start) / 2 / k
        print(f"{k:5d} stacked candidates: {out[k]:.2f} ms per candidate-epoch", flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--hidden", type=int, nargs=3, default=[32, 32, 32])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--candidates", type=int, default=N_CANDIDATES)
    parser.add_argument("--min-epochs", type=int, default=None)
    parser.add_argument(
        "--b-placements",
        nargs="+",
        default=["all"],
        help="(b)'s grid configurations, kept to the end (default: the 13 'all' ones)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="(a), (b) alternated: median")
    parser.add_argument("--no-optuna", action="store_true", help="only (a) and (b)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 data sets, 6 epochs")
    parser.add_argument(
        "--stack-cost", action="store_true", help="only: ms per candidate-epoch vs stack size"
    )
    parser.add_argument("--json", default="bench/results/per_layer.json")
    args = parser.parse_args()
    if args.quick:
        args.datasets = ["wine", "diabetes"]
        args.epochs, args.candidates = 6, 60
        args.json = args.json.replace(".json", "-quick.json")
    torch.set_num_threads(1)
    if args.stack_cost:
        stack_cost(args)
        return
    if not args.no_optuna:
        require_optuna()
    results = {
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": 1},
        "settings": {
            "hidden": args.hidden,
            "epochs": args.epochs,
            "learning_rate": args.learning_rate,
            "batch_size": 32,
            "folds": FOLDS,
            "candidates": args.candidates,
            "min_epochs": args.min_epochs,
            "b_placements": args.b_placements,
            "repeat": args.repeat,
        },
        "datasets": {},
    }
    header = (
        f"{'data set':14} {'method':12} {'wall s':>8} {'configs':>8} {'epochs':>9} "
        f"{'CV':>7} {'held-out':>9}"
    )
    print(header)
    for name in args.datasets:
        out = bench(name, args)
        results["datasets"][name] = out
        for key, label in (
            ("a_grid", "(a) grid"),
            ("b_halving", "(b) halving"),
            ("c_optuna", "(c) optuna"),
            ("c_optuna_243", "(c243)"),
        ):
            if key not in out:
                continue
            m = out[key]
            configs = m.get("configurations", m.get("trials"))
            print(
                f"{name:14} {label:12} {m['seconds']:8.1f} {configs:8d} "
                f"{m['epochs_spent']:9d} {m['best_cv']:7.4f} {m['held_out']:9.4f}"
            )
        c = out["checks"]
        c243 = f", wall c243/b {c['c243_wall_over_b']:.1f}" if "c243_wall_over_b" in c else ""
        print(
            f"{name:14} checks: CV b>=a {c['b_cv_ge_a']}, held-out b >= a - SE "
            f"({out['a_grid']['held_out_se']:.4f}) {c['b_held_out_within_se_of_a']}, "
            f"wall b/a {c['b_wall_over_a']:.2f}{c243}",
            flush=True,
        )
    checks = [d["checks"] for d in results["datasets"].values()]
    results["targets"] = {
        "b_cv_ge_a_on": f"{sum(c['b_cv_ge_a'] for c in checks)} of {len(checks)}",
        "b_held_out_within_one_se_on": (
            f"{sum(c['b_held_out_within_se_of_a'] for c in checks)} of {len(checks)}"
        ),
        "max_b_wall_over_a": max(c["b_wall_over_a"] for c in checks),
    }
    if not args.no_optuna:
        results["targets"]["min_c243_wall_over_b"] = min(c["c243_wall_over_b"] for c in checks)
    print(json.dumps(results["targets"], indent=1))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
