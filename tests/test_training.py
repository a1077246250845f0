"""The single-model loop and the losses, scores and optimizers the search mirrors."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score
from torch.nn import functional as F

from shrinkage import L2, Regularizer, ShrinkageError
from shrinkage.models import MLP, epoch_batches, generators, init_mlp_, placement_plan
from shrinkage.training import (
    HISTORY_KEYS,
    fit_model,
    make_loss,
    make_optimizer,
    make_score,
    n_outputs,
    predict_outputs,
    target_tensor,
)


def _data(n=20, d=3, task="regression", n_classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    if task == "regression":
        y = X @ np.arange(1, d + 1) + 0.1 * rng.normal(size=n)
    else:
        y = rng.integers(0, n_classes, size=n)
        y[:n_classes] = np.arange(n_classes)
    return torch.from_numpy(X), target_tensor(y, task, None if task == "regression" else n_classes)


def _model(n_in=3, hidden=(8,), n_out=1, seed=0):
    init, shuffle = generators(seed)
    return init_mlp_(MLP(n_in, hidden, n_out), init), shuffle


# --------------------------------------------------------------------------- losses


def _numpy_loss(task, k, out, y):
    if task == "regression":
        return np.mean((out[:, 0] - y) ** 2)
    if k == 2:
        p = 1 / (1 + np.exp(-out[:, 0]))
        return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    z = out - out.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -np.mean(log_p[np.arange(len(y)), y.astype(int)])


@pytest.mark.parametrize(
    "task, k, width", [("regression", None, 1), ("classification", 2, 1), ("classification", 4, 4)]
)
def test_loss_matches_the_numpy_formula(task, k, width):
    rng = np.random.default_rng(1)
    out = rng.normal(size=(7, width))
    y = rng.normal(size=7) if task == "regression" else rng.integers(0, k, size=7)
    y_t = target_tensor(y, task, k)
    loss = make_loss(task, k)(torch.tensor(out, dtype=torch.float32), y_t)
    assert n_outputs(task, k) == width
    assert float(loss) == pytest.approx(_numpy_loss(task, k, out, y), rel=1e-5)


@pytest.mark.parametrize(
    "task, k, dtype",
    [
        ("regression", None, torch.float32),
        ("classification", 2, torch.float32),
        ("classification", 3, torch.int64),
    ],
)
def test_target_tensor_layout(task, k, dtype):
    y = target_tensor([0, 1, 1, 0], task, k)
    assert y.dtype == dtype and y.shape == (4,)
    assert y.tolist() == [0, 1, 1, 0]


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: make_loss("ranking"),
            "The 'task' parameter must be 'classification' or 'regression'. Got 'ranking' instead.",
        ),
        (
            lambda: n_outputs("classification", 1),
            "The 'n_classes' parameter must be an integer >= 2 for classification. Got 1 instead.",
        ),
        (
            lambda: make_score("classification", None),
            "The 'n_classes' parameter must be an "
            "integer >= 2 for classification. Got None instead.",
        ),
        (
            lambda: make_optimizer("rmsprop", [torch.zeros(1)], 0.1),
            "The 'optimizer' parameter must be one of 'adam', 'sgd'. Got 'rmsprop' instead.",
        ),
    ],
)
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(ShrinkageError) as err:
        call()
    assert str(err.value) == message


def test_scores_are_accuracy_and_r2():
    binary = make_score("classification", 2)
    assert binary(torch.tensor([[2.0], [-1.0], [0.5]]), torch.tensor([1.0, 1.0, 1.0])) == 2 / 3
    multi = make_score("classification", 3)
    logits = torch.tensor([[3.0, 0, 0], [0, 0, 1], [0, 2, 0]])
    assert multi(logits, torch.tensor([0, 2, 0])) == 2 / 3
    r2 = make_score("regression")
    out, y = np.array([1.0, 2.5, 2.0, 5.0]), np.array([1.0, 2.0, 3.0, 4.0])
    got = r2(torch.tensor(out).reshape(-1, 1), torch.tensor(y))
    assert got == pytest.approx(r2_score(y, out))
    constant = torch.ones(3)
    assert r2(constant.reshape(-1, 1), constant) == 1.0
    assert r2(torch.zeros(3, 1), constant) == 0.0


def test_optimizers():
    params = [torch.zeros(2, requires_grad=True)]
    adam = make_optimizer("adam", params, 0.01)
    assert isinstance(adam, torch.optim.Adam)
    assert adam.defaults["betas"] == (0.9, 0.999) and adam.defaults["weight_decay"] == 0
    sgd = make_optimizer("sgd", params, 0.1, momentum=0.5)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.5


# --------------------------------------------------------------------------- the loop


def _fit(
    model,
    shuffle,
    X,
    y,
    *,
    task="regression",
    k=None,
    plan=None,
    mode="gradient",
    optimizer="adam",
    lr=0.01,
    **kwargs,
):
    reg = Regularizer(model, plan if plan is not None else placement_plan(2, L2(0.01)), mode)
    opt = make_optimizer(optimizer, model.parameters(), lr)
    history = fit_model(
        model,
        X,
        y,
        loss_fn=make_loss(task, k),
        regularizer=reg,
        optimizer=opt,
        shuffle_generator=shuffle,
        score_fn=make_score(task, k),
        **kwargs,
    )
    reg.remove()
    return history


def test_history_rows_with_a_frozen_model():
    # With lr = 0 nothing moves: each row must equal the full-data loss, score and penalty,
    # and the uneven last batch (10 rows in batches of 4, 4, 2) must be weighted by its size.
    X, y = _data(n=10)
    model, shuffle = _model()
    history = _fit(model, shuffle, X, y, optimizer="sgd", lr=0.0, epochs=3, batch_size=4)
    with torch.no_grad():
        outputs = model(X)
        penalty = 0.01 * sum(float((layer.weight**2).sum()) for layer in model.layers)
    full_loss = float(make_loss("regression")(outputs, y))
    assert [row["epoch"] for row in history] == [1, 2, 3]
    for row in history:
        assert tuple(row) == HISTORY_KEYS
        assert row["data_loss"] == pytest.approx(full_loss, rel=1e-6)
        assert row["penalty"] == pytest.approx(penalty, rel=1e-5)
        assert row["total"] == row["data_loss"] + row["penalty"]
        assert row["train_score"] == pytest.approx(make_score("regression")(outputs, y), rel=1e-5)
        assert row["val_loss"] is None and row["val_score"] is None


def test_loop_equals_a_hand_written_loop_with_the_shared_contract():
    # What the batched engine reproduces: generators(seed), init_mlp_, epoch_batches, the
    # mean loss plus the Keras penalty.
    X, y = _data(n=13)
    model, shuffle = _model(seed=3)
    _fit(
        model,
        shuffle,
        X,
        y,
        optimizer="sgd",
        lr=0.05,
        epochs=4,
        batch_size=5,
        plan=placement_plan(2, L2(0.01), "all"),
        mode="loss",
    )

    init, order = generators(3)
    manual = init_mlp_(MLP(3, (8,), 1), init)
    opt = torch.optim.SGD(manual.parameters(), lr=0.05, momentum=0.9)
    for _ in range(4):
        for index in epoch_batches(13, 5, order):
            opt.zero_grad()
            loss = F.mse_loss(manual(X[index])[:, 0], y[index])
            loss = loss + 0.01 * sum((layer.weight**2).sum() for layer in manual.layers)
            loss.backward()
            opt.step()
    for a, b in zip(model.parameters(), manual.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_loss_mode_and_gradient_mode_train_the_same_weights():
    X, y = _data(n=16)
    a, shuffle_a = _model(seed=1)
    b, shuffle_b = _model(seed=1)
    _fit(a, shuffle_a, X, y, mode="loss", epochs=3, batch_size=8)
    _fit(b, shuffle_b, X, y, mode="gradient", epochs=3, batch_size=8)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_validation_rows_are_scored():
    X, y = _data(n=30, task="classification", n_classes=3)
    model, shuffle = _model(n_out=3)
    history = _fit(
        model,
        shuffle,
        X[:20],
        y[:20],
        task="classification",
        k=3,
        epochs=2,
        batch_size=8,
        X_val=X[20:],
        y_val=y[20:],
    )
    with torch.no_grad():
        outputs = model(X[20:])
    last = history[-1]
    assert last["val_loss"] == pytest.approx(float(F.cross_entropy(outputs, y[20:])), rel=1e-5)
    assert last["val_score"] == make_score("classification", 3)(outputs, y[20:])


def test_early_stopping_keeps_the_best_epoch():
    X, y = _data(n=20)
    model, shuffle = _model()
    val_scores = iter([0.1, 0.5, 0.3, 0.2, 0.9])
    snapshots = []

    def score(outputs, target):
        # Train and validation calls alternate; only validation calls (second) are scripted.
        score.calls += 1
        return next(val_scores) if score.calls % 2 == 0 else 0.0

    score.calls = 0
    reg = Regularizer(model, placement_plan(2, L2(0.01)), "gradient")
    history = fit_model(
        model,
        X[:15],
        y[:15],
        loss_fn=make_loss("regression"),
        regularizer=reg,
        optimizer=make_optimizer("adam", model.parameters(), 0.05),
        epochs=20,
        batch_size=5,
        shuffle_generator=shuffle,
        X_val=X[15:],
        y_val=y[15:],
        score_fn=score,
        early_stopping=True,
        patience=2,
        progress=lambda e, row: snapshots.append([p.detach().clone() for p in model.parameters()]),
    )
    assert [row["val_score"] for row in history] == [0.1, 0.5, 0.3, 0.2]
    for kept, best in zip(model.parameters(), snapshots[1]):
        assert torch.equal(kept, best)


def test_early_stopping_needs_validation_rows():
    X, y = _data()
    model, shuffle = _model()
    with pytest.raises(ShrinkageError) as err:
        _fit(model, shuffle, X, y, epochs=2, batch_size=4, early_stopping=True)
    assert str(err.value) == "Early stopping needs validation rows (X_val, y_val); got none."


@pytest.mark.parametrize(
    "context, named",
    [
        ({"strength": 10.0, "learning_rate": 1e20}, "strength=10.0, learning_rate=1e+20"),
        (None, "penalty L2(l2=10.0), learning_rate=1e+20"),
    ],
)
def test_divergence_stops_with_a_message(context, named):
    X, y = _data()
    model, shuffle = _model()
    with pytest.raises(ShrinkageError) as err:
        _fit(
            model,
            shuffle,
            X,
            y,
            optimizer="sgd",
            lr=1e20,
            epochs=10,
            batch_size=20,
            plan=placement_plan(2, L2(10.0)),
            context=context,
        )
    # The first step throws the weights to ~1e20: the penalty after epoch 1 overflows.
    assert str(err.value) == (
        f"Training diverged at epoch 1 (loss=inf) with {named}; "
        "lower the learning rate or the strength."
    )


def test_predict_outputs_in_chunks_equals_one_pass():
    X, _ = _data(n=50)
    model, _ = _model()
    torch.testing.assert_close(predict_outputs(model, X, chunk=7), predict_outputs(model, X))
    assert model.training  # the mode is restored


def test_finite_history_values():
    X, y = _data(n=24, task="classification", n_classes=2)
    model, shuffle = _model()
    history = _fit(model, shuffle, X, y, task="classification", k=2, epochs=3, batch_size=10)
    assert all(math.isfinite(row["total"]) for row in history)
    assert history[-1]["data_loss"] < history[0]["data_loss"] * 1.5
