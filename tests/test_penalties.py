"""Penalty objects: values and gradients against NumPy formulas, proximal operators against
numerical argmins, the list-level fast paths against the per-tensor slow paths, the
registry, JSON round-trips and the bad-input table."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from scipy import optimize

from shrinkage import penalties as P
from shrinkage.errors import ShrinkageError
from shrinkage.functional import penalties as F
from shrinkage.penalties import L1, L2, L2SP, ElasticNet, ExpAbs, GroupLasso, Orthogonal
from shrinkage.plan import Plan

RNG = np.random.default_rng(0)
W_LINEAR = RNG.normal(size=(4, 3))  # a torch Linear weight: (out, in)
W_CONV = RNG.normal(size=(4, 3, 2, 2))  # a Conv2d kernel: (out, in, kh, kw)
W_REF = RNG.normal(size=(4, 3))


# --- NumPy formulas, written out -----------------------------------------------------------


def np_group_matrix(w, groups):
    """One row per group: rows = output neurons / filters, columns = inputs / channels."""
    if groups == "rows":
        return w.reshape(w.shape[0], -1)
    return np.moveaxis(w, 1, 0).reshape(w.shape[1], -1)


def np_group_lasso(w, s, groups):
    m = np_group_matrix(w, groups)
    return s * math.sqrt(m.shape[1]) * np.sqrt((m**2).sum(axis=1)).sum()


def np_group_lasso_grad(w, s, groups):
    m = np_group_matrix(w, groups)
    g = s * math.sqrt(m.shape[1]) * m / np.sqrt((m**2).sum(axis=1, keepdims=True))
    if groups == "rows":
        return g.reshape(w.shape)
    moved = np.moveaxis(w, 1, 0).shape
    return np.moveaxis(g.reshape(moved), 0, 1)


def np_orthogonal(w, factor, mode):
    """Keras's OrthogonalRegularizer on the weight as stored (conv kernels as (out, -1))."""
    m = w.reshape(w.shape[0], -1)
    if mode == "columns":
        m = m.T
    u = m / np.linalg.norm(m, axis=1, keepdims=True)
    n = u.shape[0]
    off_diagonal = (u @ u.T) * (1 - np.eye(n))
    return factor * 0.5 * np.abs(off_diagonal).sum() / (n * (n - 1) / 2)


def np_numeric_grad(f, w, h=1e-6):
    grad = np.zeros_like(w)
    for index in np.ndindex(w.shape):
        step = np.zeros_like(w)
        step[index] = h
        grad[index] = (f(w + step) - f(w - step)) / (2 * h)
    return grad


