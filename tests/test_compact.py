"""compact(): a smaller ordinary torch model that computes the same function."""

import pytest
import torch
from torch import nn

from shrinkage import GroupLasso, Plan, Regularizer, ShrinkageError, compact, dead_units
from shrinkage.models import MLP


def _count(model):
    return sum(p.numel() for p in model.parameters())


def _units(model):
    return sum(
        (m.out_features if isinstance(m, nn.Linear) else m.out_channels)
        for m in model.modules()
        if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d)
    )


def _kill(layer, rows, bias=None):
    """Zero the weight rows of ``rows``; optionally set their bias (the constant)."""
    with torch.no_grad():
        layer.weight[rows] = 0
        if bias is not None:
            layer.bias[rows] = bias


def _randomize_norms(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def linear_chain():
    net = nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 3))
    _kill(net[0], [0, 4, 7], bias=torch.tensor([0.5, -0.3, 0.2]))  # ReLU(0.5) != 0 is folded
    _kill(net[2], [1, 2])
    return net, torch.randn(32, 6), 5


def sigmoid_chain_with_norm_and_dropout():
    net = nn.Sequential(
        nn.Linear(5, 9),
        nn.BatchNorm1d(9),
        nn.Sigmoid(),
        nn.Dropout(0.3),
        nn.Linear(9, 4),
        nn.LogSoftmax(dim=1),  # after the last layer: anything goes
    )
    _randomize_norms(net)
    _kill(net[0], [2, 3, 8])
    return net, torch.randn(32, 5), 3


def conv2d_flatten_linear():
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3),  # no padding: a constant map folds exactly
        nn.GELU(),
        nn.Dropout2d(0.2),
        nn.Flatten(),
        nn.Linear(12 * 2 * 2, 16),
        nn.ReLU(),
        nn.Linear(16, 10),
    )
    _randomize_norms(net)
    _kill(net[0], [1, 5], bias=torch.tensor([0.7, -0.2]))
    _kill(net[4], [0, 3, 11], bias=torch.tensor([0.4, 1.0, -1.0]))  # flattened blocks fold
    _kill(net[8], [2, 9])
    return net, torch.randn(16, 1, 8, 8), 7


def conv1d_chain_adaptive_pool():
    net = nn.Sequential(
        nn.Conv1d(3, 6, 3, padding=1, padding_mode="replicate"),
        nn.ELU(),
        nn.Conv1d(6, 5, 3, padding=2, padding_mode="circular"),  # constants stay constant
        nn.ReLU(),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(5, 2),
    )
    _kill(net[0], [0, 2, 3], bias=torch.tensor([0.3, -0.5, 1.2]))
    _kill(net[2], [4], bias=torch.tensor([0.9]))
    return net, torch.randn(8, 3, 12), 4


def nested_sequential():
    net = nn.Sequential(
        nn.Sequential(nn.Linear(4, 6), nn.SiLU()),
        nn.Sequential(nn.Linear(6, 5), nn.Sequential(nn.Hardtanh(), nn.Linear(5, 2))),
    )
    _kill(net[0][0], [1, 5], bias=torch.tensor([0.6, 0.8]))
    return net, torch.randn(10, 4), 2


def linear_sequence_flatten():
    """Linear on (N, T, F) then Flatten: unit c is read at every C-th flattened input."""
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 4, 2))
    _kill(net[0], [1, 2], bias=torch.tensor([0.5, 0.25]))
    return net, torch.randn(6, 5, 3), 2


def conv3d_chain():
    net = nn.Sequential(nn.Conv3d(2, 4, 2), nn.Tanh(), nn.Conv3d(4, 3, 2), nn.Flatten())
    _kill(net[0], [0, 3], bias=torch.tensor([0.4, -0.9]))
    return net, torch.randn(3, 2, 4, 4, 4), 2


def mlp_model():
    net = MLP(7, [12, 9], 3, activation="logistic")
    _kill(net.layers[0], [0, 3, 4, 11], bias=torch.tensor([1.0, -1.0, 0.3, 2.0]))
    _kill(net.layers[1], [5])
    return net, torch.randn(20, 7), 5


CHAINS = [
    linear_chain,
    sigmoid_chain_with_norm_and_dropout,
    conv2d_flatten_linear,
    conv1d_chain_adaptive_pool,
    nested_sequential,
    linear_sequence_flatten,
    conv3d_chain,
    mlp_model,
]


@pytest.mark.parametrize("build", CHAINS, ids=lambda f: f.__name__)
def test_compact_removes_dead_units_and_keeps_predictions(build):
    model, x, removed = build()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    small = compact(model)
    assert type(small) is type(model)
    assert not small.training
    assert _units(model) - _units(small) == removed
    assert _count(small) < _count(model)
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), rtol=0, atol=1e-6)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])  # the original is untouched


