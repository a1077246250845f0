"""Structured sparsity that pays: group lasso (proximal) + ``compact`` on the digits MLP and CNN.

For each network, a group-lasso strength is chosen on the validation split (a small sweep,
the ``none`` row included; the largest strength within one standard error of the best
validation accuracy, see ``cnn_digits.choose``): group lasso on the rows of every hidden
layer (neurons of the
MLP, filters and neurons of the CNN), applied in proximal mode so whole rows become exact
zeros. The chosen network is then compacted and both versions are measured: parameter
count, CPU inference time (median of many runs, one torch thread, the two versions timed
in turn so background load hits both alike) for the whole test split in one batch and for
one image at a time, and test accuracy.

Run::

    python examples/compaction.py          # ~35 s of CPU on one thread (about a minute wall)
    python examples/compaction.py --quick  # a few seconds: the smoke run of the tests
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared digits helpers

from cnn_digits import (  # noqa: E402
    accuracy,
    choose,
    digits,
    group_lasso_plan,
    logit_differences,
    make_cnn,
    n_params,
    sweep,
    table,
    units,
)

from shrinkage import compact, dead_units  # noqa: E402
from shrinkage.models import MLP  # noqa: E402


def make_mlp() -> nn.Module:
    """64 -> 256 -> 256 -> 10, ReLU: 85.0k parameters, far more than digits needs."""
    return MLP(64, [256, 256], 10)


NETWORKS = {
    # name: (factory, flat inputs?, output layer (never pruned))
    "MLP 64-256-256-10": (make_mlp, True, "layers.2.weight"),
    "CNN (cnn_digits.py)": (make_cnn, False, "8.weight"),
}


@torch.no_grad()
def paired_inference_ms(models: list[nn.Module], X: torch.Tensor, repeats: int) -> list[float]:
    """Median wall time (ms) of ``model(X)`` for each model, the models timed in turn.

    Interleaving the runs (a, b, a, b, ...) exposes both versions to the same background
    load, so their ratio stays fair on a busy machine.
    """
    for model in models:
        model.eval()
        for _ in range(10):
            model(X)
    times: list[list[float]] = [[] for _ in models]
    for _ in range(repeats):
        for model, spent in zip(models, times):
            start = time.perf_counter()
            model(X)
            spent.append(time.perf_counter() - start)
    return [1e3 * statistics.median(spent) for spent in times]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs, a short sweep")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    epochs = 1 if args.quick else 40
    grid = [0.0, 1e-3] if args.quick else [0.0, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3]
    repeats_batch, repeats_one = (5, 20) if args.quick else (200, 2000)
    seeds = [0] if args.quick else [0, 1]
    started = time.perf_counter()
    print(
        f"Group lasso (rows, proximal), lambda chosen on validation (1-SE rule) from {grid} "
        f"(mean of {len(seeds)} seed(s), {epochs} epochs); inference: median of "
        f"{repeats_batch} runs (whole test split) / {repeats_one} runs (one image), "
        f"torch threads = {torch.get_num_threads()}, CPU; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    summary = []
    sweeps = {}
    for name, (factory, flat, output_layer) in NETWORKS.items():
        data = digits(images=not flat)
        rows = sweep(
            factory,
            [(name, s, group_lasso_plan(s, output_layer) if s else None, "proximal") for s in grid],
            data,
            epochs=epochs,
            seeds=seeds,
        )
        best = choose(rows, len(data["y_val"]), one_standard_error=True)
        sweeps[name] = rows
        print()
        print(f"{name}: validation sweep")
        for row in rows:
            row["chosen"] = "<- chosen" if row is best else ""
            row["zero"] = sum(int(m.sum()) for m in dead_units(row["models"][0]).values())
        print(
            table(
                rows,
                [
                    ("lambda", "lambda", "g"),
                    ("train acc", "train", ".3f"),
                    ("val acc", "val", ".3f"),
                    ("test acc", "test", ".3f"),
                    ("zero rows (seed 0)", "zero", "d"),
                    ("", "chosen", ""),
                ],
            )
        )
        model = best["models"][0]
        small = compact(model)
        X_test, y_test = data["X_test"], data["y_test"]
        one = X_test[:1]
        diff32, diff64 = logit_differences(model, small, X_test)
        batch_ms = paired_inference_ms([model, small], X_test, repeats_batch)
        one_ms = paired_inference_ms([model, small], one, repeats_one)
        for i, (label, net) in enumerate((("before", model), ("after compact", small))):
            summary.append(
                {
                    "network": name,
                    "lambda": best["lambda"],
                    "version": label,
                    "units": "/".join(map(str, units(net))),
                    "params": n_params(net),
                    "batch_ms": batch_ms[i],
                    "one_ms": one_ms[i],
                    "acc": accuracy(net, X_test, y_test),
                    "diff": f"{diff32:.1e} / {diff64:.0e}" if label != "before" else "",
                }
            )
    print()
    n_test = len(digits()["y_test"])
    print(f"Compaction at the chosen lambda (test split: {n_test} images; seed 0 model):")
    print(
        table(
            summary,
            [
                ("network", "network", ""),
                ("lambda", "lambda", "g"),
                ("version", "version", ""),
                ("units per layer", "units", ""),
                ("params", "params", "d"),
                (f"ms / {n_test} images", "batch_ms", ".3f"),
                ("ms / 1 image", "one_ms", ".4f"),
                ("test acc", "acc", ".4f"),
                ("max |dlogit| f32 / f64", "diff", ""),
            ],
        )
    )
    print()
    print(f"total time {time.perf_counter() - started:.1f} s")
    return {"summary": summary, "sweeps": sweeps}


if __name__ == "__main__":
    main()
