"""weight_table: per-layer norms, sparsity and dead units against NumPy formulas."""

import numpy as np
import pytest
import torch
from torch import nn

from shrinkage import ShrinkageError
from shrinkage.analysis import weight_table
from shrinkage.estimators import MLPRegressor


def _expected(name, w, small=1e-3):
    rows = w.reshape(w.shape[0], -1)
    return {
        "name": name,
        "shape": list(w.shape),
        "n_params": w.size,
        "penalty": None,
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
    # four useless inputs get exact zeros from the proximal step
    assert row["zero_fraction"] == pytest.approx(4 / 6)
    assert row["dead_units"] == 0


def test_bad_input():
    with pytest.raises(ShrinkageError) as err:
        weight_table(MLPRegressor())
    assert str(err.value) == (
        "weight_table expects a torch nn.Module or a fitted shrinkage estimator; got MLPRegressor."
    )
