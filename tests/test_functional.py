"""The pure functions: a stack of K candidates (``batch_dims=1``, a ``(K,)`` strength) gives
exactly what a loop over the candidates gives, for values, gradients and proximal steps."""

from __future__ import annotations

import math

import pytest
import torch

from shrinkage.functional import penalties as F

K = 3
STRENGTHS = torch.tensor([0.0, 0.05, 0.3], dtype=torch.float64)
SECOND = torch.tensor([0.2, 0.0, 0.1], dtype=torch.float64)
SHAPES = {"linear": (5, 4), "conv": (4, 3, 2, 2), "vector": (6,)}


def stacked(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn((K, *shape), generator=g, dtype=torch.float64)
    w[1].view(-1)[0] = 0.0  # a kink inside one candidate
    return w


# name -> (value fn, grad fn or None, prox fn or None); each takes (w, s, s2, batch_dims)
# (and step for prox) so one table drives every check.
FUNCTIONS = {
    "l1": (
        lambda w, s, s2, b: F.l1(w, s, b),
        lambda w, s, s2, b: F.l1_grad(w, s, b),
        lambda w, s, s2, step, b: F.l1_prox(w, s, step, b),
    ),
    "l2": (
        lambda w, s, s2, b: F.l2(w, s, b),
        lambda w, s, s2, b: F.l2_grad(w, s, b),
        lambda w, s, s2, step, b: F.l2_prox(w, s, step, b),
    ),
    "elastic_net": (
        lambda w, s, s2, b: F.elastic_net(w, s, s2, b),
        lambda w, s, s2, b: F.elastic_net_grad(w, s, s2, b),
        lambda w, s, s2, step, b: F.elastic_net_prox(w, s, s2, step, b),
    ),
    "exp_abs": (
        lambda w, s, s2, b: F.exp_abs(w, s, b),
        lambda w, s, s2, b: F.exp_abs_grad(w, s, b),
        None,
    ),
    "group_lasso_rows": (
        lambda w, s, s2, b: F.group_lasso(w, s, "rows", b),
        lambda w, s, s2, b: F.group_lasso_grad(w, s, "rows", b),
        lambda w, s, s2, step, b: F.group_lasso_prox(w, s, step, "rows", b),
    ),
    "group_lasso_columns": (
        lambda w, s, s2, b: F.group_lasso(w, s, "columns", b),
        lambda w, s, s2, b: F.group_lasso_grad(w, s, "columns", b),
        lambda w, s, s2, step, b: F.group_lasso_prox(w, s, step, "columns", b),
    ),
    "l2sp": (
        lambda w, s, s2, b: F.l2sp(w, torch.ones(w.shape[b:], dtype=w.dtype), s, b),
        lambda w, s, s2, b: F.l2sp_grad(w, torch.ones(w.shape[b:], dtype=w.dtype), s, b),
        lambda w, s, s2, step, b: F.l2sp_prox(
            w, torch.ones(w.shape[b:], dtype=w.dtype), s, step, b
        ),
    ),
    "orthogonal_rows": (lambda w, s, s2, b: F.orthogonal(w, s, "rows", b), None, None),
    "orthogonal_columns": (lambda w, s, s2, b: F.orthogonal(w, s, "columns", b), None, None),
}
CASES = [(name, shape) for name in FUNCTIONS for shape in SHAPES]


@pytest.mark.parametrize(("name", "shape"), CASES)
def test_batched_value_equals_loop(name, shape):
    value, _, _ = FUNCTIONS[name]
    w = stacked(SHAPES[shape])
    batched = value(w, STRENGTHS, SECOND, 1)
    assert batched.shape == (K,)
    looped = torch.stack([value(w[k], STRENGTHS[k].item(), SECOND[k].item(), 0) for k in range(K)])
    torch.testing.assert_close(batched, looped, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("name", "shape"), CASES)
def test_batched_grad_equals_loop(name, shape):
    value, grad, _ = FUNCTIONS[name]
    w = stacked(SHAPES[shape])
    if grad is None:
        # No closed form: the gradient of the summed batched values, per candidate.
        leaf = w.clone().requires_grad_(True)
        (batched,) = torch.autograd.grad(value(leaf, STRENGTHS, SECOND, 1).sum(), leaf)
        looped = []
        for k in range(K):
            one = w[k].clone().requires_grad_(True)
            (g,) = torch.autograd.grad(value(one, STRENGTHS[k].item(), SECOND[k].item(), 0), one)
            looped.append(g)
    else:
        batched = grad(w, STRENGTHS, SECOND, 1)
        looped = [grad(w[k], STRENGTHS[k].item(), SECOND[k].item(), 0) for k in range(K)]
    torch.testing.assert_close(batched, torch.stack(looped), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("name", "shape"), [(n, s) for n, s in CASES if FUNCTIONS[n][2] is not None]
)
def test_batched_prox_equals_loop(name, shape):
    _, _, prox = FUNCTIONS[name]
    w = stacked(SHAPES[shape])
    batched = prox(w, STRENGTHS, SECOND, 0.7, 1)
    looped = [prox(w[k], STRENGTHS[k].item(), SECOND[k].item(), 0.7, 0) for k in range(K)]
    torch.testing.assert_close(batched, torch.stack(looped), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_zero_strength_candidate_is_unpenalized(name):
    value, grad, prox = FUNCTIONS[name]
    w = stacked(SHAPES["linear"])
    zero = torch.zeros(K, dtype=torch.float64)
    assert torch.equal(value(w, zero, zero, 1), torch.zeros(K, dtype=torch.float64))
    if grad is not None:
        assert torch.equal(grad(w, zero, zero, 1), torch.zeros_like(w))
    if prox is not None:
        # L2-SP computes w0 + (w - w0): equal up to rounding.
        torch.testing.assert_close(prox(w, zero, zero, 0.5, 1), w, rtol=0, atol=1e-15)


def test_soft_threshold_known_values():
    out = F.soft_threshold(torch.tensor([2.0, -2.0, 0.5, -0.5, 0.0]), 1.0)
    assert out.tolist() == [1.0, -1.0, 0.0, 0.0, 0.0]


def test_group_norms_shapes_broadcast_against_the_weight():
    w = torch.randn(4, 3, 2, 2)
    assert F.group_norms(w, "rows").shape == (4, 1, 1, 1)
    assert F.group_norms(w, "columns").shape == (1, 3, 1, 1)
    assert F.group_norms(torch.randn(K, 4, 3), "columns", batch_dims=1).shape == (K, 1, 3)
    torch.testing.assert_close(F.group_norms(w, "rows").reshape(4), w.reshape(4, -1).norm(dim=1))


def test_vector_groups_rows_are_entries_and_columns_are_the_whole_vector():
    v = torch.tensor([3.0, -4.0], dtype=torch.float64)
    # Rows: two groups of size 1, i.e. plain L1.
    assert F.group_lasso(v, 0.5, "rows").item() == pytest.approx(0.5 * 7.0)
    # Columns: one group of size 2.
    assert F.group_lasso(v, 0.5, "columns").item() == pytest.approx(0.5 * math.sqrt(2) * 5.0)


def test_orthogonal_is_zero_for_orthogonal_rows_and_factor_for_parallel_rows():
    eye = torch.eye(3, dtype=torch.float64)
    assert F.orthogonal(eye, 0.7).item() == pytest.approx(0.0)
    parallel = torch.tensor([[1.0, 2.0], [2.0, 4.0], [-3.0, -6.0]], dtype=torch.float64)
    # Every pair has |cos| = 1: the mean |cosine| is 1, so the penalty is the factor.
    assert F.orthogonal(parallel, 0.7).item() == pytest.approx(0.7)
    # A single row has no pair: zero, and still differentiable.
    one = torch.randn(1, 4, requires_grad=True)
    value = F.orthogonal(one, 0.7)
    value.backward()
    assert value.item() == 0.0 and torch.equal(one.grad, torch.zeros(1, 4))


# --- proximal steps with a per-coordinate step D (StepSize, metric) -----------------------


def _adam_state(shapes=((7, 5), (4,), (3, 2, 2)), seed=0):
    """Params and their Adam second moments after three steps on wildly scaled gradients."""
    torch.manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(*s, dtype=torch.float64)) for s in shapes]
    opt = torch.optim.Adam(params, lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        sum((p * torch.randn_like(p) * 10 ** torch.randn_like(p)).sum() for p in params).backward()
        opt.step()
    from shrinkage.steps import step_sizes

    return [p.detach() for p in params], step_sizes(opt, opt.param_groups[0], params)


def test_step_size_tensor_is_scale_over_sqrt_v_plus_eps():
    v = torch.tensor([0.0, 4.0, 9.0], dtype=torch.float64)
    torch.testing.assert_close(F.StepSize(0.5, v, 1.0).tensor(), 0.5 / (v.sqrt() + 1.0))
    assert F.step_tensor(0.3) == 0.3 and F.StepSize(0.3).tensor() == 0.3


@pytest.mark.parametrize("l1, l2", [(3.0, 0.7), (3.0, 0.0), (0.0, 0.7)])
@pytest.mark.parametrize("scratch", [False, True])
def test_elastic_net_prox_with_a_metric_is_the_coordinatewise_prox_with_step_d(scratch, l1, l2):
    """Float strengths: computed in the scaled coordinates u = w * e (L2 alone: w - 2 l2 w /
    (e + 2 l2)); tensor strengths: with formed thresholds. All equal
    S(w, D l1) / (1 + 2 D l2), with the same exact zeros."""
    params, sizes = _adam_state()
    expected = []
    for w, s in zip(params, sizes):
        d = s.tensor()
        expected.append(torch.sign(w) * torch.clamp(w.abs() - d * l1, min=0) / (1 + 2 * d * l2))
    metric = [(s.v, s.eps) for s in sizes]
    for strengths in ("float", "tensor"):
        ws = [w.clone() for w in params]
        if strengths == "float":
            a, b = [s.scale * l1 for s in sizes], [s.scale * l2 for s in sizes]
        else:
            a = [torch.tensor(s.scale * l1, dtype=torch.float64) for s in sizes]
            b = [torch.tensor(s.scale * l2, dtype=torch.float64) for s in sizes]
        buffers = [torch.empty_like(w) for w in ws] if scratch else None
        F.elastic_net_prox_(ws, a, b, buffers, metric)
        assert sum(int((e == 0).sum()) for e in expected) > (5 if l1 else -1)
        for w, e in zip(ws, expected):
            assert torch.equal(w == 0, e == 0)
            torch.testing.assert_close(w, e, rtol=1e-13, atol=1e-15)
    for s in sizes:  # the optimizer's state is read, never written
        assert s.v.min() > 0


def test_tensor_strengths_of_zero_leave_the_weights_exactly_as_they_were():
    """A stack's idle candidate: zero strengths under a per-coordinate step change nothing."""
    params, sizes = _adam_state(shapes=((3, 4, 5),))
    w = params[0].clone()
    zero = torch.zeros(3, 1, 1, dtype=torch.float64)
    half = torch.tensor([0.0, 0.2, 0.0], dtype=torch.float64).view(3, 1, 1)
    F.elastic_net_prox_([w], [half], [zero], None, [(sizes[0].v, sizes[0].eps)])
    assert torch.equal(w[0], params[0][0]) and torch.equal(w[2], params[0][2])
    assert not torch.equal(w[1], params[0][1])


def test_scalar_soft_threshold_in_place_equals_the_formula_with_exact_zeros():
    w = torch.randn(20000, dtype=torch.float64)
    expected = torch.sign(w) * torch.clamp(w.abs() - 0.3, min=0)
    a, b = w.clone(), w.clone()
    F.elastic_net_prox_([a], 0.3, 0.0)  # fused _foreach kernels
    F.elastic_net_prox_([b], 0.3, 0.0, [torch.empty_like(b)])  # softshrink, one tensor at a time
    # ==, not torch.equal: a zeroed negative entry is -0.0 from softshrink, +0.0 from w - clamp.
    assert bool((a == expected).all()) and bool((b == expected).all())
    assert int((b == 0).sum()) > 1000


def _brute_prox(y, d, penalty, span=4.0, grid=200001):
    """argmin_x penalty(x) + (x - y)**2 / (2 d) on a grid, entry by entry."""
    xs = torch.linspace(-span, span, grid, dtype=torch.float64)
    out = torch.empty_like(y)
    for i in range(y.numel()):
        objective = penalty(xs) + (xs - y.view(-1)[i]) ** 2 / (2 * d.view(-1)[i])
        out.view(-1)[i] = xs[objective.argmin()]
    return out


def test_the_per_coordinate_prox_is_the_minimizer_of_its_objective():
    params, sizes = _adam_state(shapes=((6,),))
    w, s = params[0], sizes[0]
    d = s.tensor()
    l1, l2 = 0.7, 0.4
    got = w.clone()
    F.elastic_net_prox_([got], [s.scale * l1], [s.scale * l2], None, [(s.v, s.eps)])
    brute = _brute_prox(w, d, lambda x: l1 * x.abs() + l2 * x**2)
    torch.testing.assert_close(got, brute, atol=8 / 200000, rtol=0)
    ref = torch.randn_like(w)
    torch.testing.assert_close(
        F.l2sp_prox(w, ref, l2, d), ref + (w - ref) / (1 + 2 * d * l2), rtol=1e-14, atol=1e-15
    )


def _bisection_metric_prox(y, d, tau):
    """Row groups of prox_{tau ||.||} in the metric diag(1/d): bisection on the secular
    equation sum y_i**2 / (r + tau d_i)**2 = 1 (200 halvings), float64."""
    out = torch.zeros_like(y)
    for i in range(y.shape[0]):
        yi, ci = y[i], d[i] * tau
        if ((yi / ci) ** 2).sum() <= 1:
            continue
        lo, hi = 0.0, float(yi.norm())
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if ((yi / (mid + ci)) ** 2).sum() > 1 else (lo, mid)
        r = (lo + hi) / 2
        out[i] = yi * r / (r + ci)
    return out


@pytest.mark.parametrize("spread", [0.0, 3.0, 12.0])
def test_group_lasso_metric_prox_matches_bisection_and_is_optimal(spread):
    """D spread over e**spread within a group: the exact prox, whole rows zero or not."""
    torch.manual_seed(int(spread))
    d = torch.exp(-spread * torch.rand(40, 9, dtype=torch.float64))
    strength = 0.1
    tau = strength * 3.0  # sqrt(9)
    u = 2 * torch.rand(40, 1, dtype=torch.float64)
    y = torch.randn(40, 9, dtype=torch.float64) * tau * d * u / 3
    x = F.group_lasso_prox(y, strength, d)
    ref = _bisection_metric_prox(y, d, tau)
    zero_rows = (ref == 0).all(1)
    assert 0 < int(zero_rows.sum()) < 40
    assert torch.equal((x == 0).all(1), zero_rows)
    torch.testing.assert_close(x, ref, rtol=1e-12, atol=1e-14)
    # optimality on the kept rows: (y - x) / d = tau x / ||x||
    keep = ~zero_rows
    rhs = tau * x[keep] / x[keep].norm(dim=1, keepdim=True)
    torch.testing.assert_close(((y - x) / d)[keep], rhs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("groups", ["rows", "columns"])
def test_group_lasso_metric_prox_with_a_constant_step_is_the_block_soft_threshold(groups):
    y = torch.randn(10, 4, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(
        F.group_lasso_prox(y, 0.5, torch.full_like(y, 0.2), groups),
        F.group_lasso_prox(y, 0.5, 0.2, groups),
        rtol=1e-13,
        atol=1e-15,
    )
