"""The conventions table of the README ("The conventions, spelled out"), one test per row.

| writing                  | means                                 | gradient of the term |
|--------------------------|---------------------------------------|----------------------|
| ``L2(l2)`` (Keras)       | ``l2 * sum(w**2)`` added to mean loss | ``2 * l2 * w``       |
| ``L1(l1)`` (Keras)       | ``l1 * sum(|w|)``                     | ``l1 * sign(w)``     |
| course lambda, m samples | ``(lambda / 2m) * sum(w**2)``         | ``(lambda / m) * w`` |
| scikit-learn MLP alpha   | ``(alpha / 2n) * sum(w**2)``          | ``(alpha / n) * w``  |
| torch ``weight_decay``   | gradient ``+ wd * w``: ``(wd/2) Σw²`` | ``wd * w``           |
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.neural_network import MLPClassifier, MLPRegressor
from torch import nn

from shrinkage import (
    L1,
    L2,
    Plan,
    Regularizer,
    from_course,
    from_sklearn_alpha,
    from_torch_weight_decay,
)


def one_sgd_step_of_the_penalty_alone(penalty, w):
    """Apply ``penalty`` in gradient mode to a zero data loss; SGD with lr 1 moves w by -grad."""
    layer = nn.Linear(w.shape[1], w.shape[0], bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(w)
    opt = torch.optim.SGD(layer.parameters(), lr=1.0)
    Regularizer(layer, penalty, "gradient").attach(opt)
    (0 * layer(torch.ones(1, w.shape[1], dtype=torch.float64)).sum()).backward()
    opt.step()
    return w - layer.weight.detach()


W = torch.tensor([[0.5, -1.5, 0.0], [2.0, -0.25, 1.0]], dtype=torch.float64)


def test_keras_l2_is_l2_sum_of_squares_with_gradient_2_l2_w():
    l2 = 0.01
    assert L2(l2).value(W).item() == pytest.approx(l2 * (W**2).sum().item(), rel=1e-15)
    torch.testing.assert_close(L2(l2).grad(W), 2 * l2 * W)
    torch.testing.assert_close(one_sgd_step_of_the_penalty_alone(L2(l2), W), 2 * l2 * W)


def test_keras_l1_is_l1_sum_of_abs_with_gradient_l1_sign_w():
    l1 = 0.01
    assert L1(l1).value(W).item() == pytest.approx(l1 * W.abs().sum().item(), rel=1e-15)
    torch.testing.assert_close(L1(l1).grad(W), l1 * torch.sign(W))
    torch.testing.assert_close(one_sgd_step_of_the_penalty_alone(L1(l1), W), l1 * torch.sign(W))


def test_course_lambda_over_2m_on_logistic_regression():
    """``J = (1/m) sum L(a, y) + (lambda / 2m) ||w||^2`` computed by hand, as in the course."""
    rng = np.random.default_rng(0)
    m, lam = 12, 0.7
    x = rng.normal(size=(m, 3))
    y = (rng.random(m) < 0.5).astype(float)
    w = rng.normal(size=3)
    b = 0.3
    a = 1 / (1 + np.exp(-(x @ w + b)))
    cost = (-y * np.log(a) - (1 - y) * np.log(1 - a)).mean() + lam / (2 * m) * (w**2).sum()
    grad_w = x.T @ (a - y) / m + lam / m * w

    penalty = from_course(lam, m)
    assert penalty == L2(lam / (2 * m))
    torch.testing.assert_close(
        penalty.grad(torch.from_numpy(w)), torch.from_numpy(lam / m * w), rtol=1e-15, atol=0
    )
    model = nn.Linear(3, 1).double()
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w).unsqueeze(0))
        model.bias.fill_(b)
    reg = Regularizer(model, penalty, "loss")
    logits = model(torch.from_numpy(x)).squeeze(1)
    total = nn.functional.binary_cross_entropy_with_logits(logits, torch.from_numpy(y))
    total = total + reg.loss()
    assert total.item() == pytest.approx(cost, rel=1e-12)
    total.backward()
    np.testing.assert_allclose(model.weight.grad.numpy().ravel(), grad_w, rtol=1e-12)


# --- scikit-learn's MLP alpha ----------------------------------------------------------


def sklearn_two_steps(estimator, x, y, **fit_kwargs):
    """Weights after one full-batch SGD step (W1), after a second one (W2), and loss at W1."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.partial_fit(x, y, **fit_kwargs)
        w1 = [c.copy() for c in estimator.coefs_], [b.copy() for b in estimator.intercepts_]
        estimator.partial_fit(x, y)
    w2 = estimator.coefs_, estimator.intercepts_
    return w1, w2, estimator.loss_


