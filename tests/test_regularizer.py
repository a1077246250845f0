"""The four apply modes: ``gradient`` equals ``loss`` (fast path = slow path) for every
penalty and optimizer, ``decoupled`` is AdamW, ``proximal`` reaches the Lasso's exact
zeros; hooks, schedules, L2-SP on a trained model, activity penalties and bad inputs."""

from __future__ import annotations

import copy
import re
import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso
from torch import nn

from shrinkage import (
    L1,
    L2,
    L2SP,
    ElasticNet,
    ExpAbs,
    GroupLasso,
    Orthogonal,
    Plan,
    Regularizer,
    ShrinkageError,
    regularize,
)
from shrinkage.functional import penalties as functional_penalties

PENALTIES = [
    L1(0.01),
    L2(0.02),
    ElasticNet(0.01, 0.02),
    ExpAbs(0.005),
    GroupLasso(0.02, "rows"),
    GroupLasso(0.02, "columns"),
    L2SP(0.05),
    Orthogonal(0.05, "rows"),
]
PEN_IDS = [
    "l1",
    "l2",
    "elastic_net",
    "exp_abs",
    "group_lasso_rows",
    "group_lasso_columns",
    "l2sp",
    "orthogonal",
]
OPTIMIZERS = {
    "sgd": lambda params: torch.optim.SGD(params, lr=0.05),
    "sgd_momentum": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9),
    "adam": lambda params: torch.optim.Adam(params, lr=0.01),
}


def mlp(seed=0, dtype=torch.float64):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 2)
    ).to(dtype)


def data(seed=1, dtype=torch.float64, n=16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g, dtype=dtype), torch.randn(n, 2, generator=g, dtype=dtype)


def train(model, opt, reg=None, steps=20, add_loss=False, x=None, y=None):
    if x is None:
        x, y = data(dtype=next(model.parameters()).dtype)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        if add_loss:
            loss = loss + reg.loss()
        loss.backward()
        opt.step()
    return model


def run_mode(penalty, mode, make_opt, steps=20, plan_kwargs=None, seed=0):
    model = mlp(seed)
    opt = make_opt(model.parameters())
    plan = Plan(penalty, **(plan_kwargs or {}))
    reg = Regularizer(model, plan, mode=mode).attach(opt)
    train(model, opt, reg, steps=steps, add_loss=(mode == "loss"))
    return model, reg


def params_of(model):
    return [p.detach().clone() for p in model.parameters()]


def assert_same_params(a, b, atol=1e-6, rtol=0.0):
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=atol, rtol=rtol)


# --- gradient mode = loss mode ---------------------------------------------------------------


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("penalty", PENALTIES, ids=PEN_IDS)
def test_gradient_mode_equals_loss_mode(penalty, opt_name):
    by_loss, _ = run_mode(penalty, "loss", OPTIMIZERS[opt_name])
    by_grad, _ = run_mode(penalty, "gradient", OPTIMIZERS[opt_name])
    unregularized = train(mlp(), OPTIMIZERS[opt_name](mlp().parameters()))
    assert_same_params(by_loss, by_grad, atol=1e-6)
    # ...and the penalty did something.
    moved = max(
        (a - b).abs().max().item() for a, b in zip(by_grad.parameters(), unregularized.parameters())
    )
    assert moved > 1e-5


@pytest.mark.parametrize("penalty", [L2(0.02), L1(0.01)], ids=["l2", "l1"])
def test_gradient_mode_with_biases_and_float32(penalty):
    kwargs = {"include_biases": True}
    make = OPTIMIZERS["adam"]
    by_loss = mlp(dtype=torch.float32)
    opt = make(by_loss.parameters())
    reg = Regularizer(by_loss, Plan(penalty, **kwargs), "loss").attach(opt)
    train(by_loss, opt, reg, add_loss=True)
    by_grad = mlp(dtype=torch.float32)
    opt = make(by_grad.parameters())
    Regularizer(by_grad, Plan(penalty, **kwargs), "gradient").attach(opt)
    train(by_grad, opt)
    assert_same_params(by_loss, by_grad, atol=1e-6)


# --- decoupled ----------------------------------------------------------------------------


@pytest.mark.parametrize("penalty", PENALTIES, ids=PEN_IDS)
def test_decoupled_equals_gradient_for_plain_sgd(penalty):
    by_grad, _ = run_mode(penalty, "gradient", OPTIMIZERS["sgd"])
    by_decay, _ = run_mode(penalty, "decoupled", OPTIMIZERS["sgd"])
    assert_same_params(by_grad, by_decay, atol=1e-6)


def test_decoupled_differs_from_gradient_for_adam():
    by_grad, _ = run_mode(L2(0.05), "gradient", OPTIMIZERS["adam"])
    by_decay, _ = run_mode(L2(0.05), "decoupled", OPTIMIZERS["adam"])
    gap = max(
        (a - b).abs().max().item() for a, b in zip(by_grad.parameters(), by_decay.parameters())
    )
    assert gap > 1e-4