def test_mlp_stays_an_mlp_with_smaller_hidden_layers():
    model, x, _ = mlp_model()
    small = compact(model)
    assert small.sizes == [7, 8, 8, 3]
    with torch.no_grad():
        torch.testing.assert_close(
            small.hidden(x, 1), model.hidden(x, 1)[:, [0, 1, 2, 3, 4, 6, 7, 8]]
        )


def test_nonzero_bias_of_a_removed_unit_is_folded_into_the_next_bias():
    """A zero row with bias b outputs act(b): dropping it without folding changes outputs."""
    layer0, layer1 = nn.Linear(3, 2), nn.Linear(2, 1)
    with torch.no_grad():
        layer0.weight[1] = 0
        layer0.bias[1] = 2.0
        layer1.weight.copy_(torch.tensor([[0.5, 3.0]]))
        layer1.bias.fill_(0.1)
    net = nn.Sequential(layer0, nn.Sigmoid(), layer1)
    small = compact(net)
    folded = 0.1 + 3.0 * torch.sigmoid(torch.tensor(2.0))
    assert small[2].weight.shape == (1, 1)
    torch.testing.assert_close(small[2].bias, folded.reshape(1))
    x = torch.randn(5, 3)
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), rtol=0, atol=1e-6)


def test_fold_creates_a_bias_where_the_next_layer_had_none():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2, bias=False))
    _kill(net[0], [0], bias=torch.tensor([1.5]))
    small = compact(net)
    assert small[2].bias is not None and small[2].in_features == 3
    x = torch.randn(5, 3)
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), rtol=0, atol=1e-6)


def test_zero_padded_next_conv_keeps_a_nonzero_constant_unit():
    """Border outputs of a zero-padded conv see part of a constant map: not foldable."""
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1))
    _kill(net[0], [0, 1], bias=torch.tensor([0.8, -0.8]))  # ReLU: 0.8 stays, -0.8 gives 0
    small = compact(net)
    assert small[0].out_channels == 3 and small[2].in_channels == 3
    x = torch.randn(4, 1, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), rtol=0, atol=1e-6)


def test_avg_pool_counting_padding_keeps_a_nonzero_constant_unit():
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.AvgPool2d(2, padding=1), nn.Flatten(), nn.Linear(3 * 4 * 4, 2)
    )
    _kill(net[0], [1], bias=torch.tensor([0.5]))
    small = compact(net)
    assert small[0].out_channels == 3
    _kill(net[0], [1], bias=torch.tensor([0.0]))
    assert compact(net)[0].out_channels == 2


def test_unread_units_are_removed_whatever_they_compute():
    """Group lasso on the next layer's columns silences a unit from the other side."""
    net = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    with torch.no_grad():
        net[2].weight[:, [1, 3]] = 0
    small = compact(net)
    assert small[0].out_features == 3
    x = torch.randn(6, 4)
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), rtol=0, atol=1e-6)


def test_a_layer_with_every_unit_dead_collapses_to_a_constant():
    net = nn.Sequential(nn.Linear(4, 5), nn.Sigmoid(), nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 2))
    _kill(net[0], list(range(5)))
    small = compact(net)
    # One silent unit is kept (zero width is not an ordinary layer); the next layer's rows
    # then read nothing, so they all go too.
    assert [small[i].out_features for i in (0, 2, 4)] == [1, 1, 2]
    x = torch.randn(3, 4)
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), rtol=0, atol=1e-6)
        torch.testing.assert_close(small(x), net(torch.zeros(3, 4)), rtol=0, atol=1e-6)


def test_batch_norm_without_running_stats():
    net = nn.Sequential(
        nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4, track_running_stats=False), nn.Conv1d(4, 2, 1)
    )
    with torch.no_grad():
        net[1].bias.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    # The dead channel is the constant 0, so the batch statistics give exactly beta; for a
    # constant like 5.0 torch's float mean is off by ~1e-7, which BN multiplies by
    # 1/sqrt(eps) in the *original* model (compact gives beta exactly).
    _kill(net[0], [2], bias=torch.tensor([0.0]))
    small = compact(net)
    assert small[1].num_features == 3
    torch.testing.assert_close(small[2].bias, net[2].bias + 0.3 * net[2].weight[:, 2, 0])
    x = torch.randn(6, 2, 9)
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), rtol=0, atol=1e-6)


def test_nothing_dead_gives_an_equal_copy():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    small = compact(net)
    assert small is not net and _count(small) == _count(net)
    for a, b in zip(small.parameters(), net.parameters()):
        assert torch.equal(a, b)


def test_group_lasso_proximal_training_then_compact():
    """End to end: proximal group lasso zeroes whole neurons; compact removes them."""
    torch.manual_seed(0)
    x = torch.randn(128, 10)
    y = (x[:, 0] - 2 * x[:, 1] > 0).long()
    model = MLP(10, [32], 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    plan = Plan({"layers.0.weight": GroupLasso(0.02, groups="rows")})
    Regularizer(model, plan, "proximal").attach(opt)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    dead = int(dead_units(model)["layers.0"].sum())
    assert dead >= 16
    small = compact(model)
    assert small.sizes[1] == 32 - dead
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), rtol=0, atol=1e-6)
        assert (small(x).argmax(1) == y).float().mean() > 0.9


