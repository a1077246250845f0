"""Activity regularization: a penalty on a hidden layer's *output*, not on its weights.

Keras's ``Dense(128, activation="relu", activity_regularizer=L1(a))`` adds
``a * sum(|h|) / batch_size`` to the loss, ``h`` the layer's output after its activation.
Here the same is a plan rule that selects a module by name::

    Plan(activity={"hidden_act": L1(a)})

The penalty is recorded by a forward hook and returned by ``Regularizer.loss()`` in every
apply mode (it depends on the batch, so it always goes through autograd). An L1 activity
penalty makes the hidden representation sparse: fewer units fire for each image.

Run::

    python examples/activity_regularization.py          # well under a minute on 2 cores
    python examples/activity_regularization.py --quick  # the smoke run of the tests
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared digits helpers

from cnn_digits import accuracy, choose, digits, table  # noqa: E402

from shrinkage import L1, Plan, Regularizer  # noqa: E402
from shrinkage.training import fit_model, make_loss, make_optimizer  # noqa: E402


def make_net() -> nn.Sequential:
    """64 -> 128 (ReLU) -> 10, with named modules so a plan can select the hidden output."""
    return nn.Sequential(
        OrderedDict(
            hidden=nn.Linear(64, 128),
            hidden_act=nn.ReLU(),
            output=nn.Linear(128, 10),
        )
    )


@torch.no_grad()
def hidden_stats(model: nn.Sequential, X: torch.Tensor) -> dict[str, float]:
    """Mean activation, share of exact zeros and active units per image of the hidden layer."""
    h = model.hidden_act(model.hidden(X))
    return {
        "mean_h": float(h.mean()),
        "zeros": float((h == 0).float().mean()),
        "active": float((h > 0).sum(dim=1).float().mean()),
        "dead": int(((h > 0).sum(dim=0) == 0).sum()),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs, one seed")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    epochs, seeds = (3, [0]) if args.quick else (40, [0, 1, 2])
    grid = [0.0, 1e-3] if args.quick else [0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2]
    data = digits(images=False)
    loss_fn = make_loss("classification", 10)
    started = time.perf_counter()
    print(
        f"digits, 64 -> 128 ReLU -> 10; L1 activity penalty on the hidden output; "
        f"SGD(0.05, momentum 0.9), {epochs} epochs, mean of {len(seeds)} seed(s); "
        f"torch threads = {torch.get_num_threads()}"
    )
    print()
    print(Plan(activity={"hidden_act": L1(1e-3)}).describe(make_net()))

    rows = []
    for strength in grid:
        plan = Plan(activity={"hidden_act": L1(strength)}) if strength else None
        runs = []
        for seed in seeds:
            torch.manual_seed(seed)
            model = make_net()
            regularizer = Regularizer(model, plan, "gradient")
            fit_model(
                model,
                data["X_train"],
                data["y_train"],
                loss_fn=loss_fn,
                regularizer=regularizer,
                optimizer=make_optimizer("sgd", model.parameters(), 0.05),
                epochs=epochs,
                batch_size=32,
                shuffle_generator=torch.Generator().manual_seed(seed),
            )
            regularizer.remove()
            model.eval()
            runs.append(
                {
                    **{
                        p: accuracy(model, data[f"X_{p}"], data[f"y_{p}"])
                        for p in ("train", "val", "test")
                    },
                    **hidden_stats(model, data["X_test"]),
                }
            )
        rows.append(
            {"lambda": strength, **{k: float(np.mean([r[k] for r in runs])) for k in runs[0]}}
        )
    best = choose(rows, len(data["y_val"]))
    for row in rows:
        row["chosen"] = "<- best val" if row is best else ""
    print()
    print("Hidden-layer statistics on the test split (128 units):")
    print(
        table(
            rows,
            [
                ("L1 activity", "lambda", "g"),
                ("train acc", "train", ".3f"),
                ("val acc", "val", ".3f"),
                ("test acc", "test", ".3f"),
                ("mean h", "mean_h", ".3f"),
                ("zeros in h", "zeros", ".3f"),
                ("active units / image", "active", ".1f"),
                ("never active", "dead", ".1f"),
                ("", "chosen", ""),
            ],
        )
    )
    print()
    print(f"total time {time.perf_counter() - started:.1f} s")
    return {"rows": rows}


if __name__ == "__main__":
    main()