# (id, penalty, weight, numpy value, numpy gradient or None for "numeric only")
CASES = [
    ("l1", L1(0.3), W_LINEAR, lambda w: 0.3 * np.abs(w).sum(), lambda w: 0.3 * np.sign(w)),
    ("l2", L2(0.2), W_LINEAR, lambda w: 0.2 * (w**2).sum(), lambda w: 2 * 0.2 * w),
    (
        "elastic_net",
        ElasticNet(0.1, 0.2),
        W_LINEAR,
        lambda w: 0.1 * np.abs(w).sum() + 0.2 * (w**2).sum(),
        lambda w: 0.1 * np.sign(w) + 2 * 0.2 * w,
    ),
    (
        "exp_abs",
        ExpAbs(0.05),
        W_LINEAR,
        lambda w: 0.05 * (np.exp(np.abs(w)) - 1).sum(),
        lambda w: 0.05 * np.sign(w) * np.exp(np.abs(w)),
    ),
    (
        "group_lasso_rows_linear",
        GroupLasso(0.1, "rows"),
        W_LINEAR,
        lambda w: 0.1 * sum(math.sqrt(3) * np.linalg.norm(w[i]) for i in range(4)),
        lambda w: np_group_lasso_grad(w, 0.1, "rows"),
    ),
    (
        "group_lasso_columns_linear",
        GroupLasso(0.1, "columns"),
        W_LINEAR,
        lambda w: 0.1 * sum(math.sqrt(4) * np.linalg.norm(w[:, j]) for j in range(3)),
        lambda w: np_group_lasso_grad(w, 0.1, "columns"),
    ),
    (
        "group_lasso_rows_conv",
        GroupLasso(0.1, "rows"),
        W_CONV,
        lambda w: 0.1 * sum(math.sqrt(3 * 2 * 2) * np.linalg.norm(w[o]) for o in range(4)),
        lambda w: np_group_lasso_grad(w, 0.1, "rows"),
    ),
    (
        "group_lasso_columns_conv",
        GroupLasso(0.1, "columns"),
        W_CONV,
        lambda w: 0.1 * sum(math.sqrt(4 * 2 * 2) * np.linalg.norm(w[:, c]) for c in range(3)),
        lambda w: np_group_lasso_grad(w, 0.1, "columns"),
    ),
    (
        "l2sp",
        L2SP(0.3, reference=torch.from_numpy(W_REF)),
        W_LINEAR,
        lambda w: 0.3 * ((w - W_REF) ** 2).sum(),
        lambda w: 2 * 0.3 * (w - W_REF),
    ),
    (
        "orthogonal_rows",
        Orthogonal(0.2, "rows"),
        W_LINEAR,
        lambda w: np_orthogonal(w, 0.2, "rows"),
        None,
    ),
    (
        "orthogonal_columns",
        Orthogonal(0.2, "columns"),
        W_LINEAR,
        lambda w: np_orthogonal(w, 0.2, "columns"),
        None,
    ),
    (
        "orthogonal_conv",
        Orthogonal(0.2, "rows"),
        W_CONV,
        lambda w: np_orthogonal(w, 0.2, "rows"),
        None,
    ),
]
IDS = [c[0] for c in CASES]


def as_tensor(w):
    return torch.tensor(w, dtype=torch.float64)


@pytest.mark.parametrize(("name", "penalty", "w", "np_value", "np_grad"), CASES, ids=IDS)
def test_value_matches_numpy_formula(name, penalty, w, np_value, np_grad):
    value = penalty.value(as_tensor(w))
    assert value.shape == ()
    np.testing.assert_allclose(value.item(), np_value(w), rtol=1e-12)
    # Keras style: calling the object is the value.
    np.testing.assert_allclose(penalty(as_tensor(w)).item(), np_value(w), rtol=1e-12)


@pytest.mark.parametrize(("name", "penalty", "w", "np_value", "np_grad"), CASES, ids=IDS)
def test_grad_matches_numpy_formula(name, penalty, w, np_value, np_grad):
    grad = penalty.grad(as_tensor(w)).numpy()
    if np_grad is not None:
        np.testing.assert_allclose(grad, np_grad(w), rtol=1e-12, atol=1e-15)
    # Every penalty is differentiable at these random points: compare to finite differences
    # of the NumPy value formula too (this is the only check for Orthogonal's gradient).
    np.testing.assert_allclose(grad, np_numeric_grad(np_value, w), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("name", "penalty", "w", "np_value", "np_grad"), CASES, ids=IDS)
