"""A small CNN on scikit-learn's digits (8x8 images), with and without weight regularization.

Every weight kernel of the network (two convolutions, two Linear layers) is penalized by
one plan; conv and Linear biases are not. The script compares

* no regularization,
* L2 on every kernel, lambda chosen on a validation split by
  ``shrinkage.search.SearchCV(model_factory=make_cnn)``, which trains every candidate CNN
  at once as one fused network (the batched engine's fused path: both convolutions and
  both Linear layers compute all candidates in one batched matrix product each),
* group lasso on the rows (conv filters, hidden neurons) in proximal mode, which sets
  whole filters and neurons to exact zeros; ``shrinkage.compact`` then removes them and
  the smaller network gives the same predictions.

Numbers are means over a few seeds (a single run of a CNN on 539 images is noisy).

Run::

    python examples/cnn_digits.py          # ~28 s on one idle thread, imports included
    python examples/cnn_digits.py --quick  # a few seconds: the smoke run of the tests

``examples/compaction.py`` reuses the data, the network and the training loop from here.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from shrinkage import L2, GroupLasso, Plan, Regularizer, compact, dead_units
from shrinkage.estimators import MLPClassifier
from shrinkage.search import SearchCV
from shrinkage.training import fit_model, make_loss, make_optimizer, make_score

LOSS = make_loss("classification", 10)
SCORE = make_score("classification", 10)


def digits(images: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    """Digits split 30% train / 21% validation / 49% test, stratified, standardized.

    A small training set, so that over-fitting (and what regularization does to it) shows.
    Standardization uses the training rows only: one mean and std for the images (pixels
    share a scale), one per pixel for the flat MLP input.
    """
    data = load_digits()
    X = data.images.astype(np.float32)[:, None] / 16.0
    y = data.target
    X_tr, X_rest, y_tr, y_rest = train_test_split(
        X, y, train_size=0.3, stratify=y, random_state=seed
    )
    X_val, X_te, y_val, y_te = train_test_split(
        X_rest, y_rest, train_size=0.3, stratify=y_rest, random_state=seed
    )
    if images:
        mean, std = X_tr.mean(), X_tr.std()
    else:
        X_tr, X_val, X_te = (a.reshape(len(a), -1) for a in (X_tr, X_val, X_te))
        mean, std = X_tr.mean(0), X_tr.std(0)
        std[std == 0] = 1.0  # pixels that are always blank in the training rows
    out = {}
    for name, X_part, y_part in (
        ("train", X_tr, y_tr),
        ("val", X_val, y_val),
        ("test", X_te, y_te),
    ):
        out[f"X_{name}"] = torch.tensor((X_part - mean) / std, dtype=torch.float32)
        out[f"y_{name}"] = torch.tensor(y_part, dtype=torch.long)
    return out


def make_cnn() -> nn.Sequential:
    """Conv(16) -> pool -> Conv(32) -> Linear(64) -> Linear(10): 13.7k parameters.

    The second convolution has no padding, so a filter that group lasso zeroes (a constant
    map) folds exactly into the next layer's bias when it is removed.
    """
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 16 x 4 x 4
        nn.Conv2d(16, 32, 3),  # 32 x 2 x 2
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 2 * 2, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def train(
    factory: Callable[[], nn.Module],
    plan: Plan | None,
    mode: str,
    data: dict[str, torch.Tensor],
    *,
    epochs: int,
    seed: int,
    learning_rate: float = 0.05,
) -> nn.Module:
    """SGD with momentum 0.9, batches of 32, the plan applied in ``mode``."""
    torch.manual_seed(seed)
    model = factory()
    regularizer = Regularizer(model, plan, mode)
    fit_model(
        model,
        data["X_train"],
        data["y_train"],
        loss_fn=LOSS,
        regularizer=regularizer,
        optimizer=make_optimizer("sgd", model.parameters(), learning_rate),
        epochs=epochs,
        batch_size=32,
        shuffle_generator=torch.Generator().manual_seed(seed),
    )
    regularizer.remove()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    return SCORE(model.eval()(X), y)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def units(model: nn.Module) -> list[int]:
    """Filters / neurons of every Conv and Linear layer, in order."""
    return [
        m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]


@torch.no_grad()
def logit_differences(model: nn.Module, small: nn.Module, X: torch.Tensor) -> tuple[float, float]:
    """max |logits(model) - logits(small)| in float32, and for both compacted in float64.

    Float32 differences are rounding (fewer terms in each sum, summed in another order):
    relative 1e-7 of the logits. In float64 they vanish, which shows the compact network
    computes the same function.
    """
    diff32 = float((small(X) - model(X)).abs().max())
    model64 = copy.deepcopy(model).double()
    small64 = compact(model64)
    diff64 = float((small64(X.double()) - model64(X.double())).abs().max())
    return diff32, diff64


def sweep(
    factory: Callable[[], nn.Module],
    candidates: list[tuple[str, float, Plan | None, str]],
    data: dict[str, torch.Tensor],
    *,
    epochs: int,
    seeds: list[int],
) -> list[dict]:
    """Train every (label, lambda, plan, mode) for every seed; mean accuracies per row."""
    rows = []
    for label, strength, plan, mode in candidates:
        scores = {"train": [], "val": [], "test": []}
        models = []
        for seed in seeds:
            model = train(factory, plan, mode, data, epochs=epochs, seed=seed)
            models.append(model)
            for part in scores:
                scores[part].append(accuracy(model, data[f"X_{part}"], data[f"y_{part}"]))
        rows.append(
            {
                "label": label,
                "lambda": strength,
                "plan": plan,
                "mode": mode,
                "models": models,
                **{part: float(np.mean(values)) for part, values in scores.items()},
            }
        )
    return rows


def choose(rows: list[dict], n_val: int, one_standard_error: bool = False) -> dict:
    """The lambda chosen on the validation split.

    Without ``one_standard_error``: the best mean validation accuracy (ties go to the
    larger lambda). With it, the one-standard-error rule (Breiman et al. 1984; glmnet's
    ``lambda.1se``): the largest lambda whose validation accuracy is within one binomial
    standard error ``sqrt(p (1 - p) / n_val)`` of the best ``p``. For group lasso the aim
    is the smallest network that is as accurate as the best up to validation noise.
    """
    best = max(row["val"] for row in rows)
    slack = (best * (1 - best) / n_val) ** 0.5 if one_standard_error else 0.0
    close = [row for row in rows if row["val"] >= best - slack - 1e-12]
    return max(close, key=lambda row: row["lambda"])


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A plain-text table: ``columns`` are (header, key, format)."""
    cells = [[header for header, _, _ in columns]]
    for row in rows:
        cells.append([format(row[key], fmt) if fmt else str(row[key]) for _, key, fmt in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    left = [not fmt for _, _, fmt in columns]  # text columns left, numbers right
    lines = [
        "  ".join(c.ljust(w) if text else c.rjust(w) for c, w, text in zip(line, widths, left))
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


ACCURACY_COLUMNS = [
    ("regularization", "label", ""),
    ("lambda", "lambda", "g"),
    ("train acc", "train", ".3f"),
    ("val acc", "val", ".3f"),
    ("test acc", "test", ".3f"),
    ("train-val gap", "gap", ".3f"),
    ("chosen", "chosen", ""),
]


def search_l2(
    data: dict[str, torch.Tensor], strengths: list[float], *, epochs: int, repeats: int
) -> tuple[float, list[dict], dict]:
    """The L2 strength with the best validation accuracy, by :class:`SearchCV`, and the
    path its stacks took (``chunking_["path"]``: ``fused`` for this CNN).

    ``model_factory=make_cnn`` fuses the candidates into one network; the estimator only
    carries the training settings (the same as :func:`train`). The folds are the train ->
    validation split ``repeats`` times, each with its own seed.
    """
    n_train = len(data["y_train"])
    X = torch.cat([data["X_train"], data["X_val"]]).numpy()
    y = torch.cat([data["y_train"], data["y_val"]]).numpy()
    split = (np.arange(n_train), np.arange(n_train, len(y)))
    search = SearchCV(
        MLPClassifier(optimizer="sgd", learning_rate=0.05, momentum=0.9, epochs=epochs),
        strengths=strengths,
        kinds=("l2",),
        cv=[split] * repeats,
        model_factory=make_cnn,
        refit=False,
        random_state=0,
    ).fit(X, y)
    results = search.cv_results_
    best = float(search.best_params_["strength"])
    rows = [
        {
            "lambda": float(strength),
            "train": float(results["mean_train_score"][i]),
            "val": float(results["mean_test_score"][i]),
            "std": float(results["std_test_score"][i]),
            "chosen": "<- best" if i == search.best_index_ else "",
        }
        for i, strength in enumerate(results["param_strength"])
    ]
    return best, rows, search.chunking_


def group_lasso_plan(strength: float, output_layer: str) -> Plan:
    """Group lasso on the rows of every kernel but the output layer's (its rows are the
    classes: they cannot be removed)."""
    return Plan({"*": GroupLasso(strength, groups="rows"), output_layer: None})


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs, one seed")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    epochs, seeds = (1, [0]) if args.quick else (40, [0, 1, 2])
    l2_grid = [0.0, 1e-3] if args.quick else [0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2]
    gl_grid = [1e-3] if args.quick else [2e-4, 5e-4, 1e-3, 2e-3]
    data = digits(images=True)
    n_val = len(data["y_val"])
    started = time.perf_counter()
    print(
        f"digits 8x8: {len(data['y_train'])} train / {n_val} validation / "
        f"{len(data['y_test'])} test images; CNN {units(make_cnn())} units, "
        f"{n_params(make_cnn())} parameters; SGD(0.05, momentum 0.9), {epochs} epochs, "
        f"mean of {len(seeds)} seed(s); torch threads = {torch.get_num_threads()}"
    )
    print()
    print("Plan for L2 (kernels penalized, biases not):")
    print(Plan(L2(1e-3)).describe(make_cnn()))
    print()

    print(
        f"L2 strength chosen by shrinkage.search.SearchCV(model_factory=make_cnn): all "
        f"{len(l2_grid)} x {len(seeds)} candidates train as one stack; train split -> "
        f"validation split, repeated with {len(seeds)} seed(s); strength 0 is the "
        "unregularized CNN:"
    )
    search_started = time.perf_counter()
    best_strength, search_rows, chunking = search_l2(
        data, l2_grid, epochs=epochs, repeats=len(seeds)
    )
    print(
        f"path: {chunking['path']} ({chunking['path_reason']}); "
        f"{time.perf_counter() - search_started:.1f} s"
    )
    print(
        table(
            search_rows,
            [
                ("L2 lambda", "lambda", "g"),
                ("mean train acc", "train", ".3f"),
                ("mean val acc", "val", ".3f"),
                ("std val acc", "std", ".3f"),
                ("", "chosen", ""),
            ],
        )
    )
    print()

    rows = sweep(
        make_cnn,
        [
            ("none", 0.0, None, "gradient"),
            ("L2, gradient", best_strength, Plan(L2(best_strength)), "gradient"),
        ]
        + [
            ("group lasso rows, proximal", s, group_lasso_plan(s, "8.weight"), "proximal")
            for s in gl_grid
        ],
        data,
        epochs=epochs,
        seeds=seeds,
    )
    best_gl = choose(rows[2:], n_val, one_standard_error=True)
    for row in rows:
        row["gap"] = row["train"] - row["val"]
        row["chosen"] = ""
    rows[1]["chosen"] = "<- SearchCV"
    best_gl["chosen"] = "<- validation, 1-SE rule"
    print(
        "Accuracy of each choice, retrained on the train split (lambda chosen on the "
        "validation split; group lasso by the one-standard-error rule; the test split only "
        "reports):"
    )
    print(table(rows, ACCURACY_COLUMNS))
    print()

    print(f"Compaction of the group-lasso CNNs at lambda = {best_gl['lambda']:g}:")
    compact_rows = []
    for seed, model in zip(seeds, best_gl["models"]):
        small = compact(model)
        diff, diff64 = logit_differences(model, small, data["X_test"])
        zero_rows = {name: int(mask.sum()) for name, mask in dead_units(model).items()}
        compact_rows.append(
            {
                "seed": seed,
                "units": "/".join(map(str, units(model))),
                "zero rows": "/".join(str(zero_rows[n]) for n in ("0", "3", "6", "8")),
                "units after": "/".join(map(str, units(small))),
                "params": n_params(model),
                "params after": n_params(small),
                "acc": accuracy(model, data["X_test"], data["y_test"]),
                "acc after": accuracy(small, data["X_test"], data["y_test"]),
                "diff32": diff,
                "diff64": diff64,
            }
        )
    print(
        table(
            compact_rows,
            [
                ("seed", "seed", ""),
                ("units", "units", ""),
                ("zero rows", "zero rows", ""),
                ("units after", "units after", ""),
                ("params", "params", "d"),
                ("params after", "params after", "d"),
                ("test acc", "acc", ".3f"),
                ("test acc after", "acc after", ".3f"),
                ("max |dlogit| f32", "diff32", ".1e"),
                ("max |dlogit| f64", "diff64", ".1e"),
            ],
        )
    )
    print()
    print(f"total time {time.perf_counter() - started:.1f} s")
    return {
        "search": search_rows,
        "rows": rows,
        "compaction": compact_rows,
        "best_l2": best_strength,
        "best_gl": best_gl,
        "search_path": chunking["path"],
    }


if __name__ == "__main__":
    main()
