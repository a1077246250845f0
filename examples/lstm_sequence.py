"""An LSTM on a generated sequence task: penalties on the input vs the recurrent kernels.

Keras gives a recurrent layer a ``kernel_regularizer`` (the input kernel) and a
``recurrent_regularizer``. In torch they are separate parameters, ``weight_ih_l0`` and
``weight_hh_l0``, so they are two plan rules::

    Plan({"*.weight_ih*": L2(a), "*.weight_hh*": L2(b)})

The task: sequences of 20 steps with 8 channels of Gaussian noise; the label is whether
channel 0 summed over the *first five* steps is positive. Seven channels are distractors
(what the input kernel should learn to ignore) and the answer must be carried for 15 steps
(what the recurrent kernel is for). 300 training sequences: an unregularized LSTM
memorizes them.

The same choice (which kernel, how strong) is then made by cross-validation with
``shrinkage.search.SearchCV(model_factory=Classifier, placements=((0,), (1,), "all"))``:
every candidate LSTM (strength x kernel x fold) trains at once as one fused network, the
time loop shared and the gate products of all candidates batched (``torch.func`` cannot
run ``nn.LSTM`` at all). ``--compiled`` turns on the optional compiled LSTM kernel
(``shrinkage.search.engine.enable_compiled_lstm``: needs a C++ compiler and ninja, builds
in about 30 s the first time).

Run::

    python examples/lstm_sequence.py             # ~28 s on one idle thread, imports included
    python examples/lstm_sequence.py --quick     # a few seconds: the smoke run of the tests
    python examples/lstm_sequence.py --compiled  # the search with the compiled LSTM kernel
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from shrinkage import L1, L2, Plan, Regularizer
from shrinkage.estimators import MLPClassifier
from shrinkage.search import SearchCV
from shrinkage.search.engine import enable_compiled_lstm
from shrinkage.training import fit_model, make_loss, make_optimizer, make_score

STEPS, CHANNELS, MEMORY = 20, 8, 5
LOSS = make_loss("classification", 2)
SCORE = make_score("classification", 2)


def sequences(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences ``(n, 20, 8)`` and labels ``sum(x[:, :5, 0]) > 0`` (as 0./1.)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, STEPS, CHANNELS, generator=g)
    return x, (x[:, :MEMORY, 0].sum(dim=1) > 0).float()


class Classifier(nn.Module):
    """LSTM(8 -> 32) and a Linear head on the last hidden state (one logit)."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.rnn = nn.LSTM(CHANNELS, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def run(plan: Plan | None, data: dict, *, epochs: int, seed: int) -> dict:
    torch.manual_seed(seed)
    model = Classifier()
    regularizer = Regularizer(model, plan, "gradient")
    fit_model(
        model,
        data["X_train"],
        data["y_train"],
        loss_fn=LOSS,
        regularizer=regularizer,
        optimizer=make_optimizer("adam", model.parameters(), 1e-2),
        epochs=epochs,
        batch_size=32,
        shuffle_generator=torch.Generator().manual_seed(seed),
    )
    model.eval()
    with torch.no_grad():
        scores = {p: SCORE(model(data[f"X_{p}"]), data[f"y_{p}"]) for p in ("train", "val", "test")}
    w_ih, w_hh = model.rnn.weight_ih_l0.detach(), model.rnn.weight_hh_l0.detach()
    return {
        **scores,
        "norm_ih": float(w_ih.norm()),
        "norm_hh": float(w_hh.norm()),
        # Of the input kernel's mass, the share on the one channel that carries the signal
        # (1/8 = 0.125 when the distractors get as much as the signal).
        "signal": float(w_ih[:, 0].abs().sum() / w_ih.abs().sum()),
    }


#: SearchCV's placements are indices of the penalizable weights, in registration order
KERNELS = {(0,): "input kernel", (1,): "recurrent kernel", "all": "every kernel"}