def test_grad_equals_autograd_of_value(name, penalty, w, np_value, np_grad):
    leaf = as_tensor(w).requires_grad_(True)
    (expected,) = torch.autograd.grad(penalty.value(leaf), leaf)
    torch.testing.assert_close(penalty.grad(as_tensor(w)), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("penalty", [c[1] for c in CASES], ids=IDS)
def test_value_with_batch_dims_is_one_value_per_stacked_candidate(penalty):
    torch.manual_seed(3)
    stack = torch.randn(3, 4, 3, dtype=torch.float64)
    ref = torch.from_numpy(W_REF)
    batched = penalty.value(stack, ref, batch_dims=1)
    assert batched.shape == (3,)
    looped = torch.stack([penalty.value(w, ref) for w in stack])
    torch.testing.assert_close(batched, looped, rtol=1e-12, atol=1e-15)


def test_float32_value_keeps_dtype():
    w = torch.randn(3, 2)
    for _, penalty, *_ in CASES[:4]:
        assert penalty.value(w).dtype == torch.float32
        assert penalty.grad(w).dtype == torch.float32


# --- kinks: the subgradient chosen at zero ---------------------------------------------------


@pytest.mark.parametrize(
    ("penalty", "expected"),
    [
        (L1(0.5), [0.0, 0.5, -0.5]),
        (ElasticNet(0.5, 1.0), [0.0, 0.5 + 2.0, -0.5 - 2.0]),
        (ExpAbs(0.5), [0.0, 0.5 * math.e, -0.5 * math.e]),
    ],
    ids=["l1", "elastic_net", "exp_abs"],
)
def test_subgradient_is_exactly_zero_at_zero(penalty, expected):
    w = torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64)
    grad = penalty.grad(w)
    assert grad[0].item() == 0.0
    torch.testing.assert_close(grad, torch.tensor(expected, dtype=torch.float64))
    # The fused list path picks the same subgradient.
    g = [torch.zeros_like(w)]
    penalty.add_grad_(g, [w], None, 1.0)
    assert g[0][0].item() == 0.0


def test_l1_subgradient_zero_on_an_all_zero_tensor():
    assert torch.equal(L1(3.0).grad(torch.zeros(5, 4)), torch.zeros(5, 4))


def test_group_lasso_subgradient_is_zero_for_a_zero_group():
    w = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
    grad = GroupLasso(1.0, "rows").grad(w)
    assert torch.equal(grad[0], torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(grad[1], math.sqrt(2) * torch.tensor([0.6, 0.8]).double())


# --- proximal operators ----------------------------------------------------------------------

PROX_CASES = [
    ("l1", L1(0.4), lambda x: 0.4 * np.abs(x).sum()),
    ("l2", L2(0.7), lambda x: 0.7 * (x**2).sum()),
    ("elastic_net", ElasticNet(0.4, 0.7), lambda x: 0.4 * np.abs(x).sum() + 0.7 * (x**2).sum()),
    ("group_lasso_rows", GroupLasso(0.3, "rows"), lambda x: np_group_lasso(x, 0.3, "rows")),
    (
        "group_lasso_columns",
        GroupLasso(0.3, "columns"),
        lambda x: np_group_lasso(x, 0.3, "columns"),
    ),
    (
        "l2sp",
        L2SP(0.7, reference=torch.tensor([[0.5, -1.0], [2.0, 0.0], [0.1, 0.2]])),
        lambda x: 0.7 * ((x - np.array([[0.5, -1.0], [2.0, 0.0], [0.1, 0.2]])) ** 2).sum(),
    ),
]
# Some entries / groups small enough to be zeroed at step 0.5, some not.
V = np.array([[1.3, -0.05], [-0.9, 0.15], [0.02, -0.03]])


def prox_objective(omega, v, step):
    return lambda x: step * omega(x.reshape(v.shape)) + 0.5 * ((x.reshape(v.shape) - v) ** 2).sum()


@pytest.mark.parametrize(("name", "penalty", "omega"), PROX_CASES, ids=[c[0] for c in PROX_CASES])
@pytest.mark.parametrize("step", [0.1, 0.5])
def test_prox_is_the_numerical_argmin(name, penalty, omega, step):
    """prox(v) = argmin_x step * Omega(x) + 0.5 * ||x - v||^2, checked with scipy."""
    ours = penalty.prox(torch.tensor(V), step).numpy()
    objective = prox_objective(omega, V, step)
    found = optimize.minimize(
        objective, V.ravel(), method="Powell", options={"xtol": 1e-12, "ftol": 1e-15}
    )
    np.testing.assert_allclose(ours.ravel(), found.x, atol=1e-5)
    # The closed form is at least as good as the numerical optimum, and no nearby point beats it.
    assert objective(ours.ravel()) <= found.fun + 1e-12
    for _ in range(20):
        nearby = ours.ravel() + RNG.normal(scale=1e-3, size=ours.size)
        assert objective(ours.ravel()) <= objective(nearby)


@pytest.mark.parametrize(
    ("penalty", "step", "v", "expected"),
    [
        # Soft-threshold at step * l1 = 1: exact zeros inside [-1, 1].
        (L1(2.0), 0.5, [3.0, -0.5, 1.0, -2.5, 0.0], [2.0, 0.0, 0.0, -1.5, 0.0]),
        # Shrink by 1 / (1 + 2 * step * l2) = 1 / 2.
        (L2(1.0), 0.5, [3.0, -0.5, 0.0], [1.5, -0.25, 0.0]),
        # Soft-threshold at 1, then divide by 1 + 2 * 0.5 * 1 = 2.
        (ElasticNet(2.0, 1.0), 0.5, [3.0, -0.5, -2.0], [1.0, 0.0, -0.5]),
        # Block soft-threshold of rows [3, 4] (norm 5) and [0.3, 0.4] (norm 0.5) at
        # step * strength * sqrt(2) = sqrt(2): the second row is an exact zero.
        (
            GroupLasso(1.0, "rows"),
            1.0,
            [[3.0, 4.0], [0.3, 0.4]],
            [[3.0 * (1 - math.sqrt(2) / 5), 4.0 * (1 - math.sqrt(2) / 5)], [0.0, 0.0]],
        ),
    ],
    ids=["l1", "l2", "elastic_net", "group_lasso"],
)
def test_prox_known_closed_forms(penalty, step, v, expected):
    out = penalty.prox(torch.tensor(v, dtype=torch.float64), step)
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64))


