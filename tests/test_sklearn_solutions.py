"""Proximal training reaches scikit-learn's solutions under the optimizers people use.

Lasso, ElasticNet, Ridge and L1 LogisticRegression, each with the conversion of its
``alpha`` / ``C`` to our Keras strengths on the mean loss (the conventions table), reached
by ``mode="proximal"``:

* through the :class:`Regularizer` on a plain ``nn.Linear`` (float64, full batch) under
  plain SGD, SGD with momentum 0.9 and Adam (cosine-annealed to 0: see
  :func:`shrinkage.training.learning_rate_at` for why), and Lasso under every other
  supported optimizer flavor;
* through the estimators with their default optimizer, Adam (float32, full batch,
  ``learning_rate_schedule="cosine"``), on the raw columns: ``coef_`` undoes the
  standardization.

"Reached" means the same exact-zero pattern and every nonzero coefficient within 1e-3
relative. Before the proximal step was the optimizer's own, only plain SGD passed: under
momentum the threshold at ``lr`` solves the problem with the penalty times ``1 - mu``
(``test_thresholding_at_lr_under_momentum_solves_the_lasso_with_alpha_times_1_minus_mu``),
and under Adam it lands near least squares without zeros.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import ElasticNet as SkElasticNet
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from torch import nn

import shrinkage as sk
from shrinkage.compact import compact

# --- data and references -------------------------------------------------------------------


@functools.cache
def diabetes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw X, its column standard deviations, and y standardized (442 x 10)."""
    x, y = load_diabetes(return_X_y=True)
    return x, x.std(0), (y - y.mean()) / y.std()


@functools.cache
def breast_cancer() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw X, its column standard deviations, and the 0/1 labels (569 x 30)."""
    x, y = load_breast_cancer(return_X_y=True)
    return x, x.std(0), y.astype(float)


def standardized(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / x.std(0)


@functools.cache
def reference(problem: str) -> tuple[np.ndarray, sk.Penalty, str]:
    """sklearn's coefficients on the standardized columns, our penalty, our loss."""
    if problem == "l1_logistic":
        x, _, y = breast_cancer()
        c = 0.05
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # saga's tolerance / deprecations
            model = LogisticRegression(
                l1_ratio=1.0, C=c, solver="saga", tol=1e-13, max_iter=200_000
            ).fit(standardized(x), y)
        return model.coef_.ravel(), sk.L1(1 / (c * len(x))), "log_loss"
    x, _, y = diabetes()
    xs, n = standardized(x), len(x)
    if problem == "lasso":
        model = Lasso(alpha=0.02, tol=1e-14, max_iter=1_000_000).fit(xs, y)
        return model.coef_, sk.L1(2 * 0.02), "mse"
    if problem == "elastic_net":
        model = SkElasticNet(alpha=0.02, l1_ratio=0.5, tol=1e-14, max_iter=1_000_000).fit(xs, y)
        return model.coef_, sk.ElasticNet(2 * 0.02 * 0.5, 0.02 * 0.5), "mse"
    model = Ridge(alpha=10.0, solver="cholesky").fit(xs, y)
    return model.coef_, sk.L2(10.0 / n), "mse"


PROBLEMS = ("lasso", "elastic_net", "ridge", "l1_logistic")


def assert_solution(w: np.ndarray, ref: np.ndarray, rtol: float = 1e-3) -> None:
    """The same exact zeros, and every nonzero coefficient within ``rtol`` relative."""
    np.testing.assert_array_equal(w == 0, ref == 0)
    keep = ref != 0
    worst = float(np.max(np.abs(w[keep] - ref[keep]) / np.abs(ref[keep])))
    assert worst <= rtol, f"max relative error {worst:.2e}"


# --- the Regularizer on a plain nn.Linear ---------------------------------------------------


def train_linear(problem, make_optimizer, steps, anneal=False, **regularizer):
    coef, penalty, loss = reference(problem)
    x, _, y = breast_cancer() if loss == "log_loss" else diabetes()
    xt, yt = torch.from_numpy(standardized(x)), torch.from_numpy(y)
    model = nn.Linear(x.shape[1], 1).double()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    opt = make_optimizer(model.parameters())
    sk.Regularizer(model, penalty, "proximal", **regularizer).attach(opt)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if anneal else None
    for _ in range(steps):
        opt.zero_grad()
        out = model(xt).squeeze(1)
        if loss == "mse":
            nn.functional.mse_loss(out, yt).backward()
        else:
            nn.functional.binary_cross_entropy_with_logits(out, yt).backward()
        opt.step()
        if schedule is not None:
            schedule.step()
    return model.weight.detach().numpy().ravel(), coef


# (learning rate, steps) for the regression problems and the logistic one
SETTINGS = {
    "sgd": (lambda lr: lambda p: torch.optim.SGD(p, lr=lr), (0.2, 1500), (0.5, 8000), False),
    "sgd-momentum": (
        lambda lr: lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
        (0.1, 600),
        (0.3, 1500),
        False,
    ),
    "adam": (lambda lr: lambda p: torch.optim.Adam(p, lr=lr), (0.03, 1500), (0.1, 4000), True),
}