def torch_mlp_from(coefs, intercepts):
    layers = []
    for i, (c, b) in enumerate(zip(coefs, intercepts)):
        linear = nn.Linear(*c.shape).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(c.T))  # sklearn stores (in, out)
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if i < len(coefs) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


SKLEARN_SGD = {
    "hidden_layer_sizes": (6,),
    "activation": "relu",
    "solver": "sgd",
    "learning_rate": "constant",
    "learning_rate_init": 0.05,
    "momentum": 0.0,
    "nesterovs_momentum": False,
    "shuffle": False,
    "early_stopping": False,
    "random_state": 0,
}


def check_one_step_against_sklearn(estimator, x, y, data_loss, fit_kwargs, alpha):
    n = len(x)
    (c1, b1), (c2, b2), sklearn_loss = sklearn_two_steps(estimator, x, y, **fit_kwargs)
    model = torch_mlp_from(c1, b1)
    opt = torch.optim.SGD(model.parameters(), lr=SKLEARN_SGD["learning_rate_init"])
    # scikit-learn penalizes coefs_ only, not intercepts_: our default plan exactly.
    reg = Regularizer(model, from_sklearn_alpha(alpha, n), "gradient").attach(opt)
    opt.zero_grad()
    loss = data_loss(model(torch.from_numpy(x)))
    # sklearn's reported loss at W1 = data loss + (alpha / 2n) * sum of squared coefs.
    assert loss.item() + reg.value().item() == pytest.approx(sklearn_loss, rel=1e-10)
    loss.backward()
    opt.step()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    moved = 0.0
    for linear, c, b, c_old in zip(linears, c2, b2, c1):
        np.testing.assert_allclose(linear.weight.detach().numpy(), c.T, atol=1e-10, rtol=0)
        np.testing.assert_allclose(linear.bias.detach().numpy(), b, atol=1e-10, rtol=0)
        moved = max(moved, np.abs(c - c_old).max())
    assert moved > 1e-3


@pytest.mark.parametrize("alpha", [1e-4, 0.5, 3.0])
def test_sklearn_mlp_regressor_alpha(alpha):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4))
    y = x @ rng.normal(size=4) + 0.1 * rng.normal(size=20)
    estimator = MLPRegressor(alpha=alpha, batch_size=len(x), **SKLEARN_SGD)

    def half_mse(out):
        # sklearn's squared error is 0.5 * mean((y - p)**2).
        return 0.5 * nn.functional.mse_loss(out.squeeze(1), torch.from_numpy(y))

    check_one_step_against_sklearn(estimator, x, y, half_mse, {}, alpha)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_sklearn_mlp_classifier_alpha(n_classes):
    alpha = 0.5
    rng = np.random.default_rng(1)
    x = rng.normal(size=(24, 4))
    y = rng.integers(0, n_classes, size=24)
    estimator = MLPClassifier(alpha=alpha, batch_size=len(x), **SKLEARN_SGD)
    target = torch.from_numpy(y)

    def log_loss(out):
        # sklearn: mean log-loss; one logistic output for two classes, softmax otherwise.
        if n_classes == 2:
            return nn.functional.binary_cross_entropy_with_logits(out.squeeze(1), target.double())
        return nn.functional.cross_entropy(out, target)

    check_one_step_against_sklearn(
        estimator, x, y, log_loss, {"classes": np.arange(n_classes)}, alpha
    )


# --- torch weight_decay ------------------------------------------------------------------


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def train(model, opt, steps=20):
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(16, 4, generator=g), torch.randn(16, 3, generator=g)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    return model


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("sgd", lambda params, **kw: torch.optim.SGD(params, lr=0.1, **kw)),
        ("sgd_momentum", lambda params, **kw: torch.optim.SGD(params, lr=0.1, momentum=0.9, **kw)),
        ("adam", lambda params, **kw: torch.optim.Adam(params, lr=0.01, **kw)),
    ],
)
@pytest.mark.parametrize("wd", [1e-3, 0.2])
def test_torch_weight_decay_is_l2_of_half_wd_in_gradient_mode(name, make, wd):
    """``weight_decay=wd`` adds ``wd * w`` to every parameter's gradient: ``L2(wd / 2)``."""
    assert from_torch_weight_decay(wd) == L2(wd / 2)
    reference = mlp()
    train(reference, make(reference.parameters(), weight_decay=wd))
    ours = mlp()
    opt = make(ours.parameters())
    plan = Plan(from_torch_weight_decay(wd), include_biases=True)  # torch decays biases too
    Regularizer(ours, plan, "gradient").attach(opt)
    train(ours, opt)
    for a, b in zip(ours.parameters(), reference.parameters()):
        assert torch.equal(a, b)
