"""The step each optimizer really takes (shrinkage.steps), read after its step.

The defining property: on a steady gradient ``c`` (the linear loss ``<c, w>``) the last
displacement of the weights is exactly ``D * c`` with ``D`` what the reader returns.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from shrinkage import L1, Regularizer
from shrinkage.errors import ShrinkageError
from shrinkage.functional.penalties import StepSize
from shrinkage.steps import (
    SUPPORTED_OPTIMIZERS,
    adam_step,
    check_optimizer,
    register_step_reader,
    step_sizes,
)

OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.01),
    "sgd-momentum": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
    "sgd-dampening": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, dampening=0.3),
    "sgd-nesterov": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True),
    "sgd-maximize-foreach": lambda p: torch.optim.SGD(
        p, lr=0.01, momentum=0.5, maximize=True, foreach=True
    ),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
    "adam-foreach": lambda p: torch.optim.Adam(p, lr=0.01, foreach=True),
    "adam-fused": lambda p: torch.optim.Adam(p, lr=0.01, fused=True),
    "adam-amsgrad-maximize": lambda p: torch.optim.Adam(p, lr=0.01, amsgrad=True, maximize=True),
    "adam-tensor-lr": lambda p: torch.optim.Adam(p, lr=torch.tensor(0.01)),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.0),
    "adamw-amsgrad-foreach": lambda p: torch.optim.AdamW(
        p, lr=0.01, weight_decay=0.0, amsgrad=True, foreach=True
    ),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01),
    "rmsprop-centered-foreach": lambda p: torch.optim.RMSprop(
        p, lr=0.01, centered=True, foreach=True
    ),
    "rmsprop-momentum": lambda p: torch.optim.RMSprop(p, lr=0.001, momentum=0.9),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.01, lr_decay=0.01),
    "adagrad-foreach": lambda p: torch.optim.Adagrad(
        p, lr=0.01, foreach=True, initial_accumulator_value=0.1
    ),
}


def displacement_per_unit_gradient(make, steps):
    """``steps`` steps on ``<c, w>``: the last displacement, the step read after it, and
    ``c`` (negated under maximize, which ascends)."""
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(5, 3, dtype=torch.float64))
    c = torch.randn(5, 3, dtype=torch.float64)
    opt = make([w])
    for _ in range(steps):
        opt.zero_grad()
        (w * c).sum().backward()
        before = w.detach().clone()
        opt.step()
    (size,) = step_sizes(opt, opt.param_groups[0], [w])
    sign = -1.0 if opt.param_groups[0].get("maximize", False) else 1.0
    return before - w.detach(), size.tensor(), sign * c


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_the_step_read_after_a_step_is_the_displacement_per_unit_gradient(name):
    # Centered RMSprop's variance estimate goes to 0 on a constant gradient (its step to
    # lr / eps): checked before that, at step 30.
    steps = 30 if "centered" in name else 3000
    moved, d, c = displacement_per_unit_gradient(OPTIMIZERS[name], steps)
    torch.testing.assert_close(moved, d * c, rtol=1e-9, atol=0)


@pytest.mark.parametrize("t", [1, 2, 3, 10])
def test_adam_step_is_lr_over_its_denominator_from_the_first_step(t):
    """``lr / (sqrt(v_hat) + eps)``, not ``lr / ((1 - b1**t) denom)``: on a steady gradient
    ``m_t = (1 - b1**t) g``, so the displacement is ``D * g`` at every step."""
    moved, d, c = displacement_per_unit_gradient(OPTIMIZERS["adam"], t)
    torch.testing.assert_close(moved, d * c, rtol=1e-12, atol=0)


def test_adam_step_of_a_tensor_of_counts_equals_the_float_formula():
    scale, eps = adam_step(0.01, 1e-8, 0.999, torch.tensor([1.0, 7.0], dtype=torch.float64))
    for i, t in enumerate((1, 7)):
        s, e = adam_step(0.01, 1e-8, 0.999, t)
        assert float(scale[i]) == pytest.approx(s, rel=1e-14)
        assert float(eps[i]) == pytest.approx(e, rel=1e-14)


def test_parameters_without_state_get_none_and_a_subset_is_fine():
    a = nn.Parameter(torch.ones(3))
    b = nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([a, b], lr=0.1)
    a.grad = torch.ones(3)
    opt.step()
    sizes = step_sizes(opt, opt.param_groups[0], [b, a])
    assert sizes[0] is None and isinstance(sizes[1], StepSize)
    torch.testing.assert_close(sizes[1].tensor(), torch.full((3,), 0.1 / (1 + 1e-8)))


LBFGS_MESSAGE = (
    "mode='proximal' cannot be used with LBFGS: it moves the weights by its own line search "
    "between closure evaluations; use mode='gradient' or 'loss'."
)


@pytest.mark.parametrize("fallback", ["exact", "lr"])
def test_lbfgs_is_refused_even_with_the_fallback(fallback):
    w = nn.Parameter(torch.ones(2))
    with pytest.raises(ShrinkageError) as err:
        check_optimizer(torch.optim.LBFGS([w]), fallback)
    assert str(err.value) == LBFGS_MESSAGE


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.NAdam(p),
        lambda p: torch.optim.Adamax(p),
        lambda p: type("MyAdam", (torch.optim.Adam,), {})(p),
    ],
    ids=["NAdam", "Adamax", "Adam-subclass"],
)
def test_other_optimizers_are_refused_at_attach_in_one_line_unless_lr_is_asked_for(make):
    model = nn.Linear(2, 1)
    opt = make(model.parameters())
    with pytest.raises(ShrinkageError) as err:
        Regularizer(model, L1(0.1), "proximal").attach(opt)
    message = str(err.value)
    assert "\n" not in message and message.startswith(
        "mode='proximal' needs the per-coordinate step of the optimizer; "
        f"{type(opt).__name__} is not one of SGD, Adam, AdamW, RMSprop, Adagrad"
    )
    assert "proximal_step='lr'" in message
    reg = Regularizer(model, L1(0.1), "proximal", proximal_step="lr").attach(opt)
    (size,) = step_sizes(opt, opt.param_groups[0], [model.weight], "lr")
    assert size == StepSize(float(opt.param_groups[0]["lr"]))
    model(torch.ones(1, 2)).sum().backward()
    opt.step()  # thresholds at the learning rate
    assert reg.steps == 1


def test_supported_optimizers_are_named():
    assert SUPPORTED_OPTIMIZERS == ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad")


def test_a_registered_reader_teaches_a_new_optimizer_class():
    class Scaled(torch.optim.SGD):
        """SGD whose step is twice its learning rate."""

        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.data.add_(p.grad, alpha=-2 * group["lr"])

    model = nn.Linear(3, 1, bias=False)
    with pytest.raises(ShrinkageError, match="Scaled is not one of"):
        Regularizer(model, L1(0.5), "proximal").attach(Scaled(model.parameters(), lr=0.1))
    register_step_reader(
        Scaled, lambda opt, group, params: [StepSize(2 * group["lr"])] * len(params)
    )
    opt = Scaled(model.parameters(), lr=0.1)
    Regularizer(model, L1(0.5), "proximal").attach(opt)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.05, -0.3, 1.0]]))
    model.weight.grad = torch.zeros(1, 3)
    opt.step()
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[0.0, -0.2, 0.9]]))


@pytest.mark.parametrize("bad", [int, torch.optim.LBFGS, "SGD"])
def test_register_step_reader_refuses_what_is_not_an_optimizer_class(bad):
    with pytest.raises(ShrinkageError, match="register_step_reader needs|LBFGS"):
        register_step_reader(bad, lambda *a: [])