def test_l1_prox_gives_exact_zeros():
    w = torch.tensor([0.3, -0.3, 0.29, -0.31])
    out = L1(1.0).prox(w, 0.3)
    assert (out[:3] == 0).all()
    assert out[3].item() == pytest.approx(-0.01, abs=1e-7)


@pytest.mark.parametrize("penalty", [ExpAbs(0.1), Orthogonal(0.1)], ids=["exp_abs", "orthogonal"])
def test_penalties_without_closed_form_prox_refuse(penalty):
    assert not penalty.has_prox
    name = type(penalty).__name__
    message = (
        f"{name} has no closed-form proximal operator; "
        "use mode='gradient' or mode='decoupled' for it."
    )
    with pytest.raises(ShrinkageError, match=f"^{re.escape(message)}$"):
        penalty.prox(torch.ones(2, 2), 0.1)


# --- list-level fast paths equal the per-tensor slow paths -----------------------------------

ALL_PENALTIES = [
    L1(0.03),
    L2(0.02),
    ElasticNet(0.03, 0.02),
    ExpAbs(0.01),
    GroupLasso(0.05, "rows"),
    GroupLasso(0.05, "columns"),
    L2SP(0.04),
    Orthogonal(0.1, "rows"),
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


def list_fixture(penalty):
    torch.manual_seed(1)
    shapes = [(5, 4), (6, 5, 3, 3), (3, 7), (2, 2)]
    params = [torch.randn(s, dtype=torch.float64) for s in shapes]
    params[0][1, 2] = 0.0  # an exact zero: the kink must be handled alike on both paths
    grads = [torch.randn(s, dtype=torch.float64) for s in shapes]
    refs = (
        [torch.randn(s, dtype=torch.float64) for s in shapes] if penalty.needs_reference else None
    )
    return params, grads, refs


def per_tensor_refs(refs, n):
    return refs if refs is not None else [None] * n


def forced_scratch(params):
    """scratch_buffers's buffers even for tensors this small (the real threshold is 2**15)."""
    minimum = F.SCRATCH_MIN_ELEMENTS
    try:
        F.SCRATCH_MIN_ELEMENTS = 1
        return F.scratch_buffers(params)
    finally:
        F.SCRATCH_MIN_ELEMENTS = minimum


SCRATCH = {
    "foreach": lambda params: None,
    "scratch": forced_scratch,
    # Buffers of the wrong dtype and shape: every tensor falls back to a temporary.
    "unfit_scratch": lambda params: [torch.empty(3, dtype=torch.float32) for _ in params],
}


@pytest.mark.parametrize("how", list(SCRATCH))
@pytest.mark.parametrize("penalty", ALL_PENALTIES, ids=PEN_IDS)
def test_add_grad_fast_path_equals_per_tensor(penalty, how):
    params, grads, refs = list_fixture(penalty)
    scratch = SCRATCH[how](params)
    expected = [
        g + 0.7 * penalty.grad(p, r) for g, p, r in zip(grads, params, per_tensor_refs(refs, 4))
    ]
    penalty.add_grad_(grads, params, refs, 0.7, scratch)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("how", list(SCRATCH))
@pytest.mark.parametrize("penalty", ALL_PENALTIES, ids=PEN_IDS)
def test_decay_fast_path_equals_per_tensor(penalty, how):
    params, _, refs = list_fixture(penalty)
    scratch = SCRATCH[how](params)
    expected = [p - 0.3 * penalty.grad(p, r) for p, r in zip(params, per_tensor_refs(refs, 4))]
    penalty.decay_(params, refs, 0.3, scratch)
    for got, want in zip(params, expected):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "penalty",
    [p for p in ALL_PENALTIES if p.has_prox],
    ids=[i for p, i in zip(ALL_PENALTIES, PEN_IDS) if p.has_prox],
)
@pytest.mark.parametrize("how", list(SCRATCH))
def test_prox_fast_path_equals_per_tensor(penalty, how):
    params, _, refs = list_fixture(penalty)
    scratch = SCRATCH[how](params)
    expected = [penalty.prox(p, 0.4, r) for p, r in zip(params, per_tensor_refs(refs, 4))]
    penalty.prox_(params, refs, 0.4, scratch)
    for got, want in zip(params, expected):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("how", list(SCRATCH))