@pytest.mark.parametrize("optimizer", list(SETTINGS))
@pytest.mark.parametrize("problem", PROBLEMS)
def test_regularizer_on_a_linear_layer_reaches_the_sklearn_solution(problem, optimizer):
    make, regression, logistic, anneal = SETTINGS[optimizer]
    lr, steps = logistic if problem == "l1_logistic" else regression
    w, coef = train_linear(problem, make(lr), steps, anneal)
    assert_solution(w, coef)


MORE_OPTIMIZERS = {
    "sgd-nesterov": (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True), 600, 0),
    "sgd-dampening": (
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.5),
        800,
        0,
    ),
    "adamw-amsgrad": (
        lambda p: torch.optim.AdamW(p, lr=0.03, weight_decay=0, amsgrad=True),
        1500,
        1,
    ),
    "adam-fused": (lambda p: torch.optim.Adam(p, lr=0.03, fused=True), 1500, 1),
    "rmsprop": (lambda p: torch.optim.RMSprop(p, lr=0.01), 1500, 1),
    "rmsprop-momentum": (lambda p: torch.optim.RMSprop(p, lr=0.003, momentum=0.9), 1500, 1),
    "adagrad": (lambda p: torch.optim.Adagrad(p, lr=0.3), 1500, 0),
}


@pytest.mark.parametrize("name", list(MORE_OPTIMIZERS))
def test_lasso_is_reached_under_every_supported_optimizer(name):
    make, steps, anneal = MORE_OPTIMIZERS[name]
    w, coef = train_linear("lasso", make, steps, bool(anneal))
    assert_solution(w, coef)


def test_thresholding_at_lr_under_momentum_solves_the_lasso_with_alpha_times_1_minus_mu():
    """What proximal mode did before it read the optimizer's step, kept as the opt-in
    ``proximal_step="lr"``: under SGD(momentum=0.9) it solves Lasso(alpha * 0.1)."""
    x, _, y = diabetes()
    w, coef = train_linear(
        "lasso",
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        1500,
        proximal_step="lr",
    )
    scaled = Lasso(alpha=0.02 * 0.1, tol=1e-14, max_iter=10**6).fit(standardized(x), y).coef_
    assert_solution(w, scaled, rtol=1e-6)
    assert not np.array_equal(w == 0, coef == 0)


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, maximize=True),
        lambda p: torch.optim.Adam(p, lr=0.03, maximize=True),
    ],
    ids=["sgd-momentum", "adam"],
)
def test_proximal_with_maximize_reaches_the_argmax_of_objective_minus_penalty(make):
    """maximize=True flips the gradient, not the step: ascending -MSE with the proximal L1
    step is the Lasso."""
    coef, penalty, _ = reference("lasso")
    x, _, y = diabetes()
    xt, yt = torch.from_numpy(standardized(x)), torch.from_numpy(y)
    model = nn.Linear(10, 1).double()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    opt = make(model.parameters())
    sk.Regularizer(model, penalty, "proximal").attach(opt)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 1500)
    for _ in range(1500):
        opt.zero_grad()
        (-nn.functional.mse_loss(model(xt).squeeze(1), yt)).backward()
        opt.step()
        schedule.step()
    assert_solution(model.weight.detach().numpy().ravel(), coef)


# --- the estimators, with their default optimizer (Adam) ------------------------------------


def estimator_for(problem: str, optimizer: str):
    """The estimator solving ``problem`` on the raw columns (standardized inside)."""
    shared = {
        "hidden_layer_sizes": (),
        "mode": "proximal",
        "optimizer": optimizer,
        "learning_rate_schedule": "cosine" if optimizer == "adam" else "constant",
        "random_state": 0,
    }
    if optimizer == "adam":
        shared.update(learning_rate=0.1 if problem == "l1_logistic" else 0.03)
        shared.update(epochs=4000 if problem == "l1_logistic" else 1500)
    else:
        shared.update(learning_rate=0.3 if problem == "l1_logistic" else 0.1, momentum=0.9)
        shared.update(epochs=1500 if problem == "l1_logistic" else 600)
    if problem == "l1_logistic":
        x, _, _ = breast_cancer()
        return sk.MLPClassifier(
            penalty="l1", strength=1 / (0.05 * len(x)), batch_size=len(x), **shared
        )
    x, _, _ = diabetes()
    # The docstring's conversions: Lasso(a) = L1(2a); Ridge(a) = L2(a / n);
    # ElasticNet(a, r) = strength a (1 + r), l1_ratio 2r / (1 + r).
    penalty = {
        "lasso": {"penalty": "l1", "strength": 2 * 0.02},
        "elastic_net": {"penalty": "elastic_net", "strength": 0.02 * 1.5, "l1_ratio": 2 / 3},
        "ridge": {"penalty": "l2", "strength": 10.0 / len(x)},
    }[problem]
    return sk.MLPRegressor(batch_size=len(x), **penalty, **shared)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("problem", PROBLEMS)