@pytest.mark.parametrize("wd", [0.01, 0.3])
def test_adam_decoupled_l2_is_adamw_exactly(wd):
    """Adam + decoupled ``L2(wd / 2)`` on every parameter is ``AdamW(weight_decay=wd)``."""
    ours = mlp(dtype=torch.float32)
    opt = torch.optim.Adam(ours.parameters(), lr=0.01)
    Regularizer(ours, Plan(L2(wd / 2), include_biases=True), "decoupled").attach(opt)
    train(ours, opt)
    reference = mlp(dtype=torch.float32)
    train(reference, torch.optim.AdamW(reference.parameters(), lr=0.01, weight_decay=wd))
    for a, b in zip(ours.parameters(), reference.parameters()):
        assert torch.equal(a, b)


# --- optimizer.step(closure) ---------------------------------------------------------------


def train_with_closure(model, opt, reg, steps=20, keyword=False):
    x, y = data(dtype=next(model.parameters()).dtype)

    def closure():
        # As Lightning and skorch do: zero_grad and backward inside the closure.
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        if reg.mode == "loss":
            loss = loss + reg.loss()
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure=closure) if keyword else opt.step(closure)
    return model


@pytest.mark.parametrize("keyword", [False, True], ids=["positional", "keyword"])
@pytest.mark.parametrize("mode", ["loss", "gradient", "decoupled", "proximal"])
def test_step_with_a_closure_equals_the_plain_loop(mode, keyword):
    """The gradients appear inside ``step(closure)``, after the pre-step hook has run."""
    penalty = L1(0.01) if mode == "proximal" else L2(0.05)
    plain, _ = run_mode(penalty, mode, OPTIMIZERS["adam"])
    model = mlp()
    opt = OPTIMIZERS["adam"](model.parameters())
    reg = Regularizer(model, penalty, mode=mode).attach(opt)
    train_with_closure(model, opt, reg, keyword=keyword)
    assert_same_params(model, plain, atol=1e-12)
    unregularized = train(mlp(), OPTIMIZERS["adam"](mlp().parameters()))
    moved = max(
        (a - b).abs().max().item() for a, b in zip(model.parameters(), unregularized.parameters())
    )
    assert moved > 1e-4


class TwoEvaluationSGD(torch.optim.Optimizer):
    """Plain SGD that evaluates its closure twice per step, as LBFGS's line search does."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            closure()
            loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
        return loss


@pytest.mark.parametrize("mode", ["gradient", "decoupled"])
def test_closure_evaluated_twice_decays_once_and_penalizes_every_gradient(mode):
    model = mlp()
    opt = TwoEvaluationSGD(model.parameters(), lr=0.1)
    Regularizer(model, L2(0.5), mode=mode).attach(opt)
    before = model[0].weight.detach().clone()
    grads = []

    def closure():
        opt.zero_grad()
        loss = (model[0].weight * 0.0).sum()  # a zero data gradient: only the penalty acts
        loss.backward()
        grads.append(model[0].weight.grad)
        return loss

    opt.step(closure)
    # One shrink by lr * 2 * l2 * w either way: gradient mode adds 2 * l2 * w to the
    # gradient of the evaluation the step uses; decoupled mode decays once, not twice.
    torch.testing.assert_close(model[0].weight, before * (1 - 0.1 * 2 * 0.5))
    assert len(grads) == 2


def test_decoupled_reads_each_group_lr_and_follows_schedulers():
    def run(mode):
        model = mlp()
        opt = torch.optim.SGD(
            [
                {"params": model[0].parameters(), "lr": 0.1},
                {"params": list(model[2].parameters()) + list(model[4].parameters())},
            ],
            lr=0.02,
        )
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
        reg = Regularizer(model, L1(0.05), mode).attach(opt)
        x, y = data()
        for _ in range(12):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            if mode == "loss":
                loss = loss + reg.loss()
            loss.backward()
            opt.step()
            sched.step()
        return model

    assert_same_params(run("decoupled"), run("gradient"), atol=1e-9)
    assert_same_params(run("loss"), run("gradient"), atol=1e-9)


# --- proximal -----------------------------------------------------------------------------


def lasso_problem(n=60, d=8, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    x = (x - x.mean(0)) / x.std(0)
    w_true = np.array([2.0, -1.5, 0.0, 0.0, 0.8, 0.0, 0.05, 0.0])
    y = x @ w_true + 0.3 * rng.normal(size=n)
    return x, y


def test_proximal_l1_reaches_the_lasso_solution_with_exact_zeros():
    """Proximal gradient descent on ``mean((Xw - y)**2) + l1 * ||w||_1``.

    scikit-learn's Lasso minimizes ``(1 / 2n) * ||y - Xw||^2 + alpha * ||w||_1``; twice that
    is ``mean((Xw - y)**2) + 2 * alpha * ||w||_1``, so the two problems have the same
    minimizer when ``alpha = l1 / 2``.
    """
    x, y = lasso_problem()
    n = len(y)
    l1 = 0.3
    lipschitz = 2 / n * np.linalg.eigvalsh(x.T @ x).max()
    model = nn.Linear(x.shape[1], 1, bias=False).double()
    nn.init.normal_(model.weight)
    opt = torch.optim.SGD(model.parameters(), lr=1 / lipschitz)
    Regularizer(model, L1(l1), "proximal").attach(opt)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).unsqueeze(1)
    for _ in range(400):
        opt.zero_grad()
        nn.functional.mse_loss(model(xt), yt).backward()
        opt.step()
    ours = model.weight.detach().numpy().ravel()

    lasso = Lasso(alpha=l1 / 2, fit_intercept=False, tol=1e-14, max_iter=100_000).fit(x, y)
    assert (lasso.coef_ == 0).sum() >= 2  # the problem has a sparse solution
    assert np.array_equal(ours == 0, lasso.coef_ == 0)
    np.testing.assert_allclose(ours, lasso.coef_, atol=1e-6)


def test_gradient_mode_l1_never_gives_exact_zeros_but_proximal_does():
    x, y = lasso_problem()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).unsqueeze(1)
    zeros = {}
    for mode in ("gradient", "proximal"):
        torch.manual_seed(0)
        model = nn.Linear(8, 1, bias=False).double()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        Regularizer(model, L1(0.3), mode).attach(opt)
        for _ in range(200):
            opt.zero_grad()
            nn.functional.mse_loss(model(xt), yt).backward()
            opt.step()
        zeros[mode] = int((model.weight == 0).sum())
    assert zeros["gradient"] == 0
    assert zeros["proximal"] >= 2


def test_proximal_group_lasso_zeroes_whole_rows():
    """Rows of a Linear weight are output neurons: the neurons not needed vanish entirely."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6))
    # Outputs 0-2 depend on the inputs, outputs 3-5 are pure noise around zero.
    coef = np.zeros((6, 6))
    coef[:3] = rng.normal(size=(3, 6))
    y = x @ coef.T + 0.05 * rng.normal(size=(80, 6))
    torch.manual_seed(0)
    model = nn.Linear(6, 6, bias=False).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Regularizer(model, GroupLasso(0.02, "rows"), "proximal").attach(opt)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.mse_loss(model(xt), yt).backward()
        opt.step()
    w = model.weight.detach()
    zero_rows = (w == 0).all(dim=1)
    assert zero_rows.tolist() == [False, False, False, True, True, True]
    # No row is only partly zero: the groups go as a whole.
    assert ((w == 0).any(dim=1) == zero_rows).all()


