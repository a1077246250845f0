"""The fused stack equals K single models, for every network type, optimizer and apply mode.

A candidate trained inside a :class:`FusedStack` (or the loop fallback) by the engine's
``train_stack`` is compared with the same module trained alone by ``fit_model``: the same
initialization (``torch.manual_seed(seed); factory()``), the same rows and minibatches
(``generators(seed)[1]``), the same per-layer penalty in the same mode, the same dropout
stream (``dropout_seed(seed)``). Folds of different sizes make some candidates sit out
steps and pad the last batches, so the idle path and the padding are exercised.
"""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.cpp_extension import is_ninja_available

from shrinkage import ElasticNet, Plan, Regularizer
from shrinkage.errors import ShrinkageError
from shrinkage.models import dropout_seed, generators
from shrinkage.search.engine import (
    FusedStack,
    LoopStack,
    StackedModule,
    TrainSettings,
    _loop,
    _lstm_ext,
    choose_path,
    layer_strengths,
    predict_stack,
    train_stack,
)
from shrinkage.search.engine._stack import _build
from shrinkage.training import fit_model, make_loss, make_optimizer

N = 30
# 24, 24 and 15 rows with batches of 8: 3, 3 and 2 steps, the last one padded (7 of 8 rows)
FOLDS = [torch.arange(0, 24), torch.arange(6, 30), torch.arange(0, 30, 2)]
# (fold, seed, kind, strength, placement)
CANDIDATES = [
    (0, 11, "l2", 0.01, "all"),
    (1, 12, "l1", 0.003, "all"),
    (2, 13, "elastic_net", 0.02, "output"),
]


# --- the networks ---------------------------------------------------------------------------


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6, 3),
    )


def conv1d():
    return nn.Sequential(
        nn.Conv1d(2, 4, 3),
        nn.ReLU(),
        nn.MaxPool1d(2),
        nn.Conv1d(4, 3, 3, padding=1),
        nn.Tanh(),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(3, 1),
    )


