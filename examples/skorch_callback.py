"""skorch: regularize a skorch net with the ``Shrinkage`` callback, and tune it with sklearn.

The callback is a parameter of the net like any other, so scikit-learn's
``GridSearchCV`` tunes the plan through skorch's ``callbacks__<name>__<param>``::

    net = RegularizedNetClassifier(MLP, callbacks=[("shrinkage", Shrinkage(L2(1e-4), "loss"))])
    GridSearchCV(net, {"callbacks__shrinkage__plan": [L2(1e-4), L2(1e-3), L2(1e-2)]}, cv=3)

``RegularizedNetClassifier`` is skorch's ``NeuralNetClassifier`` whose training loss
includes the penalty (needed for ``mode="loss"``); ``gradient``, ``decoupled`` and
``proximal`` work with any skorch net. The ``penalty`` the callback records in
``net.history`` is a column of skorch's epoch table.

Run (``pip install shrinkage[skorch]``)::

    python examples/skorch_callback.py          # ~12 s on 2 cores
    python examples/skorch_callback.py --quick  # the smoke run of the tests
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV
from skorch import NeuralNetClassifier
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared digits helpers

from cnn_digits import digits, table  # noqa: E402

from shrinkage import L1, L2  # noqa: E402
from shrinkage.integrations.skorch import RegularizedNetClassifier, Shrinkage  # noqa: E402


class MLP(nn.Module):
    """64 -> 128 ReLU -> 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(64, 128)
        self.output = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(torch.relu(self.hidden(x)))


def make_net(cls: type, callback: Shrinkage | None, epochs: int, **kwargs) -> NeuralNetClassifier:
    torch.manual_seed(0)
    return cls(
        MLP,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=3e-3,
        max_epochs=epochs,
        batch_size=32,
        train_split=None,
        callbacks=[("shrinkage", callback)] if callback is not None else None,
        **{"verbose": 0, **kwargs},
    )


def weight_row(label: str, net: NeuralNetClassifier, data: dict) -> dict:
    w = [net.module_.hidden.weight.detach(), net.module_.output.weight.detach()]
    return {
        "label": label,
        "val": net.score(data["X_val"], data["y_val"]),
        "test": net.score(data["X_test"], data["y_test"]),
        "abs_w": float(sum(x.abs().sum() for x in w)),
        "zeros": float(sum((x == 0).sum() for x in w) / sum(x.numel() for x in w)),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two epochs, a two-value grid")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    epochs, cv = (2, 2) if args.quick else (30, 3)
    grid = [1e-4, 1e-2] if args.quick else [1e-5, 1e-4, 1e-3, 1e-2]
    data = {k: v.numpy() for k, v in digits(images=False).items()}
    started = time.perf_counter()
    print(f"digits, 64 -> 128 ReLU -> 10, Adam(3e-3), batches of 32, {epochs} epochs, skorch")
    print()
    print("One net with L2 in loss mode; PrintLog shows the penalty column:")
    net = make_net(
        RegularizedNetClassifier, Shrinkage(L2(1e-3), "loss"), min(epochs, 5), verbose=1
    ).fit(data["X_train"], data["y_train"])
    history = {"penalty": net.history[:, "penalty"], "train_loss": net.history[:, "train_loss"]}

    print()
    print(f"GridSearchCV over callbacks__shrinkage__plan, {cv}-fold, on the training rows:")
    search = GridSearchCV(
        make_net(RegularizedNetClassifier, Shrinkage(L2(1e-4), "loss"), epochs),
        {"callbacks__shrinkage__plan": [L2(s) for s in grid]},
        cv=cv,
    ).fit(data["X_train"], data["y_train"])
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        best = "  <- best" if params == search.best_params_ else ""
        print(f"  {params['callbacks__shrinkage__plan']!r:>16}  CV accuracy {score:.3f}{best}")
    best_plan = search.best_params_["callbacks__shrinkage__plan"]

    train = data["X_train"], data["y_train"]
    plain = make_net(NeuralNetClassifier, None, epochs).fit(*train)
    # Outside loss mode any skorch net will do.
    lasso = make_net(NeuralNetClassifier, Shrinkage({"*": L1(3e-4)}, "proximal"), epochs)
    rows = [
        weight_row("none", plain, data),
        weight_row(f"{best_plan!r}, loss (CV)", search.best_estimator_, data),
        weight_row("L1(3e-4), proximal", lasso.fit(*train), data),
    ]
    print()
    print(
        table(
            rows,
            [
                ("net", "label", ""),
                ("val acc", "val", ".3f"),
                ("test acc", "test", ".3f"),
                ("sum |W|", "abs_w", ".1f"),
                ("zeros in W", "zeros", ".3f"),
            ],
        )
    )
    print()
    print(f"total time {time.perf_counter() - started:.1f} s")
    return {
        "rows": rows,
        "history": history,
        "grid": [float(np.round(s, 8)) for s in grid],
        "best": best_plan,
    }


if __name__ == "__main__":
    main()