def test_dead_units_on_any_model():
    model = nn.ModuleDict(
        {"conv": nn.Conv2d(2, 3, 3), "lstm": nn.LSTM(2, 3), "fc": nn.Linear(3, 2)}
    )
    _kill(model["conv"], [1])
    found = dead_units(model)
    assert set(found) == {"conv", "fc"}
    assert found["conv"].tolist() == [False, True, False]
    assert found["fc"].tolist() == [False, False]


def test_dtype_is_kept():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    _kill(net[0], [0], bias=torch.tensor([0.5], dtype=torch.float64))
    small = compact(net)
    assert small[0].weight.dtype == torch.float64
    x = torch.randn(5, 3, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), rtol=0, atol=1e-12)


class _Custom(MLP):
    def forward(self, x):
        return super().forward(x) * 2


BAD = [
    (
        lambda: nn.LSTM(3, 4),
        "The 'model' parameter of compact() must be an nn.Sequential chain or a "
        "shrinkage.models.MLP. Got LSTM instead.",
    ),
    (
        lambda: _Custom(2, [3], 1),
        "compact() supports nn.Sequential and shrinkage.models.MLP; _Custom overrides "
        "forward(). Got _Custom.",
    ),
    (
        lambda: nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=1), nn.Linear(4, 2)),
        "compact() cannot remove units through Softmax at '1' (between '0' and '2'); allowed "
        "between layers: elementwise activations, dropout, BatchNorm, max/average pooling, "
        "nn.Flatten().",
    ),
    (
        lambda: nn.Sequential(nn.Linear(4, 4), nn.Unflatten(1, (1, 2, 2)), nn.Conv2d(1, 2, 1)),
        "compact() cannot remove units through Unflatten at '1' (between '0' and '2'); allowed "
        "between layers: elementwise activations, dropout, BatchNorm, max/average pooling, "
        "nn.Flatten().",
    ),
    (
        lambda: nn.Sequential(nn.Conv1d(2, 3, 2), nn.Linear(4, 2)),
        "compact() needs an nn.Flatten() between Conv1d '0' and Linear '1'.",
    ),
    (
        lambda: nn.Sequential(nn.Conv1d(2, 3, 2), nn.Flatten(), nn.Linear(8, 2)),
        "compact(): Linear '2' has in_features=8, not a multiple of the 3 units of '0'.",
    ),
    (
        lambda: nn.Sequential(nn.Conv1d(2, 3, 2), nn.Flatten(0), nn.Linear(9, 2)),
        "compact() supports one nn.Flatten() (start_dim=1, end_dim=-1) between layers; got "
        "Flatten(start_dim=0, end_dim=-1) at '1'.",
    ),
    (
        lambda: nn.Sequential(nn.Conv1d(2, 3, 2), nn.Flatten(), nn.BatchNorm1d(9), nn.Linear(9, 2)),
        "compact() allows only elementwise modules after nn.Flatten(); got BatchNorm1d at '2'.",
    ),
    (
        lambda: nn.Sequential(nn.Conv2d(2, 3, 2), nn.Conv1d(3, 2, 1)),
        "compact() cannot connect Conv2d '0' to Conv1d '1'; supported: Linear -> Linear, "
        "ConvNd -> ConvNd, ConvNd -> Flatten -> Linear.",
    ),
    (
        lambda: nn.Sequential(nn.Linear(2, 3), nn.MaxPool1d(2), nn.Linear(1, 2)),
        "compact() cannot remove units through MaxPool1d at '1' (between '0' and '2'); allowed "
        "between layers: elementwise activations, dropout, BatchNorm, max/average pooling, "
        "nn.Flatten().",
    ),
    (
        lambda: nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(4), nn.Linear(4, 2)),
        "compact(): BatchNorm1d at '1' has num_features=4, but '0' has 3 units.",
    ),
    (
        lambda: nn.Sequential(nn.Linear(2, 3), nn.LazyLinear(2)),
        "compact() needs initialized layers; '1' is a lazy module that has not seen an input yet.",
    ),
]


@pytest.mark.parametrize(("build", "message"), BAD, ids=[m[:50] for _, m in BAD])
def test_unsupported_structures_are_refused(build, message):
    with pytest.raises(ShrinkageError) as info:
        compact(build())
    assert str(info.value) == message


def test_grouped_convolutions_are_left_whole():
    net = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.ReLU(), nn.Conv2d(4, 2, 1))
    _kill(net[0], [0])
    small = compact(net)
    assert small[0].out_channels == 4
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), rtol=0, atol=1e-6)