def test_proximal_group_lasso_columns_zero_unused_inputs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 5))
    y = x[:, :2] @ rng.normal(size=(2, 3)) + 0.05 * rng.normal(size=(80, 3))
    model = nn.Linear(5, 3, bias=False).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Regularizer(model, GroupLasso(0.02, "columns"), "proximal").attach(opt)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.mse_loss(model(xt), yt).backward()
        opt.step()
    zero_columns = (model.weight == 0).all(dim=0)
    assert zero_columns.tolist() == [False, False, True, True, True]


@pytest.mark.parametrize(
    "penalty",
    [L1(0.3), L2(0.2), ElasticNet(0.3, 0.2), GroupLasso(0.5, "rows"), L2SP(0.4)],
    ids=["l1", "l2", "elastic_net", "group_lasso", "l2sp"],
)
def test_proximal_step_is_prox_of_the_sgd_step(penalty):
    model = mlp()
    before = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    reg = Regularizer(model, penalty, "proximal", scale=0.5).attach(opt)
    train(model, opt, steps=1)
    x, y = data()
    nn.functional.mse_loss(before(x), y).backward()
    for a, p in zip(reg.assignments, before.parameters()):
        stepped = p.detach() - 0.3 * p.grad
        if a.penalty is not None:
            stepped = a.penalty.prox(stepped, 0.3 * 0.5, p.detach())
        torch.testing.assert_close(a.param.detach(), stepped, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", ["gradient", "decoupled", "proximal"])
def test_parameters_without_a_gradient_are_left_alone(mode):
    """As torch optimizers skip them: a frozen or unused layer is not decayed."""
    model = mlp()
    model[4].weight.requires_grad_(False)
    frozen = model[4].weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Regularizer(model, L1(0.5), mode).attach(opt)
    train(model, opt, steps=3)
    assert torch.equal(model[4].weight, frozen)
    assert not torch.equal(model[0].weight, mlp()[0].weight)


# --- hooks, schedules --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["gradient", "decoupled", "proximal"])
def test_remove_restores_the_unregularized_optimizer(mode):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    reg = Regularizer(model, Plan(L2(0.5), activity={"1": L1(0.1)}), mode).attach(opt)
    reg.remove()
    train(model, opt)
    reference = mlp()
    train(reference, torch.optim.SGD(reference.parameters(), lr=0.05))
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.equal(a, b)
    # The activity hook is gone too (and the detached regularizer says its weights are not
    # penalized).
    model(torch.randn(3, 4, dtype=torch.float64))
    with pytest.warns(UserWarning, match="attached to no optimizer"):
        assert reg.loss().item() == 0.0


def test_detach_stops_the_penalty_midway():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    reg = Regularizer(model, L2(0.5), "gradient").attach(opt)
    train(model, opt, steps=5)
    reg.detach()
    after_detach = copy.deepcopy(model)
    train(model, opt, steps=5)
    train(after_detach, torch.optim.SGD(after_detach.parameters(), lr=0.05), steps=5)
    for a, b in zip(model.parameters(), after_detach.parameters()):
        assert torch.equal(a, b)


def test_context_manager_and_attach_twice():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Regularizer(model, L2(0.1), "gradient") as reg:
        assert reg.attach(opt) is reg
        reg.attach(opt)  # attaching again is a no-op, not a double penalty
        train(model, opt, steps=3)
    twice = params_of(model)
    train(model, opt, steps=1)
    once = mlp()
    opt1 = torch.optim.SGD(once.parameters(), lr=0.05)
    Regularizer(once, L2(0.1), "gradient").attach(opt1)
    train(once, opt1, steps=3)
    for a, b in zip(twice, once.parameters()):
        assert torch.equal(a, b)
    assert reg._hooks == {}


def test_scale_schedule_changes_the_effective_strength():
    def schedule(step):
        return 0.0 if step < 3 else 2.0

    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    reg = Regularizer(model, L2(0.1), "gradient", scale=schedule).attach(opt)
    manual = mlp()
    opt_m = torch.optim.SGD(manual.parameters(), lr=0.05)
    x, y = data()
    for step in range(8):
        assert reg.current_scale() == schedule(step)
        for m, o, extra in ((model, opt, None), (manual, opt_m, step)):
            o.zero_grad()
            loss = nn.functional.mse_loss(m(x), y)
            if extra is not None:
                weights = [m[i].weight for i in (0, 2, 4)]
                loss = loss + schedule(extra) * 0.1 * sum(w.pow(2).sum() for w in weights)
            loss.backward()
            o.step()
    assert reg.steps == 8
    assert_same_params(model, manual, atol=1e-12)


def test_scale_attribute_can_be_changed_during_training():
    a = mlp()
    opt_a = torch.optim.SGD(a.parameters(), lr=0.05)
    reg = Regularizer(a, L2(0.4), "gradient").attach(opt_a)
    reg.scale = 0.25
    train(a, opt_a)
    b = mlp()
    opt_b = torch.optim.SGD(b.parameters(), lr=0.05)
    Regularizer(b, L2(0.1), "gradient").attach(opt_b)
    train(b, opt_b)
    assert_same_params(a, b, atol=1e-12)


def test_zero_scale_is_unregularized_exactly():
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    Regularizer(model, L1(1.0), "gradient", scale=0.0).attach(opt)
    train(model, opt)
    reference = mlp()
    train(reference, torch.optim.Adam(reference.parameters(), lr=0.01))
    for a, b in zip(model.parameters(), reference.parameters()):
        assert torch.equal(a, b)


def test_set_plan_changes_the_penalty_while_training():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    reg = Regularizer(model, L2(0.1), "gradient").attach(opt)
    train(model, opt, steps=3)
    reg.set_plan(L1(0.05))
    train(model, opt, steps=3)
    manual = mlp()
    opt_m = torch.optim.SGD(manual.parameters(), lr=0.05)
    r1 = Regularizer(manual, L2(0.1), "loss")
    train(manual, opt_m, r1, steps=3, add_loss=True)
    r2 = Regularizer(manual, L1(0.05), "loss")
    train(manual, opt_m, r2, steps=3, add_loss=True)
    assert_same_params(model, manual, atol=1e-12)


def test_l1_scratch_is_made_once_and_follows_the_model_dtype(monkeypatch):
    monkeypatch.setattr(functional_penalties, "SCRATCH_MIN_ELEMENTS", 1)
    model = mlp(dtype=torch.float32)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    reg = Regularizer(model, {"*": L1(0.01), "4.weight": L2(0.1)}, "gradient").attach(opt)
    train(model, opt, steps=2)
    l1_bucket, l2_bucket = reg.buckets
    first = dict(l1_bucket.scratch)
    assert [first[id(p)].shape for p in l1_bucket.params] == [(6, 4), (5, 6)]
    assert first[id(l1_bucket.params[0])].dtype == torch.float32
    assert l2_bucket.scratch is None  # L2 needs no temporary
    train(model, opt, steps=2)
    assert all(l1_bucket.scratch[k] is v for k, v in first.items())
    model.double()  # same Parameter objects, new dtype: the buffers are remade to match
    train(model, opt, steps=1)
    assert l1_bucket.scratch[id(l1_bucket.params[0])].dtype == torch.float64


@pytest.mark.parametrize("mode", ["gradient", "decoupled", "proximal"])
@pytest.mark.parametrize("penalty", [L1(0.02), ElasticNet(0.02, 0.03)], ids=["l1", "elastic_net"])
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_scratch_path_is_bitwise_the_foreach_path(penalty, mode, opt_name, monkeypatch):
    """Large CPU weights go through reusable buffers, small ones through temporaries."""
    results = []
    for minimum in (1, 2**62):
        monkeypatch.setattr(functional_penalties, "SCRATCH_MIN_ELEMENTS", minimum)
        model, reg = run_mode(penalty, mode, OPTIMIZERS[opt_name])
        assert (reg.buckets[0].scratch is None) == (minimum > 1)
        results.append(model)
    for a, b in zip(*(m.parameters() for m in results)):
        assert torch.equal(a, b)


# --- already trained networks: L2-SP ------------------------------------------------------


def test_l2sp_on_an_already_trained_model_pulls_back_toward_the_snapshot():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    train(model, opt, steps=10)  # fit first...
    snapshot = params_of(model)
    reg = Regularizer(model, L2SP(1.0), "gradient")  # ...regularize later
    bucket = reg.buckets[0]
    weights = [model[i].weight for i in (0, 2, 4)]
    assert [r.data_ptr() for r in bucket.refs] != [w.data_ptr() for w in weights]
    for ref, w in zip(bucket.refs, weights):
        assert torch.equal(ref, w.detach())
    assert reg.value().item() == 0.0  # at the snapshot the penalty is zero

    # Fine-tune on a new task with and without L2-SP.
    x_new, y_new = data(seed=7)
    free = copy.deepcopy(model)
    train(free, torch.optim.SGD(free.parameters(), lr=0.05), steps=30, x=x_new, y=y_new * 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    reg.attach(opt)
    train(model, opt, steps=30, x=x_new, y=y_new * 3)
    # The references did not move with the weights.
    for ref, w in zip(bucket.refs, snapshot[0::2]):
        assert torch.equal(ref, w)

    def drift(m):
        return sum(
            (p - s).pow(2).sum().item()
            for p, s in zip([m[i].weight for i in (0, 2, 4)], snapshot[0::2])
        )

    assert drift(model) < 0.5 * drift(free)
    assert reg.value().item() == pytest.approx(drift(model), rel=1e-9)


def test_l2sp_with_explicit_references_pulls_each_layer_toward_its_own():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False)).double()
    first = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    second = torch.tensor([[4.0, 3.0], [2.0, 1.0]], dtype=torch.float64)  # same sum
    plan = {"0.weight": L2SP(0.5, reference=first), "1.weight": L2SP(0.5, reference=second)}
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    reg = Regularizer(model, plan, "proximal").attach(opt)
    assert len(reg.buckets) == 2
    for _ in range(200):
        opt.zero_grad()
        (0 * model(torch.ones(1, 2, dtype=torch.float64)).sum()).backward()
        opt.step()
    torch.testing.assert_close(model[0].weight.detach(), first)
    torch.testing.assert_close(model[1].weight.detach(), second)


