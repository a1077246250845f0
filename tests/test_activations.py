"""The outputs of any model's submodules: ActivationRecorder, activations, activation_table,
on a CNN, an LSTM and a TransformerEncoderLayer, against the modules called by hand."""

import numpy as np
import pytest
import torch
from torch import nn

import shrinkage as sk
from shrinkage import ShrinkageError
from shrinkage.estimators import MLPClassifier


def _cnn():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(4 * 4 * 4, 3),
    )
    with torch.no_grad():  # filter 1 never fires: a dead channel after the ReLU
        model[0].weight[1] = 0.0
        model[0].bias[1] = -1.0
    return model


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 5, batch_first=True)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def test_cnn_outputs_equal_the_modules_called_by_hand_and_hooks_are_gone():
    model = _cnn()
    model.train()
    x = torch.randn(6, 1, 8, 8)
    out = sk.activations(model, x)  # every submodule
    assert list(out) == ["0", "1", "2", "3", "4", "5"]
    with torch.no_grad():
        conv = model[0](x)
        relu = torch.relu(conv)
        pooled = model[2](relu)
        logits = model[5](pooled.flatten(1))  # eval mode: dropout is the identity
    torch.testing.assert_close(out["0"], conv)
    torch.testing.assert_close(out["1"], relu)
    torch.testing.assert_close(out["5"], logits)
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    assert model.training and all(m.training for m in model.modules())  # mode restored

    table = sk.activation_table(model, x)
    relu_row = table.set_index("module").loc["1"]
    assert relu_row["type"] == "ReLU" and relu_row["shape"] == (6, 4, 8, 8)
    assert (relu_row["units"], relu_row["dead_units"]) == (4, 1)  # channels, one dead
    assert relu_row["fraction_active"] == pytest.approx(float((relu > 0).double().mean()))
    assert relu_row["mean"] == pytest.approx(float(relu.double().mean()))
    assert table.set_index("module").loc["5", "units"] == 3


def test_lstm_records_the_sequence_output_of_its_tuple():
    torch.manual_seed(1)
    model = Recurrent()
    x = torch.randn(4, 7, 3)
    out = sk.activations(model, x, ["lstm", "head"])
    with torch.no_grad():
        sequence, _ = model.lstm(x)
    torch.testing.assert_close(out["lstm"], sequence)
    assert tuple(out["head"].shape) == (4, 2)
    row = sk.activation_table(model, x, ["lstm"]).iloc[0]
    assert row["shape"] == (4, 7, 5) and row["units"] == 5  # hidden units on the last axis
    assert row["min"] >= -1 and row["max"] <= 1  # an LSTM's output is o * tanh(c)


def test_transformer_encoder_layer_submodules():
    torch.manual_seed(2)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    x = torch.randn(3, 5, 8)
    out = sk.activations(layer, x)
    assert {"self_attn", "linear1", "linear2", "norm1", "norm2"} <= set(out)
    with torch.no_grad():
        layer.eval()
        attention, _ = layer.self_attn(x, x, x, need_weights=False)
    torch.testing.assert_close(out["self_attn"], attention)
    assert tuple(out["linear1"].shape) == (3, 5, 16)
    norm = out["norm2"].double()
    torch.testing.assert_close(
        norm.mean(-1), torch.zeros(3, 5, dtype=torch.float64), atol=1e-5, rtol=0
    )
    table = sk.activation_table(layer, x, ["linear1", "norm2"]).set_index("module")
    assert table.loc["linear1", "units"] == 16 and table.loc["norm2", "units"] == 8


def test_recorder_during_training_keeps_the_last_output():
    model = _cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with sk.ActivationRecorder(model, ["1"], to_cpu=True) as recorder:
        for _ in range(2):
            x = torch.randn(5, 1, 8, 8)
            opt.zero_grad()
            model(x).sum().backward()  # the hooks do not get in autograd's way
            opt.step()
        assert tuple(recorder.outputs["1"].shape) == (5, 4, 8, 8)
        assert not recorder.outputs["1"].requires_grad
    assert len(model[1]._forward_hooks) == 0


def test_an_estimator_uses_its_network_on_preprocessed_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)) * [1, 10, 100]
    y = (X[:, 0] > 0).astype(int)
    clf = MLPClassifier((6,), epochs=5, random_state=0).fit(X, y)
    out = sk.activations(clf, X[:7], ["layers.0"])
    hidden = torch.relu(out["layers.0"]).numpy()
    np.testing.assert_allclose(hidden, clf.transform_hidden(X[:7], layer=0), rtol=1e-6)
    assert sk.activation_table(clf, X[:7], ["layers.0"]).iloc[0]["units"] == 6


def test_unknown_module_names_say_what_exists():
    with pytest.raises(ShrinkageError) as err:
        sk.activations(Recurrent(), torch.randn(2, 3, 3), ["lstn"])
    assert str(err.value) == (
        "The 'modules' entry 'lstn' is not a submodule of Recurrent; submodules are: lstm, "
        "head. Did you mean 'lstm'?"
    )
    with pytest.raises(ShrinkageError, match="must be a torch nn.Module"):
        sk.ActivationRecorder(object())