def test_l1_fast_paths_are_bitwise_the_functional_ones(how):
    """``w - clamp(w, -t, t)`` is the soft-threshold to the last bit, zeros included."""
    torch.manual_seed(2)
    params = [torch.randn(40, 30) * 0.5, torch.randn(7) * 0.5, torch.zeros(3, 3)]
    scratch = SCRATCH[how](params)
    expected = [F.soft_threshold(p, 0.5 * 0.6) for p in params]
    prox = [p.clone() for p in params]
    L1(0.6).prox_(prox, None, 0.5, scratch)
    for got, want in zip(prox, expected):
        assert torch.equal(got, want)
    assert sum(int((p == 0).sum()) for p in prox) > 400
    grads = [torch.ones_like(p) for p in params]
    L1(0.6).add_grad_(grads, params, None, 2.0, scratch)
    for got, p in zip(grads, params):
        assert torch.equal(got, torch.ones_like(p) + 1.2 * torch.sign(p))


def test_scratch_buffers_is_one_buffer_as_large_as_the_largest_tensor():
    big = F.SCRATCH_MIN_ELEMENTS
    params = [torch.zeros(5, 4), torch.zeros(big), torch.zeros(2, 3, 2)]
    views = F.scratch_buffers(params)
    assert [v.shape for v in views] == [p.shape for p in params]
    assert len({v.data_ptr() for v in views}) == 1  # one buffer, seen three ways
    assert views[1].untyped_storage().nbytes() == big * 4
    assert F.scratch_buffers([]) is None
    assert F.scratch_buffers([torch.zeros(big), torch.zeros(2, dtype=torch.float64)]) is None
    # Small tensors: fresh temporaries are cheaper than a per-tensor loop.
    assert F.scratch_buffers([torch.zeros(big - 1)]) is None
    assert L1.uses_scratch and ElasticNet.uses_scratch and not L2.uses_scratch