# --- value() and loss() -------------------------------------------------------------------


@pytest.mark.parametrize("penalty", PENALTIES, ids=PEN_IDS)
def test_value_equals_loss_and_builds_no_graph(penalty):
    model = mlp()
    reg = Regularizer(model, penalty, "loss", scale=1.5)
    # Move away from the L2-SP snapshot so every value is non-zero.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    loss = reg.loss()
    value = reg.value()
    assert loss.requires_grad and not value.requires_grad
    assert value.grad_fn is None
    assert value.item() > 0
    torch.testing.assert_close(value, loss.detach(), rtol=1e-12, atol=0)


def test_loss_is_zero_outside_loss_mode_without_activity():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    reg = Regularizer(model, L2(0.1), "gradient").attach(opt)
    assert reg.loss().item() == 0.0
    assert reg.value().item() > 0


def test_describe_and_repr():
    model = mlp()
    reg = Regularizer(model, L2(0.1), "gradient")
    assert reg.describe() == reg.plan.describe(model)
    assert repr(reg).startswith(
        "Regularizer(mode='gradient', 3 parameters, Plan([('*', L2(l2=0.1))"
    )


def test_regularize_attaches_in_one_call():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    reg = regularize(model, opt, L2(0.1), mode="gradient")
    assert reg._optimizers[0][0] is opt
    loss_only = regularize(model, None, L2(0.1), mode="loss")
    assert loss_only._optimizers == []


