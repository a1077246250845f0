"""What the integrations share: weight_stats, and a clean error when an extra is missing."""

import importlib
import sys

import numpy as np
import pytest
import torch
from torch import nn

from shrinkage import L1, L2, Plan, Regularizer, ShrinkageError
from shrinkage.integrations import MissingDependency, weight_stats


def test_weight_stats_against_numpy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        model[0].weight[:2] = 0.0
    reg = Regularizer(model, Plan({"*": L2(0.1), "2.bias": L1(0.5)}), "gradient")
    stats = weight_stats(reg)
    assert list(stats) == [
        "shrinkage/penalty",
        "shrinkage/l2_norm/0.weight",
        "shrinkage/zero_fraction/0.weight",
        "shrinkage/l2_norm/2.weight",
        "shrinkage/zero_fraction/2.weight",
        "shrinkage/l2_norm/2.bias",  # penalized by a rule that names it
        "shrinkage/zero_fraction/2.bias",
    ]
    w0, w2, b2 = (
        p.detach().numpy().astype(np.float64) for p in (model[0].weight, *model[2].parameters())
    )
    expected_penalty = 0.1 * ((w0**2).sum() + (w2**2).sum()) + 0.5 * np.abs(b2).sum()
    assert stats["shrinkage/penalty"] == pytest.approx(expected_penalty, rel=1e-6)
    assert stats["shrinkage/l2_norm/0.weight"] == pytest.approx(np.sqrt((w0**2).sum()), rel=1e-6)
    assert stats["shrinkage/zero_fraction/0.weight"] == pytest.approx(0.5)
    assert stats["shrinkage/zero_fraction/2.weight"] == 0.0
    # A plain module: every weight matrix, no penalty; no prefix.
    plain = weight_stats(model, prefix="")
    assert list(plain) == [
        "l2_norm/0.weight",
        "zero_fraction/0.weight",
        "l2_norm/2.weight",
        "zero_fraction/2.weight",
    ]
    reg.remove()


def test_weight_stats_refuses_other_objects():
    with pytest.raises(
        ShrinkageError, match=r"^weight_stats expects .* nn.Module. Got dict instead.$"
    ):
        weight_stats({})


INTEGRATIONS = [
    ("lightning", ["lightning", "lightning.pytorch"]),
    ("skorch", ["skorch"]),
    ("tensorboard", ["tensorboard"]),
]


@pytest.mark.parametrize(("extra", "packages"), INTEGRATIONS, ids=[i[0] for i in INTEGRATIONS])
def test_missing_package_gives_one_line_with_the_install_command(extra, packages, monkeypatch):
    for package in packages:
        monkeypatch.setitem(sys.modules, package, None)  # `import package` now fails
    monkeypatch.delitem(sys.modules, f"shrinkage.integrations.{extra}", raising=False)
    with pytest.raises(MissingDependency) as info:
        importlib.import_module(f"shrinkage.integrations.{extra}")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"shrinkage.integrations.{extra} needs the '{packages[-1]}' package")
    assert message.endswith(f"install it with: pip install shrinkage[{extra}]")
    # Caught as the library's error and as an ImportError (pytest.importorskip, try/except).
    assert isinstance(info.value, ShrinkageError) and isinstance(info.value, ImportError)
