"""The plan and every apply mode on every network type, and fine-tuning a trained network."""

import copy

import pytest
import torch
from torch import nn

from shrinkage import L1, L2, L2SP, MODES, GroupLasso, Plan, Regularizer

# --- the networks -------------------------------------------------------------------------


class Recurrent(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(3, 5, batch_first=True)
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class Embedded(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, tokens):
        return self.head(self.emb(tokens).mean(dim=1))


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.attn(x, x, x)
        return self.head(out.mean(dim=1))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.block(x).mean(dim=1))


def conv2d():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 3),
    )


def conv1d():
    return nn.Sequential(
        nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Conv1d(4, 3, 3), nn.AdaptiveAvgPool1d(1), nn.Flatten()
    )


# name: (factory, input maker, the parameters a default plan penalizes)
NETWORKS = {
    "conv2d": (conv2d, lambda: torch.randn(8, 1, 6, 6), {"0.weight", "2.weight", "5.weight"}),
    "conv1d": (conv1d, lambda: torch.randn(8, 2, 10), {"0.weight", "2.weight"}),
    "lstm": (
        lambda: Recurrent(nn.LSTM),
        lambda: torch.randn(8, 7, 3),
        {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"},
    ),
    "gru": (
        lambda: Recurrent(nn.GRU),
        lambda: torch.randn(8, 7, 3),
        {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"},
    ),
    "embedding": (Embedded, lambda: torch.randint(0, 20, (8, 5)), {"emb.weight", "head.weight"}),
    "attention": (
        Attention,
        lambda: torch.randn(8, 5, 8),
        {"attn.in_proj_weight", "attn.out_proj.weight", "head.weight"},
    ),
    "transformer": (
        Transformer,
        lambda: torch.randn(8, 5, 8),
        {
            "block.self_attn.in_proj_weight",
            "block.self_attn.out_proj.weight",
            "block.linear1.weight",
            "block.linear2.weight",
            "head.weight",
        },
    ),
}


def _make(name, seed=0):
    factory, inputs, expected = NETWORKS[name]
    torch.manual_seed(seed)
    model = factory()
    x = inputs()
    y = torch.randint(0, 3, (8,))
    return model, x, y, expected


def _loss(model, x, y):
    return nn.functional.cross_entropy(model(x).reshape(8, -1)[:, :3], y)


@pytest.mark.parametrize("name", NETWORKS)
def test_default_plan_penalizes_kernels_not_biases_or_norms(name):
    model, _, _, expected = _make(name)
    assignments = Plan(L2(0.01)).resolve(model)
    assert {a.name for a in assignments if a.penalty is not None} == expected
    for a in assignments:
        if a.penalty is None:
            assert a.reason in (
                "bias (excluded by default)",
                "1-D parameter (excluded by default)",
                "normalization layer (excluded by default)",
            )
            assert a.param.ndim == 1


def _train(model, x, y, plan, mode, steps=4, optimizer="sgd"):
    opt = (
        torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        if optimizer == "sgd"
        else torch.optim.Adam(model.parameters(), lr=0.01)
    )
    reg = None if plan is None else Regularizer(model, plan, mode).attach(opt)
    for _ in range(steps):
        opt.zero_grad()
        loss = _loss(model, x, y)
        if reg is not None:
            loss = loss + reg.loss()
        assert torch.isfinite(loss)
        loss.backward()
        opt.step()
    return model


def _norm(model, names):
    params = dict(model.named_parameters())
    return float(sum(params[n].detach().square().sum() for n in names))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NETWORKS)
def test_every_mode_shrinks_the_penalized_weights(name, mode):
    model, x, y, expected = _make(name)
    plain = copy.deepcopy(model)
    _train(model, x, y, Plan(L2(0.5)), mode)
    _train(plain, x, y, None, mode)
    assert _norm(model, expected) < 0.95 * _norm(plain, expected)


@pytest.mark.parametrize("name", NETWORKS)
def test_proximal_group_lasso_gives_exact_zero_rows_everywhere(name):
    model, x, y, expected = _make(name)
    _train(model, x, y, Plan(GroupLasso(5.0, groups="rows")), "proximal", steps=2)
    params = dict(model.named_parameters())
    for n in expected:
        rows = params[n].detach().reshape(params[n].shape[0], -1)
        assert bool((rows == 0).all(dim=1).any()), n


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("name", NETWORKS)
def test_gradient_mode_equals_loss_mode(name, optimizer):
    """The fused gradient hook trains exactly like autograd of the textbook loss."""
    rules = {"*": L2(0.05), "*.bias": L2(0.02)}
    if name in ("lstm", "gru"):
        rules["*.weight_hh*"] = L1(0.01)
    plan = Plan(rules)
    results = []
    for mode in ("loss", "gradient"):
        model, x, y, _ = _make(name)
        results.append(_train(model, x, y, plan, mode, steps=4, optimizer=optimizer))
    for (n, a), b in zip(results[0].named_parameters(), results[1].parameters()):
        if n.endswith("in_proj_bias"):
            # The key bias has an exactly zero true gradient (softmax ignores a shift) and
            # starts at zero: Adam turns its rounding noise into +-lr steps. Compare q and v.
            a, b = torch.cat([a[:8], a[16:]]), torch.cat([b[:8], b[16:]])
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=n)


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU], ids=["lstm", "gru"])
@pytest.mark.parametrize("mode", ["loss", "gradient"])
def test_input_and_recurrent_kernels_get_their_own_penalty(cell, mode):
    """Keras's kernel_regularizer vs recurrent_regularizer: two rules, two gradients."""
    torch.manual_seed(0)
    model = Recurrent(cell)
    x, y = torch.randn(8, 7, 3), torch.randint(0, 3, (8,))
    plan = Plan({"*.weight_ih*": L2(0.3), "*.weight_hh*": L1(0.02)})
    reg = Regularizer(model, plan, mode)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: only the gradients change
    reg.attach(opt)
    data = torch.autograd.grad(_loss(model, x, y), list(model.parameters()))
    data = dict(zip([n for n, _ in model.named_parameters()], data))
    opt.zero_grad()
    (_loss(model, x, y) + reg.loss()).backward()
    opt.step()
    rnn = model.rnn
    added = {n: p.grad - data[n] for n, p in model.named_parameters()}
    torch.testing.assert_close(added["rnn.weight_ih_l0"], 2 * 0.3 * rnn.weight_ih_l0.detach())
    torch.testing.assert_close(added["rnn.weight_hh_l0"], 0.02 * rnn.weight_hh_l0.detach().sign())
    for n in ("rnn.bias_ih_l0", "rnn.bias_hh_l0", "head.weight", "head.bias"):
        torch.testing.assert_close(added[n], torch.zeros_like(added[n]), atol=1e-7, rtol=0)