def test_the_estimator_reaches_the_sklearn_solution_on_raw_columns(problem, optimizer):
    coef, _, loss = reference(problem)
    x, scale, y = breast_cancer() if loss == "log_loss" else diabetes()
    estimator = estimator_for(problem, optimizer).fit(x, y)
    assert estimator.get_params()["optimizer"] == optimizer
    got = np.asarray(estimator.coef_).ravel()
    assert_solution(got, coef / scale)  # sklearn's coefficients in raw units
    # coef_ and intercept_ are the model: they predict what the network predicts
    if loss == "log_loss":
        logits = x @ got + estimator.intercept_[0]
        expected = estimator.predict_proba(x)[:, 1]
        np.testing.assert_allclose(1 / (1 + np.exp(-logits)), expected, rtol=1e-4, atol=1e-6)
    else:
        np.testing.assert_allclose(x @ got + estimator.intercept_, estimator.predict(x), atol=1e-5)


def test_the_estimator_default_is_still_adam():
    assert sk.MLPRegressor().get_params()["optimizer"] == "adam"


# --- group lasso under Adam ------------------------------------------------------------------


@functools.cache
def multi_output(n=200, d=8, k=6, seed=0):
    """Correlated standardized X (n x d), Y = X W^T + noise with rows 1 and 4 of W weak
    (pure-noise outputs), so group lasso over rows zeroes them."""
    rng = np.random.default_rng(seed)
    cov = 0.5 ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    x = rng.multivariate_normal(np.zeros(d), cov, size=n)
    x = (x - x.mean(0)) / x.std(0)
    w = rng.normal(size=(k, d))
    w[[1, 4]] *= 0.02
    y = x @ w.T + 0.5 * rng.normal(size=(n, k))
    return x, y - y.mean(0)


def group_lasso_fista(x, y, strength, iters=200_000, tol=1e-15):
    """mean((X W^T + b - Y)**2) + strength sum_rows sqrt(d) ||W_row|| by FISTA (float64)."""
    n, d = x.shape
    k = y.shape[1]
    xa = np.c_[x, np.ones(n)]
    step = 1 / (2 * np.linalg.eigvalsh(xa.T @ xa).max() / (n * k))
    tau = strength * np.sqrt(d)
    wb = np.zeros((k, d + 1))
    z, t = wb.copy(), 1.0
    for _ in range(iters):
        v = z - step * 2 * (xa @ z.T - y).T @ xa / (n * k)
        norms = np.linalg.norm(v[:, :d], axis=1, keepdims=True)
        new = v.copy()
        new[:, :d] *= np.maximum(0, 1 - step * tau / np.maximum(norms, 1e-300))
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = new + (t - 1) / t_new * (new - wb)
        change = np.abs(new - wb).max()
        wb, t = new, t_new
        if change < tol:
            break
    return wb[:, :d]


@pytest.mark.parametrize("strength", [0.05, 0.1])
def test_group_lasso_under_adam_zeroes_the_same_whole_rows_as_fista(strength):
    x, y = multi_output()
    ref = group_lasso_fista(x, y, strength)
    assert list(np.flatnonzero((ref == 0).all(1))) == [1, 4]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model = nn.Linear(8, 6).double()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    sk.Regularizer(model, sk.GroupLasso(strength), "proximal").attach(opt)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 1500)
    for _ in range(1500):
        opt.zero_grad()
        nn.functional.mse_loss(model(xt), yt).backward()
        opt.step()
        schedule.step()
    w = model.weight.detach().numpy()
    np.testing.assert_array_equal(w == 0, ref == 0)  # whole rows, and no zero inside a kept row
    keep = ref != 0
    assert np.max(np.abs(w[keep] - ref[keep]) / np.abs(ref[keep])) < 1e-3


def test_group_lasso_under_the_estimators_adam_prunes_neurons_and_compact_keeps_outputs():
    x, _, y = breast_cancer()
    clf = sk.MLPClassifier(
        (64,),
        penalty="group_lasso",
        strength=0.01,
        placement="hidden",
        mode="proximal",
        epochs=60,
        random_state=0,
    ).fit(x, y)
    weight = clf.model_.layers[0].weight.detach()
    zero_rows = int((weight == 0).all(1).sum())
    assert 0 < zero_rows < 64
    assert int((weight == 0).sum()) == zero_rows * weight.shape[1]  # only whole rows
    small = compact(clf.model_)
    assert small.layers[0].weight.shape[0] == 64 - zero_rows
    features = clf._features(x)
    with torch.no_grad():
        torch.testing.assert_close(small(features), clf.model_(features), atol=1e-5, rtol=0)