# --- activity regularization -------------------------------------------------------------


def test_activity_penalty_is_penalty_of_output_over_batch_size():
    model = mlp()
    x, y = data()
    reg = Regularizer(model, Plan(None, activity={"1": L2(0.3)}), "gradient")
    out = model(x)
    hidden = torch.tanh(model[0](x))
    penalty = reg.loss()
    torch.testing.assert_close(penalty, 0.3 * hidden.pow(2).sum() / x.shape[0])
    reg.scale = 2.0  # the scale multiplies activity penalties too
    model(x)
    torch.testing.assert_close(reg.loss(), 2 * 0.3 * hidden.pow(2).sum() / x.shape[0])
    reg.scale = 1.0
    # Gradient wrt the layer's weights, against a manual computation.
    (nn.functional.mse_loss(out, y) + penalty).backward()
    got = model[0].weight.grad.clone()
    manual = mlp()
    h = torch.tanh(manual[0](x))
    out_m = manual[4](torch.tanh(manual[2](h)))
    (nn.functional.mse_loss(out_m, y) + 0.3 * h.pow(2).sum() / x.shape[0]).backward()
    torch.testing.assert_close(got, manual[0].weight.grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("batch_first", [False, True])
def test_activity_on_an_lstm_divides_by_the_batch_dimension(batch_first):
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4, batch_first=batch_first).double()
    model = nn.Sequential()
    model.add_module("lstm", lstm)
    time_steps, batch = 5, 2
    shape = (batch, time_steps, 3) if batch_first else (time_steps, batch, 3)
    x = torch.randn(shape, dtype=torch.float64)
    reg = Regularizer(model, Plan(None, activity={"lstm": L1(0.1)}), "gradient")
    out, _ = model(x)
    penalty = reg.loss()
    torch.testing.assert_close(penalty, 0.1 * out.abs().sum() / batch)
    penalty.backward()
    got = lstm.weight_ih_l0.grad.clone()
    lstm.zero_grad()
    out, _ = lstm(x)
    (0.1 * out.abs().sum() / batch).backward()
    torch.testing.assert_close(got, lstm.weight_ih_l0.grad)