@pytest.mark.parametrize("mode", ["loss", "gradient"])
def test_conv_kernels_are_regularized_and_conv_biases_are_not(mode):
    torch.manual_seed(0)
    model = conv2d()
    x, y = torch.randn(8, 1, 6, 6), torch.randint(0, 3, (8,))
    reg = Regularizer(model, Plan({nn.Conv2d: L2(0.25)}), mode)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    reg.attach(opt)
    data = dict(
        zip(
            [n for n, _ in model.named_parameters()],
            torch.autograd.grad(_loss(model, x, y), list(model.parameters())),
        )
    )
    opt.zero_grad()
    (_loss(model, x, y) + reg.loss()).backward()
    opt.step()
    for n, p in model.named_parameters():
        extra = p.grad - data[n]
        if n in ("0.weight", "2.weight"):
            torch.testing.assert_close(extra, 0.5 * p.detach())
        else:  # conv biases and the Linear head
            torch.testing.assert_close(extra, torch.zeros_like(extra), atol=1e-7, rtol=0)


def test_activity_penalty_on_recurrent_and_conv_outputs():
    torch.manual_seed(0)
    model = Recurrent(nn.LSTM)
    x = torch.randn(8, 7, 3)
    reg = Regularizer(model, Plan(activity={"rnn": L1(0.1), "head": L2(0.2)}), "gradient")
    with torch.no_grad():  # the hooks record only what autograd will differentiate
        out, _ = model.rnn(x)
        expected = (0.1 * out.abs().sum() + 0.2 * model.head(out[:, -1]).square().sum()) / 8
    model(x)
    torch.testing.assert_close(reg.loss(), expected)
    conv = conv2d()
    reg = Regularizer(conv, Plan(activity={nn.ReLU: L1(0.05)}), "loss")
    image = torch.randn(8, 1, 6, 6)
    with torch.no_grad():
        expected = 0.05 * (conv[:2](image).abs().sum() + conv[:4](image).abs().sum()) / 8
    conv(image)
    torch.testing.assert_close(reg.loss(), expected)


# --- fine-tuning an already trained network (the seeds' "use on a trained network") -------


def _task(weights, n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    return x, (x @ weights > 0).long()


def _fit(model, x, y, steps, reg_plan=None, mode="gradient"):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    reg = None if reg_plan is None else Regularizer(model, reg_plan, mode).attach(opt)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        (loss + (reg.loss() if reg is not None else 0)).backward()
        opt.step()
    return reg


def _distance(model, reference):
    return (
        float(sum((p.detach() - reference[n]).square().sum() for n, p in model.named_parameters()))
        ** 0.5
    )


@pytest.mark.parametrize("mode", MODES)
def test_fine_tuning_with_l2sp_stays_closer_to_the_trained_weights_than_l2(mode):
    torch.manual_seed(0)
    source = torch.randn(10)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2))
    _fit(model, *_task(source, 256, 1), steps=100)  # 1. fit, unregularized
    trained = {n: p.detach().clone() for n, p in model.named_parameters()}
    target = source + 0.7 * torch.randn(10)  # 2. continue on a related task, few rows
    x, y = _task(target, 24, 2)
    distances = {}
    for name, penalty in (("l2sp", L2SP(0.05)), ("l2", L2(0.05)), ("none", None)):
        tuned = copy.deepcopy(model)
        reg = _fit(
            tuned, x, y, steps=60, reg_plan=None if penalty is None else Plan(penalty), mode=mode
        )
        if name == "l2sp":  # the reference is the trained weights, snapshotted at creation
            for param, ref in zip(reg.buckets[0].params, reg.buckets[0].refs):
                name_of = next(n for n, p in tuned.named_parameters() if p is param)
                assert torch.equal(ref, trained[name_of])
        distances[name] = _distance(tuned, trained)
    # L2 pulls toward zero, L2-SP toward what was learned: it forgets the least.
    assert distances["l2sp"] < 0.8 * min(distances["l2"], distances["none"])
