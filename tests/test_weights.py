"""weight_table: per-layer norms, sparsity and dead units against NumPy formulas, on any
model (MLP, CNN, LSTM, TransformerEncoderLayer), with each weight's penalty from a
Regularizer."""

import numpy as np
import pytest
import torch
from torch import nn

from shrinkage import L1, L2, L2SP, Regularizer, ShrinkageError
from shrinkage.analysis import weight_table
from shrinkage.estimators import MLPRegressor


def _expected(name, w, small=1e-3):
    rows = w.reshape(w.shape[0], -1)
    return {
        "name": name,
        "shape": list(w.shape),
        "n_params": w.size,
        "l1_norm": pytest.approx(np.abs(w).sum()),
        "l2_norm": pytest.approx(np.sqrt((w**2).sum())),
        "max_abs": pytest.approx(np.abs(w).max()),
        "zero_fraction": pytest.approx((w == 0).mean()),
        "small_fraction": pytest.approx((np.abs(w) < small).mean()),
        "units": w.shape[0],
        "dead_units": int((np.abs(rows).max(axis=1) == 0).sum()),
    }


def test_linear_and_conv_weights_against_numpy():
    model = nn.Sequential(nn.Conv2d(2, 3, 2), nn.Flatten(), nn.Linear(12, 4))
    with torch.no_grad():
        model[0].weight[1] = 0.0  # a dead filter
        model[2].weight[:, :3] = 0.0
        model[2].weight[0, 5] = 5e-4
        model[2].weight[3] = 0.0
    rows = weight_table(model)
    conv = model[0].weight.detach().double().numpy()
    linear = model[2].weight.detach().double().numpy()
    assert rows == [_expected("0.weight", conv), _expected("2.weight", linear)]
    assert rows[0]["dead_units"] == 1 and rows[1]["dead_units"] == 1


def test_hand_made_numbers():
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [3.0, -4.0, 0.0005]]))
    (row,) = weight_table(layer, small=1e-3)
    assert row["l1_norm"] == pytest.approx(7.0005)
    assert row["l2_norm"] == pytest.approx(5.0, abs=1e-6)
    assert row["max_abs"] == 4.0
    assert row["zero_fraction"] == 3 / 6
    assert row["small_fraction"] == 4 / 6
    assert (row["units"], row["dead_units"]) == (2, 1)


def test_estimator_rows_name_the_penalty_and_show_lasso_zeros():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 6))
    y = X[:, 0] - 2 * X[:, 1]
    reg = MLPRegressor(
        (),
        penalty="l1",
        strength=0.5,
        mode="proximal",
        optimizer="sgd",
        momentum=0.0,
        learning_rate=0.1,
        epochs=100,
        batch_size=40,
        random_state=0,
    ).fit(X, y)
    (row,) = weight_table(reg)
    assert row["penalty"] == "L1(l1=0.5)"
    w = reg.model_.layers[0].weight.detach().double()
    assert row["penalty_value"] == pytest.approx(0.5 * float(w.abs().sum()))
    # four useless inputs get exact zeros from the proximal step
    assert row["zero_fraction"] == pytest.approx(4 / 6)
    assert row["dead_units"] == 0


def test_bad_input():
    with pytest.raises(ShrinkageError) as err:
        weight_table(MLPRegressor())
    assert str(err.value) == (
        "weight_table expects a torch nn.Module, a Regularizer or a fitted shrinkage estimator; "
        "got MLPRegressor."
    )
    other = Regularizer(nn.Linear(2, 2), L2(0.1))
    with pytest.raises(ShrinkageError) as err:
        weight_table(nn.Linear(2, 2), other)
    assert "it regularizes another module" in str(err.value)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.head(self.pool(torch.relu(self.conv(x))).flatten(1))


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 5, batch_first=True)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def _models():
    torch.manual_seed(0)
    return {
        "cnn": CNN(),
        "lstm": Recurrent(),
        "transformer": nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True),
    }


@pytest.mark.parametrize("kind", ["cnn", "lstm", "transformer"])
def test_any_model_with_its_regularizer_shows_each_penalty_and_its_value(kind):
    model = _models()[kind]
    plan = {"*": L2(1e-3), "*.weight_hh*": L1(1e-2)}
    if kind != "lstm":
        plan = {"*": L2(1e-3)}
    reg = Regularizer(model, plan, mode="gradient", scale=2.0)
    rows = weight_table(reg)
    weights = {n: p for n, p in model.named_parameters() if p.ndim >= 2}
    assert [row["name"] for row in rows] == list(weights)  # every matrix, biases left out
    for row in rows:
        w = weights[row["name"]].detach().double()
        assert row == {
            **_expected(row["name"], w.numpy()),
            "penalty": row["penalty"],
            "penalty_value": row["penalty_value"],
        }
        if row["name"].endswith("weight_hh_l0"):
            assert row["penalty"] == "L1(l1=0.01)"
            assert row["penalty_value"] == pytest.approx(2.0 * 1e-2 * float(w.abs().sum()))
        else:
            assert row["penalty"] == "L2(l2=0.001)"
            assert row["penalty_value"] == pytest.approx(2.0 * 1e-3 * float((w**2).sum()))
    # the same numbers from the module and the Regularizer, or a plain plan (scale 1)
    assert weight_table(model, reg) == rows
    by_plan = weight_table(model, plan, as_frame=True)
    assert list(by_plan["penalty_value"]) == pytest.approx([r["penalty_value"] / 2 for r in rows])
    if kind == "transformer":
        names = set(by_plan["name"])
        assert {"self_attn.in_proj_weight", "linear1.weight", "linear2.weight"} <= names
        assert not any("norm" in name for name in names)  # LayerNorm weights are 1-D


def test_a_plain_module_has_no_penalty_columns_and_a_frame():
    frame = weight_table(_models()["cnn"], as_frame=True)
    assert list(frame["name"]) == ["conv.weight", "head.weight"]
    assert "penalty" not in frame and list(frame["units"]) == [4, 3]


def test_l2sp_value_measures_from_the_weights_at_attach_time():
    model = nn.Linear(3, 2)
    reg = Regularizer(model, {"weight": L2SP(0.5)})
    (row,) = weight_table(reg)
    assert row["penalty"] == "L2SP(0.5) toward the initial weights"
    assert row["penalty_value"] == 0.0
    with torch.no_grad():
        model.weight.add_(1.0)
    assert weight_table(reg)[0]["penalty_value"] == pytest.approx(0.5 * 6)