class Recurrent(nn.Module):
    def __init__(self, cell, n_out):
        super().__init__()
        self.rnn = cell(3, 5, batch_first=True)
        self.head = nn.Linear(5, n_out)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class MeanEmbedding(nn.Module):
    """A bag of tokens with a two-logit head for a binary target."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, tokens):
        return self.head(self.emb(tokens).mean(dim=1))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.block(x).mean(dim=1))


def _inputs(name):
    g = torch.Generator().manual_seed(7)
    shapes = {"cnn": (1, 6, 6), "conv1d": (2, 12), "lstm": (7, 3), "gru": (6, 3), "tf": (5, 8)}
    if name == "embedding":
        return torch.randint(0, 20, (N, 5), generator=g)
    return torch.randn(N, *shapes[name], generator=g)


def _target(task, n_classes):
    g = torch.Generator().manual_seed(8)
    if task == "regression":
        return torch.randn(N, generator=g)
    if n_classes == 2:
        return (torch.rand(N, generator=g) > 0.5).float()
    return torch.randint(0, n_classes, (N,), generator=g)


# name: (factory, task, classes)
NETWORKS = {
    "cnn": (cnn, "classification", 3),
    "conv1d": (conv1d, "regression", None),
    "lstm": (lambda: Recurrent(nn.LSTM, 1), "classification", 2),
    "gru": (lambda: Recurrent(nn.GRU, 3), "classification", 3),
    "embedding": (MeanEmbedding, "classification", 2),
    "tf": (Transformer, "classification", 3),
}


# --- the reference --------------------------------------------------------------------------


def _loss(settings, two_logits):
    if two_logits:  # the usual PyTorch binary head: cross-entropy over two logits
        return lambda out, y: F.cross_entropy(out, y.long())
    return make_loss(settings.task, settings.n_classes)


def _alone(factory, X, y, settings, names, l1, l2, fold, seed, two_logits=False):
    """``fit_model`` on one module: initialized, shuffled and dropped out from the seed."""
    model = _build(factory, seed, allow_buffers=True)
    plan = Plan({n: ElasticNet(a, b) for n, a, b in zip(names, l1, l2)})
    reg = Regularizer(model, plan, settings.mode)
    opt = make_optimizer(
        settings.optimizer, model.parameters(), settings.learning_rate, settings.momentum
    )
    fit_model(
        model,
        X[FOLDS[fold]],
        y[FOLDS[fold]],
        loss_fn=_loss(settings, two_logits),
        regularizer=reg,
        optimizer=opt,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        shuffle_generator=generators(seed)[1],
        dropout_seed=dropout_seed(seed),
    )
    reg.remove()
    return model


# The key bias of attention has a true gradient of 0 (softmax is shift-invariant), so Adam
# steps on its float rounding noise (m / sqrt(v) of numbers near 1e-10): its trajectory is
# noise amplified to the learning rate, in the single model as in the stack.
NOISE_ONLY = {"block.self_attn.in_proj_bias": slice(8, 16)}


def _train_and_compare(stack, factory, X, y, settings, two_logits=False, atol=1e-5):
    names = [stack.names[i] for i in stack.penalized]
    strengths = [layer_strengths(c[2], c[3], len(names), c[4]) for c in CANDIDATES]
    l1 = torch.tensor([a for a, _ in strengths])
    l2 = torch.tensor([b for _, b in strengths])
    rows = [FOLDS[c[0]] for c in CANDIDATES]
    train_stack(stack, X, y, rows, [c[1] for c in CANDIDATES], l1, l2, settings)
    for k, (fold, seed, *_rest) in enumerate(CANDIDATES):
        alone = _alone(factory, X, y, settings, names, l1[k], l2[k], fold, seed, two_logits)
        state = stack.state(k)
        for name, tensor in alone.state_dict().items():
            if name in NOISE_ONLY and settings.optimizer == "adam":
                keep = torch.ones(len(tensor), dtype=torch.bool)
                keep[NOISE_ONLY[name]] = False
                state[name], tensor = state[name][keep], tensor[keep]
            torch.testing.assert_close(
                state[name].to(tensor.dtype), tensor, atol=atol, rtol=0, msg=f"{k} {name}"
            )


def _settings(task, n_classes, optimizer, mode, epochs=2):
    lr = 0.01 if optimizer == "adam" else 0.05
    return TrainSettings(
        task=task,
        n_classes=n_classes,
        optimizer=optimizer,
        learning_rate=lr,
        momentum=0.9,
        epochs=epochs,
        batch_size=8,
        mode=mode,
    )


# --- equivalence ----------------------------------------------------------------------------


@pytest.mark.parametrize("network", list(NETWORKS))
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("mode", ["gradient", "loss", "decoupled", "proximal"])
def test_candidate_in_fused_stack_equals_candidate_alone(network, optimizer, mode):
    factory, task, n_classes = NETWORKS[network]
    X, y = _inputs(network), _target(task, n_classes)
    settings = _settings(task, n_classes, optimizer, mode)
    stack = FusedStack(factory, [c[1] for c in CANDIDATES])
    assert stack.fused_layers  # every layer fused, nothing left to torch.func
    _train_and_compare(stack, factory, X, y, settings, two_logits=network == "embedding")


class NormDrop(nn.Module):
    """BatchNorm (statistics over the real rows only) and dropout (one stream each)."""

    def __init__(self):
        super().__init__()
        # no bias before a BatchNorm: its true gradient is 0, and Adam would step on noise
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1, bias=False),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(4 * 36, 8, bias=False),
            nn.BatchNorm1d(8, momentum=None),
            nn.ReLU(),
            nn.Linear(8, 3),
        )

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("stack_type", [FusedStack, LoopStack])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_batchnorm_and_dropout_in_a_stack_equal_the_module_alone(stack_type, optimizer):
    X, y = _inputs("cnn"), _target("classification", 3)
    settings = _settings("classification", 3, optimizer, "gradient", epochs=3)
    stack = stack_type(NormDrop, [c[1] for c in CANDIDATES])
    # running statistics (and the count) are per candidate, in state() with the weights
    assert "net.1.running_mean" in stack.state(0) and "net.6.num_batches_tracked" in stack.state(0)
    _train_and_compare(stack, NormDrop, X, y, settings)


class WithScale(nn.Module):
    """A raw Parameter used in forward: no fused form."""

    def __init__(self, rnn=False, n_out=3):
        super().__init__()
        self.inp = nn.LSTM(3, 4, batch_first=True) if rnn else nn.Linear(3, 4)
        self.scale = nn.Parameter(torch.ones(4, n_out))

    def forward(self, x):
        h = self.inp(x)[0][:, -1] if isinstance(self.inp, nn.LSTM) else self.inp(x[:, -1])
        return h @ self.scale


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_loop_stack_equals_the_module_alone_where_nothing_else_runs(optimizer):
    X, y = _inputs("lstm"), _target("classification", 2)
    settings = _settings("classification", 2, optimizer, "proximal")
    factory = lambda: WithScale(rnn=True, n_out=2)  # noqa: E731
    _train_and_compare(
        LoopStack(factory, [c[1] for c in CANDIDATES]), factory, X, y, settings, True
    )


# --- the layers, one forward and backward each ----------------------------------------------


class DeepLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(24, 2)

    def forward(self, x):
        out, (h, _) = self.rnn(x)
        last = h[-2:].transpose(0, 1).reshape(len(x), -1)
        return self.head(torch.cat([out.mean(1), last], 1))


class WideLSTM(nn.Module):
    """Full 8 x 32 tiles of the compiled kernel and edges (4H = 160, 21 rows); returns c_n."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(5, 40, batch_first=True)
        self.head = nn.Linear(80, 2)

    def forward(self, x):
        out, (_, c) = self.rnn(x)
        return self.head(torch.cat([out[:, -1], c[0]], 1))


