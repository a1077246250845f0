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