@pytest.mark.parametrize("penalty", ALL_PENALTIES, ids=PEN_IDS)
def test_total_equals_sum_of_values(penalty):
    params, _, refs = list_fixture(penalty)
    expected = sum(penalty.value(p, r) for p, r in zip(params, per_tensor_refs(refs, 4)))
    total = penalty.total(params, refs)
    assert not total.requires_grad
    torch.testing.assert_close(total, expected, rtol=1e-12, atol=0)


# --- registry, configuration, JSON --------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "cls"),
    [
        ("l1", L1),
        ("L1", L1),
        ("l2", L2),
        ("L2", L2),
        ("elastic_net", ElasticNet),
        ("ElasticNet", ElasticNet),
        ("l1l2", ElasticNet),
        ("L1L2", ElasticNet),
        ("l1_l2", ElasticNet),
        ("exp_abs", ExpAbs),
        ("ExpAbs", ExpAbs),
        ("group_lasso", GroupLasso),
        ("GroupLasso", GroupLasso),
        ("l2sp", L2SP),
        ("L2SP", L2SP),
        ("orthogonal", Orthogonal),
        ("OrthogonalRegularizer", Orthogonal),
    ],
)
def test_get_resolves_names_like_keras(identifier, cls):
    penalty = P.get(identifier)
    assert type(penalty) is cls
    assert penalty == cls()


def test_get_passes_through_objects_none_and_dicts():
    penalty = L2(0.5)
    assert P.get(penalty) is penalty
    assert P.get(None) is None
    assert P.get({"class_name": "L1", "config": {"l1": 0.2}}) == L1(0.2)
    assert P.serialize(None) is None
    assert P.deserialize(None) is None


ROUND_TRIP = [
    L1(0.1),
    L2(0.25),
    ElasticNet(0.01, 0.02),
    ExpAbs(0.003),
    GroupLasso(0.1, "rows"),
    GroupLasso(0.2, "columns"),
    L2SP(0.3),
    L2SP(0.3, reference=[[1.5, -2.0], [0.25, 4.0]]),
    Orthogonal(0.01, "rows"),
    Orthogonal(0.02, "columns"),
]


@pytest.mark.parametrize("penalty", ROUND_TRIP, ids=repr)
def test_json_round_trip(penalty):
    text = json.dumps(P.serialize(penalty))
    back = P.deserialize(json.loads(text))
    assert back == penalty
    assert type(back) is type(penalty)
    assert back.get_config() == penalty.get_config()
    assert hash(back) == hash(penalty)
    w = torch.tensor([[0.5, -1.0], [2.0, 0.3]])
    ref = torch.zeros(2, 2)
    torch.testing.assert_close(back.value(w, ref), penalty.value(w, ref))


def test_serialize_is_keras_shaped():
    assert P.serialize(L2(0.25)) == {"class_name": "L2", "config": {"l2": 0.25}}
    assert P.serialize(GroupLasso(0.1, "columns")) == {
        "class_name": "GroupLasso",
        "config": {"strength": 0.1, "groups": "columns"},
    }


def test_equality_and_hash_group_equal_penalties():
    assert L2(0.1) == L2(0.1) and hash(L2(0.1)) == hash(L2(0.1))
    assert L2(0.1) != L2(0.2)
    assert L1(0.1) != L2(0.1)
    assert GroupLasso(0.1, "rows") != GroupLasso(0.1, "columns")
    assert len({L2(0.1), L2(0.1), L1(0.1)}) == 2