class PlainLSTM(nn.Module):
    """Sequence-first (a strided input for the kernel), no biases, given initial states."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(5, 12, bias=False)
        self.head = nn.Linear(24, 2)

    def forward(self, x):  # x (N, T, In)
        h0 = torch.tanh(x[:, 0, :1]).expand(-1, 12).unsqueeze(0).contiguous()
        out, (_, c) = self.rnn(x.transpose(0, 1), (h0, -0.5 * h0))
        return self.head(torch.cat([out[-1], c[0]], 1))


class LSTM48(nn.Module):
    """H = 48: the compiled forward cell's 16-wide vector path (H a multiple of 16)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(3, 48, batch_first=True)
        self.head = nn.Linear(48, 2)

    def forward(self, x):
        return self.head(self.rnn(x)[0].mean(1))


class CellState(nn.Module):
    """Returns a view of the LSTM's c_n: a prediction block must not alias the next one's."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(5, 40, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[1][1][0][:, :2]


class SeqFirstGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 5, num_layers=2, bidirectional=True)
        self.head = nn.Linear(10, 3)

    def forward(self, x):
        out, h = self.rnn(x.transpose(0, 1))
        return self.head(out[-1]) + h.sum(0).sum(-1, keepdim=True)


class OddConv1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv1d(3, 8, 3, padding="same", padding_mode="reflect")
        self.b = nn.Conv1d(8, 8, 3, stride=2, dilation=2, groups=2)
        self.c = nn.Conv1d(8, 6, 2, padding=1, bias=False)
        self.head = nn.Linear(6 * 4, 2)

    def forward(self, x):
        x = torch.nn.functional.avg_pool1d(torch.relu(self.b(torch.tanh(self.a(x)))), 2)
        return self.head(torch.relu(self.c(x)).flatten(1))


class Text(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 8, padding_idx=0)
        self.enc = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=True, activation="gelu"),
            2,
            enable_nested_tensor=False,
        )
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, idx):
        mask = nn.Transformer.generate_square_subsequent_mask(idx.shape[1])
        h = self.enc(self.emb(idx).transpose(0, 1), mask=mask).transpose(0, 1)
        a, w = self.attn(h[:, -1:], h, h, key_padding_mask=idx == 0)
        return self.head(self.norm(a[:, 0])) + w.sum((1, 2)).unsqueeze(1)


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(7, 4)
        self.out = nn.Linear(4, 7, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, idx):
        return self.out(self.emb(idx).mean(1))


def norm_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, stride=2, padding=2),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1, bias=False),
        nn.GroupNorm(2, 8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 10),
        nn.LayerNorm(10),
        nn.Linear(10, 4),
    )


LAYER_CASES = {
    "lstm 2 layers bidirectional, h_n": (DeepLSTM, lambda: torch.randn(3, 5, 7, 4)),
    "lstm 40 wide, c_n": (WideLSTM, lambda: torch.randn(3, 21, 4, 5)),
    "lstm sequence-first, no bias, initial states": (PlainLSTM, lambda: torch.randn(3, 6, 9, 5)),
    "lstm 48 wide (vector cell)": (LSTM48, lambda: torch.randn(3, 10, 6, 3)),
    "gru sequence-first 2 layers bidirectional": (SeqFirstGRU, lambda: torch.randn(3, 5, 6, 4)),
    "conv1d same/reflect/stride/dilation/groups": (OddConv1d, lambda: torch.randn(3, 5, 3, 16)),
    "embedding, encoder (causal), attention weights": (
        Text,
        lambda: torch.randint(0, 11, (3, 5, 7)),
    ),
    "batchnorm, groupnorm, layernorm cnn": (norm_cnn, lambda: torch.randn(3, 5, 3, 9, 9)),
    "tied embedding and output weights": (Tied, lambda: torch.randint(0, 7, (3, 5, 4))),
}


@pytest.mark.parametrize("case", list(LAYER_CASES))
@pytest.mark.parametrize("channels_last", [True, False])
def test_fused_forward_and_gradients_equal_each_candidates_module(case, channels_last):
    factory, make_x = LAYER_CASES[case]
    seeds = [21, 22, 23]
    stack = FusedStack(factory, seeds, channels_last=channels_last)
    x = make_x()
    out = stack.forward(x)
    r = torch.randn_like(out)
    (out * r).sum().backward()
    for k, seed in enumerate(seeds):
        model = _build(factory, seed, allow_buffers=True)
        alone = model(x[k])
        (alone * r[k]).sum().backward()
        torch.testing.assert_close(out[k], alone, atol=1e-5, rtol=1e-5)
        for (name, p), grad in zip(model.named_parameters(), stack.grads):
            expected = p.grad if p.grad is not None else torch.zeros_like(p)
            torch.testing.assert_close(grad[k], expected, atol=1e-4, rtol=1e-4, msg=name)
        for name, buffer in model.named_buffers():  # running statistics after one step
            torch.testing.assert_close(stack.state(k)[name].to(buffer.dtype), buffer)
    assert stack.check(x) < 1e-4


def test_a_candidate_comes_out_as_the_users_own_module():
    stack = FusedStack(norm_cnn, [1, 2])
    stack.forward(torch.randn(2, 4, 3, 9, 9))
    model = stack.module(1)
    assert type(model) is nn.Sequential
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, stack.state(1)[name])


# --- the path ---------------------------------------------------------------------------------


class MixesRows(nn.Module):
    """Centers each batch on its own mean: per candidate under vmap, not when folded."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)

    def forward(self, x):
        x = x[:, -1]
        return self.lin(x - x.mean(0))


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 1)  # the data has 3 features

    def forward(self, x):
        return self.lin(x[:, -1])