def search_kernel(data: dict, *, epochs: int, strengths: list[float]) -> tuple[list, dict]:
    """Strength x kernel chosen by 3-fold cross-validation on the training sequences, every
    candidate in one fused stack; returns the rows of ``cv_results_`` and ``chunking_``."""
    search = SearchCV(
        MLPClassifier(optimizer="adam", learning_rate=1e-2, epochs=epochs, batch_size=32),
        strengths=strengths,
        placements=tuple(KERNELS),
        cv=3,
        model_factory=Classifier,
        refit=False,
        random_state=0,
    ).fit(data["X_train"].numpy(), data["y_train"].numpy())
    r = search.cv_results_
    rows = [
        {
            "kernel": KERNELS[params["placement"]],
            "lambda": f"{params['strength']:g}",
            "val": float(r["mean_test_score"][i]),
            "std": float(r["std_test_score"][i]),
            "chosen": "<- best" if i == search.best_index_ else "",
        }
        for i, params in enumerate(r["params"])
    ]
    return rows, search.chunking_


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    cells = [[c[0] for c in columns]] + [
        [format(r[key], fmt) if fmt else str(r[key]) for _, key, fmt in columns] for r in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for i, line in enumerate(cells):
        print(
            "  ".join(
                c.ljust(w) if not columns[j][2] else c.rjust(w)
                for j, (c, w) in enumerate(zip(line, widths))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few epochs, one seed")
    parser.add_argument("--compiled", action="store_true", help="the compiled LSTM kernel")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    epochs, seeds = (1, [0]) if args.quick else (40, [0, 1])
    grid = [1e-3] if args.quick else [1e-4, 1e-3, 1e-2]
    sizes = (100, 100, 200) if args.quick else (300, 500, 2000)
    X_train, y_train = sequences(sizes[0], 1)
    X_val, y_val = sequences(sizes[1], 2)
    X_test, y_test = sequences(sizes[2], 3)
    data = {
        "X_train": X_train,
        "y_train": y_train,
        "X_val": X_val,
        "y_val": y_val,
        "X_test": X_test,
        "y_test": y_test,
    }
    started = time.perf_counter()
    print(
        f"LSTM(8 -> 32) on {len(y_train)} train / {len(y_val)} validation / {len(y_test)} test "
        f"sequences of {STEPS} steps; Adam(0.01), {epochs} epochs, mean of {len(seeds)} "
        f"seed(s); torch threads = {torch.get_num_threads()}"
    )
    example = Plan({"*.weight_ih*": L2(1e-3), "*.weight_hh*": L2(1e-2)})
    print()
    print("A plan with different penalties on the input and the recurrent kernel:")
    print(example.describe(Classifier()))

    candidates: list[tuple[str, float, Plan | None]] = [("none", 0.0, None)]
    candidates += [("input L2", s, Plan({"*.weight_ih*": L2(s)})) for s in grid]
    candidates += [("input L1", s, Plan({"*.weight_ih*": L1(s)})) for s in grid]
    candidates += [("recurrent L2", s, Plan({"*.weight_hh*": L2(s)})) for s in grid]
    rows = []

    def evaluate(label: str, strength: object, plan: Plan | None) -> dict:
        runs = [run(plan, data, epochs=epochs, seed=seed) for seed in seeds]
        row = {"label": label, "lambda": str(strength)}
        row.update({k: float(np.mean([r[k] for r in runs])) for k in runs[0]})
        rows.append(row)
        return row

    for label, strength, plan in candidates:
        evaluate(label, f"{strength:g}", plan)
    # Both at once: the best input and recurrent strengths on validation, combined.
    best = {
        kind: max((r for r in rows if r["label"] == kind), key=lambda r: r["val"])
        for kind in ("input L2", "recurrent L2")
    }
    a, b = float(best["input L2"]["lambda"]), float(best["recurrent L2"]["lambda"])
    evaluate(
        "input L2 + recurrent L2",
        f"{a:g} / {b:g}",
        Plan({"*.weight_ih*": L2(a), "*.weight_hh*": L2(b)}),
    )
    chosen = max(rows, key=lambda r: r["val"])
    for row in rows:
        row["chosen"] = "<- best val" if row is chosen else ""

    columns = [
        ("penalty", "label", ""),
        ("lambda", "lambda", ""),
        ("train acc", "train", ".3f"),
        ("val acc", "val", ".3f"),
        ("test acc", "test", ".3f"),
        ("||W_ih||", "norm_ih", ".2f"),
        ("||W_hh||", "norm_hh", ".2f"),
        ("W_ih share on signal", "signal", ".3f"),
        ("", "chosen", ""),
    ]
    print()
    print_table(rows, columns)

    if args.compiled:
        enable_compiled_lstm(True)
    search_grid = [1e-3, 1e-2] if args.quick else [1e-4, 1e-3, 1e-2]
    print()
    print(
        f"The same choice by SearchCV(model_factory=Classifier): {len(search_grid)} strengths "
        f"x {len(KERNELS)} kernels x 3 folds of the training sequences, all at once:"
    )
    search_started = time.perf_counter()
    search_rows, chunking = search_kernel(data, epochs=epochs, strengths=search_grid)
    print(
        f"path: {chunking['path']} ({chunking['path_reason']}); "
        f"{chunking['n_candidates']} candidates in {time.perf_counter() - search_started:.1f} s"
    )
    print_table(
        search_rows,
        [
            ("penalized", "kernel", ""),
            ("L2 lambda", "lambda", ""),
            ("mean val acc", "val", ".3f"),
            ("std", "std", ".3f"),
            ("", "chosen", ""),
        ],
    )
    print()
    print(f"total time {time.perf_counter() - started:.1f} s")
    return {"rows": rows, "search": search_rows, "search_path": chunking["path"]}


if __name__ == "__main__":
    main()
