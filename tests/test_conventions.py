"""The conventions table of the README ("The conventions, spelled out"), one test per row.

| writing                      | on our mean loss                                            |
|------------------------------|-------------------------------------------------------------|
| ``L2(l2)`` (Keras)           | ``l2 * sum(w**2)``, gradient ``2 * l2 * w``                 |
| ``L1(l1)`` (Keras)           | ``l1 * sum(|w|)``, gradient ``l1 * sign(w)``                |
| ``L1L2(l1, l2)`` (Keras)     | ``ElasticNet(l1, l2)`` (the same class)                     |
| course lambda, m samples     | ``L2(lambda / 2m)``                                         |
| sklearn MLPClassifier alpha  | ``L2(alpha / 2n)``                                          |
| sklearn MLPRegressor alpha   | ``L2(alpha / n)`` on MSE (sklearn's loss is half the MSE)   |
| sklearn ``Ridge(alpha)``     | ``L2(alpha / n)``                                           |
| sklearn ``ElasticNet(a, r)`` | ``L1(2 a r) + L2(a (1 - r))``                               |
| sklearn L1 ``Logistic(C)``   | ``L1(1 / (C n))``                                           |
| torch ``weight_decay``       | ``L2(wd / 2)``                                              |
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch
from sklearn.neural_network import MLPClassifier, MLPRegressor
from torch import nn

from shrinkage import (
    L1,
    L1L2,
    L2,
    ElasticNet,
    Plan,
    Regularizer,
    ShrinkageError,
    from_course,
    from_sklearn_alpha,
    from_torch_weight_decay,
    get_penalty,
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


# --- scikit-learn's linear models (issue #11): each row against the real estimator ------------


@functools.cache
def diabetes_standardized():
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    return (x - x.mean(0)) / x.std(0), (y - y.mean()) / y.std()


@functools.cache
def breast_cancer_standardized():
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    return (x - x.mean(0)) / x.std(0), y.astype(float)


def kkt_residual(x, y, coef, intercept, penalty, loss):
    """How far (coef, intercept) is from optimal for mean ``loss`` + ``penalty``: the largest
    of |d/db|, the stationarity violation on the nonzero coefficients, and (for L1) how far
    a zero coefficient's gradient exceeds the L1 strength. A wrong conversion factor leaves
    a residual of the order of the penalty's gradient."""
    w = torch.from_numpy(np.asarray(coef, dtype=np.float64)).requires_grad_(True)
    b = torch.tensor(float(intercept), dtype=torch.float64, requires_grad=True)
    z = torch.from_numpy(x) @ w + b
    target = torch.from_numpy(y)
    if loss == "mse":
        data = nn.functional.mse_loss(z, target)
    else:
        data = nn.functional.binary_cross_entropy_with_logits(z, target)
    gw, gb = torch.autograd.grad(data, (w, b))
    l1 = getattr(penalty, "l1", 0.0)
    l2 = getattr(penalty, "l2", 0.0)
    g = gw + 2 * l2 * w.detach()
    nonzero = w.detach() != 0
    stationarity = (g[nonzero] + l1 * torch.sign(w.detach()[nonzero])).abs().max()
    zeros = g[~nonzero].abs().max() - l1 if bool((~nonzero).any()) else torch.tensor(-1.0)
    return max(abs(float(gb)), float(stationarity), float(zeros))


def test_sklearn_ridge_alpha_is_l2_alpha_over_n():
    """``Ridge(alpha)``: ``||y - Xw - b||**2 + alpha ||w||**2`` (a sum, no 1/n) = n times
    ``MSE + L2(alpha / n)``."""
    from sklearn.linear_model import Ridge

    x, y = diabetes_standardized()
    alpha = 25.0
    ridge = Ridge(alpha=alpha, solver="cholesky").fit(x, y)
    penalty = L2(alpha / len(x))
    assert kkt_residual(x, y, ridge.coef_, ridge.intercept_, penalty, "mse") < 1e-12
    wrong = L2(alpha / (2 * len(x)))
    assert kkt_residual(x, y, ridge.coef_, ridge.intercept_, wrong, "mse") > 1e-3


def test_sklearn_elastic_net_is_l1_2_alpha_r_plus_l2_alpha_1_minus_r():
    """``ElasticNet(alpha, l1_ratio=r)``: ``(1/2n)||r||**2 + alpha r ||w||_1 +
    (alpha (1 - r) / 2) ||w||**2`` = half of ``MSE + L1(2 alpha r) + L2(alpha (1 - r))``."""
    from sklearn.linear_model import ElasticNet as SkElasticNet

    x, y = diabetes_standardized()
    alpha, ratio = 0.05, 0.3
    model = SkElasticNet(alpha=alpha, l1_ratio=ratio, tol=1e-14, max_iter=10**6).fit(x, y)
    assert (model.coef_ == 0).any() and (model.coef_ != 0).any()
    penalty = L1L2(l1=2 * alpha * ratio, l2=alpha * (1 - ratio))
    assert kkt_residual(x, y, model.coef_, model.intercept_, penalty, "mse") < 1e-9
    wrong = L1L2(l1=alpha * ratio, l2=alpha * (1 - ratio) / 2)
    assert kkt_residual(x, y, model.coef_, model.intercept_, wrong, "mse") > 1e-3