def _path(factory, **kw):
    X = _inputs("lstm")
    return choose_path(factory, X, task="classification", n_outputs=1, **kw)


def test_the_path_is_fused_where_every_layer_has_a_fused_form():
    path = _path(lambda: Recurrent(nn.LSTM, 1))
    assert path.name == "fused"
    assert path.reason == "every layer has a fused form (1 LSTM, 1 Linear; LSTM cell eager)"
    assert isinstance(path.build(lambda: Recurrent(nn.LSTM, 1), [0]), FusedStack)
    assert path.max_candidates == 32  # on a CPU: recurrent stacks past 32 leave the cache
    assert _path(lambda: nn.Sequential(nn.Flatten(), nn.Linear(21, 1))).max_candidates is None


def test_a_module_without_a_fused_form_goes_to_torch_func_and_says_which():
    path = choose_path(WithScale, _inputs("lstm"), task="classification", n_outputs=3, batch_size=4)
    assert path.name == "torch.func"
    assert (
        path.reason
        == "no fused form: module '<root>' (WithScale) holds scale and has no fused form"
    )
    assert isinstance(path.build(WithScale, [0]), StackedModule)


def test_what_torch_func_cannot_batch_goes_to_the_loop_and_says_why():
    path = choose_path(
        lambda: WithScale(rnn=True), _inputs("lstm"), task="classification", n_outputs=3
    )
    assert path.name == "loop"
    assert (
        "torch.func cannot run it: RuntimeError: Batching rule not implemented for aten::lstm"
        in path.reason
    )


def test_a_forward_that_mixes_the_rows_of_a_batch_is_not_fused():
    path = _path(MixesRows)
    assert path.name == "torch.func"
    assert "its forward mixes the rows of a batch" in path.reason


def test_a_module_that_cannot_run_is_one_line_not_a_torch_traceback():
    with pytest.raises(ShrinkageError) as err:
        _path(Broken)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("The 'model_factory' module fails on a batch of shape (8, 7, 3): ")
    assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied" in message


