"""The skorch callback: a skorch fit equals the plain-torch loop in every mode; history; pickle."""

import copy
import pickle

import numpy as np
import pytest
import torch
from torch import nn

skorch = pytest.importorskip("skorch")

from shrinkage import L1, L2, Plan, Regularizer, ShrinkageError  # noqa: E402
from shrinkage.integrations.skorch import (  # noqa: E402
    RegularizedNetClassifier,
    RegularizedNetRegressor,
    Shrinkage,
    ShrinkageLossMixin,
)

EPOCHS, BATCH, ROWS = 2, 8, 32


def rows():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(ROWS, 4, generator=g)
    y = 2 * X[:, :1] - X[:, 1:2] + 0.1 * torch.randn(ROWS, 1, generator=g)
    return X.numpy(), y.numpy()


def body():
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))


def regressor(module, callback=None, cls=RegularizedNetRegressor, **kwargs):
    return cls(
        module,
        optimizer=torch.optim.Adam,
        lr=0.02,
        max_epochs=EPOCHS,
        batch_size=BATCH,
        train_split=None,
        iterator_train__shuffle=False,
        callbacks=[callback] if callback is not None else None,
        **{"verbose": 0, **kwargs},
    )


def plain_loop(module, plan=None, mode="gradient"):
    X, y = map(torch.from_numpy, rows())
    opt = torch.optim.Adam(module.parameters(), lr=0.02)
    reg = Regularizer(module, plan, mode).attach(opt) if plan is not None else None
    for _ in range(EPOCHS):
        for start in range(0, ROWS, BATCH):
            opt.zero_grad()
            batch = slice(start, start + BATCH)
            loss = nn.functional.mse_loss(module(X[batch]), y[batch])
            if reg is not None:
                loss = loss + reg.loss()
            loss.backward()
            opt.step()
    if reg is not None:
        reg.remove()
    return module


def max_gap(a, b):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


ACTIVITY = {"1": L1(0.05)}
CASES = [
    ("loss", Plan(L2(0.05))),
    ("gradient", Plan(L2(0.05))),
    ("decoupled", Plan(L2(0.05))),
    ("proximal", Plan({"*": L1(0.02)})),
    ("loss", Plan(L2(0.05), activity=ACTIVITY)),
    ("decoupled", Plan(L2(0.05), activity=ACTIVITY)),
]
CASE_IDS = ["loss", "gradient", "decoupled", "proximal", "loss+activity", "decoupled+activity"]


@pytest.mark.parametrize(("mode", "plan"), CASES, ids=CASE_IDS)
def test_skorch_fit_equals_the_plain_torch_loop(mode, plan):
    module = body()
    reference, unregularized = copy.deepcopy(module), copy.deepcopy(module)
    net = regressor(module, Shrinkage(plan, mode)).fit(*rows())
    assert net.module_ is module
    plain_loop(reference, plan, mode)
    plain_loop(unregularized)
    assert max_gap(module, reference) < 1e-6
    assert max_gap(module, unregularized) > 1e-3


@pytest.mark.parametrize("mode", ["gradient", "decoupled", "proximal"])
def test_a_plain_skorch_net_is_enough_outside_loss_mode(mode):
    plan = Plan({"*": L1(0.02)} if mode == "proximal" else L2(0.05))
    module = body()
    reference = copy.deepcopy(module)
    regressor(module, Shrinkage(plan, mode), cls=skorch.NeuralNetRegressor).fit(*rows())
    plain_loop(reference, plan, mode)
    assert max_gap(module, reference) < 1e-6


def test_loss_mode_puts_the_penalty_in_train_loss_and_history():
    plan = Plan(L2(0.05))
    by_loss_module, by_grad_module = body(), body()
    by_grad_module.load_state_dict(by_loss_module.state_dict())
    initial = copy.deepcopy(by_loss_module)
    initial_penalty = float(Regularizer(copy.deepcopy(initial), plan).value())
    by_loss = regressor(by_loss_module, Shrinkage(plan, "loss")).fit(*rows())
    by_grad = regressor(by_grad_module, Shrinkage(plan, "gradient")).fit(*rows())
    # Same weights (gradient mode = autograd of loss mode)...
    assert max_gap(by_loss_module, by_grad_module) < 1e-6
    # ...but the loss skorch records includes the penalty only in loss mode.
    first = by_loss.history[0, "batches", 0, "train_loss"]
    assert first - by_grad.history[0, "batches", 0, "train_loss"] == pytest.approx(
        initial_penalty, rel=1e-5
    )
    # Both record the penalty of the epoch's final weights, smaller than without it.
    penalties = by_loss.history[:, "penalty"]
    assert len(penalties) == EPOCHS
    assert penalties[-1] == pytest.approx(float(Regularizer(by_loss_module, plan).value()))
    assert penalties[-1] < 0.9 * float(Regularizer(plain_loop(initial), plan).value())
    assert by_grad.history[:, "penalty"] == pytest.approx(penalties, rel=1e-5)


def test_classifier_log_weights_and_pickle():
    X, y = rows()
    labels = (y[:, 0] > 0).astype(np.int64)
    module = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    net = RegularizedNetClassifier(
        module,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=0.05,
        max_epochs=5,
        batch_size=BATCH,
        train_split=None,
        callbacks=[Shrinkage({"*": L1(0.01)}, "proximal", log_weights=True)],
        verbose=0,
    ).fit(X, labels)
    last = net.history[-1]
    assert last["zero_fraction/0.weight"] == pytest.approx(
        float((module[0].weight == 0).float().mean())
    )
    assert last["zero_fraction/0.weight"] > 0.1  # L1 in proximal mode: exact zeros
    w2 = module[2].weight.detach()
    assert last["l2_norm/2.weight"] == pytest.approx(float(w2.norm()), rel=1e-6)
    assert "l2_norm/0.bias" not in last and last["penalty"] > 0
    assert net.score(X, labels) > 0.7
    # The fitted net pickles, and the copy predicts the same and trains on.
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(clone.predict_proba(X), net.predict_proba(X))
    clone.partial_fit(X, labels)
    assert len(clone.history) == 10 and "penalty" in clone.history[-1]  # 5 more epochs


def test_printlog_shows_the_penalty_column(capsys):
    regressor(body(), Shrinkage(L2(0.01)), verbose=1).fit(*rows())
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header[:3] == ["epoch", "penalty", "train_loss"]


def test_loss_mode_without_the_mixin_is_refused():
    for mode, plan in [("loss", L2(0.1)), ("gradient", Plan(L2(0.1), activity=ACTIVITY))]:
        net = regressor(body(), Shrinkage(plan, mode), cls=skorch.NeuralNetRegressor)
        with pytest.raises(ShrinkageError, match="NeuralNetRegressor does not. Use Regularized"):
            net.fit(*rows())
    assert issubclass(RegularizedNetRegressor, ShrinkageLossMixin)


def test_bad_inputs_are_refused_when_training_starts():
    with pytest.raises(ShrinkageError, match=r"'mode' parameter of Shrinkage .* Got 'sgd' instead"):
        regressor(body(), Shrinkage(L2(0.1), "sgd")).fit(*rows())
    with pytest.raises(ShrinkageError, match="matches no parameter of Sequential; parameters are"):
        regressor(body(), Shrinkage({"encoder.*": L2(0.1)})).fit(*rows())