@pytest.mark.parametrize(
    ("penalty", "factor", "expected"),
    [
        (L2(0.1), 3.0, L2(0.1 * 3.0)),
        (ElasticNet(0.1, 0.2), 0.5, ElasticNet(0.05, 0.1)),
        (Orthogonal(0.2, "columns"), 2.0, Orthogonal(0.4, "columns")),
        (GroupLasso(0.2, "columns"), 2.0, GroupLasso(0.4, "columns")),
        (L2SP(0.2), 2.0, L2SP(0.4)),
    ],
    ids=["l2", "elastic_net", "orthogonal", "group_lasso", "l2sp"],
)
def test_scaled_multiplies_every_strength(penalty, factor, expected):
    assert penalty.scaled(factor) == expected
    w = torch.randn(3, 3, dtype=torch.float64)
    ref = torch.zeros(3, 3, dtype=torch.float64)
    torch.testing.assert_close(
        penalty.scaled(factor).value(w, ref), factor * penalty.value(w, ref), rtol=1e-12, atol=0
    )


def test_l2sp_reference_round_trips_every_digit():
    reference = torch.randn(3, 4, dtype=torch.float64)
    penalty = L2SP(0.3, reference=reference)
    back = P.deserialize(json.loads(json.dumps(P.serialize(penalty))))
    assert back == penalty
    assert torch.equal(back.reference, reference)
    w = torch.randn(3, 4, dtype=torch.float64)
    assert back.value(w).item() == penalty.value(w).item()


def test_l2sp_equality_compares_every_reference_value():
    # Same shape, same sum, different weights: not the same penalty (a Regularizer groups
    # equal penalties, and a group shares one reference).
    assert L2SP(0.3, reference=[[1.0, 2.0]]) != L2SP(0.3, reference=[[2.0, 1.0]])
    assert L2SP(0.3, reference=[[1.0, 2.0]]) == L2SP(0.3, reference=torch.tensor([[1.0, 2.0]]))


def test_l2sp_snapshots_a_live_weight_passed_as_reference():
    layer = torch.nn.Linear(2, 2)
    penalty = L2SP(1.0, reference=layer.weight)
    assert not penalty.reference.requires_grad
    with torch.no_grad():
        layer.weight.add_(1.0)
    assert penalty.value(layer.weight).item() == pytest.approx(4.0)


def test_l2sp_uses_its_own_reference_or_the_one_given():
    w = torch.tensor([1.0, 2.0])
    assert L2SP(1.0, reference=[1.0, 1.0]).value(w).item() == pytest.approx(1.0)
    assert L2SP(1.0).value(w, torch.tensor([0.0, 0.0])).item() == pytest.approx(5.0)


# --- bad inputs ---------------------------------------------------------------------------


def strength_message(name, got):
    return (
        f"The '{name}' parameter must be a finite float in the range [0, inf). Got {got} instead."
    )


