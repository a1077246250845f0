"""TensorBoard: watch L1 in proximal mode zero the weights, layer by layer.

A plain PyTorch loop on scikit-learn's digits (64 -> 128 ReLU -> 10, SGD with momentum)
with ``L1`` on every weight in ``proximal`` mode. Once per epoch::

    log_weights(writer, reg, epoch, histograms=True)

writes ``shrinkage/penalty``, ``shrinkage/l2_norm/<layer>``,
``shrinkage/zero_fraction/<layer>`` and the weight histograms; ``log_plan`` writes the
plan's table to the Text tab. The script reads the event file back with TensorBoard's own
``EventAccumulator`` and prints what TensorBoard would plot.

Run (``pip install shrinkage[tensorboard]``)::

    python examples/tensorboard_logging.py --logdir runs/l1   # then: tensorboard --logdir runs
    python examples/tensorboard_logging.py --quick            # the smoke run of the tests
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.tensorboard import SummaryWriter

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared digits helpers

from cnn_digits import accuracy, digits, table  # noqa: E402

from shrinkage import L1, Plan, Regularizer  # noqa: E402
from shrinkage.integrations.tensorboard import log_plan, log_weights  # noqa: E402


def train(logdir: str, epochs: int, strength: float, seed: int = 0) -> tuple[nn.Module, dict]:
    torch.manual_seed(seed)
    data = digits(images=False)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    reg = Regularizer(model, Plan({"*": L1(strength)}), mode="proximal").attach(opt)
    generator = torch.Generator().manual_seed(seed)
    X, y = data["X_train"], data["y_train"]
    with SummaryWriter(logdir) as writer:
        log_plan(writer, reg)
        for epoch in range(epochs + 1):
            log_weights(writer, reg, epoch, histograms=True)
            writer.add_scalar(
                "accuracy/validation", accuracy(model, data["X_val"], data["y_val"]), epoch
            )
            if epoch == epochs:
                break
            model.train()
            for batch in torch.randperm(len(X), generator=generator).split(32):
                opt.zero_grad()
                nn.functional.cross_entropy(model(X[batch]), y[batch]).backward()
                opt.step()
    reg.remove()
    return model, data


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three epochs")
    parser.add_argument("--logdir", help="where the event file goes (default: a temporary folder)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    epochs, strength = (3 if args.quick else 30), 1e-3
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        logdir = args.logdir or scratch
        model, data = train(logdir, epochs, strength)
        events = EventAccumulator(logdir, size_guidance={"scalars": 0, "histograms": 0})
        events.Reload()
        tags = events.Tags()
        series = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in tags["scalars"]}
        histograms = sorted(tags["histograms"])
    print(f"digits, 64 -> 128 ReLU -> 10, SGD(0.05, momentum 0.9), L1({strength:g}) proximal")
    print(f"scalars written: {', '.join(sorted(series))}")
    print(f"histograms written: {', '.join(histograms)}")
    print()
    shown = sorted({0, epochs // 3, 2 * epochs // 3, epochs})
    rows = [
        {
            "epoch": step,
            "penalty": series["shrinkage/penalty"][step],
            "norm0": series["shrinkage/l2_norm/0.weight"][step],
            "zeros0": series["shrinkage/zero_fraction/0.weight"][step],
            "norm2": series["shrinkage/l2_norm/2.weight"][step],
            "zeros2": series["shrinkage/zero_fraction/2.weight"][step],
            "val": series["accuracy/validation"][step],
        }
        for step in shown
    ]
    print("What TensorBoard plots, read back from the event file:")
    print(
        table(
            rows,
            [
                ("epoch", "epoch", "d"),
                ("penalty", "penalty", ".4f"),
                ("||W0||", "norm0", ".2f"),
                ("zeros W0", "zeros0", ".3f"),
                ("||W2||", "norm2", ".2f"),
                ("zeros W2", "zeros2", ".3f"),
                ("val acc", "val", ".3f"),
            ],
        )
    )
    test = accuracy(model, data["X_test"], data["y_test"])
    print()
    print(f"test accuracy {test:.3f}; total time {time.perf_counter() - started:.1f} s")
    if args.logdir:
        print(f"view it: tensorboard --logdir {args.logdir}")
    return {"rows": rows, "scalars": sorted(series), "histograms": histograms, "test": test}


if __name__ == "__main__":
    main()
