"""PyTorch Lightning: regularize a LightningModule with ``ShrinkageCallback``.

The module below knows nothing about regularization; the callback attaches a plan to the
optimizer that ``configure_optimizers`` returns and logs, through the Trainer's logger,
``shrinkage/penalty`` and every weight's ``l2_norm`` and ``zero_fraction``::

    trainer = L.Trainer(callbacks=[ShrinkageCallback({"*": L2(1e-3)}, mode="loss")], ...)

On scikit-learn's digits (64 -> 128 ReLU -> 10, Adam), it compares no penalty, L2 in
``loss`` mode (the penalty enters the loss Lightning backpropagates) and L1 in
``proximal`` mode (exact zeros), and reads the penalty back from the CSV logger's file.

Run (``pip install shrinkage[lightning]``)::

    python examples/lightning_callback.py          # 10-20 s on 2 cores, imports included
    python examples/lightning_callback.py --quick  # the smoke run of the tests
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared digits helpers

import lightning.pytorch as L  # noqa: E402
from cnn_digits import accuracy, digits, table  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402

from shrinkage import L1, L2  # noqa: E402
from shrinkage.integrations.lightning import ShrinkageCallback  # noqa: E402


class DigitsMLP(L.LightningModule):
    """64 -> 128 ReLU -> 10, cross-entropy, Adam: an ordinary LightningModule."""

    def __init__(self, lr: float = 3e-3) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        self.lr = lr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("data_loss", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def run(label, callback, data, epochs, logdir, seed=0) -> dict:
    torch.manual_seed(seed)
    module = DigitsMLP()
    loader = DataLoader(
        TensorDataset(data["X_train"], data["y_train"]),
        batch_size=32,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    logger = CSVLogger(logdir, name=label.replace(" ", "_"), version=0)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=logger,
        log_every_n_steps=5,
        callbacks=[callback] if callback is not None else [],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=logdir,
    )
    trainer.fit(module, loader)
    with open(Path(logger.log_dir) / "metrics.csv", newline="") as f:
        logged = [r for r in csv.DictReader(f) if r.get("shrinkage/penalty")]
    w = [module.net[0].weight.detach(), module.net[2].weight.detach()]
    return {
        "label": label,
        "val": accuracy(module.net, data["X_val"], data["y_val"]),
        "test": accuracy(module.net, data["X_test"], data["y_test"]),
        "abs_w": float(sum(x.abs().sum() for x in w)),
        "zeros": float(sum((x == 0).sum() for x in w) / sum(x.numel() for x in w)),
        "logged": len(logged),
        "first_penalty": float(logged[0]["shrinkage/penalty"]) if logged else float("nan"),
        "last_penalty": float(logged[-1]["shrinkage/penalty"]) if logged else float("nan"),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two epochs")
    parser.add_argument("--logdir", help="keep the CSV logs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\).*")
    epochs = 2 if args.quick else 30
    data = digits(images=False)
    started = time.perf_counter()
    print(f"digits, 64 -> 128 ReLU -> 10, Adam(3e-3), batches of 32, {epochs} epochs, Lightning")
    l2 = ShrinkageCallback({"*": L2(1e-3)}, mode="loss")
    l1 = ShrinkageCallback({"*": L1(3e-4)}, mode="proximal")
    with tempfile.TemporaryDirectory() as scratch:
        logdir = args.logdir or scratch
        rows = [
            run("none", None, data, epochs, logdir),
            run("L2 loss", l2, data, epochs, logdir),
            run("L1 proximal", l1, data, epochs, logdir),
        ]
    print()
    print(l1.regularizer.describe())
    print()
    print(
        table(
            rows,
            [
                ("callback", "label", ""),
                ("val acc", "val", ".3f"),
                ("test acc", "test", ".3f"),
                ("sum |W|", "abs_w", ".1f"),
                ("zeros in W", "zeros", ".3f"),
                ("rows logged", "logged", "d"),
                ("penalty first", "first_penalty", ".4f"),
                ("penalty last", "last_penalty", ".4f"),
            ],
        )
    )
    print()
    print(f"total time {time.perf_counter() - started:.1f} s")
    return {"rows": rows}


if __name__ == "__main__":
    main()