def test_activity_is_not_recorded_without_grad_and_is_outside_value():
    model = mlp()
    reg = Regularizer(model, Plan(L2(0.1), activity={nn.Tanh: L2(1.0)}), "gradient")
    with torch.no_grad():
        model(torch.randn(4, 4, dtype=torch.float64))
    with pytest.warns(UserWarning, match="attached to no optimizer"):
        assert reg.loss().item() == 0.0
    model(torch.randn(4, 4, dtype=torch.float64))
    assert reg.loss().item() > 0
    assert reg.loss().item() == 0.0  # consumed by the previous call
    before = reg.value().item()
    model(torch.randn(4, 4, dtype=torch.float64))
    assert reg.value().item() == before


def test_activity_in_loss_mode_adds_to_the_weight_penalty():
    model = mlp()
    x, _ = data()
    reg = Regularizer(model, Plan(L2(0.1), activity={"3": L1(0.2)}), "loss")
    model(x)
    weights = sum(model[i].weight.pow(2).sum() for i in (0, 2, 4))
    hidden = torch.tanh(model[2](torch.tanh(model[0](x))))
    expected = 0.1 * weights + 0.2 * hidden.abs().sum() / x.shape[0]
    torch.testing.assert_close(reg.loss(), expected)


# --- bad inputs ---------------------------------------------------------------------------


def no_param_optimizer():
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)


BAD_INPUTS = [
    (
        "unknown mode",
        lambda: Regularizer(mlp(), L2(0.1), mode="weight_decay"),
        "The 'mode' parameter must be one of 'loss', 'gradient', 'decoupled', 'proximal'. "
        "Got 'weight_decay' instead.",
    ),
    (
        "proximal exp_abs",
        lambda: Regularizer(mlp(), ExpAbs(0.01), mode="proximal"),
        "mode='proximal' needs a closed-form proximal operator; ExpAbs(strength=0.01) has "
        "none. Use mode='gradient' or 'decoupled'.",
    ),
    (
        "proximal orthogonal",
        lambda: Regularizer(mlp(), {"*": L1(0.1), "2.weight": Orthogonal(0.1)}, "proximal"),
        "mode='proximal' needs a closed-form proximal operator; Orthogonal(factor=0.1, "
        "mode='rows') has none. Use mode='gradient' or 'decoupled'.",
    ),
    (
        "no optimizer",
        lambda: regularize(mlp(), None, L2(0.1), mode="gradient"),
        "mode='gradient' needs an optimizer to attach to; got None.",
    ),
    (
        "foreign optimizer",
        lambda: Regularizer(mlp(), L2(0.1), "gradient").attach(no_param_optimizer()),
        "None of the regularized parameters is in this optimizer's param_groups.",
    ),
    (
        "activity selector",
        lambda: Regularizer(mlp(), Plan(None, activity={"encoder": L2(0.1)})),
        "Activity selector 'encoder' matches no module of Sequential; modules are: 0, 1, 2, 3, 4.",
    ),
    (
        "weight selector",
        lambda: Regularizer(mlp(), {"encoder.*": L2(0.1)}),
        "Selector 'encoder.*' in the plan matches no parameter of Sequential; parameters "
        "are: 0.weight, 0.bias, 2.weight, 2.bias, 4.weight, 4.bias.",
    ),
]


