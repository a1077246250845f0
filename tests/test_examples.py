"""Each worked example in examples/ runs end to end in its --quick mode and prints its table."""

import importlib
from pathlib import Path

import pytest

from shrinkage import L2

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def load(name):
        return importlib.import_module(name)

    return load


def test_cnn_digits(example, capsys):
    result = example("cnn_digits").main(["--quick"])
    out = capsys.readouterr().out
    assert "digits 8x8: 539 train / 377 validation / 881 test images" in out
    # Kernels penalized, biases not, in the printed plan.
    assert "3.weight   (32, 16, 3, 3)  L2       l2=0.001  rule 0 ('*')" in out
    assert "3.bias     (32,)           -        -         bias (excluded by default)" in out
    assert [row["label"] for row in result["rows"]] == [
        "none",
        "L2, gradient",
        "group lasso rows, proximal",
    ]
    assert "SearchCV(model_factory=make_cnn)" in out
    assert result["search_path"] == "fused"
    assert "path: fused (every layer has a fused form (2 Conv2d, 2 Linear))" in out
    assert [row["lambda"] for row in result["search"]] == [0.0, 1e-3]
    assert result["rows"][1]["lambda"] == result["best_l2"]
    assert "<- SearchCV" in out and "<- validation, 1-SE rule" in out
    for row in result["rows"]:
        assert 0.1 < row["test"] <= 1.0
    for row in result["compaction"]:
        assert row["params after"] <= row["params"]
        assert row["acc after"] == row["acc"]
        assert row["diff64"] < 1e-9
    assert "max |dlogit| f64" in out


def test_compaction(example, capsys):
    result = example("compaction").main(["--quick"])
    out = capsys.readouterr().out
    assert "torch threads = 1, CPU" in out
    summary = result["summary"]
    assert [(r["network"], r["version"]) for r in summary] == [
        ("MLP 64-256-256-10", "before"),
        ("MLP 64-256-256-10", "after compact"),
        ("CNN (cnn_digits.py)", "before"),
        ("CNN (cnn_digits.py)", "after compact"),
    ]
    for before, after in (summary[:2], summary[2:]):
        assert after["params"] <= before["params"]
        assert after["acc"] == before["acc"]
        assert before["batch_ms"] > 0 and after["one_ms"] > 0
    assert "Compaction at the chosen lambda (test split: 881 images; seed 0 model):" in out
    assert set(result["sweeps"]) == {"MLP 64-256-256-10", "CNN (cnn_digits.py)"}


def test_lstm_sequence(example, capsys):
    result = example("lstm_sequence").main(["--quick"])
    out = capsys.readouterr().out
    assert "rnn.weight_ih_l0  (128, 8)   L2       l2=0.001  rule 0 ('*.weight_ih*')" in out
    assert "rnn.weight_hh_l0  (128, 32)  L2       l2=0.01   rule 1 ('*.weight_hh*')" in out
    rows = {row["label"]: row for row in result["rows"]}
    assert list(rows) == [
        "none",
        "input L2",
        "input L1",
        "recurrent L2",
        "input L2 + recurrent L2",
    ]
    # Each rule shrinks its own kernel and leaves the other one (nearly) alone.
    assert rows["input L2"]["norm_ih"] < rows["none"]["norm_ih"]
    assert rows["recurrent L2"]["norm_hh"] < rows["none"]["norm_hh"]
    assert rows["recurrent L2"]["norm_ih"] > rows["input L2"]["norm_ih"]
    assert rows["input L2"]["norm_hh"] > rows["recurrent L2"]["norm_hh"]
    assert "W_ih share on signal" in out
    # the kernel and strength chosen by SearchCV, every candidate LSTM in one fused stack
    assert result["search_path"] == "fused"
    assert "path: fused (every layer has a fused form (1 LSTM, 1 Linear; LSTM cell " in out
    assert [(r["kernel"], r["lambda"]) for r in result["search"]] == [
        (kernel, strength)
        for kernel in ("input kernel", "recurrent kernel", "every kernel")
        for strength in ("0.001", "0.01")
    ]
    assert sum(r["chosen"] == "<- best" for r in result["search"]) == 1


def test_activity_regularization(example, capsys):
    result = example("activity_regularization").main(["--quick"])
    out = capsys.readouterr().out
    assert (
        "hidden_act (output)  -          L1       l1=0.001  activity of ReLU, / batch size" in out
    )
    none, penalized = result["rows"]
    assert none["lambda"] == 0 and penalized["lambda"] == 1e-3
    assert penalized["mean_h"] < none["mean_h"]
    assert "active units / image" in out


def test_lightning_callback(example, capsys):
    pytest.importorskip("lightning")
    result = example("lightning_callback").main(["--quick"])
    out = capsys.readouterr().out
    assert "net.0.weight  (128, 64)  L1       l1=0.0003  rule 0 ('*')" in out
    none, l2, l1 = result["rows"]
    assert [r["label"] for r in result["rows"]] == ["none", "L2 loss", "L1 proximal"]
    # 2 epochs x 17 batches, a row every 5 steps and one at the end: read back from the CSV.
    assert none["logged"] == 0 and l2["logged"] == l1["logged"] == 8
    assert l2["abs_w"] < none["abs_w"] and l1["abs_w"] < none["abs_w"]
    assert l1["zeros"] > 0 and none["zeros"] == 0
    assert l2["last_penalty"] > 0 and l1["last_penalty"] > 0


def test_skorch_callback(example, capsys):
    pytest.importorskip("skorch")
    result = example("skorch_callback").main(["--quick"])
    out = capsys.readouterr().out
    assert "penalty    train_loss" in out  # skorch's PrintLog shows the callback's column
    assert "GridSearchCV over callbacks__shrinkage__plan, 2-fold" in out
    assert result["best"] in (L2(1e-4), L2(1e-2))
    none, tuned, lasso = result["rows"]
    assert tuned["abs_w"] < none["abs_w"] and lasso["zeros"] > 0
    assert len(result["history"]["penalty"]) == 2


def test_tensorboard_logging(example, capsys):
    pytest.importorskip("tensorboard")
    result = example("tensorboard_logging").main(["--quick"])
    out = capsys.readouterr().out
    assert "What TensorBoard plots, read back from the event file:" in out
    assert "shrinkage/zero_fraction/0.weight" in result["scalars"]
    assert result["histograms"] == ["shrinkage/weights/0.weight", "shrinkage/weights/2.weight"]
    first, *_, last = result["rows"]
    assert first["epoch"] == 0 and last["epoch"] == 3
    assert first["zeros0"] == 0 and last["zeros0"] > first["zeros0"]
    assert last["val"] > 0.5
