"""The Lightning callback: a Trainer run equals the plain-torch loop in every mode, and logs."""

import copy
import csv

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

L = pytest.importorskip("lightning.pytorch")
from lightning.pytorch.loggers import CSVLogger  # noqa: E402

from shrinkage import L1, L2, Plan, Regularizer, ShrinkageError  # noqa: E402
from shrinkage.integrations.lightning import ShrinkageCallback  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers"),
    pytest.mark.filterwarnings("ignore:.*The number of training batches"),
    pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\)"),
]

EPOCHS, BATCH, ROWS = 2, 8, 32  # 8 optimizer steps


def rows():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(ROWS, 4, generator=g)
    y = 2 * X[:, :1] - X[:, 1:2] + 0.1 * torch.randn(ROWS, 1, generator=g)
    return X, y


def loader():
    return DataLoader(TensorDataset(*rows()), batch_size=BATCH, shuffle=False)


class Net(L.LightningModule):
    def __init__(self, output="tensor", manual=False, add_penalty_myself=None):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
        self.output = output
        self.automatic_optimization = not manual
        self.add_penalty_myself = add_penalty_myself

    def forward(self, x):
        return self.body(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        if not self.automatic_optimization:
            opt = self.optimizers()
            opt.zero_grad()
            if self.add_penalty_myself is not None:
                loss = loss + self.add_penalty_myself.regularizer.loss()
            self.manual_backward(loss)
            opt.step()
            return None
        return {"loss": loss, "rows": len(x)} if self.output == "dict" else loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.02)


def fit(module, callback, tmp_path, logger=False, **kwargs):
    trainer = L.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        devices=1,
        logger=logger,
        callbacks=[callback] if callback is not None else [],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kwargs,
    )
    trainer.fit(module, loader())
    return trainer


def plain_loop(module, plan=None, mode="gradient"):
    """The loop the README shows, on the same data in the same order."""
    opt = module.configure_optimizers()
    reg = Regularizer(module, plan, mode).attach(opt) if plan is not None else None
    for _ in range(EPOCHS):
        for x, y in loader():
            opt.zero_grad()
            loss = nn.functional.mse_loss(module(x), y)
            if reg is not None:
                loss = loss + reg.loss()
            loss.backward()
            opt.step()
    if reg is not None:
        reg.remove()
    return module