def test_sklearn_l1_logistic_regression_c_is_l1_one_over_c_n():
    """``LogisticRegression(penalty="l1", C)``: ``C sum log-loss + ||w||_1`` = ``C n`` times
    ``mean log-loss + L1(1 / (C n))`` (saga: liblinear would penalize the intercept)."""
    from sklearn.linear_model import LogisticRegression

    x, y = breast_cancer_standardized()
    c = 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # penalty= is deprecated in favour of l1_ratio=1
        model = LogisticRegression(
            penalty="l1", C=c, solver="saga", tol=1e-13, max_iter=200_000
        ).fit(x, y)
    coef, intercept = model.coef_.ravel(), model.intercept_[0]
    assert (coef == 0).sum() > 10
    penalty = L1(1 / (c * len(x)))
    assert kkt_residual(x, y, coef, intercept, penalty, "log_loss") < 1e-9
    assert kkt_residual(x, y, coef, intercept, L1(1 / c), "log_loss") > 1e-3


@pytest.mark.parametrize("alpha", [1e-4, 0.5, 3.0])
def test_sklearn_mlp_regressor_alpha_on_our_mse_is_l2_alpha_over_n(alpha):
    """sklearn's regressor minimizes ``0.5 * MSE + (alpha / 2n) sum W**2`` = half of
    ``MSE + L2(alpha / n)``: one sklearn SGD step of ``lr`` is one step of ``lr / 2`` on our
    MSE with ``from_sklearn_alpha(alpha, n, "regression")``."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4))
    y = x @ rng.normal(size=4) + 0.1 * rng.normal(size=20)
    n = len(x)
    estimator = MLPRegressor(alpha=alpha, batch_size=n, **SKLEARN_SGD)
    (c1, b1), (c2, b2), _ = sklearn_two_steps(estimator, x, y)
    model = torch_mlp_from(c1, b1)
    opt = torch.optim.SGD(model.parameters(), lr=SKLEARN_SGD["learning_rate_init"] / 2)
    penalty = from_sklearn_alpha(alpha, n, "regression")
    assert penalty == L2(alpha / n)
    Regularizer(model, penalty, "gradient").attach(opt)
    nn.functional.mse_loss(model(torch.from_numpy(x)).squeeze(1), torch.from_numpy(y)).backward()
    opt.step()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for linear, c, b in zip(linears, c2, b2):
        np.testing.assert_allclose(linear.weight.detach().numpy(), c.T, atol=1e-10, rtol=0)
        np.testing.assert_allclose(linear.bias.detach().numpy(), b, atol=1e-10, rtol=0)


def test_the_regressor_alpha_gives_ridge_alpha_not_ridge_half_alpha():
    """A linear model on ``MSE + from_sklearn_alpha(alpha, n, "regression")`` is
    ``Ridge(alpha)``: sklearn's objective, not half its penalty."""
    from sklearn.linear_model import Ridge

    x, y = diabetes_standardized()
    alpha = 40.0
    ridge = Ridge(alpha=alpha, solver="cholesky").fit(x, y)
    penalty = from_sklearn_alpha(alpha, len(x), "regression")
    assert kkt_residual(x, y, ridge.coef_, ridge.intercept_, penalty, "mse") < 1e-12
    with pytest.raises(ShrinkageError, match="The 'task' parameter must be 'classification'"):
        from_sklearn_alpha(alpha, len(x), "regressor")


def test_l1l2_is_keras_name_for_elastic_net():
    assert L1L2 is ElasticNet
    assert get_penalty("l1l2") == ElasticNet() and get_penalty("L1L2") == ElasticNet()
    w = torch.tensor([[0.5, -1.5], [2.0, 0.0]], dtype=torch.float64)
    expected = 0.1 * w.abs().sum() + 0.2 * (w**2).sum()
    assert L1L2(l1=0.1, l2=0.2).value(w).item() == pytest.approx(expected.item(), rel=1e-15)


@pytest.mark.parametrize(
    "count",
    [35, 35.0, np.int64(35), np.int32(35), np.uint16(35), torch.tensor(35), np.float64(35)],
    ids=["int", "float", "np.int64", "np.int32", "np.uint16", "torch", "np.float64"],
)
def test_counts_may_be_numpy_and_torch_integers(count):
    assert from_course(0.7, count) == L2(0.01)
    assert from_sklearn_alpha(0.7, count) == L2(0.01)


@pytest.mark.parametrize(
    "count", [0, -3, True, np.int64(0), "35", np.array([35]), torch.tensor([35]), None]
)
def test_bad_counts_are_refused_in_one_line(count):
    with pytest.raises(ShrinkageError, match=r"^The 'm' parameter must be a count >= 1\. Got "):
        from_course(0.7, count)