@pytest.mark.parametrize(
    "n_out, task, n_outputs, message",
    [
        (
            3,
            "classification",
            1,
            "(batch, 1) (one logit) or (batch, 2) (two logits) for a binary target. "
            "Got (batch, 3) instead.",
        ),
        (2, "classification", 5, "(batch, 5) (one logit per class). Got (batch, 2) instead."),
        (2, "regression", 1, "(batch, 1) for a regression target. Got (batch, 2) instead."),
    ],
)
def test_a_head_the_task_cannot_use_is_refused_naming_the_shape(n_out, task, n_outputs, message):
    with pytest.raises(ShrinkageError) as err:
        choose_path(
            lambda: Recurrent(nn.GRU, n_out), _inputs("gru"), task=task, n_outputs=n_outputs
        )
    assert str(err.value) == f"The 'model_factory' module must return outputs of shape {message}"


def test_a_two_logit_head_is_accepted_for_a_binary_target():
    assert _path(lambda: Recurrent(nn.LSTM, 2)).name == "fused"


def test_a_contiguous_layout_is_chosen_for_a_forward_that_views_conv_outputs():
    class Viewing(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.head = nn.Linear(16, 1)

        def forward(self, x):
            h = torch.relu(self.conv(x))
            return self.head(h.view(h.size(0), -1))

    path = choose_path(Viewing, torch.randn(10, 1, 4, 4), task="regression", n_outputs=1)
    assert path.name == "fused" and not path.channels_last
    assert path.reason.endswith("; contiguous convolution outputs)")
    assert path.build(Viewing, [0]).channels_last is False


# --- the optional compiled LSTM kernel --------------------------------------------------------


@pytest.fixture(scope="module")
def compiled():
    """The compiled LSTM kernel, built once (about 30 s the first time; then cached).

    Skipped only where it cannot be built (no C++ compiler or no ninja: the eager path is
    what runs there); where it can, a kernel that fails to build fails these tests."""
    if shutil.which(os.environ.get("CXX", "c++")) is None or not is_ninja_available():
        pytest.skip("no C++ compiler or ninja: the compiled LSTM kernel cannot be built here")
    _lstm_ext.enable_compiled_lstm(True)
    _lstm_ext.enable_compiled_lstm(False)
    return _lstm_ext.compiled_lstm


@pytest.mark.parametrize(
    "case",
    [
        "lstm 2 layers bidirectional, h_n",
        "lstm 40 wide, c_n",
        "lstm sequence-first, no bias, initial states",
        "lstm 48 wide (vector cell)",
    ],
)
def test_compiled_lstm_equals_the_eager_one(compiled, case):
    factory, make_x = LAYER_CASES[case]
    x = make_x()
    results = []
    for on in (False, True):
        with compiled(on):
            stack = FusedStack(factory, [5, 6, 7])
            out = stack.forward(x)
            (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
            results.append((out.detach(), stack.flat_grad.clone(), stack.predict(x)))
    for eager, fast in zip(*results):
        torch.testing.assert_close(fast, eager, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_candidate_with_the_compiled_lstm_equals_candidate_alone(compiled, optimizer):
    factory, task, n_classes = NETWORKS["lstm"]
    X, y = _inputs("lstm"), _target(task, n_classes)
    settings = _settings(task, n_classes, optimizer, "gradient")
    with compiled(True):
        assert _lstm_ext.is_compiled_lstm()
        path = choose_path(factory, X, task=task, n_outputs=1)
        assert path.reason.endswith("; LSTM cell compiled)")
        _train_and_compare(FusedStack(factory, [c[1] for c in CANDIDATES]), factory, X, y, settings)
    assert not _lstm_ext.is_compiled_lstm()


@pytest.mark.parametrize(
    "m, d, n, transposed", [(32, 41, 128, False), (7, 5, 13, False), (41, 640, 128, True)]
)
def test_the_compiled_kernels_tiles_multiply_as_bmm(compiled, m, d, n, transposed):
    """Full 8 x 32 register tiles, edge tiles and a transposed (strided) left operand."""
    with compiled(True):
        kernel = _lstm_ext.kernel(torch.empty(1))
    g = torch.Generator().manual_seed(0)
    if transposed:  # the weight gradient's [h; x; 1]^T: a strided view
        a = torch.randn(3, d, m, generator=g).transpose(1, 2)
    else:
        a = torch.randn(3, m, d, generator=g)
    w = torch.randn(3, d, n, generator=g)
    out = kernel.product(a, w, torch.empty(3, m, n))
    torch.testing.assert_close(out, torch.bmm(a, w), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("on", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize(
    "factory, shape",
    [(CellState, (3, 21, 4, 5)), (WideLSTM, (3, 21, 4, 5)), (OddConv1d, (3, 5, 3, 16))],
    ids=["lstm c_n view", "lstm", "conv1d"],
)
def test_predictions_block_by_block_equal_one_pass(compiled, on, factory, shape):
    """Scratch buffers are reused from one prediction block to the next: no block's
    outputs may alias them (an LSTM's c_n included)."""
    x = torch.randn(*shape)
    n = x.shape[1]
    with compiled(on):
        stack = FusedStack(factory, [5, 6, 7])
        whole = stack.predict(x)
        index = torch.arange(n).repeat(3, 1)
        X = x.reshape(3 * n, *x.shape[2:])
        blocks = predict_stack(stack, X, index + torch.arange(3).unsqueeze(1) * n, block=4)
    torch.testing.assert_close(blocks, whole, atol=1e-6, rtol=1e-6)


def test_a_kernel_that_cannot_be_built_is_one_line_and_the_eager_path_runs(monkeypatch):
    def no_compiler(verbose=False):
        raise RuntimeError("Ninja is required to load C++ extensions\nmore lines")

    monkeypatch.setattr(_lstm_ext, "_load", no_compiler)
    monkeypatch.setitem(_lstm_ext._STATE, "enabled", False)
    monkeypatch.delitem(_lstm_ext._STATE, "kernel", raising=False)
    with pytest.raises(ShrinkageError) as err:
        _lstm_ext.enable_compiled_lstm(True)
    assert str(err.value) == (
        "The compiled LSTM kernel needs a C++ compiler and ninja (pip install ninja); building "
        "it failed: RuntimeError: Ninja is required to load C++ extensions"
    )
    assert not _lstm_ext.is_compiled_lstm()
    monkeypatch.setitem(_lstm_ext._STATE, "enabled", True)  # SHRINKAGE_COMPILED_LSTM=1
    stack = FusedStack(lambda: Recurrent(nn.LSTM, 1), [1, 2])
    assert stack.forward(torch.randn(2, 3, 7, 3)).shape == (2, 3, 1)  # eager, silently
    assert not _lstm_ext.is_compiled_lstm()


# --- candidates leaving the stack (successive halving, #13) -----------------------------------


def _norm_drop_run(stack_type, optimizer):
    """What a StackTrainer needs for NormDrop's three candidates, and a trainer factory."""
    X, y = _inputs("cnn"), _target("classification", 3)
    settings = _settings("classification", 3, optimizer, "gradient", epochs=2)
    seeds = [c[1] for c in CANDIDATES]
    n_layers = stack_type(NormDrop, seeds[:1]).n_layers
    strengths = [layer_strengths(c[2], c[3], n_layers, c[4]) for c in CANDIDATES]
    l1 = torch.tensor([a for a, _ in strengths])
    l2 = torch.tensor([b for _, b in strengths])
    rows = [FOLDS[c[0]] for c in CANDIDATES]

    def trainer():
        stack = stack_type(NormDrop, seeds)
        return stack, _loop.StackTrainer(stack, X, y, rows, seeds, l1, l2, settings)

    return trainer


@pytest.mark.parametrize("stack_type", [FusedStack, LoopStack])
def test_candidates_that_stay_in_a_shrunk_stack_train_on_as_before(stack_type):
    """keep() rebuilds the flat buffers; the fused layers, the leaves, the buffers
    (running statistics) and the dropout streams follow through ``_on_keep``."""
    trainer = _norm_drop_run(stack_type, "adam")
    whole, run = trainer()
    run.run(2)
    shrunk, run = trainer()
    run.run(1)
    run.keep([2, 0])
    run.run(1)
    assert shrunk.k == 2
    for new, old in enumerate([2, 0]):
        for name, value in whole.state(old).items():
            torch.testing.assert_close(shrunk.state(new)[name], value, atol=1e-6, rtol=0)


@pytest.mark.parametrize("stack_type", [FusedStack, LoopStack])
def test_a_candidate_continues_in_another_stack_from_its_exported_state(stack_type):
    """Running statistics and the dropout stream travel with the weights and the optimizer
    (a halving rung in another chunk, a resumed search)."""
    trainer = _norm_drop_run(stack_type, "sgd")
    whole, run = trainer()
    run.run(2)
    _, first = trainer()
    first.run(1)
    assert "dropout_generator" in first.state(0) and "net.1.running_var" in first.state(0)
    moved, second = trainer()
    for k in range(len(CANDIDATES)):
        second.load_state(k, {n: t.numpy() for n, t in first.state(k).items()})
    second.run(1)
    for k in range(len(CANDIDATES)):
        for name, value in whole.state(k).items():
            torch.testing.assert_close(moved.state(k)[name], value, atol=1e-6, rtol=0)