def max_gap(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


ACTIVITY = {"body.1": L1(0.05)}
CASES = [
    ("loss", Plan(L2(0.05))),
    ("gradient", Plan(L2(0.05))),
    ("decoupled", Plan(L2(0.05))),
    ("proximal", Plan({"*": L1(0.02)})),
    ("loss", Plan(L2(0.05), activity=ACTIVITY)),
    ("gradient", Plan(L2(0.05), activity=ACTIVITY)),
    ("proximal", Plan({"*": L1(0.02)}, activity=ACTIVITY)),
]
CASE_IDS = [
    "loss",
    "gradient",
    "decoupled",
    "proximal",
    "loss+activity",
    "gradient+activity",
    "proximal+activity",
]


@pytest.mark.parametrize(("mode", "plan"), CASES, ids=CASE_IDS)
def test_trainer_equals_the_plain_torch_loop(mode, plan, tmp_path):
    module = Net()
    reference, unregularized = copy.deepcopy(module), copy.deepcopy(module)
    callback = ShrinkageCallback(plan, mode)
    fit(module, callback, tmp_path)
    plain_loop(reference, plan, mode)
    plain_loop(unregularized)
    assert max_gap(module, reference) < 1e-6
    assert max_gap(module, unregularized) > 1e-3  # the penalty did something
    # The hooks are gone after fit: the module trains as an unregularized one again.
    assert "training_step" not in module.__dict__
    assert callback.regularizer is not None and callback.regularizer.mode == mode


def test_dict_output_and_manual_optimization(tmp_path):
    plan = Plan(L2(0.05), activity=ACTIVITY)
    reference = Net()
    by_dict, manual = Net(output="dict"), Net(manual=True)
    by_dict.load_state_dict(reference.state_dict())
    manual.load_state_dict(reference.state_dict())
    fit(by_dict, ShrinkageCallback(plan, "loss"), tmp_path)
    # Manual optimization: the module adds the penalty itself.
    callback = ShrinkageCallback(plan, "loss", add_to_loss=False)
    manual.add_penalty_myself = callback
    fit(manual, callback, tmp_path)
    plain_loop(reference, plan, "loss")
    assert max_gap(by_dict, reference) < 1e-6
    assert max_gap(manual, reference) < 1e-6


def test_manual_optimization_in_gradient_mode_needs_nothing_more(tmp_path):
    reference, manual = Net(), Net(manual=True)
    manual.load_state_dict(reference.state_dict())
    fit(manual, ShrinkageCallback(L2(0.05), "gradient"), tmp_path)
    plain_loop(reference, Plan(L2(0.05)), "gradient")
    assert max_gap(manual, reference) < 1e-6


def test_logs_penalty_norms_and_sparsity_to_the_trainer_logger(tmp_path):
    module = Net()
    unregularized = copy.deepcopy(module)
    callback = ShrinkageCallback({"*": L1(2.0)}, "proximal")
    logger = CSVLogger(tmp_path, name="run", version=0)
    fit(module, callback, tmp_path, logger=logger, log_every_n_steps=1)
    with open(tmp_path / "run" / "version_0" / "metrics.csv", newline="") as f:
        logged = [row for row in csv.DictReader(f) if row.get("shrinkage/penalty")]
    steps = [int(row["step"]) for row in logged]
    assert steps == list(range(EPOCHS * ROWS // BATCH + 1))  # before each step, and the end
    penalty = [float(row["shrinkage/penalty"]) for row in logged]
    assert penalty[-1] == pytest.approx(float(callback.regularizer.value()), rel=1e-6)
    assert penalty[-1] < 0.5 * penalty[0]  # L1 in proximal mode shrinks the weights
    last = logged[-1]
    w0 = module.body[0].weight.detach()
    assert float(last["shrinkage/l2_norm/body.0.weight"]) == pytest.approx(
        float(w0.norm()), rel=1e-6
    )
    zeros = float(last["shrinkage/zero_fraction/body.0.weight"])
    assert zeros == pytest.approx(float((w0 == 0).float().mean()))
    assert zeros > 0.2 and float(logged[0]["shrinkage/zero_fraction/body.0.weight"]) == 0
    assert "shrinkage/l2_norm/body.0.bias" not in last  # biases are not penalized
    plain_loop(unregularized)
    assert module.body[0].weight.abs().sum() < 0.5 * unregularized.body[0].weight.abs().sum()


def test_log_every_n_steps_and_gradient_accumulation(tmp_path):
    logger = CSVLogger(tmp_path, name="run", version=0)
    callback = ShrinkageCallback(L2(0.01), log_every_n_steps=3)
    fit(Net(), callback, tmp_path, logger=logger, accumulate_grad_batches=2)
    with open(tmp_path / "run" / "version_0" / "metrics.csv", newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r.get("shrinkage/penalty")]
    assert steps == [0, 3, 4]  # 4 optimizer steps; each logged once; the end at step 4


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(ShrinkageError, match=r"^The 'mode' parameter must be one of .*'sgd'"):
        ShrinkageCallback(L2(0.1), "sgd")
    with pytest.raises(ShrinkageError, match="'log_every_n_steps' parameter .* Got -1 instead"):
        ShrinkageCallback(L2(0.1), log_every_n_steps=-1)
    with pytest.raises(ShrinkageError, match="manual optimization; pass add_to_loss=False"):
        fit(Net(manual=True), ShrinkageCallback(L2(0.1), "loss"), tmp_path)
    with pytest.raises(ShrinkageError, match="matches no parameter of Net; parameters are: body"):
        fit(Net(), ShrinkageCallback({"encoder.*": L2(0.1)}), tmp_path)
    module = Net(output="dict")
    module.training_step = lambda batch, batch_idx: 1.0
    with pytest.raises(ShrinkageError, match="a dict with a 'loss' tensor, or None. Got float"):
        fit(module, ShrinkageCallback(L2(0.1), "loss"), tmp_path)