@pytest.mark.parametrize(("case", "call", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_raise_one_clear_line(case, call, message):
    with pytest.raises(ShrinkageError, match=f"^{re.escape(message)}$"):
        call()


def test_set_plan_to_a_penalty_without_prox_is_refused_in_proximal_mode():
    reg = Regularizer(mlp(), L1(0.1), "proximal")
    with pytest.raises(ShrinkageError, match=r"^mode='proximal' needs a closed-form"):
        reg.set_plan(ExpAbs(0.1))


def test_loss_mode_may_attach_to_any_optimizer():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = Regularizer(mlp(), L2(0.1), "loss").attach(no_param_optimizer())
    assert len(reg._optimizers) == 1


# --- closures and LBFGS ---------------------------------------------------------------------


def ridge_problem(n=80, d=6, seed=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = x @ torch.randn(d, 1, generator=g, dtype=torch.float64) + 0.3 * torch.randn(
        n, 1, generator=g, dtype=torch.float64
    )
    return x, y


def ridge_solution(x, y, l2):
    """argmin mean((x w + b - y)**2) + l2 ||w||**2 (b unpenalized), in closed form."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    n = len(x)
    return torch.linalg.solve(
        xc.T @ xc / n + l2 * torch.eye(x.shape[1], dtype=x.dtype), xc.T @ yc / n
    )


def lbfgs_fit(mode, l2, line_search):
    x, y = ridge_problem()
    torch.manual_seed(0)
    model = nn.Linear(6, 1).double()
    opt = torch.optim.LBFGS(
        model.parameters(),
        lr=1,
        max_iter=100,
        line_search_fn=line_search,
        tolerance_grad=1e-12,
        tolerance_change=1e-14,
    )
    reg = Regularizer(model, L2(l2), mode).attach(opt)
    evaluations = []

    def closure():
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        if mode == "loss":
            loss = loss + reg.loss()
        loss.backward()
        evaluations.append(1)
        return loss

    returned = [opt.step(closure) for _ in range(5)]
    return model.weight.detach().clone(), returned, len(evaluations)


@pytest.mark.parametrize("line_search", ["strong_wolfe", None])
def test_lbfgs_gradient_mode_equals_loss_mode_and_is_ridge(line_search):
    """The penalty goes into every closure evaluation's gradient, and the loss the closure
    returns is loss + Omega: the line search sees the numbers it sees in loss mode (up to
    the rounding of a fused multiply-add: ``grad += 2 l2 w`` is one kernel)."""
    by_loss, loss_returned, _ = lbfgs_fit("loss", 0.05, line_search)
    by_gradient, gradient_returned, evaluations = lbfgs_fit("gradient", 0.05, line_search)
    assert evaluations > 10
    torch.testing.assert_close(by_gradient, by_loss, rtol=1e-10, atol=0)
    torch.testing.assert_close(
        torch.stack(gradient_returned), torch.stack(loss_returned), rtol=1e-12, atol=0
    )
    x, y = ridge_problem()
    torch.testing.assert_close(by_gradient.T, ridge_solution(x, y, 0.05), rtol=1e-7, atol=0)


@pytest.mark.parametrize("mode", ["decoupled", "proximal"])
def test_decoupled_and_proximal_refuse_lbfgs_in_one_line(mode):
    model = nn.Linear(3, 1)
    with pytest.raises(ShrinkageError) as err:
        Regularizer(model, L1(0.1), mode).attach(torch.optim.LBFGS(model.parameters()))
    assert str(err.value) == (
        f"mode={mode!r} cannot be used with LBFGS: it moves the weights by its own line "
        "search between closure evaluations; use mode='gradient' or 'loss'."
    )


def test_a_first_order_step_with_a_closure_returns_loss_plus_penalty_in_gradient_mode():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    reg = Regularizer(model, L2(0.5), "gradient").attach(opt)
    x, y = data()

    def closure():
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    with torch.no_grad():
        expected = nn.functional.mse_loss(model(x), y) + reg.value()
    torch.testing.assert_close(opt.step(closure), expected, rtol=1e-12, atol=0)


# --- what decoupled mode solves, and maximize ------------------------------------------------


def linear_fit(make_opt, mode, penalty, steps, sign=1.0, x=None, y=None):
    if x is None:
        x, y = ridge_problem()
    model = nn.Linear(x.shape[1], 1).double()
    with torch.no_grad():
        model.weight.zero_()
        model.bias.zero_()
    opt = make_opt(model.parameters())
    Regularizer(model, penalty, mode).attach(opt)
    for _ in range(steps):
        opt.zero_grad()
        (sign * nn.functional.mse_loss(model(x), y)).backward()
        opt.step()
    return model.weight.detach().T


def test_decoupled_under_momentum_solves_the_penalty_times_one_minus_mu():
    """``w -= lr dOmega`` is not accumulated by momentum, while the data step is
    ``lr g / (1 - mu)`` at a fixed point: grad f + (1 - mu) dOmega = 0."""
    x, y = ridge_problem()
    l2, mu = 0.05, 0.9
    w = linear_fit(lambda p: torch.optim.SGD(p, lr=0.1, momentum=mu), "decoupled", L2(l2), 800)
    torch.testing.assert_close(w, ridge_solution(x, y, (1 - mu) * l2), rtol=1e-9, atol=0)
    assert (w - ridge_solution(x, y, l2)).abs().max() > 1e-2


def test_decoupled_under_adam_solves_the_eps_log_barrier_objective():
    """The fixed point: m_hat / (sqrt(v_hat) + eps) = -dOmega; full batch v_hat = g**2, so
    g_i = -eps q_i / (1 - |q_i|) with q = 2 l2 w: the minimizer of
    f(w) + eps sum_i [-|w_i| - log(1 - 2 l2 |w_i|) / (2 l2)]. Checked with a visible eps
    (0.5); with eps = 1e-8 it is the unregularized minimizer in the box |w| < 1 / (2 l2)."""
    x, y = ridge_problem()
    l2, eps = 0.5, 0.5
    w = linear_fit(
        lambda p: torch.optim.Adam(p, lr=0.05, eps=eps, betas=(0.9, 0.99)),
        "decoupled",
        L2(l2),
        1500,
    )
    a = 2 * l2
    xc, yc = x - x.mean(0), y - y.mean(0)
    h, r = 2 * xc.T @ xc / len(x), 2 * xc.T @ yc / len(x)
    v = torch.zeros(6, 1, dtype=torch.float64)
    for _ in range(100):  # damped Newton on the convex barrier objective, inside the box
        g = h @ v - r + eps * a * v / (1 - a * v.abs())
        hessian = h + torch.diag((eps * a / (1 - a * v.abs()) ** 2).ravel())
        move = torch.linalg.solve(hessian, g)
        t = 1.0
        while bool((a * (v - t * move).abs() >= 1).any()):
            t /= 2
        v = v - t * move
    assert bool((a * v.abs() < 1).all())
    torch.testing.assert_close(w, v, rtol=1e-4, atol=0)
    assert (w - ridge_solution(x, y, l2)).abs().max() > 1e-2


def test_gradient_mode_under_maximize_ascends_objective_minus_penalty():
    """Ascending J = -MSE with ``maximize=True``: the penalty's gradient is subtracted, so
    the fixed point is argmax J - Omega, the ridge solution (adding it would maximize
    J + Omega: ridge with a negative strength)."""
    x, y = ridge_problem()
    make = lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, maximize=True)  # noqa: E731
    w = linear_fit(make, "gradient", L2(0.2), 1500, sign=-1.0)
    torch.testing.assert_close(w, ridge_solution(x, y, 0.2), rtol=1e-9, atol=0)


# --- the silent traps (issue #11, section 3): each failed before ----------------------------


def test_loss_of_an_unattached_regularizer_warns_once_that_it_penalizes_nothing():
    model = mlp()
    reg = Regularizer(model, L2(0.1), "gradient")
    with pytest.warns(UserWarning, match=r"attached to no optimizer.*reg\.attach\(optimizer\)"):
        assert reg.loss().item() == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.loss()  # once
        Regularizer(model, L2(0.1), "loss").loss()  # loss mode holds the penalty
        attached = Regularizer(model, L2(0.1), "proximal")
        attached.attach(torch.optim.SGD(model.parameters(), lr=0.1)).loss()


@pytest.mark.parametrize(
    ("make", "penalty", "warns"),
    [
        (lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=1e-3), L2(0.1), True),
        (lambda p: torch.optim.AdamW(p, lr=0.1), ElasticNet(0.1, 0.1), True),  # default 0.01
        (lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0), L2(0.1), False),
        (lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=1e-3), L1(0.1), False),
    ],
    ids=["sgd-l2", "adamw-default-elastic-net", "adamw-zero", "sgd-l1"],
)
def test_weight_decay_on_an_l2_penalized_weight_warns_that_it_is_applied_twice(
    make, penalty, warns
):
    model = mlp()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Regularizer(model, penalty, "gradient").attach(make(model.parameters()))
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    if warns:
        assert len(messages) == 1 and "the penalty is applied twice" in messages[0]
        assert "0.weight, 2.weight, 4.weight" in messages[0]
    else:
        assert messages == []


def test_a_torch_compiled_model_is_unwrapped_so_name_based_plans_work():
    model = mlp()
    compiled = torch.compile(model, backend="eager")
    plan = {"*": L2(0.05), "0.weight": L1(0.01)}
    reg = Regularizer(compiled, plan, "gradient")
    assert [a.name for a in reg.assignments][:2] == ["0.weight", "0.bias"]
    assert "0.weight" in str(reg.describe()) and "_orig_mod" not in str(reg.describe())
    opt = torch.optim.SGD(compiled.parameters(), lr=0.05)
    reg.attach(opt)
    train(compiled, opt)
    reference, _ = run_mode(plan, "gradient", OPTIMIZERS["sgd"])
    assert_same_params(model, reference, atol=1e-12)


def sparse_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(10, 4, sparse=True), nn.Flatten(), nn.Linear(12, 1)).double()


def sparse_train(mode, steps=5):
    model = sparse_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    reg = Regularizer(model, L2(0.05), mode).attach(opt) if mode != "by hand" else None
    tokens = torch.tensor([[1, 2, 3], [4, 5, 1]])
    target = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(tokens), target)
        loss = loss + reg.loss() if mode == "loss" else loss
        loss.backward()
        opt.step()
        if mode == "by hand":  # the proximal step of L2(0.05) after SGD(lr=0.1)
            with torch.no_grad():
                model[0].weight.div_(1 + 2 * 0.1 * 0.05)
                model[2].weight.div_(1 + 2 * 0.1 * 0.05)
    return model


def test_sparse_gradients_work_in_every_mode_but_gradient_which_says_so_in_one_line():
    with pytest.raises(ShrinkageError) as err:
        sparse_train("gradient")
    assert str(err.value) == (
        "mode='gradient' cannot add the penalty's gradient to the sparse gradient of "
        "'0.weight' (e.g. Embedding(sparse=True)); use mode='decoupled', 'proximal' or "
        "'loss' for it."
    )
    by_mode = {m: sparse_train(m) for m in ("loss", "decoupled", "proximal", "by hand")}
    # plain SGD: decoupled is loss mode; proximal is the SGD step then w / (1 + 2 lr l2)
    assert_same_params(by_mode["decoupled"], by_mode["loss"], atol=1e-12)
    assert_same_params(by_mode["proximal"], by_mode["by hand"], atol=1e-14)
    unpenalized = sparse_model()
    assert not torch.allclose(by_mode["loss"][0].weight, unpenalized[0].weight)


@pytest.mark.parametrize("scale", [float("nan"), -1.0, float("inf"), "0.5", None])
def test_scale_is_validated_like_a_strength(scale):
    message = r"^The 'scale' parameter must be a finite float in the range \[0, inf\)\. Got "
    with pytest.raises(ShrinkageError, match=message):
        Regularizer(mlp(), L2(0.1), "gradient", scale=scale)
    reg = Regularizer(mlp(), L2(0.1), "gradient")
    with pytest.raises(ShrinkageError, match=message):
        reg.scale = scale
    assert reg.scale == 1.0


def test_a_scale_schedule_that_returns_nan_is_refused_at_the_step():
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Regularizer(model, L2(0.1), "decoupled", scale=lambda step: float("nan")).attach(opt)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ShrinkageError, match=r"^The 'scale\(0\)' parameter must be a finite"):
        train(model, opt, steps=1)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