BAD_INPUTS = [
    ("negative l2", lambda: L2(-1), strength_message("l2", "-1")),
    ("negative l1", lambda: L1(-0.5), strength_message("l1", "-0.5")),
    ("nan l1", lambda: L1(float("nan")), strength_message("l1", "nan")),
    ("inf l2", lambda: L2(float("inf")), strength_message("l2", "inf")),
    ("bool l2", lambda: L2(True), strength_message("l2", "True")),
    ("none l1", lambda: L1(None), strength_message("l1", "None")),
    ("negative elastic l2", lambda: ElasticNet(0.1, -2), strength_message("l2", "-2")),
    ("negative exp_abs", lambda: ExpAbs(-0.1), strength_message("strength", "-0.1")),
    ("nan group lasso", lambda: GroupLasso(float("nan")), strength_message("strength", "nan")),
    ("inf l2sp", lambda: L2SP(float("-inf")), strength_message("strength", "-inf")),
    ("negative orthogonal", lambda: Orthogonal(-1.0), strength_message("factor", "-1.0")),
    (
        "group lasso groups",
        lambda: GroupLasso(0.1, groups="diagonal"),
        "The 'groups' parameter of GroupLasso must be 'rows' or 'columns'. Got 'diagonal' instead.",
    ),
    (
        "orthogonal mode",
        lambda: Orthogonal(0.1, mode="row"),
        "The 'mode' parameter of Orthogonal must be 'rows' or 'columns'. Got 'row' instead.",
    ),
    (
        "unknown name",
        lambda: P.get("l3"),
        "Unknown penalty identifier: 'l3'. Expected one of: "
        "l1, l2, elastic_net, exp_abs, group_lasso, l2sp, orthogonal.",
    ),
    (
        "unknown class_name",
        lambda: P.deserialize({"class_name": "Dropout", "config": {}}),
        "Unknown penalty identifier: 'Dropout'. Expected one of: "
        "l1, l2, elastic_net, exp_abs, group_lasso, l2sp, orthogonal.",
    ),
    (
        "uninterpretable identifier",
        lambda: P.get(0.01),
        "Could not interpret penalty identifier: 0.01. A number alone is not a penalty: "
        "write sk.L2(0.01).",
    ),
    (
        "a bare number in a plan",
        lambda: Plan({"*": 1e-3}),
        "Could not interpret penalty identifier: 0.001. A number alone is not a penalty: "
        "write sk.L2(0.001).",
    ),
    (
        "the class, not an instance",
        lambda: Plan({"*": P.L2}),
        "Could not interpret penalty identifier: <class 'shrinkage.penalties.L2'>. "
        "That is the class L2, not a penalty: write sk.L2(0.001).",
    ),
    (
        "a near name",
        lambda: P.get("elasticnet2"),
        "Unknown penalty identifier: 'elasticnet2'. Expected one of: "
        "l1, l2, elastic_net, exp_abs, group_lasso, l2sp, orthogonal. Did you mean 'elastic_net'?",
    ),
    (
        "dict without class_name",
        lambda: P.deserialize({"config": {"l2": 0.1}}),
        "A serialized penalty must be a dict with 'class_name' and 'config'. "
        "Got {'config': {'l2': 0.1}}.",
    ),
    (
        "bad config value",
        lambda: P.deserialize({"class_name": "L2", "config": {"l2": -3}}),
        strength_message("l2", "-3"),
    ),
    (
        "l2sp without reference",
        lambda: L2SP(0.1).value(torch.ones(2)),
        "L2SP needs a reference: pass reference=... or use it through a Regularizer, "
        "which snapshots the weights.",
    ),
    (
        "l2sp reference shape",
        lambda: L2SP(0.1, reference=[1.0, 2.0, 3.0]).value(torch.ones(2, 2)),
        "The 'reference' of L2SP has shape (3,), the weight has shape (2, 2).",
    ),
    (
        "course m",
        lambda: P.from_course(0.1, 0),
        "The 'm' parameter must be a count >= 1. Got 0 instead.",
    ),
    ("course lambda", lambda: P.from_course(-0.1, 10), strength_message("lam", "-0.1")),
    (
        "sklearn n_samples",
        lambda: P.from_sklearn_alpha(1e-4, 0),
        "The 'n_samples' parameter must be a count >= 1. Got 0 instead.",
    ),
    ("sklearn alpha", lambda: P.from_sklearn_alpha(-1.0, 10), strength_message("alpha", "-1.0")),
    (
        "torch weight decay",
        lambda: P.from_torch_weight_decay(float("nan")),
        strength_message("weight_decay", "nan"),
    ),
]


@pytest.mark.parametrize(("case", "call", "message"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_inputs_raise_one_clear_line(case, call, message):
    with pytest.raises(ShrinkageError) as info:
        call()
    assert str(info.value) == message
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unexpected_config_key_is_named():
    with pytest.raises(
        ShrinkageError, match=r"^Invalid config for L2: \{'alpha': 1\} \(.*alpha.*\)\.$"
    ):
        P.deserialize({"class_name": "L2", "config": {"alpha": 1}})
